"""ActNorm: a per-channel affine map with data-dependent initialisation.

Data-dependent initialisation (DDI) is triggered by calling ActNorm layers,
eagerly, inside `data_dependent_init()`:

    with vf.bijectors.actnorm.data_dependent_init():
        net(x_init)          # any Keras model containing ActNorm layers

Every ActNorm not yet initialised that runs inside the context sets its
parameters from the batch it actually receives (so layers deeper in a network
see activations of already-initialised layers), marks itself initialised, and
returns its normalised output. Layers already initialised (for example
restored from a checkpoint) are left alone, so running it twice is harmless.
`ActNorm.initialize_from(x)` does the same for one layer explicitly.
"""
import contextlib
import threading

import keras
import tensorflow as tf

from videoflow_tf.bijectors import flow_bijector

_ddi_state = threading.local()


@contextlib.contextmanager
def data_dependent_init():
    """Makes every uninitialised ActNorm called in this context initialise itself."""
    previous = getattr(_ddi_state, "active", False)
    _ddi_state.active = True
    try:
        yield
    finally:
        _ddi_state.active = previous


def initializing():
    """True inside `data_dependent_init()`; fused code paths use it to fall back to
    the unfused computation, which lets each ActNorm see its real input."""
    return getattr(_ddi_state, "active", False)


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
        identity and ignores `data_dependent_init()` (Glow's zero-initialised
        output convolutions end with one).
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

    def call(self, x):
        return self.bijector.forward_and_log_det(x)[0]

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

    Inside `data_dependent_init()`, the forward pass first initialises an uninitialised
    layer from its input x (eagerly): this is where every ActNorm sees its real input.
    """

    def __init__(self, layer, validate_args=False, name="act_norm"):
        parameters = dict(locals())
        self._layer = layer
        super().__init__(validate_args=validate_args, parameters=parameters,
                         dtype=tf.as_dtype(layer.variable_dtype), name=name)

    def _forward_and_log_det(self, x):
        if initializing():
            self._layer.initialize_from(x)
        log_scale = self._layer.log_scale
        return (x + self._layer.bias) * tf.exp(log_scale), _log_det(x, log_scale)

    def _inverse_and_log_det(self, y):
        log_scale = self._layer.log_scale
        return y * tf.exp(-log_scale) - self._layer.bias, -_log_det(y, log_scale)


def _log_det(frames, log_scale):
    """H*W*sum(s): the same for every frame."""
    return frames.shape[-3] * frames.shape[-2] * tf.reduce_sum(log_scale)
