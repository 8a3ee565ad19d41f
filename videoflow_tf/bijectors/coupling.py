"""Affine and additive coupling layers (Glow / RealNVP)."""
import keras
import tensorflow as tf

from videoflow_tf.bijectors import coupling_network, one_pass

COUPLINGS = ("affine", "additive")


@keras.saving.register_keras_serializable(package="videoflow_tf")
class Coupling(keras.layers.Layer):
    """Coupling layer over the channels of [B, H, W, C] (C even).

    x1, x2 = first and second half of the channels; x1 passes unchanged and
    conditions the transformation of x2 through h = NN(x1):

      affine:    shift = h[..., 0::2], scale = sigmoid(h[..., 1::2] + 2)
                 forward  y2 = (x2 + shift) * scale    log|det| =  sum log(scale)
                 inverse  x2 = y2 / scale - shift      log|det| = -sum log(scale)
      additive:  h has C/2 channels
                 forward  y2 = x2 + h                  log|det| = 0
                 inverse  x2 = y2 - h                  log|det| = 0

    The network's last layer starts at zero, so the layer starts as the
    identity (scale = sigmoid(2) is absorbed by the neighbouring ActNorms).

    Args:
      coupling: "affine" or "additive".
      width, activation, seed, network_dtype: of the `CouplingNetwork`.
    """

    def __init__(self, coupling="affine", width=512, activation="relu", seed=None,
                 network_dtype=None, **kwargs):
        super().__init__(**kwargs)
        if coupling not in COUPLINGS:
            raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
        self.coupling = coupling
        self.width = int(width)
        self.activation = activation
        self.seed = seed
        self.network_dtype = network_dtype

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if channels % 2:
            raise ValueError(f"a coupling layer needs an even channel count, got {channels}")
        half = channels // 2
        self.network = coupling_network.CouplingNetwork(
            channels if self.coupling == "affine" else half, width=self.width,
            activation=self.activation, seed=self.seed, network_dtype=self.network_dtype,
            dtype=self.dtype_policy, name="network")
        self.network.build(tuple(input_shape[:-1]) + (half,))
        # NN's output reordered to [shift, logit] halves, so no strided slicing at run time.
        self._output_order = list(range(0, channels, 2)) + list(range(1, channels, 2))

    def _network_order(self):
        return self._output_order if self.coupling == "affine" else None

    def network_weights(self):
        """The network's fused weights as this layer uses them (see `inverse_and_log_det`)."""
        return self.network.fused_weights(self._network_order())

    def _shift_and_log_scale(self, x1, network_weights=None):
        """(shift, log(scale)) for x2 (log(scale) is None for additive coupling)."""
        h = self.network(x1, output_order=self._network_order(), weights=network_weights)
        if self.coupling == "additive":
            return h, None
        shift, logit = tf.split(h, 2, axis=-1)
        return shift, tf.math.log_sigmoid(logit + 2.0)

    def forward_and_log_det(self, x):
        """(y, log|det dy/dx|) with log-det shape [B]."""
        x1, x2 = tf.split(x, 2, axis=-1)
        shift, log_scale = self._shift_and_log_scale(x1)
        if log_scale is None:
            return tf.concat([x1, x2 + shift], -1), tf.zeros(tf.shape(x)[:-3], x.dtype)
        y2 = (x2 + shift) * tf.exp(log_scale)
        return tf.concat([x1, y2], -1), tf.reduce_sum(log_scale, axis=[-3, -2, -1])

    def inverse_and_log_det(self, y, network_weights=None):
        """(x, log|det dx/dy|) with log-det shape [B]; `network_weights` reuses
        `network_weights()` computed earlier (else computed here)."""
        y1, y2 = tf.split(y, 2, axis=-1)
        shift, log_scale = self._shift_and_log_scale(y1, network_weights)
        if log_scale is None:
            return tf.concat([y1, y2 - shift], -1), tf.zeros(tf.shape(y)[:-3], y.dtype)
        x2 = y2 * tf.exp(-log_scale) - shift
        return tf.concat([y1, x2], -1), -tf.reduce_sum(log_scale, axis=[-3, -2, -1])

    def call(self, x):
        return self.forward_and_log_det(x)[0]

    @property
    def bijector(self):
        """A `tfp.bijectors.Bijector` view of this layer (forward = `call`)."""
        return CouplingBijector(self)

    def get_config(self):
        return {**super().get_config(), "coupling": self.coupling, "width": self.width,
                "activation": self.activation, "seed": self.seed,
                "network_dtype": self.network_dtype}


class CouplingBijector(one_pass.OnePassBijector):
    """Affine or additive coupling on [H, W, C] events, built from a `Coupling` layer.

    With x = [x1, x2] (channel halves), h = NN(x1):
      affine    forward  y = [x1, (x2 + shift) * scale]   log|det dy/dx| =  sum log(scale)
                inverse  x = [y1, y2 / scale - shift]     log|det dx/dy| = -sum log(scale)
      additive  forward  y = [x1, x2 + h]                 log|det dy/dx| = 0
                inverse  x = [y1, y2 - h]                 log|det dx/dy| = 0
    where shift = h[..., 0::2] and scale = sigmoid(h[..., 1::2] + 2). The network
    runs once per direction: output and log-determinant come from the same pass.
    """

    def __init__(self, layer, validate_args=False, name="coupling"):
        parameters = dict(locals())
        self._layer = layer
        super().__init__(forward_min_event_ndims=3, validate_args=validate_args,
                         parameters=parameters, dtype=tf.as_dtype(layer.variable_dtype), name=name)

    def _forward_and_log_det(self, x):
        return self._layer.forward_and_log_det(x)

    def _inverse_and_log_det(self, y):
        return self._layer.inverse_and_log_det(y)
