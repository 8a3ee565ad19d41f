"""Networks that predict a latent's Gaussian from the same level's past latents.

Every encoder maps `history` [N, K, h, w, c] (the level's latents of the K previous
frames, oldest first) and `context` [N, h, w, c] (the current frame's coarser levels, as
the unconditional prior's mean; None at the top level) to `params` [N, h, w, outputs],
by default outputs = 2c: mean and log-scale interleaved (mean = params[..., 0::2],
log-scale = params[..., 1::2]); a mixture prior asks for more. The last layer of every
encoder starts at zero, so every conditional prior starts as N(0, 1).

- `conv3d_net` (the paper's): the history stacked over time, the context tiled along it;
  residual blocks of 3-D convs [2, 3, 3] (causal in time) -> [1, 1, 1] -> zero-initialised
  [2, 3, 3]; with dilations each block sums branches of spatial dilation 1, 2, 4 that fit
  the latent; the last time step goes through a zero-initialised 1x1 conv.
- `conv_net`: the same residual blocks in 2-D (3x3, 1x1, 3x3) on the channel-stacked
  context and history; a zero-initialised 3x3 conv on top.
- `pointwise`: as `conv_net` with every kernel 1x1, so each position sees only its own past.
- `conv_lstm`: stacked ConvLSTMs read the history (context appended to every step) in
  time order; a zero-initialised 3x3 conv maps the last hidden state.
"""
import dataclasses

import keras
import tensorflow as tf

from videoflow_tf.config import LATENT_ENCODERS
from videoflow_tf.model.bijectors import seeds
from videoflow_tf.model.bijectors.actnorm import ActNorm

DILATIONS = (1, 2, 4)


def fitting_dilations(spatial_size, use_dilations):
    """Spatial dilations whose 3x3 kernel (extent 1 + 2d) fits inside the latent."""
    if not use_dilations:
        return [1]
    return [d for d in DILATIONS if d == 1 or 1 + 2 * d <= spatial_size]


def make_conv(filters, kernel_size, dilation=1, zero_init=False, use_bias=True, seed=None):
    """A spatially size-keeping 2-D conv, or a time-causal 3-D conv for a 3-D kernel;
    its kernel starts at zero or Glorot-uniform drawn with `seed` (None: unseeded)."""
    if len(kernel_size) == 3:
        return CausalConv3D(filters, kernel_size, dilation, zero_init, use_bias, seed)
    return keras.layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation,
                               use_bias=use_bias, kernel_initializer=_initializer(zero_init, seed))


def _initializer(zero_init, seed):
    return "zeros" if zero_init else keras.initializers.GlorotUniform(seed=seed)


class CausalConv3D(keras.layers.Layer):
    """A [taps, k, k] convolution of [N, T, h, w, c] that is causal in time.

        y_t = b + sum_{j < taps} W_j * x_{t-j}      (x_{t-j} = 0 before the first step)

    where * is a 2-D conv (zero "same" padding, spatial dilation d). All W_j are applied
    in one 2-D conv of every frame with taps * filters outputs (tap j's are outputs
    j * filters to (j + 1) * filters); tap j's outputs are then delayed by j steps and
    summed. A clip shorter than the taps skips the taps that would see only padding.

    Speed: the taps are separated with `tf.split` and delayed with split and pad, whose
    gradients are a concat and a slice; strided slicing of the tap axis instead made
    its gradient (StridedSliceGrad) 30% of a shapes_32_baseline training step.
    """

    def __init__(self, filters, kernel_size, dilation=1, zero_init=False, use_bias=True,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.taps, self.use_bias = filters, kernel_size[0], use_bias
        self.conv = keras.layers.Conv2D(filters * self.taps, kernel_size[1:], padding="same",
                                        dilation_rate=dilation, use_bias=False,
                                        kernel_initializer=_initializer(zero_init, seed))

    def build(self, input_shape):
        self.conv.build((None,) + tuple(input_shape[2:]))
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer="zeros",
                                        name="bias")

    def call(self, x):
        frames = x.shape[1]
        taps = min(self.taps, frames)
        # `self.conv` only owns the kernel (keeping checkpoints' variable paths); the
        # convolution runs here so that a short clip can use the first taps' outputs alone.
        kernel = self.conv.kernel
        if taps < self.taps:
            kernel = kernel[..., :taps * self.filters]
        merged = tf.reshape(x, [-1] + x.shape[2:].as_list())
        # tf.nn.convolution, as Keras' Conv2D: it computes a dilated conv as an undilated
        # one between space_to_batch and batch_to_space. tf.nn.conv2d(dilations=) runs a
        # dilated kernel whose input gradient TensorFlow's own CPU kernels lack (only
        # oneDNN's, on the CPUs where TensorFlow turns them on, have it).
        per_tap = tf.nn.convolution(merged, kernel, padding="SAME",
                                    dilations=self.conv.dilation_rate)
        per_tap = tf.reshape(per_tap, [-1, frames] + per_tap.shape[1:].as_list())
        per_tap = tf.split(per_tap, taps, axis=-1) if taps > 1 else [per_tap]
        y = per_tap[0] + self.bias if self.use_bias else per_tap[0]
        for delay in range(1, taps):
            earlier, _ = tf.split(per_tap[delay], [frames - delay, delay], axis=1)
            y += tf.pad(earlier, [[0, 0], [delay, 0], [0, 0], [0, 0], [0, 0]])
        return y


