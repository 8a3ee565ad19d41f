"""Affine and additive coupling layers (Glow / RealNVP)."""
import keras
import tensorflow as tf

from videoflow_tf.config import COUPLINGS
from videoflow_tf.model.bijectors import coupling_network, flow_bijector


@keras.saving.register_keras_serializable(package="videoflow_tf")
class Coupling(keras.layers.Layer):
    """Coupling layer over the channels of [B, H, W, C] (C even): owns the network NN of
    its `CouplingBijector` (the math is there). The network's last layer starts at zero,
    so the layer starts as the identity (scale = sigmoid(2) is absorbed by the
    neighbouring ActNorms).

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
        # The affine coupling reads its network's interleaved (shift, logit) channels as
        # [shift, logit] halves: a permutation of the output, free in the network.
        self.network = coupling_network.CouplingNetwork(
            channels if self.coupling == "affine" else half, width=self.width,
            activation=self.activation, seed=self.seed, network_dtype=self.network_dtype,
            output_order=(list(range(0, channels, 2)) + list(range(1, channels, 2))
                          if self.coupling == "affine" else None),
            dtype=self.dtype_policy, name="network")
        self.network.build(tuple(input_shape[:-1]) + (half,))

    def call(self, x):
        return self.bijector.forward_and_log_det(x)[0]

    @property
    def bijector(self):
        """The layer's transformation as a bijector (forward = `call`)."""
        return CouplingBijector(self)

    def get_config(self):
        return {**super().get_config(), "coupling": self.coupling, "width": self.width,
                "activation": self.activation, "seed": self.seed,
                "network_dtype": self.network_dtype}


class CouplingBijector(flow_bijector.FlowBijector):
    """Affine or additive coupling on frames [..., H, W, C], from a `Coupling` layer.

    With x = [x1, x2] (channel halves) and h = NN(x1):
      affine    shift = h[..., 0::2], scale = sigmoid(h[..., 1::2] + 2)
                forward  y = [x1, (x2 + shift) * scale]   log|det dy/dx| =  sum log(scale)
                inverse  x = [y1, y2 / scale - shift]     log|det dx/dy| = -sum log(scale)
      additive  h has C/2 channels
                forward  y = [x1, x2 + h]                 log|det dy/dx| = 0
                inverse  x = [y1, y2 - h]                 log|det dx/dy| = 0

    The network runs once per pass. For affine coupling it returns its output channels
    as [shift, logit] halves (`CouplingNetwork.output_order`), so no strided slicing runs.

    Args:
      layer: the `Coupling` whose network is NN.
      network_weights: the network's folded weights, computed earlier (`frozen`); None
        folds them from the variables at every call.
      initialize: the forward pass first initialises the network's ActNorms from x1
        (eagerly, `CouplingNetwork.initialize`), for the flow's data-dependent init.
    """

    def __init__(self, layer, network_weights=None, initialize=False, validate_args=False,
                 name="coupling"):
        parameters = dict(locals())
        self._layer = layer
        self._network_weights = network_weights
        self._initialize = initialize
        super().__init__(validate_args=validate_args, parameters=parameters,
                         dtype=tf.as_dtype(layer.variable_dtype), name=name)

    def frozen(self):
        return CouplingBijector(self._layer, self._layer.network.folded_weights(),
                                validate_args=self.validate_args, name=self.name)

    def _shift_and_log_scale(self, x1):
        """(shift, log(scale)) for x2 (log(scale) is None for additive coupling)."""
        frames = tf.reshape(x1, [-1, *x1.shape[-3:]]) if x1.shape.rank != 4 else x1
        if self._initialize:
            self._layer.network.initialize(frames)
        h = self._layer.network(frames, weights=self._network_weights)
        if x1.shape.rank != 4:  # the network's convolutions take one batch axis
            h = tf.reshape(h, tf.concat([tf.shape(x1)[:-3], tf.shape(h)[-3:]], 0))
        if self._layer.coupling == "additive":
            return h, None
        shift, logit = tf.split(h, 2, axis=-1)
        return shift, tf.math.log_sigmoid(logit + 2.0)

    def _forward_and_log_det(self, x):
        x1, x2 = tf.split(x, 2, axis=-1)
        shift, log_scale = self._shift_and_log_scale(x1)
        if log_scale is None:
            return tf.concat([x1, x2 + shift], -1), tf.zeros(tf.shape(x)[:-3], x.dtype)
        y2 = (x2 + shift) * tf.exp(log_scale)
        return tf.concat([x1, y2], -1), tf.reduce_sum(log_scale, axis=[-3, -2, -1])

    def _inverse_and_log_det(self, y):
        y1, y2 = tf.split(y, 2, axis=-1)
        shift, log_scale = self._shift_and_log_scale(y1)
        if log_scale is None:
            return tf.concat([y1, y2 - shift], -1), tf.zeros(tf.shape(y)[:-3], y.dtype)
        x2 = y2 * tf.exp(-log_scale) - shift
        return tf.concat([y1, x2], -1), -tf.reduce_sum(log_scale, axis=[-3, -2, -1])
