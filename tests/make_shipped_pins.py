"""Writes the numbers tests/test_shipped_model.py holds each shipped model to.

    python tests/make_shipped_pins.py          # shipped models whose newest version has no pins
    python tests/make_shipped_pins.py NAME ... # these shipped models (savedmodels/NAME)

A shipped model (savedmodels/NAME/, its newest version) is opened as every command opens
it, its Python model rebuilt from the SavedModel's weights, and measured on 8 fixed
stochastic-shapes clips at its frame size (tests/data/shipped/clips_SIZE.npz: videos
rendered once with the dataset's renderer, resized as the data pipeline does, and what
they show): the bits per pixel of every frame after the context (dequantisation noise of
seed 0), and the strict motion report (`videoflow_tf.analysis.strict_motion`) of 2
futures per clip sampled at the config's temperature with seeds 0 to 15. Writes
tests/data/shipped/NAME.json. Shipping a new version: run this, and commit the pins
(and the clips of a new frame size) with the version.
"""
import json
import os
import sys

import numpy as np

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)

from videoflow_tf.analysis import strict_motion
from videoflow_tf.data import pipelines
from videoflow_tf.datasets.stochastic_shapes import rendering
from videoflow_tf.training import open_model

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "shipped")
SEEDS_PER_CLIP = 2
BACKGROUND = (128, 128, 128)  # the default (gray) stochastic_shapes the models learned


def pins_file(name):
    return os.path.join(FOLDER, f"{name}.json")


def clips_file(size):
    return os.path.join(FOLDER, f"clips_{size}.npz")


def make_clips(num_clips=8, seed=2026, size=32):
    """Clips rendered as the dataset renders its videos, resized as the data pipeline does."""
    params = rendering.sample_parameters(np.random.default_rng(seed), num_clips)
    videos = rendering.render_videos(params, BACKGROUND)
    return {"videos": np.stack([np.asarray(pipelines._resize(video, size)) for video in videos]),
            **{key: params[key] for key in ("shape", "color", "size")}}


def load_clips(size):
    with np.load(clips_file(size)) as clips:
        return {key: clips[key] for key in clips.files}


def shipped_version(name):
    """The folder of the newest version of shipped model `name`."""
    return open_model.saved_model_version(os.path.join(open_model.SHIPPED_MODELS_DIR, name))


def measure(version):
    """The pinned numbers of the SavedModel `version` on the clips of its frame size."""
    model = open_model.python_model(open_model.open_model(version))
    config = model.config
    clips = load_clips(config.image_size)
    videos = clips["videos"]
    bpp = model.bits_per_pixel(videos, seed=0, per_frame=True).numpy()
    contexts = np.repeat(videos[:, :config.num_context_frames], SEEDS_PER_CLIP, axis=0)
    futures = model.sample(contexts, videos.shape[1] - config.num_context_frames,
                           seed=np.arange(len(contexts))).numpy()
    report = strict_motion.strict_report(
        np.concatenate([contexts, futures], axis=1), clips,
        np.repeat(np.arange(len(videos)), SEEDS_PER_CLIP), BACKGROUND,
        context_frames=config.num_context_frames)
    return {"bpp_per_frame": bpp.tolist(),
            "strict": {key: report[key] for key in ("num_futures", "faithful",
                                                    "direction_counts", "distinct_directions")},
            "futures": [{key: record[key] for key in ("context", "faithful", "direction")}
                        for record in report["futures"]]}


def pinned_version(name):
    """The version `name`'s pins are of, None if it has none."""
    if not os.path.exists(pins_file(name)):
        return None
    with open(pins_file(name), encoding="utf-8") as file:
        return json.load(file)["version"]


def pin(name):
    version = shipped_version(name)
    size = open_model.exported_config(version).image_size
    if not os.path.exists(clips_file(size)):
        np.savez_compressed(clips_file(size), **make_clips(size=size))
    pins = {"version": os.path.basename(version), **measure(version)}
    with open(pins_file(name), "w", encoding="utf-8") as file:
        json.dump(pins, file, indent=1)
        file.write("\n")
    print(f"pinned {name} version {pins['version']}: {pins['strict']}")


def main(names):
    names = names or [name for name in open_model.shipped_model_names()
                      if pinned_version(name) != os.path.basename(shipped_version(name))]
    for name in names:
        pin(name)


if __name__ == "__main__":
    main(sys.argv[1:])
