"""Writes tests/data/compat/: a tiny model as a user's training left it, in every format a
user keeps, and the bits per pixel it scored when written (test_compat.py checks that
later code still loads, resumes and scores them the same).

    python tests/make_compat_fixtures.py

run/          a training run folder: config.json, training.json and a checkpoint of the
              weights and the optimizer (`run_dir.make_checkpoint`), as `videoflow-tf
              train` writes it
model.keras   `model.save` of the same model (with its optimizer)
savedmodel/1  `export.export_saved_model` of the same model
expected.json bits per pixel of SCORED_VIDEOS per scored frame (seed 0): of the model as
              saved, after one more training step on TRAIN_VIDEOS, and as the SavedModel's
              log_prob signature returns them

Written once, by the code of the commit that adds this script: rerunning it with later
code would make the test compare that code with itself.
"""
import json
import os
import shutil

from helpers import TINY, moving_squares, noise_videos

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import numpy as np
import tensorflow as tf

from videoflow_tf.commands import export
from videoflow_tf.training import open_model, run_dir

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "compat")
TRAINING_STEPS = 6


def train_videos():
    """The batch every training step sees: 4 videos of num_train_frames frames."""
    return moving_squares(num_videos=4, frames=TINY.num_train_frames, seed=3)


def scored_videos():
    """Two noise videos and two moving squares of context + target frames."""
    frames = TINY.num_context_frames + TINY.num_target_frames
    return np.concatenate([noise_videos(2, frames, seed=5),
                           moving_squares(2, frames, seed=7)])


def train_one_step(model):
    """One `fit` step on train_videos (in order: each video's noise depends on its place)."""
    model.fit(train_videos(), batch_size=4, epochs=1, shuffle=False, verbose=0)


def frame_bpp(model):
    return model.bits_per_pixel(scored_videos(), seed=0, per_frame=True).numpy()


def served_frame_bpp(version):
    """What the SavedModel's log_prob signature returns for scored_videos."""
    signature = tf.saved_model.load(version).signatures[open_model.LOG_PROB_SIGNATURE]
    return signature(video=tf.constant(scored_videos()))["frame_bits_per_pixel"].numpy()


def main():
    shutil.rmtree(FOLDER, ignore_errors=True)
    os.makedirs(FOLDER)
    keras.utils.set_random_seed(0)
    model = vf.VideoFlow(TINY)
    for _ in range(TRAINING_STEPS):
        train_one_step(model)
    step = int(model.optimizer.iterations.numpy())

    run = os.path.join(FOLDER, "run")
    run_dir.start_run(run, TINY, {"data_seed": 0, "data_dir": None})
    manager = run_dir.checkpoint_manager(run, run_dir.make_checkpoint(model, model.optimizer))
    manager.save(checkpoint_number=step)
    model.save(os.path.join(FOLDER, "model.keras"))
    version = export.export_saved_model(model, os.path.join(FOLDER, "savedmodel"))
    served = served_frame_bpp(version)

    saved = frame_bpp(model)
    train_one_step(model)
    expected = {"step": step, "frame_bpp": saved.tolist(),
                "frame_bpp_after_one_more_step": frame_bpp(model).tolist(),
                "savedmodel_frame_bpp": served.tolist()}
    with open(os.path.join(FOLDER, "expected.json"), "w", encoding="utf-8") as file:
        json.dump(expected, file, indent=1)
        file.write("\n")


if __name__ == "__main__":
    main()
