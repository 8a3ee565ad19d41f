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
import tensorflow_probability as tfp

from videoflow_tf.config import latent_shapes
from videoflow_tf.model.bijectors import (actnorm, chain, invertible_conv, multiscale, seeds,
                                          squeeze)
from videoflow_tf.model.bijectors import coupling as coupling_lib


@keras.saving.register_keras_serializable(package="videoflow_tf")
class FlowStep(keras.layers.Layer):
    """One Glow step, ActNorm -> invertible 1x1 conv -> coupling, on [B, H, W, C]: owns
    the three layers' weights; `bijector` chains their bijectors (the math is there).

        y = coupling(((x + b) * exp(s)) W)
        log|det dy/dx| = H*W*(sum(s) + sum(log_s)) + the coupling's log-det
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

    def make_bijector(self, recompute=False, initialize=False):
        """The step as a `FlowChain` of its three bijectors; `recompute`: see `FlowChain`;
        `initialize`: the forward pass first initialises the ActNorms from their inputs
        (the data-dependent init, eager)."""
        return chain.FlowChain(
            [coupling_lib.CouplingBijector(self.coupling, initialize=initialize),
             self.invertible_conv.bijector,
             actnorm.ActNormBijector(self.actnorm, initialize=initialize)],
            recompute=recompute, name=self.name)

    @property
    def bijector(self):
        """The step as a `FlowChain` (forward = `call`, data -> latent)."""
        return self.make_bijector()

    def call(self, x):
        return self.bijector.forward_and_log_det(x)[0]

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

    The layer owns the weights (its `FlowStep`s, in `levels`); `bijector` is the flow as
    a composition of the steps' bijectors, and every method runs that composition:
    `encode(x)` -> (latents, conditions, log_det); `decode(latents)` -> x;
    `decode_sampling(z_top, sample_fn)` -> (x, latents, log_det); `initialize(x)` runs the
    data-dependent init.
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
        h, w, c = image_shape
        for level in range(self.num_levels):
            h, w, c = h // 2, w // 2, c * 4  # the shape inside the level, after its squeeze
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
        return latent_shapes(self.image_shape, self.num_levels)

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

    def _multiscale(self, recompute=False, initialize=False):
        """The flow as a `MultiScale` composition: per level, a `FlowChain` of the squeeze
        and the level's steps (each a `FlowChain` of its three bijectors)."""
        levels = [chain.FlowChain([step.make_bijector(recompute, initialize)
                                   for step in reversed(steps)]
                                  + [squeeze.Squeeze()], name=f"level{index + 1}")
                  for index, steps in enumerate(self.levels)]
        return multiscale.MultiScale(levels, self.image_shape, self.latent_shapes,
                                     name=self.name)

    @property
    def bijector(self):
        """The flow as one bijector with tfp.bijectors.Glow's direction convention
        (forward: flat latent [..., H*W*C] -> frame [..., H, W, C], the flattening of
        `flatten_latents`): `tfp.bijectors.Invert` of the `MultiScale` composition of the
        steps' bijectors that `encode`, `decode` and `decode_sampling` run."""
        return tfp.bijectors.Invert(self._multiscale())

    def frozen_bijector(self):
        """`bijector` with the weights it derives (W^-1, the folded kernels) computed now:
        for `decode_sampling` in a loop that decodes many frames with the same weights."""
        return tfp.bijectors.Invert(self._multiscale().frozen())

    def encode(self, x):
        """x [B, H, W, C] -> (latents [z^(1), ..., z_top], conditions, log_det [B]).

        conditions[i] is the half that continues at the split producing latents[i]
        (same shape); log_det = log|det dz/dx| summed over the whole flow.
        """
        return self._multiscale(self.memory_saving).forward_levels(self._check_frames(x))

    def decode(self, latents):
        """[z^(1), ..., z_top] -> x [B, H, W, C] (the inverse of `encode`)."""
        latents = self._check_latents(latents)
        return self._multiscale().inverse_levels(latents[-1],
                                                 lambda index, _: latents[index])[0]

    def decode_sampling(self, z_top, sample_fn, bijector=None):
        """Top-down decoding that draws each split latent given the current frame.

        For i = L-2, ..., 0 (the index into `latents`/`conditions`), calls
        `z = sample_fn(i, x1)` where x1 is the continuing half at that split (what
        `encode` returns as conditions[i]); z must have x1's shape. `bijector`:
        `frozen_bijector()` computed earlier (else `bijector`).
        Returns (x, latents [z^(1), ..., z_top], log|det dx/dz| [B]).
        """
        composition = (self.bijector if bijector is None else bijector).bijector
        return composition.inverse_levels(
            self._check_latent(z_top, -1),
            lambda index, x1: self._check_latent(sample_fn(index, x1), index))

    def initialize(self, x):
        """Data-dependent init of every ActNorm from batch x, in flow order (eager).

        Each ActNorm is initialised from the activations it receives after all
        earlier layers are initialised (a forward pass whose bijectors initialise their
        layers first). Already-initialised layers are kept, so a second call (or a call
        after restoring weights) changes nothing.
        """
        self._multiscale(initialize=True).forward_levels(self._check_frames(x))

    @property
    def initialized(self):
        """Whether every ActNorm of the flow has been initialised."""
        return all(norm.is_initialized() for steps in self.levels for step in steps
                   for norm in (step.actnorm, step.coupling.network.norm_in,
                                step.coupling.network.norm_hidden))

    def flatten_latents(self, latents):
        """[z^(1), ..., z_top] -> flat [B, H*W*C]: each latent flattened, concatenated in order."""
        return multiscale.flattening(self.latent_shapes).forward(self._check_latents(latents))

    def unflatten_latents(self, flat):
        """The inverse of `flatten_latents`."""
        flat = tf.convert_to_tensor(flat)
        size = int(np.prod(self.image_shape))
        if flat.shape.rank != 2 or flat.shape[-1] != size:
            raise ValueError(f"expected flat latents of shape [batch, {size}], got {flat.shape}")
        return multiscale.flattening(self.latent_shapes).inverse(flat)

    def call(self, x):
        return self.encode(x)

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape,
                "num_levels": self.num_levels, "num_steps": self.num_steps,
                "coupling": self.coupling, "width": self.width,
                "activation": self.activation, "seed": self.seed,
                "memory_saving": self.memory_saving, "network_dtype": self.network_dtype}
