"""The shipped model (savedmodels/stochastic_shapes/) is its named config, field for
field, and scores and samples as when it was pinned: its bits per pixel on 8 fixed clips
and the strict motion of its futures at fixed seeds, measured by today's code
(tests/make_shipped_pins.py wrote the numbers; run it again when a new version ships)."""
import json
import os

from make_shipped_pins import PINS, load_clips, measure, shipped_version

import numpy as np
import pytest

from videoflow_tf.config import VideoFlowConfig, get_config

with open(PINS, encoding="utf-8") as _file:
    PINNED = json.load(_file)


def test_the_pins_are_of_the_shipped_version():
    assert PINNED["version"] == os.path.basename(shipped_version()), (
        "a new version is shipped: pin it with python tests/make_shipped_pins.py")


def test_the_shipped_version_is_its_named_config_field_for_field():
    with open(os.path.join(shipped_version(), "assets", "config.json"), encoding="utf-8") as file:
        shipped = VideoFlowConfig.from_json(file.read())
    assert shipped.to_dict() == get_config(shipped.name).to_dict()


@pytest.fixture(scope="module")
def measured():
    return measure(os.path.join(os.path.dirname(shipped_version()), PINNED["version"]),
                   load_clips())


def test_bits_per_pixel_of_fixed_clips(measured):
    # As tests/test_compat.py: reorganised float32 arithmetic moves it by far less.
    np.testing.assert_allclose(measured["bpp_per_frame"], PINNED["bpp_per_frame"], rtol=1e-5)


def test_strict_motion_of_futures_at_fixed_seeds(measured):
    assert measured["strict"] == PINNED["strict"]
    assert measured["futures"] == PINNED["futures"]
