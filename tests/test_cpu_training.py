"""Every named config trains on a CPU with TensorFlow's own kernels, not only with oneDNN's."""
import os

from helpers import run_script


def test_every_config_trains_a_step_on_tensorflows_own_cpu_kernels():
    # TensorFlow turns oneDNN's kernels on only on some CPUs; its own lack some gradients
    # (a dilated conv2d's input gradient, for one), so a model can train on one machine
    # and fail on another. The shrunk configs keep the dilations and clip lengths.
    run_script("train_step_per_config.py", env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"},
               timeout=600)
