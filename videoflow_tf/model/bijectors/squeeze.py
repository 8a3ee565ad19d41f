"""Squeeze: 2x2 space-to-depth in Glow's channel order."""
import tensorflow as tf

from videoflow_tf.model.bijectors import flow_bijector


class Squeeze(flow_bijector.FlowBijector):
    """2x2 space-to-depth on frames [..., H, W, C] (H, W even), a permutation of entries.

    forward:  y[i, j, c*4 + dy*2 + dx] = x[2i + dy, 2j + dx, c]   log|det| = 0
    inverse:  x[2i + dy, 2j + dx, c] = y[i, j, c*4 + dy*2 + dx]   log|det| = 0

    The order differs from `tf.nn.space_to_depth` (which puts the channel last:
    (dy*2 + dx)*C + c); Glow's order keeps each input channel's four pixels
    adjacent.
    """

    def __init__(self, validate_args=False, name="squeeze"):
        parameters = dict(locals())
        super().__init__(validate_args=validate_args, parameters=parameters, name=name)

    def _forward_and_log_det(self, x):
        height, width, channels = x.shape[-3:]
        y = tf.reshape(x, [-1, height // 2, 2, width // 2, 2, channels])
        y = tf.transpose(y, [0, 1, 3, 5, 2, 4])
        shape = tf.concat([tf.shape(x)[:-3], [height // 2, width // 2, 4 * channels]], 0)
        return tf.reshape(y, shape), tf.zeros([], x.dtype)

    def _inverse_and_log_det(self, y):
        height, width, channels = y.shape[-3:]
        x = tf.reshape(y, [-1, height, width, channels // 4, 2, 2])
        x = tf.transpose(x, [0, 1, 4, 2, 5, 3])
        shape = tf.concat([tf.shape(y)[:-3], [2 * height, 2 * width, channels // 4]], 0)
        return tf.reshape(x, shape), tf.zeros([], y.dtype)

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
