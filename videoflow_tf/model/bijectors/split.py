"""The per-level split of the multi-scale flow: TFP's `Split` in channel halves."""
import tensorflow as tf
import tensorflow_probability as tfp


class LevelSplit(tfp.bijectors.Split):
    """Frames [..., H, W, C] -> [x1, z], the channel halves (a partition: log|det| = 0).

    forward:  [x1, z] = [x[..., :C/2], x[..., C/2:]]    log|det| = 0
    inverse:  x = concat([x1, z], axis=-1)              log|det| = 0

    x1 continues to the next level; z leaves the flow as this level's latent.

    `tfp.bijectors.Split` with the axis as a Python int: TFP's keeps it as a tensor,
    which a `tf.while_loop` body (sampling) captures as a loop invariant of unknown
    value, so the concatenation there would lose every static dimension. The one-pass
    methods are those of the flow's other bijectors (`flow_bijector.FlowBijector`), so
    the flow's walks treat the split like every other part.
    """

    def __init__(self, validate_args=False, name="split"):
        super().__init__(2, axis=-1, validate_args=validate_args, name=name)

    def _forward(self, x):
        return tf.split(x, 2, axis=-1)

    def _inverse(self, parts):
        return tf.concat(parts, axis=-1)

    def forward_and_log_det(self, x):
        return self._forward(x), tf.zeros([], x.dtype)

    def inverse_and_log_det(self, parts):
        return self._inverse(parts), tf.zeros([], parts[0].dtype)
