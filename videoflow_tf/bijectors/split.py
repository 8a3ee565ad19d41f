"""The per-level split of the multi-scale flow."""
import tensorflow as tf
import tensorflow_probability as tfp


def split(x):
    """[..., C] -> (x1, z): x1 (first C/2 channels) continues to the next level,
    z (last C/2) leaves the flow as this level's latent."""
    return tf.split(x, 2, axis=-1)


def merge(x1, z):
    """The inverse of `split`."""
    return tf.concat([x1, z], axis=-1)


def level_split(validate_args=False, name="split"):
    """The split as a multi-part TFP bijector (`tfp.bijectors.Split`), log|det| = 0.

    forward:  x -> [x1, z] = [x[..., :C/2], x[..., C/2:]]
    inverse:  [x1, z] -> concat([x1, z], axis=-1)
    """
    return tfp.bijectors.Split(2, axis=-1, validate_args=validate_args, name=name)
