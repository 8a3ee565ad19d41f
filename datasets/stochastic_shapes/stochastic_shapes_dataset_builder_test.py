"""TFDS conformance test of `stochastic_shapes`, both configs, with shrunken splits."""
from unittest import mock

import videoflow_tf  # noqa: F401  (registers the builders once, under their package name)
import tensorflow_datasets as tfds

from videoflow_tf.datasets.stochastic_shapes import stochastic_shapes_dataset_builder as shapes

_SPLITS = {"train": 6, "validation": 3, "test": 3}


class StochasticShapesTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = shapes.Builder
    SPLITS = _SPLITS
    BUILDER_CONFIG_NAMES_TO_TEST = ["gray", "black"]
    # Nothing is downloaded, so there is no dummy_data/; the test case only
    # needs an existing folder.
    EXAMPLE_DIR = str(shapes.Builder.code_path.parent)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The full 10,909 videos are for real builds; a few keep this test fast.
        cls._sizes = mock.patch.object(shapes.Builder, "SPLIT_SIZES", _SPLITS)
        cls._sizes.start()

    @classmethod
    def tearDownClass(cls):
        cls._sizes.stop()
        super().tearDownClass()


if __name__ == "__main__":
    tfds.testing.test_main()