class ResidualBlock(keras.layers.Layer):
    """x + sum over dilations d of zero_conv_d(act(norm(conv1x1(relu(norm(conv_d(x))))))).

    act is relu, or gatu: tanh(a) * sigmoid(b) of two 1x1 convs; norm is an ActNorm
    (initialised from data like the flow's, as in the original). The zero-initialised last
    conv makes the block the identity at initialisation. `seed` seeds the random kernels.
    """

    def __init__(self, channels, width, kernel_size, dilations, activation, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.channels, self.width = channels, width
        self.kernel_size, self.dilations = tuple(kernel_size), list(dilations)
        self.activation = activation
        pointwise = (1,) * len(self.kernel_size)
        self.middle_filters = 2 * width if activation == "gatu" else width
        self.firsts = [make_conv(width, self.kernel_size, d, use_bias=False,
                                 seed=seeds.derived(seed, i, 0))
                       for i, d in enumerate(self.dilations)]
        self.first_norms = [ActNorm() for _ in self.dilations]
        self.middles = [make_conv(self.middle_filters, pointwise, use_bias=False,
                                  seed=seeds.derived(seed, i, 1))
                        for i in range(len(self.dilations))]
        self.middle_norms = [ActNorm() for _ in self.dilations]
        self.lasts = [make_conv(channels, self.kernel_size, d, zero_init=True)
                      for d in self.dilations]

    def build(self, input_shape):
        hidden_shape = tuple(input_shape[:-1]) + (self.width,)
        for i in range(len(self.dilations)):
            self.firsts[i].build(input_shape)
            self.first_norms[i].build(hidden_shape)
            self.middles[i].build(hidden_shape)
            self.middle_norms[i].build(hidden_shape[:-1] + (self.middle_filters,))
            self.lasts[i].build(hidden_shape)

    def call(self, x, initialize=False):
        """`initialize`: each ActNorm first initialises itself from its input (eager)."""
        out = x
        for i in range(len(self.dilations)):
            h = tf.nn.relu(self.first_norms[i](self.firsts[i](x), initialize=initialize))
            h = self.middle_norms[i](self.middles[i](h), initialize=initialize)
            if self.activation == "gatu":
                a, b = tf.split(h, 2, axis=-1)
                h = tf.tanh(a) * tf.sigmoid(b)
            else:
                h = tf.nn.relu(h)
            out = out + self.lasts[i](h)
        return out


class _LatentEncoder(keras.layers.Layer):
    """Constructor arguments and input stacking shared by the encoders below."""

    def __init__(self, latent_shape, num_frames, has_context, width, depth, dilations,
                 activation, outputs, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.latent_shape, self.outputs = tuple(latent_shape), outputs
        self.num_frames, self.has_context = num_frames, has_context
        self.width, self.depth, self.dilations = width, depth, dilations
        self.activation = activation
        self.channels = self.latent_shape[-1]
        self.context_channels = self.channels if has_context else 0

    def _with_context_per_step(self, history, context):
        if context is None:
            return history
        steps = tf.repeat(context[:, tf.newaxis], self.num_frames, axis=1)
        return tf.concat([history, steps], axis=-1)

    def _channel_stack(self, history, context):
        frames = tf.unstack(history, num=self.num_frames, axis=1)
        return tf.concat(([context] if context is not None else []) + frames, axis=-1)


class Conv3DNet(_LatentEncoder):
    """The paper's `conv3d_net` encoder (module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stream = self.channels + self.context_channels
        # A single step gets a [1, 3, 3] kernel instead of padding in a zero frame.
        kernel = (min(2, self.num_frames), 3, 3)
        dilations = fitting_dilations(min(self.latent_shape[:2]), self.dilations)
        self.blocks = [ResidualBlock(stream, self.width, kernel, dilations, self.activation,
                                     seed=seeds.derived(self.seed, i))
                       for i in range(self.depth)]
        self.head = make_conv(self.outputs, (1, 1), zero_init=True)

    def build(self, input_shape=None):
        shape = (None, self.num_frames) + self.latent_shape[:2] + (
            self.channels + self.context_channels,)
        for block in self.blocks:
            block.build(shape)
        self.head.build((None,) + shape[2:])

    def call(self, history, context=None, initialize=False):
        h = self._with_context_per_step(history, context)
        for block in self.blocks:
            h = block(h, initialize=initialize)
        return self.head(h[:, -1])


class ConvNet(_LatentEncoder):
    """`conv_net` (kernel 3) and `pointwise` (kernel 1) encoders (module docstring)."""

    def __init__(self, *args, kernel=3, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel = kernel
        stream = self.num_frames * self.channels + self.context_channels
        dilations = fitting_dilations(min(self.latent_shape[:2]), self.dilations and kernel > 1)
        self.blocks = [ResidualBlock(stream, self.width, (kernel, kernel), dilations,
                                     self.activation, seed=seeds.derived(self.seed, i))
                       for i in range(self.depth)]
        self.head = make_conv(self.outputs, (kernel, kernel), zero_init=True)

    def build(self, input_shape=None):
        shape = (None,) + self.latent_shape[:2] + (
            self.num_frames * self.channels + self.context_channels,)
        for block in self.blocks:
            block.build(shape)
        self.head.build(shape)

    def call(self, history, context=None, initialize=False):
        h = self._channel_stack(history, context)
        for block in self.blocks:
            h = block(h, initialize=initialize)
        return self.head(h)


class ConvLSTMNet(_LatentEncoder):
    """`conv_lstm` encoder (module docstring); `depth` stacked ConvLSTM layers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lstms = [keras.layers.ConvLSTM2D(
            self.width, 3, padding="same", return_sequences=i < self.depth - 1,
            kernel_initializer=_initializer(False, seeds.derived(self.seed, i, 0)),
            recurrent_initializer=keras.initializers.Orthogonal(
                seed=seeds.derived(self.seed, i, 1))) for i in range(self.depth)]
        self.head = make_conv(self.outputs, (3, 3), zero_init=True)

    def build(self, input_shape=None):
        shape = (None, self.num_frames) + self.latent_shape[:2] + (
            self.channels + self.context_channels,)
        for lstm in self.lstms:
            lstm.build(shape)
            shape = shape[:-1] + (self.width,)
        self.head.build((None,) + shape[2:])

    def call(self, history, context=None, initialize=False):
        del initialize  # no ActNorm to initialise
        h = self._with_context_per_step(history, context)
        for lstm in self.lstms:
            h = lstm(h)
        return self.head(h)


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """Which latent encoder a prior uses, and its size.

    kind: one of LATENT_ENCODERS ("conv3d_net", the paper's; "conv_net"; "pointwise";
      "conv_lstm"); width: hidden channels; depth: residual blocks (ConvLSTM layers);
      dilations: spatial dilations 1, 2, 4 where they fit; activation: "relu" or "gatu".
    """
    kind: str = "conv3d_net"
    width: int = 256
    depth: int = 5
    dilations: bool = True
    activation: str = "gatu"

    def make(self, latent_shape, num_frames, has_context, outputs=None, seed=None,
             name=None):
        """The encoder for a latent of `latent_shape` reading `num_frames` earlier
        latents, with `outputs` channels (default: 2c, a Gaussian's mean and log-scale),
        its random kernels drawn with `seed` (None: unseeded)."""
        if self.kind not in LATENT_ENCODERS:
            raise ValueError(f"kind must be one of {LATENT_ENCODERS}, got {self.kind!r}")
        args = dict(latent_shape=latent_shape, num_frames=num_frames,
                    has_context=has_context, width=self.width, depth=self.depth,
                    dilations=self.dilations, activation=self.activation,
                    outputs=outputs or 2 * latent_shape[-1], seed=seed, name=name)
        if self.kind == "conv3d_net":
            return Conv3DNet(**args)
        if self.kind == "conv_lstm":
            return ConvLSTMNet(**args)
        return ConvNet(**args, kernel=3 if self.kind == "conv_net" else 1)
