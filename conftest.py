"""Test-session settings shared by tests/ and the TFDS builder tests in datasets/."""
import os

# pytest-xdist runs one worker per core; give each worker's TensorFlow one
# thread so the workers do not fight over the same cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
