"""The per-frame flow of VideoFlow: an unconditional multi-scale Glow.

    x [B, H, W, C]
    level l = 1..L:  squeeze -> K x (ActNorm -> 1x1 conv -> coupling)
                     -> (l < L) split: x1 continues, z^(l) is that level's latent
    z_top = the last level's output

For 64x64x3 and L = 3: z^(1) 32x32x6, z^(2) 16x16x12, z_top 8x8x48.
"""
import keras
import numpy as np
import tensorflow as tf

from videoflow_tf.bijectors import actnorm, invertible_conv, one_pass, seeds, split, squeeze
from videoflow_tf.bijectors import coupling as coupling_lib


@keras.saving.register_keras_serializable(package="videoflow_tf")
class FlowStep(keras.layers.Layer):
    """One Glow step, ActNorm -> invertible 1x1 conv -> coupling, on [B, H, W, C].

    encode: y = coupling((x + b) * exp(s) @ W)
            log|det dy/dx| = H*W*(sum(s) + sum(log_s)) + coupling's log-det
    decode: the inverse, log|det dx/dy| = -(the above at x)

    ActNorm and the 1x1 conv are applied as one matrix product,
    x @ (diag(exp(s)) W) + (b * exp(s)) @ W.
    """

    def __init__(self, coupling="affine", width=512, activation="relu", seed=None,
                 network_dtype=None, **kwargs):
        super().__init__(**kwargs)
        sub = {"dtype": self.dtype_policy}
        self.actnorm = actnorm.ActNorm(name="actnorm", **sub)
        self.invertible_conv = invertible_conv.InvertibleConv1x1(
            seed=seeds.derived(seed, 0), name="invertible_conv", **sub)
        self.coupling = coupling_lib.Coupling(coupling, width=width, activation=activation,
                                              seed=seeds.derived(seed, 1),
                                              network_dtype=network_dtype, name="coupling",
                                              **sub)
        self.seed = seed

    def build(self, input_shape):
        for layer in (self.actnorm, self.invertible_conv, self.coupling):
            layer.build(input_shape)

    def _constant_log_det(self, height, width):
        """log|det| of ActNorm and the 1x1 conv over an H x W frame."""
        return height * width * (tf.reduce_sum(self.actnorm.log_scale)
                                 + self.invertible_conv.log_det())

    def encode(self, x):
        """(y, log|det dy/dx|), log-det shape [B]."""
        if actnorm.initializing():
            h = self.invertible_conv(self.actnorm(x))
        else:
            scale = tf.exp(self.actnorm.log_scale)
            kernel = self.invertible_conv.kernel()
            bias = tf.linalg.matvec(kernel, self.actnorm.bias * scale, transpose_a=True)
            h = tf.tensordot(x, scale[:, None] * kernel, axes=1) + bias
        y, log_det = self.coupling.forward_and_log_det(h)
        return y, log_det + self._constant_log_det(x.shape[-3], x.shape[-2])

    def decode_weights(self):
        """What `decode` derives from the weights: (the coupling network's fused weights,
        W^-1 diag(exp(-s)), b, per-pixel log|det| of ActNorm and the 1x1 conv)."""
        return (self.coupling.network_weights(),
                self.invertible_conv.inverse_kernel() * tf.exp(-self.actnorm.log_scale),
                tf.convert_to_tensor(self.actnorm.bias), self._constant_log_det(1, 1))

    def decode(self, y, weights=None):
        """(x, log|det dx/dy|), log-det shape [B]; `weights`: `decode_weights()`
        computed earlier (else computed here)."""
        network, inverse_kernel, bias, log_det_per_pixel = (
            self.decode_weights() if weights is None else weights)
        h, log_det = self.coupling.inverse_and_log_det(y, network)
        x = tf.tensordot(h, inverse_kernel, axes=1) - bias
        return x, log_det - y.shape[-3] * y.shape[-2] * log_det_per_pixel

    def call(self, x):
        return self.encode(x)[0]

    def get_config(self):
        return {**super().get_config(), "coupling": self.coupling.coupling,
                "width": self.coupling.width, "activation": self.coupling.activation,
                "seed": self.seed, "network_dtype": self.coupling.network_dtype}


