"""The network NN(x1) of Glow's coupling layers, with edge-aware padding.

    h   = relu(conv3x3(x1) * a_in + b_in)
    h   = act(conv1x1(h) * a_hidden + b_hidden)     act: relu, or "gatu":
                                                    tanh(h[:half]) * sigmoid(h[half:])
    out = (conv3x3(h) + b_out) * a_out              zero-initialised

where each (a, b) is an ActNorm (a = exp(s)): data-dependent for the first two layers,
learned from the identity for the output, with the output convolution's kernel zero at
first (Glow's zero-initialised last layer, so the coupling starts as the identity).
Every 3x3 convolution pads its input with zeros plus one extra "edge" input channel that
is 1 in the padded border and 0 inside, so the network can tell a real zero from the
frame's edge (as in the original Glow code).

`CouplingNetwork.call` runs exactly these three layers, each a single convolution with
its ActNorm folded in (kernel * a, bias b * a; `folded_weights`, the only place the
folding happens), which TensorFlow fuses with the bias and activation. The first 3x3
convolution sees few channels, so it takes the edge channel as one more input channel;
the last one has few outputs, so it adds the edge channel's fixed contribution as a small
map instead of widening its 512-channel input. Its output channels may come in another
order (`output_order`: the affine coupling's [shift, logit] halves), a free permutation
of the last kernel's columns.

Mixed precision: with `network_dtype="bfloat16"` the weights are folded in the layer's
dtype (float32), then the three convolutions run in bfloat16 (which CPUs with AVX-512
BF16 and GPUs run faster) and the output is float32. The coupling that uses the output
stays float32, so its log-determinant and its invertibility do not depend on the
network's precision: forward and inverse compute the same bfloat16 NN(x1).
"""
import keras
import tensorflow as tf

from videoflow_tf.config import ACTIVATIONS
from videoflow_tf.model.bijectors import actnorm, seeds

NETWORK_DTYPES = (None, "bfloat16")


def edge_channel(height, width, dtype):
    """[1, H+2, W+2, 1]: 1 in the one-pixel border that 3x3 'same' padding adds, 0 inside."""
    inside = tf.zeros([1, height, width, 1], dtype)
    return tf.pad(inside, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1)


@keras.saving.register_keras_serializable(package="videoflow_tf")
class EdgePaddedConv2D(keras.layers.Layer):
    """3x3 convolution, 'same' output size, zero padding plus an edge channel.

    y = conv_valid([zero-padded x, edge channel], kernel): `kernel` has one more
    input channel than x, the last, which belongs to the edge channel. Because
    the edge channel does not depend on x, its contribution is a fixed map
    [1, H, W, filters] (`edge_bias`); `call` adds that map to a 'same'
    convolution of x instead of widening the input (`convolve_same`).

    Args:
      filters: output channels.
      kernel_initializer: initialiser of the kernel (default: normal, std 0.05).
    """

    def __init__(self, filters, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.05))

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(shape=(3, 3, channels + 1, self.filters), name="kernel",
                                      initializer=self.kernel_initializer)

    def call(self, x):
        return convolve_same(x, self.kernel)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


def edge_bias(kernel, height, width):
    """The edge channel's contribution to the convolution's output: [1, H, W, filters]."""
    return tf.nn.conv2d(edge_channel(height, width, kernel.dtype), kernel[:, :, -1:], 1, "VALID")


def convolve_same(x, kernel):
    """Edge-padded 3x3 convolution as a 'same' convolution of x plus the edge map.

    Cheapest when the output has few channels: the map is small.
    """
    return (tf.nn.conv2d(x, kernel[:, :, :-1], 1, "SAME")
            + edge_bias(kernel, x.shape[-3], x.shape[-2]))


def convolve_padded(x, kernel):
    """Edge-padded 3x3 convolution with the edge channel concatenated to the input.

    Cheapest when the input has few channels: the wider input is small, and the
    caller can fuse bias and activation into the convolution.
    """
    height, width = x.shape[-3], x.shape[-2]
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    edges = tf.broadcast_to(edge_channel(height, width, x.dtype),
                            tf.concat([tf.shape(x)[:1], [height + 2, width + 2, 1]], 0))
    return tf.nn.conv2d(tf.concat([padded, edges], -1), kernel, 1, "VALID")


