"""Test data, models and scripts shared by the test modules (pytest.ini puts tests/ on
sys.path); the shared fixtures are in conftest.py."""
import os
import subprocess
import sys

import numpy as np

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import tensorflow_datasets as tfds

from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder as bair
from videoflow_tf.datasets.bair_action_free import fake_data

TINY = vf.get_config("tiny")  # 8x8 frames, 2 levels, 2 context + 2 target frames, skip
CONTEXT, TARGET = TINY.num_context_frames, TINY.num_target_frames
SHAPES_SPLIT_SIZES = {"train": 32, "test": 8}  # the videos of conftest's shapes_data_dir


def moving_squares(num_videos=4, frames=4, seed=0):
    """Videos of a bright 3x3 square moving one pixel per frame on a dark background."""
    rng = np.random.default_rng(seed)
    videos = np.full((num_videos, frames, 8, 8, 3), 20, np.uint8)
    for v in range(num_videos):
        y, x = rng.integers(0, 3, size=2)
        colour = rng.integers(120, 256, size=3)
        for t in range(frames):
            videos[v, t, y + t:y + t + 3, x + t:x + t + 3] = colour
    return videos


def noise_videos(num_videos=3, frames=4, seed=0, size=8):
    """uint8 [num_videos, frames, size, size, 3] of uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (num_videos, frames, size, size, 3),
                                                np.uint8)


def perturb(layer, seed=0, scale=0.05):
    """Moves every trainable weight of `layer` off its initialisation, so that no test
    passes because of zero-initialised outputs or identity steps."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        variable.assign(variable.numpy() + scale * rng.standard_normal(variable.shape))
    return layer


def perturbed_model(config=TINY, seed=1, scale=0.05):
    """A model initialised on moving squares, every trainable weight then perturbed (the
    same weights for every config with the same sizes)."""
    keras.utils.set_random_seed(0)  # the prior's Keras initialisers
    model = vf.VideoFlow(config)
    model.initialize(moving_squares())
    return perturb(model, seed, scale)


def write_bair_folder(root, records_by_file):
    """Writes {relative path: [tf.train.Example or raw bytes]} under root/softmotion30_44k,
    the layout of BAIR's archive; returns root."""
    for relative, records in records_by_file.items():
        path = root / bair.ROOT_FOLDER / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fake_data.write_records(path, records)
    return root


def build_bair(data_dir, manual_dir):
    """The bair_action_free builder in `data_dir`, prepared from `manual_dir`."""
    builder = bair.Builder(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def script(name):
    """The path of tests/scripts/`name`: programs the tests run in a fresh Python."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", name)


def run_script(name, *args, timeout=240, **kwargs):
    """Runs tests/scripts/`name` with `args`; its stdout, once it exited with status 0."""
    result = subprocess.run([sys.executable, script(name), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
