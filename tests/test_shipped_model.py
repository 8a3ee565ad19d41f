"""Every shipped model (savedmodels/NAME/) is its named config, field for field, and scores
and samples as when it was pinned: its bits per pixel on 8 fixed clips and the strict
motion of its futures at fixed seeds, measured by today's code (tests/make_shipped_pins.py
wrote the numbers; run it again when a new version ships)."""
import json
import os

from make_shipped_pins import measure, pins_file, shipped_version

import numpy as np
import pytest

from videoflow_tf.config import VideoFlowConfig, get_config
from videoflow_tf.datasets.stochastic_shapes import rendering
from videoflow_tf.training import open_model

SHIPPED = open_model.shipped_model_names()


def pinned(name):
    with open(pins_file(name), encoding="utf-8") as file:
        return json.load(file)


def test_the_default_model_is_shipped():
    assert "stochastic_shapes" in SHIPPED


def test_the_default_model_sees_and_samples_the_datasets_own_frames():
    # The paper's resolution: a TF Serving client sends the dataset's frames as they are.
    config = open_model.exported_config(shipped_version("stochastic_shapes"))
    assert config.image_size == rendering.IMAGE_SIZE


@pytest.mark.parametrize("name", SHIPPED)
def test_the_pins_are_of_the_shipped_version(name):
    assert os.path.exists(pins_file(name)) and pinned(name)["version"] == os.path.basename(
        shipped_version(name)), ("a new version is shipped: pin it with python "
                                 f"tests/make_shipped_pins.py {name}")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_version_is_its_named_config_field_for_field(name):
    with open(os.path.join(shipped_version(name), "assets", "config.json"),
              encoding="utf-8") as file:
        shipped = VideoFlowConfig.from_json(file.read())
    assert shipped.to_dict() == get_config(shipped.name).to_dict()


@pytest.fixture(scope="module", params=SHIPPED)
def measured(request):
    pins = pinned(request.param)
    version = os.path.join(os.path.dirname(shipped_version(request.param)), pins["version"])
    return pins, measure(version)


def test_bits_per_pixel_of_fixed_clips(measured):
    pins, numbers = measured
    # As tests/test_compat.py: reorganised float32 arithmetic moves it by far less.
    np.testing.assert_allclose(numbers["bpp_per_frame"], pins["bpp_per_frame"], rtol=1e-5)


def test_strict_motion_of_futures_at_fixed_seeds(measured):
    pins, numbers = measured
    assert numbers["strict"] == pins["strict"]
    assert numbers["futures"] == pins["futures"]
