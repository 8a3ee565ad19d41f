"""`videoflow-tf` with TensorFlow's op determinism on: the same command gives the same
weights bit for bit, so tests can compare a run killed and resumed with one that was not.

    python tests/scripts/deterministic_videoflow_tf.py train --config tiny ...
"""
import sys

from videoflow_tf.commands import cli  # before TensorFlow: imports it quietly
import tensorflow as tf

if __name__ == "__main__":
    tf.config.experimental.enable_op_determinism()
    sys.exit(cli.main())
