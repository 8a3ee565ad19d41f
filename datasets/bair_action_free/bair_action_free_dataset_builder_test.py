"""TFDS conformance test of `bair_action_free` on dummy_data/ (the extracted-folder manual path)."""
import videoflow_tf  # noqa: F401  (registers the builders once, under their package name)
import tensorflow_datasets as tfds

from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder as bair


class BairActionFreeTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = bair.Builder
    # dummy_data/softmotion30_44k: 3 one-video train files (the last two make
    # `validation`) and 1 one-video test file.
    SPLITS = {"train": 1, "validation": 2, "test": 1}


if __name__ == "__main__":
    tfds.testing.test_main()
