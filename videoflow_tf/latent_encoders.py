"""Networks that predict a latent's Gaussian from the same level's past latents.

Every encoder maps `history` [N, K, h, w, c] (the level's latents of the K previous
frames, oldest first) and `context` [N, h, w, c] (the current frame's coarser levels, as
the unconditional prior's mean; None at the top level) to `params` [N, h, w, 2c]: mean and
log-scale interleaved (mean = params[..., 0::2], log-scale = params[..., 1::2]). The last
layer of every encoder starts at zero, so every conditional prior starts as N(0, 1).

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
import keras
import tensorflow as tf

DILATIONS = (1, 2, 4)


def fitting_dilations(spatial_size, use_dilations):
    """Spatial dilations whose 3x3 kernel (extent 1 + 2d) fits inside the latent."""
    if not use_dilations:
        return [1]
    return [d for d in DILATIONS if d == 1 or 1 + 2 * d <= spatial_size]


class PaddedConv(keras.layers.Layer):
    """A 2-D or 3-D convolution that keeps the spatial size and, in 3-D, is causal in time.

    Time (axis 1 in 3-D) is padded only in front, by kernel_t - 1 frames, so output step t
    sees input steps <= t; space is zero-padded by dilation * (k - 1) / 2 on both sides.
    """

    def __init__(self, filters, kernel_size, dilation=1, zero_init=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = tuple(kernel_size)
        self.dilation = dilation
        self.zero_init = zero_init
        rank = len(self.kernel_size)
        conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
        rates = (dilation,) * 2 if rank == 2 else (1, dilation, dilation)
        self.conv = conv(filters, self.kernel_size, dilation_rate=rates, padding="valid",
                         kernel_initializer="zeros" if zero_init else "glorot_uniform")
        spatial = [((k - 1) * dilation // 2,) * 2 for k in self.kernel_size[-2:]]
        time = [(self.kernel_size[0] - 1, 0)] if rank == 3 else []
        self.paddings = [(0, 0)] + time + spatial + [(0, 0)]

    def build(self, input_shape):
        self.conv.build(input_shape[:-3] + (None, None, input_shape[-1]))

    def call(self, x):
        return self.conv(tf.pad(x, self.paddings))


class ResidualBlock(keras.layers.Layer):
    """x + sum over dilations d of zero_conv_d(act(conv1x1(relu(conv_d(x))))).

    act is relu, or gatu: tanh(a) * sigmoid(b) of two 1x1 convs. The zero-initialised last
    conv makes the block the identity at initialisation.
    """

    def __init__(self, channels, width, kernel_size, dilations, activation, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.width = channels, width
        self.kernel_size, self.dilations = tuple(kernel_size), list(dilations)
        self.activation = activation
        pointwise = (1,) * len(self.kernel_size)
        middle_filters = 2 * width if activation == "gatu" else width
        self.firsts = [PaddedConv(width, self.kernel_size, d) for d in self.dilations]
        self.middles = [PaddedConv(middle_filters, pointwise) for _ in self.dilations]
        self.lasts = [PaddedConv(channels, self.kernel_size, d, zero_init=True)
                      for d in self.dilations]

    def build(self, input_shape):
        hidden_shape = input_shape[:-1] + (self.width,)
        for first, middle, last in zip(self.firsts, self.middles, self.lasts):
            first.build(input_shape)
            middle.build(hidden_shape)
            last.build(hidden_shape)

    def call(self, x):
        out = x
        for first, middle, last in zip(self.firsts, self.middles, self.lasts):
            h = middle(tf.nn.relu(first(x)))
            if self.activation == "gatu":
                a, b = tf.split(h, 2, axis=-1)
                h = tf.tanh(a) * tf.sigmoid(b)
            else:
                h = tf.nn.relu(h)
            out = out + last(h)
        return out


class _LatentEncoder(keras.layers.Layer):
    """Constructor arguments and input stacking shared by the encoders below."""

    def __init__(self, latent_shape, num_frames, has_context, width, depth, dilations,
                 activation, **kwargs):
        super().__init__(**kwargs)
        self.latent_shape = tuple(latent_shape)
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
        self.blocks = [ResidualBlock(stream, self.width, kernel, dilations, self.activation)
                       for _ in range(self.depth)]
        self.head = PaddedConv(2 * self.channels, (1, 1), zero_init=True)

    def build(self, input_shape=None):
        shape = (None, self.num_frames) + self.latent_shape[:2] + (
            self.channels + self.context_channels,)
        for block in self.blocks:
            block.build(shape)
        self.head.build((None,) + shape[2:])

    def call(self, history, context=None):
        h = self._with_context_per_step(history, context)
        for block in self.blocks:
            h = block(h)
        return self.head(h[:, -1])


class ConvNet(_LatentEncoder):
    """`conv_net` (kernel 3) and `pointwise` (kernel 1) encoders (module docstring)."""

    def __init__(self, *args, kernel=3, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel = kernel
        stream = self.num_frames * self.channels + self.context_channels
        dilations = fitting_dilations(min(self.latent_shape[:2]), self.dilations and kernel > 1)
        self.blocks = [ResidualBlock(stream, self.width, (kernel, kernel), dilations,
                                     self.activation) for _ in range(self.depth)]
        self.head = PaddedConv(2 * self.channels, (kernel, kernel), zero_init=True)

    def build(self, input_shape=None):
        shape = (None,) + self.latent_shape[:2] + (
            self.num_frames * self.channels + self.context_channels,)
        for block in self.blocks:
            block.build(shape)
        self.head.build(shape)

    def call(self, history, context=None):
        h = self._channel_stack(history, context)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class ConvLSTMNet(_LatentEncoder):
    """`conv_lstm` encoder (module docstring); `depth` stacked ConvLSTM layers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lstms = [keras.layers.ConvLSTM2D(self.width, 3, padding="same",
                                              return_sequences=i < self.depth - 1)
                      for i in range(self.depth)]
        self.head = PaddedConv(2 * self.channels, (3, 3), zero_init=True)

    def build(self, input_shape=None):
        shape = (None, self.num_frames) + self.latent_shape[:2] + (
            self.channels + self.context_channels,)
        for lstm in self.lstms:
            lstm.build(shape)
            shape = shape[:-1] + (self.width,)
        self.head.build((None,) + shape[2:])

    def call(self, history, context=None):
        h = self._with_context_per_step(history, context)
        for lstm in self.lstms:
            h = lstm(h)
        return self.head(h)


def make_latent_encoder(config, latent_shape, has_context, name=None):
    """The encoder `config.latent_encoder` for a latent of `latent_shape`."""
    args = dict(latent_shape=latent_shape, num_frames=config.num_cond_latents,
                has_context=has_context, width=config.latent_encoder_width,
                depth=config.latent_encoder_depth, dilations=config.latent_dilations,
                activation=config.latent_activation, name=name)
    if config.latent_encoder == "conv3d_net":
        return Conv3DNet(**args)
    if config.latent_encoder == "conv_lstm":
        return ConvLSTMNet(**args)
    return ConvNet(**args, kernel=3 if config.latent_encoder == "conv_net" else 1)