@keras.saving.register_keras_serializable(package="videoflow_tf")
class MultiScaleGlow(keras.layers.Layer):
    """Multi-scale Glow over frames of shape `image_shape` (a Keras layer).

    Args:
      image_shape: (H, W, C); H and W divisible by 2**num_levels.
      num_levels: L, number of squeeze levels (3 in the paper).
      num_steps: K, flow steps per level (24 in the paper).
      coupling: "affine" or "additive".
      width: hidden channels of the coupling networks (512 in the paper).
      activation: "relu" or "gatu" in the coupling networks.
      seed: seeds the random rotations and kernel initialisations (None: unseeded).
      memory_saving: backpropagation through `encode` stores each step's input only
        and recomputes the step's activations from it (`tf.recompute_grad`), so
        training memory barely grows with num_steps, for one more forward pass.
      network_dtype: None, or "bfloat16" for mixed precision: the coupling
        networks compute in bfloat16; weights, activations between steps and
        log-determinants stay float32.

    `encode(x)` -> (latents, conditions, log_det); `decode(latents)` -> x;
    `decode_sampling(z_top, sample_fn)` -> (x, latents, log_det); `initialize(x)` runs the
    data-dependent init; `bijector` is one TFP bijector with tfp.bijectors.Glow's
    convention (forward: flat latent [B, H*W*C] -> frame [B, H, W, C]).
    """

    def __init__(self, image_shape, num_levels=3, num_steps=24, coupling="affine", width=512,
                 activation="relu", seed=None, memory_saving=False, network_dtype=None,
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (height, width, channels), got {image_shape}")
        height, width_px, channels = image_shape
        factor = 2 ** num_levels
        if (num_levels < 1 or min(height, width_px) < factor or height % factor
                or width_px % factor or channels < 1):
            raise ValueError(
                f"image_shape {image_shape} does not fit {num_levels} levels: height and width "
                f"must be positive multiples of 2**num_levels = {factor}, channels positive")
        self.image_shape = image_shape
        self.num_levels = int(num_levels)
        self.num_steps = int(num_steps)
        self.coupling = coupling
        self.width = int(width)
        self.activation = activation
        self.seed = seed
        self.memory_saving = bool(memory_saving)
        self.network_dtype = network_dtype
        self.levels = []
        self._level_shapes = []  # shape inside level l (after its squeeze)
        h, w, c = image_shape
        for level in range(self.num_levels):
            h, w, c = h // 2, w // 2, c * 4
            self._level_shapes.append((h, w, c))
            steps = [FlowStep(coupling, width=self.width, activation=activation,
                              seed=seeds.derived(seed, level, step), network_dtype=network_dtype,
                              name=f"level{level + 1}_step{step + 1}", dtype=self.dtype_policy)
                     for step in range(self.num_steps)]
            for step in steps:
                step.build((None, h, w, c))
            self.levels.append(steps)
            if level < self.num_levels - 1:
                c //= 2
        self.built = True

    @property
    def latent_shapes(self):
        """[(h, w, c)] of [z^(1), ..., z^(L-1), z_top]."""
        shapes = [(h, w, c // 2) for h, w, c in self._level_shapes[:-1]]
        return shapes + [self._level_shapes[-1]]

    def _check_frames(self, x):
        x = tf.convert_to_tensor(x)
        if x.shape.rank != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected frames of shape [batch, "
                             f"{', '.join(map(str, self.image_shape))}], got {x.shape}")
        return tf.cast(x, self.compute_dtype)

    def _check_latent(self, z, index):
        """latents[index] (negative counts from z_top) as a tensor of the right shape."""
        z = tf.convert_to_tensor(z)
        shape = self.latent_shapes[index]
        if z.shape.rank != 4 or tuple(z.shape[1:]) != shape:
            raise ValueError(f"expected latents[{index}] of shape [batch, "
                             f"{', '.join(map(str, shape))}], got {z.shape}")
        return tf.cast(z, self.compute_dtype)

    def _check_latents(self, latents):
        if len(latents) != self.num_levels:
            raise ValueError(f"expected a list of {self.num_levels} latents "
                             f"[z^(1), ..., z_top], got {len(latents)}")
        return [self._check_latent(z, index) for index, z in enumerate(latents)]

    def encode(self, x):
        """x [B, H, W, C] -> (latents [z^(1), ..., z_top], conditions, log_det [B]).

        conditions[i] is the half that continues at the split producing latents[i]
        (same shape); log_det = log|det dz/dx| summed over the whole flow.
        """
        h = self._check_frames(x)
        latents, conditions = [], []
        log_det = tf.zeros(tf.shape(h)[:1], h.dtype)
        for index, steps in enumerate(self.levels):
            h = squeeze.squeeze(h)
            h, level_log_det = encode_steps(
                steps, h, recompute=self.memory_saving and not actnorm.initializing())
            log_det += level_log_det
            if index < self.num_levels - 1:
                h, z = split.split(h)
                latents.append(z)
                conditions.append(h)
        latents.append(h)
        return latents, conditions, log_det

    def decode_weights(self):
        """Every step's `FlowStep.decode_weights()`, [level][step]. Computed once before
        a loop that decodes many frames with the same weights and passed to
        `decode_sampling`, they are not rebuilt for every frame (W^-1, folded kernels)."""
        return [[step.decode_weights() for step in steps] for steps in self.levels]

    def _decode_levels(self, h, next_latent, weights=None):
        """Top-down decoding from z_top; `next_latent(i, x1)` supplies latents[i]."""
        log_det = tf.zeros(tf.shape(h)[:1], h.dtype)
        latents = [h]
        for index in reversed(range(self.num_levels)):
            if index < self.num_levels - 1:
                z = next_latent(index, h)
                latents.insert(0, z)
                h = split.merge(h, z)
            steps = self.levels[index]
            level_weights = [None] * len(steps) if weights is None else weights[index]
            for step, step_weights in zip(reversed(steps), reversed(level_weights)):
                h, step_log_det = step.decode(h, step_weights)
                log_det += step_log_det
            h = squeeze.unsqueeze(h)
        return h, log_det, latents

    def decode(self, latents):
        """[z^(1), ..., z_top] -> x [B, H, W, C] (the inverse of `encode`)."""
        latents = self._check_latents(latents)
        return self._decode_levels(latents[-1], lambda index, _: latents[index])[0]

    def decode_sampling(self, z_top, sample_fn, weights=None):
        """Top-down decoding that draws each split latent given the current frame.

        For i = L-2, ..., 0 (the index into `latents`/`conditions`), calls
        `z = sample_fn(i, x1)` where x1 is the continuing half at that split (what
        `encode` returns as conditions[i]); z must have x1's shape. `weights`:
        `decode_weights()` computed earlier (else computed here).
        Returns (x, latents [z^(1), ..., z_top], log|det dx/dz| [B]).
        """
        x, log_det, latents = self._decode_levels(
            self._check_latent(z_top, -1),
            lambda index, x1: self._check_latent(sample_fn(index, x1), index), weights)
        return x, latents, log_det

    def initialize(self, x):
        """Data-dependent init of every ActNorm from batch x, in flow order (eager).

        Each ActNorm is initialised from the activations it receives after all
        earlier layers are initialised. Already-initialised layers are kept, so a
        second call (or a call after restoring weights) changes nothing.
        """
        with actnorm.data_dependent_init():
            self.encode(x)

    @property
    def initialized(self):
        """Whether every ActNorm of the flow has been initialised."""
        return all(norm.is_initialized() for steps in self.levels for step in steps
                   for norm in (step.actnorm, step.coupling.network.norm_in,
                                step.coupling.network.norm_hidden))

    def flatten_latents(self, latents):
        """[z^(1), ..., z_top] -> flat [B, H*W*C]: each latent flattened, concatenated in order."""
        latents = self._check_latents(latents)
        return tf.concat([tf.reshape(z, [-1, int(np.prod(shape))])
                          for z, shape in zip(latents, self.latent_shapes)], axis=-1)

    def unflatten_latents(self, flat):
        """The inverse of `flatten_latents`."""
        flat = tf.convert_to_tensor(flat)
        size = int(np.prod(self.image_shape))
        if flat.shape.rank != 2 or flat.shape[-1] != size:
            raise ValueError(f"expected flat latents of shape [batch, {size}], got {flat.shape}")
        sizes = [int(np.prod(shape)) for shape in self.latent_shapes]
        return [tf.reshape(part, [-1, *shape])
                for part, shape in zip(tf.split(flat, sizes, axis=-1), self.latent_shapes)]

    def call(self, x):
        return self.encode(x)

    @property
    def bijector(self):
        """One `tfp.bijectors.Bijector`, tfp.bijectors.Glow's direction convention."""
        return GlowBijector(self)

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape,
                "num_levels": self.num_levels, "num_steps": self.num_steps,
                "coupling": self.coupling, "width": self.width,
                "activation": self.activation, "seed": self.seed,
                "memory_saving": self.memory_saving, "network_dtype": self.network_dtype}


def encode_steps(steps, x, recompute=False):
    """x through the FlowSteps `steps` in order: (y, summed log-det [B]).

    With `recompute`, backpropagation stores only each step's input and recomputes the
    step's activations from it when it reaches the step (`tf.recompute_grad`, which also
    makes the recomputation wait for the gradient behind the step), so one step's
    activations live at a time. The gradients are those of plain backpropagation (the same
    operations on the same inputs).
    """
    log_det = 0.0
    for step in steps:
        encode = tf.recompute_grad(step.encode) if recompute else step.encode
        x, step_log_det = encode(x)
        log_det += step_log_det
    return x, log_det


class GlowBijector(one_pass.OnePassBijector):
    """A `MultiScaleGlow` as one bijector, with tfp.bijectors.Glow's conventions.

    forward:  flat latent z [..., H*W*C] -> frame x [..., H, W, C]
              x = decode(unflatten_latents(z))
              log|det dx/dz| = -log|det dz/dx|
    inverse:  frame x -> z = flatten_latents(encode(x).latents)
              log|det dz/dx| = sum of every step's log-det (encode's log_det)

    forward_min_event_ndims = 1, inverse_min_event_ndims = 3. Output and
    log-determinant come from one pass through the flow.
    """

    def __init__(self, flow, validate_args=False, name="multi_scale_glow"):
        parameters = dict(locals())
        self._flow = flow
        super().__init__(forward_min_event_ndims=1, inverse_min_event_ndims=3,
                         validate_args=validate_args, parameters=parameters,
                         dtype=tf.as_dtype(flow.variable_dtype), name=name)

    def _forward_and_log_det(self, z):
        size = int(np.prod(self._flow.image_shape))
        if z.shape[-1] != size:
            raise ValueError(f"expected flat latents of shape [..., {size}], got {z.shape}")
        batch = tf.shape(z)[:-1]
        latents = self._flow.unflatten_latents(tf.reshape(z, [-1, z.shape[-1]]))
        frames, log_det, _ = self._flow._decode_levels(latents[-1],
                                                       lambda index, _: latents[index])
        frames = tf.reshape(frames, tf.concat([batch, self._flow.image_shape], 0))
        return frames, tf.reshape(log_det, batch)

    def _inverse_and_log_det(self, x):
        if tuple(x.shape[-3:]) != self._flow.image_shape:
            raise ValueError(f"expected frames of shape [..., "
                             f"{', '.join(map(str, self._flow.image_shape))}], got {x.shape}")
        batch = tf.shape(x)[:-3]
        latents, _, log_det = self._flow.encode(tf.reshape(x, [-1, *self._flow.image_shape]))
        flat = self._flow.flatten_latents(latents)
        return (tf.reshape(flat, tf.concat([batch, [flat.shape[-1]]], 0)),
                tf.reshape(log_det, batch))

    def _forward_event_shape(self, input_shape):
        return input_shape[:-1].concatenate(self._flow.image_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-1], self._flow.image_shape], 0)

    def _inverse_event_shape(self, output_shape):
        return output_shape[:-3].concatenate([int(np.prod(self._flow.image_shape))])

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], [int(np.prod(self._flow.image_shape))]], 0)
