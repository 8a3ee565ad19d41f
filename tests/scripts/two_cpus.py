"""The machine's CPU as two logical devices, for the scripts that test MirroredStrategy on a
CPU-only machine. Logical devices must be set before TensorFlow starts its runtime, which
is why these tests run scripts in fresh processes."""
import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow as tf


def mirrored_strategy():
    """A MirroredStrategy over two logical CPUs; call it before anything runs an op."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu,
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
