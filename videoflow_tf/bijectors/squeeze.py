"""Squeeze: 2x2 space-to-depth in Glow's channel order."""
import tensorflow as tf
import tensorflow_probability as tfp


def squeeze(x):
    """[..., H, W, C] -> [..., H/2, W/2, 4C]; y[i, j, c*4 + dy*2 + dx] = x[2i + dy, 2j + dx, c]."""
    height, width, channels = x.shape[-3:]
    batch = tf.shape(x)[:-3]
    x = tf.reshape(x, [-1, height // 2, 2, width // 2, 2, channels])
    x = tf.transpose(x, [0, 1, 3, 5, 2, 4])
    return tf.reshape(x, tf.concat([batch, [height // 2, width // 2, 4 * channels]], 0))


def unsqueeze(y):
    """The inverse of `squeeze`: [..., H, W, 4C] -> [..., 2H, 2W, C]."""
    height, width, channels = y.shape[-3:]
    batch = tf.shape(y)[:-3]
    y = tf.reshape(y, [-1, height, width, channels // 4, 2, 2])
    y = tf.transpose(y, [0, 1, 4, 2, 5, 3])
    return tf.reshape(y, tf.concat([batch, [2 * height, 2 * width, channels // 4]], 0))


class Squeeze(tfp.bijectors.Bijector):
    """2x2 space-to-depth on [H, W, C] events (H, W even), a permutation of entries.

    forward:  y[i, j, c*4 + dy*2 + dx] = x[2i + dy, 2j + dx, c]   log|det| = 0
    inverse:  x[2i + dy, 2j + dx, c] = y[i, j, c*4 + dy*2 + dx]   log|det| = 0

    The order differs from `tf.nn.space_to_depth` (which puts the channel last:
    (dy*2 + dx)*C + c); Glow's order keeps each input channel's four pixels
    adjacent.
    """

    def __init__(self, validate_args=False, name="squeeze"):
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=3, is_constant_jacobian=True,
                         validate_args=validate_args, parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _forward(self, x):
        return squeeze(x)

    def _inverse(self, y):
        return unsqueeze(y)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], x.dtype)

    def _inverse_log_det_jacobian(self, y):
        return tf.zeros([], y.dtype)

    def _forward_event_shape(self, input_shape):
        height, width, channels = input_shape[-3:]
        return input_shape[:-3].concatenate(
            [None if height is None else height // 2, None if width is None else width // 2,
             None if channels is None else 4 * channels])

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] // 2, input_shape[-1:] * 4], 0)

    def _inverse_event_shape(self, output_shape):
        height, width, channels = output_shape[-3:]
        return output_shape[:-3].concatenate(
            [None if height is None else height * 2, None if width is None else width * 2,
             None if channels is None else channels // 4])

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] * 2, output_shape[-1:] // 4], 0)
