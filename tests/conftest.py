"""Fixtures shared by the test modules; plain data and helpers are in helpers.py."""
from unittest import mock

import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import tensorflow_datasets as tfds

from helpers import SHAPES_SPLIT_SIZES, TINY, moving_squares
from videoflow_tf.datasets.stochastic_shapes import stochastic_shapes_dataset_builder as shapes


@pytest.fixture(scope="session")
def shapes_data_dir(tmp_path_factory):
    """A TFDS data folder with a small stochastic_shapes, built once per test process:
    SHAPES_SPLIT_SIZES videos of both builder configs (gray, the default, and black), each
    split in two files, as TFDS shards a split by files between the workers of a
    multi-worker strategy."""
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    with mock.patch.object(shapes.Builder, "SPLIT_SIZES", SHAPES_SPLIT_SIZES):
        for config in ("gray", "black"):
            tfds.builder(f"stochastic_shapes/{config}", data_dir=data_dir).download_and_prepare(
                download_config=tfds.download.DownloadConfig(num_shards=2))
    return data_dir


@pytest.fixture(scope="module")
def tiny_model():
    """A VideoFlow of the tiny config, initialised on moving squares."""
    model = vf.VideoFlow(TINY)
    model.initialize(moving_squares())
    return model
