"""A user's saved work keeps working: the training checkpoint, the .keras file and the
SavedModel in tests/data/compat/ (written by tests/make_compat_fixtures.py with the code of
its commit) load, resume and score the bits per pixel they scored when written."""
import json
import os
import shutil

from helpers import TINY
from make_compat_fixtures import (FOLDER, frame_bpp, served_frame_bpp, train_one_step)

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import numpy as np
import pytest

from videoflow_tf.training import open_model, run_dir

with open(os.path.join(FOLDER, "expected.json"), encoding="utf-8") as _file:
    EXPECTED = json.load(_file)
# The same float32 computation may be reorganised (fused differently, summed in another
# order): 1e-5 of a bit per pixel is far below any change a user could notice, and far
# above float32 rounding.
RTOL = 1e-5


def check_bpp(model, key):
    np.testing.assert_allclose(frame_bpp(model), EXPECTED[key], rtol=RTOL)


def resumed(model):
    """`model` after one more training step: the optimizer's state must have survived."""
    assert int(model.optimizer.iterations.numpy()) == EXPECTED["step"]
    train_one_step(model)
    return model


def test_a_training_checkpoint_loads_resumes_and_scores_the_same(tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(os.path.join(FOLDER, "run"), run)
    model, step = open_model.load_model(run)
    assert step == EXPECTED["step"]
    check_bpp(model, "frame_bpp")
    # Resuming as training does: a compiled model, its optimizer restored with the weights.
    model = vf.VideoFlow(run_dir.read_config(run))
    model.compile(optimizer=vf.make_optimizer(model.config))
    model.optimizer.build(model.trainable_variables)
    manager = run_dir.checkpoint_manager(run, run_dir.make_checkpoint(model, model.optimizer))
    run_dir.restore(manager.checkpoint, manager.latest_checkpoint, model)
    check_bpp(resumed(model), "frame_bpp_after_one_more_step")


def test_a_keras_file_loads_resumes_and_scores_the_same():
    model = keras.models.load_model(os.path.join(FOLDER, "model.keras"))
    assert isinstance(model, vf.VideoFlow) and model.config == TINY
    check_bpp(model, "frame_bpp")
    check_bpp(resumed(model), "frame_bpp_after_one_more_step")


@pytest.fixture(scope="module")
def saved_model():
    version = open_model.saved_model_version(os.path.join(FOLDER, "savedmodel"))
    assert version is not None
    return version


def test_a_saved_model_still_serves_and_scores_the_same(saved_model):
    np.testing.assert_allclose(served_frame_bpp(saved_model), EXPECTED["savedmodel_frame_bpp"],
                               rtol=RTOL)


def test_a_saved_models_weights_start_a_new_model_that_scores_the_same(saved_model):
    model = vf.VideoFlow(TINY)
    open_model.copy_weights(model, saved_model)
    # The signature scores with the dequantisation noise of seed 0, as frame_bpp does.
    np.testing.assert_allclose(frame_bpp(model), EXPECTED["savedmodel_frame_bpp"], rtol=RTOL)
