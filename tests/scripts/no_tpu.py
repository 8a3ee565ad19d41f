"""`vf.distribute.make_strategy("tpu")` where there is no TPU, for tests/test_distribute.py:
prints the error. Connecting to a cluster changes the process's TensorFlow context, hence
a fresh process.

    python tests/scripts/no_tpu.py
"""
import os

import videoflow_tf as vf

if __name__ == "__main__":
    os.environ.pop("TPU_NAME", None)
    try:
        vf.distribute.make_strategy("tpu")
    except RuntimeError as error:
        print(error)
