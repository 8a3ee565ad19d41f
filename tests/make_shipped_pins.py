"""Writes the numbers tests/test_shipped_model.py holds the shipped model to.

    python tests/make_shipped_pins.py            # pins the newest shipped version

The shipped model (savedmodels/stochastic_shapes/, its newest version) is opened as every
command opens it, its Python model rebuilt from the SavedModel's weights, and measured on
8 fixed stochastic-shapes clips (tests/data/shipped/clips.npz: 32x32 videos rendered once
with the dataset's renderer, and what they show): the bits per pixel of every frame after
the context (dequantisation noise of seed 0), and the strict motion report
(`videoflow_tf.analysis.strict_motion`) of 2 futures per clip sampled at the config's temperature
with seeds 0 to 15. Writes tests/data/shipped/pins.json. Shipping a new version: run this,
and commit pins.json with the version.
"""
import json
import os

import numpy as np

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)

from videoflow_tf.analysis import strict_motion
from videoflow_tf.data import pipelines
from videoflow_tf.datasets.stochastic_shapes import rendering
from videoflow_tf.training import open_model

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "shipped")
CLIPS, PINS = os.path.join(FOLDER, "clips.npz"), os.path.join(FOLDER, "pins.json")
SEEDS_PER_CLIP = 2
BACKGROUND = (128, 128, 128)  # the default (gray) stochastic_shapes the model learned


def make_clips(num_clips=8, seed=2026, size=32):
    """Clips rendered as the dataset renders its videos, resized as the data pipeline does."""
    params = rendering.sample_parameters(np.random.default_rng(seed), num_clips)
    videos = rendering.render_videos(params, BACKGROUND)
    return {"videos": np.stack([pipelines._resize(video, size).numpy() for video in videos]),
            **{key: params[key] for key in ("shape", "color", "size")}}


def load_clips():
    with np.load(CLIPS) as clips:
        return {key: clips[key] for key in clips.files}


def shipped_version():
    """The folder of the newest shipped version."""
    return open_model.saved_model_version(open_model.SHIPPED_MODEL)


def measure(version, clips):
    """The pinned numbers of the SavedModel `version` on `clips`."""
    model = open_model.python_model(open_model.open_model(version))
    config = model.config
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


def main():
    os.makedirs(FOLDER, exist_ok=True)
    if not os.path.exists(CLIPS):
        np.savez_compressed(CLIPS, **make_clips())
    version = shipped_version()
    pins = {"version": os.path.basename(version), **measure(version, load_clips())}
    with open(PINS, "w", encoding="utf-8") as file:
        json.dump(pins, file, indent=1)
        file.write("\n")
    print(f"pinned version {pins['version']}: {pins['strict']}")


if __name__ == "__main__":
    main()