@keras.saving.register_keras_serializable(package="videoflow_tf")
class CouplingNetwork(keras.layers.Layer):
    """NN(x1) of Glow's coupling: [B, H, W, C_in] -> [B, H, W, out_channels].

    Args:
      out_channels: channels of the output.
      width: hidden channels (512 in the paper).
      activation: "relu" or "gatu" (tanh(a) * sigmoid(b) of two halves of the 1x1
        convolution's output).
      seed: seed of the kernels' random-normal initialisation (None: unseeded).
      network_dtype: None (compute in the layer's dtype), or "bfloat16" to run the
        convolutions in bfloat16 (the output has the layer's dtype either way).
      output_order: None, or the permutation of the output channels that `call` returns
        (output channel i is the layer's channel output_order[i]).
    """

    def __init__(self, out_channels, width=512, activation="relu", seed=None,
                 network_dtype=None, output_order=None, **kwargs):
        # Keras would cast every float argument of `call` to the layer's float32,
        # undoing bfloat16 `weights`; `call` casts its inputs itself.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if network_dtype not in NETWORK_DTYPES:
            raise ValueError(f"network_dtype must be one of {NETWORK_DTYPES}, "
                             f"got {network_dtype!r}")
        self.network_dtype = network_dtype
        self._convolution_dtype = network_dtype or self.variable_dtype
        self.out_channels = int(out_channels)
        self.width = int(width)
        self.activation = activation
        self.seed = seed
        self.output_order = None if output_order is None else [int(i) for i in output_order]
        hidden = self.width * (2 if activation == "gatu" else 1)
        sub = {"dtype": self.dtype_policy}
        # One initialiser per kernel: a Keras initialiser draws the same values on every call.
        self.conv_in = EdgePaddedConv2D(self.width, name="conv_in", kernel_initializer=(
            keras.initializers.RandomNormal(stddev=0.05, seed=seeds.derived(seed, 0))), **sub)
        self.norm_in = actnorm.ActNorm(name="norm_in", **sub)
        self.hidden = keras.layers.Dense(hidden, use_bias=False, name="hidden", kernel_initializer=(
            keras.initializers.RandomNormal(stddev=0.05, seed=seeds.derived(seed, 1))), **sub)
        self.norm_hidden = actnorm.ActNorm(name="norm_hidden", **sub)
        self.conv_out = EdgePaddedConv2D(self.out_channels, kernel_initializer="zeros",
                                         name="conv_out", **sub)
        # (conv + b) * exp(3 v) with b = v = 0 at first: an ActNorm without DDI.
        self.norm_out = actnorm.ActNorm(data_dependent=False, name="norm_out", **sub)

    def build(self, input_shape):
        spatial = tuple(input_shape[:-1])
        self._height, self._width = spatial[-2:]  # of the edge channel's map
        self.conv_in.build(input_shape)
        self.norm_in.build(spatial + (self.width,))
        self.hidden.build(spatial + (self.width,))
        self.norm_hidden.build(spatial + (self.hidden.units,))
        self.conv_out.build(spatial + (self.width,))
        self.norm_out.build(spatial + (self.out_channels,))

    def initialize(self, x):
        """Data-dependent init (eager) of the two ActNorms from the batch x: each from
        the convolution output it normalises, the second after the first is set."""
        h = tf.nn.relu(self.norm_in(self.conv_in(x), initialize=True))
        self.norm_hidden(self.hidden(h), initialize=True)

    def folded_weights(self):
        """The weights `call` runs with, every ActNorm folded into its convolution:
        (kernel_in, bias_in, hidden, kernel_out, bias_out), where kernel_in keeps its
        edge-channel input, hidden is ((kernel, bias),) of the 1x1 convolution or, for
        "gatu", one pair per half (two convolutions run faster than one split in two),
        and bias_out [1, H, W, out] includes the edge channel's map, the output channels
        in `output_order`. Folded in the layer's dtype, then cast to `network_dtype`."""
        scale_in = tf.exp(self.norm_in.log_scale)
        scale_hidden = tf.exp(self.norm_hidden.log_scale)
        scale_out = tf.exp(self.norm_out.log_scale)
        kernel_out, bias_out = self.conv_out.kernel * scale_out, self.norm_out.bias * scale_out
        if self.output_order is not None:
            kernel_out = tf.gather(kernel_out, self.output_order, axis=-1)
            bias_out = tf.gather(bias_out, self.output_order)
        hidden = ((self.hidden.kernel * scale_hidden, self.norm_hidden.bias * scale_hidden),)
        if self.activation == "gatu":
            hidden = tuple(zip(tf.split(hidden[0][0], 2, axis=-1), tf.split(hidden[0][1], 2)))
        weights = (self.conv_in.kernel * scale_in, self.norm_in.bias * scale_in, hidden,
                   kernel_out[:, :, :-1],
                   edge_bias(kernel_out, self._height, self._width) + bias_out)
        return tf.nest.map_structure(lambda w: tf.cast(w, self._convolution_dtype), weights)

    def call(self, x, weights=None):
        """NN(x1), the module docstring's three layers. `weights`: `folded_weights()`
        computed earlier (for loops that call the network many times with the same
        weights), else folded here."""
        kernel_in, bias_in, hidden, kernel_out, bias_out = (
            self.folded_weights() if weights is None else weights)
        out_dtype = x.dtype
        x = tf.cast(x, self._convolution_dtype)
        h = tf.nn.relu(tf.nn.bias_add(convolve_padded(x, kernel_in), bias_in))
        parts = [tf.nn.bias_add(tf.nn.conv2d(h, kernel[None, None], 1, "VALID"), bias)
                 for kernel, bias in hidden]
        h = tf.nn.relu(parts[0]) if self.activation == "relu" else (
            tf.tanh(parts[0]) * tf.sigmoid(parts[1]))
        return tf.cast(tf.nn.conv2d(h, kernel_out, 1, "SAME") + bias_out, out_dtype)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "width": self.width,
                "activation": self.activation, "seed": self.seed,
                "network_dtype": self.network_dtype, "output_order": self.output_order}
