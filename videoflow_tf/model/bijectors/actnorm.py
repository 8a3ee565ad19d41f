"""ActNorm: a per-channel affine map with data-dependent initialisation.

    y = (x + b) * exp(s)

Data-dependent initialisation (DDI) is explicit: `ActNorm.initialize_from(x)` sets b and s
so that the batch x leaves with mean 0 and std 1 per channel, and `layer(x,
initialize=True)` does that before applying the layer (for walks that initialise a
network layer by layer, so deeper layers see already-initialised activations). An
initialised layer (for example one restored from a checkpoint) is left alone, so
initialising twice is harmless.
"""
import keras
import tensorflow as tf

from videoflow_tf.model.bijectors import flow_bijector


@keras.saving.register_keras_serializable(package="videoflow_tf")
class ActNorm(keras.layers.Layer):
    """y = (x + b) * exp(s), per channel (last axis), with DDI.

    The log-scale is stored divided by `log_scale_factor` (s = factor * v, as in
    the original Glow code), which makes Adam's steps on s `factor` times larger.
    DDI sets b = -mean(x) and s = -log(std(x) + 1e-6), reducing over every axis
    but the last, so the initialisation batch leaves with mean 0 and std 1 per
    channel.

    Args:
      log_scale_factor: s = log_scale_factor * (stored variable).
      data_dependent: False makes a plain learned affine map that starts as the
        identity and has no DDI (Glow's zero-initialised output convolutions end with
        one).
    """

    def __init__(self, log_scale_factor=3.0, data_dependent=True, **kwargs):
        super().__init__(**kwargs)
        self.log_scale_factor = float(log_scale_factor)
        self.data_dependent = bool(data_dependent)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")
        self.scaled_log_scale = self.add_weight(
            shape=(channels,), initializer="zeros", name="scaled_log_scale")
        if self.data_dependent:
            self.initialized = self.add_weight(
                shape=(), dtype="bool", initializer="zeros", trainable=False,
                name="initialized")

    @property
    def log_scale(self):
        """s, the per-channel log of the scale."""
        return self.log_scale_factor * self.scaled_log_scale

    def is_initialized(self):
        """Whether DDI has run (always True without data-dependent init)."""
        return not self.data_dependent or bool(self.initialized.numpy())

    def initialize_from(self, x):
        """Sets b and s from the batch `x` (eagerly) unless already initialised."""
        if not tf.executing_eagerly():
            raise RuntimeError(
                "ActNorm data-dependent initialisation must run eagerly, not inside "
                "tf.function; call it on a concrete batch before training.")
        if self.is_initialized():
            return
        x = tf.cast(x, self.variable_dtype)
        axes = list(range(len(x.shape) - 1))
        mean = tf.reduce_mean(x, axis=axes)
        std = tf.math.reduce_std(x, axis=axes)
        self.bias.assign(-mean)
        self.scaled_log_scale.assign(-tf.math.log(std + 1e-6) / self.log_scale_factor)
        self.initialized.assign(True)

    def call(self, x, initialize=False):
        """y; `initialize`: DDI from x first (`initialize_from`)."""
        return ActNormBijector(self, initialize=initialize).forward_and_log_det(x)[0]

    @property
    def bijector(self):
        """The layer's transformation as a bijector (forward = `call`)."""
        return ActNormBijector(self)

    def get_config(self):
        return {**super().get_config(), "log_scale_factor": self.log_scale_factor,
                "data_dependent": self.data_dependent}


class ActNormBijector(flow_bijector.FlowBijector):
    """Per-channel affine bijector on frames [..., H, W, C], from an `ActNorm` layer's
    weights (b, s).

    forward:  y = (x + b) * exp(s)        log|det dy/dx| =  H*W*sum(s)
    inverse:  x = y * exp(-s) - b         log|det dx/dy| = -H*W*sum(s)

    With `initialize`, the forward pass first initialises the layer from its input x
    (eagerly, `ActNorm.initialize_from`): the flow's data-dependent initialisation walks
    the flow with such bijectors, so every ActNorm sees its real input.
    """

    def __init__(self, layer, initialize=False, validate_args=False, name="act_norm"):
        parameters = dict(locals())
        self._layer = layer
        self._initialize = initialize
        super().__init__(validate_args=validate_args, parameters=parameters,
                         dtype=tf.as_dtype(layer.variable_dtype), name=name)

    def _forward_and_log_det(self, x):
        if self._initialize:
            self._layer.initialize_from(x)
        log_scale = self._layer.log_scale
        return (x + self._layer.bias) * tf.exp(log_scale), _log_det(x, log_scale)

    def _inverse_and_log_det(self, y):
        log_scale = self._layer.log_scale
        return y * tf.exp(-log_scale) - self._layer.bias, -_log_det(y, log_scale)


def _log_det(frames, log_scale):
    """H*W*sum(s): the same for every frame."""
    return frames.shape[-3] * frames.shape[-2] * tf.reduce_sum(log_scale)
