"""Imports TensorFlow without its start-up log noise.

TensorFlow's C++ runtime writes INFO lines (oneDNN, CUDA stubs, CPU features)
to file descriptor 2 before Python's logging exists, and on machines without a
GPU an error line about `cuInit` on first device use. None of it is actionable,
so `import videoflow_tf` captures descriptor 2 while TensorFlow loads and
enumerates its devices, and replays every line that is not such noise. Later,
TensorFlow's C++ runtime logs at ERROR level things that are not errors either
(oneDNN says, as a model's graph first runs, that it handles boolean tensors only
on AVX-512 CPUs), so TF_CPP_MIN_LOG_LEVEL defaults to 3: failures still reach
Python as exceptions. Users who want TensorFlow's own logs set
TF_CPP_MIN_LOG_LEVEL themselves. This only
works if videoflow_tf is imported before TensorFlow (or keras, which imports it).

TensorFlow Datasets 4.9 also warns, from its own video decoding (not from
ours), that `FeatureConnector.dtype` is deprecated; that warning is dropped too.
"""
import logging
import os
import re
import sys
import tempfile

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called.*"
    r"|[IW]\d{4} .*"
    r"|E\d{4} .*(cuInit|cuda_platform|cuda_diagnostics|cuda_dnn|cuda_fft|cuda_blas).*"
    r"|To enable the following instructions: .*)$"
)
_TFDS_DTYPE_DEPRECATION = re.compile(r"^`\w+\.dtype` is deprecated\. ")


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines()
                    if line.strip() and not _NOISE.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)


def _is_not_tfds_dtype_deprecation(record):
    return not _TFDS_DTYPE_DEPRECATION.match(record.getMessage())


_import_tensorflow()
# TFDS logs through absl's logger, named "absl".
logging.getLogger("absl").addFilter(_is_not_tfds_dtype_deprecation)
