"""VideoFlow's latent prior: a diagonal Gaussian per frame and level, conditioned on the past.

    p(z_t) = prod_l p(z_t^(l) | z_{t-K..t-1}^(l), x1_t^(l)),   K = num_cond_latents,

where x1_t^(l) is the half of frame t's flow activations that continues past level l (it
carries the coarser levels z_t^(>l)); the top level has no x1 and conditions only on its
own past (Kumar et al. 2020, section 3, equation 8; tensor2tensor's next_frame_glow).
Per level (`LevelPrior`):

- unconditional prior (a frame with fewer than K predecessors, or with `pad_history` a
  frame with none):

      p(z) = N(mu, sigma),  (mu, log sigma) = conv3x3(x1)  (zero-initialised),
                            or learned constants at the top;

- conditional prior:

      p(z_t) = N(mu_t, sigma_t),  (mu_t, log sigma_t) = NN(z_{t-K..t-1}, mu),
      mu_t += z_{t-1} with `latent_skip`,

  NN the level's latent encoder (`latent_encoders`), reading the K previous latents and
  the unconditional mean (the coarser levels' information). With `pad_history`, a frame
  with 1 <= n < K predecessors is conditional too: its history is padded in front with
  copies of the oldest latent, as if the video had stood still before it began.

Every log sigma is clipped to [-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT] so that densities stay
finite for any input (trained priors stay far inside). Every prior starts as N(0, 1)
(N(z_{t-1}, 1) with the skip). A draw scales sigma by a temperature (`LevelPrior.draw`).

The top level may instead have a mixture of Gaussians (`mixture_prior.MixtureTopPrior`, a
`LevelPrior` given to `LatentPrior` as `top_prior`). `LatentPrior.log_prob` scores with
each distribution's `log_prob`, or with a `score` the loss chooses (`loss.beta_nll`).
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.model.bijectors import seeds
from videoflow_tf.model.latent_encoders import EncoderSpec, make_conv

tfd = tfp.distributions

# exp(-15) is about 3e-7: a latent 1e8 away from its mean still has a finite float32
# log-density, while no trained prior comes near (they stay within about [-5, 5]).
LOG_SCALE_LIMIT = 15.0

_PRIOR_SEED = 2 ** 16  # no flow has that many levels


def gaussian(loc, log_scale):
    """A diagonal Gaussian over the last three axes ([..., h, w, c] events)."""
    log_scale = tf.clip_by_value(log_scale, -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
    return tfd.Independent(tfd.Normal(loc, tf.exp(log_scale)), reinterpreted_batch_ndims=3)


def split_params(params):
    """(mu, log sigma) interleaved in the channels of `params` [..., 2c]."""
    return params[..., 0::2], params[..., 1::2]


class LevelPrior(keras.layers.Layer):
    """The unconditional and conditional Gaussian prior of one level's latent.

    Args:
      latent_shape: (h, w, c) of the level's latent.
      is_top: whether this is the top level (no x1; learned unconditional parameters).
      num_cond_latents: K, the latents of earlier frames the conditional prior reads.
      latent_skip: the conditional mean is z_{t-1} plus the encoder's prediction.
      encoder: the `EncoderSpec` of the conditional prior's network.
      outputs: the encoder's output channels (default 2c: mu and log sigma).
      seed: seeds the encoder's random kernels (None: unseeded).
    """

    def __init__(self, latent_shape, is_top, num_cond_latents, latent_skip=True,
                 encoder=EncoderSpec(), outputs=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_shape, self.is_top = tuple(latent_shape), is_top
        self.latent_skip = latent_skip
        channels = self.latent_shape[-1]
        if not is_top:
            self.context_conv = make_conv(2 * channels, (3, 3), zero_init=True)
        self.encoder = encoder.make(latent_shape, num_cond_latents, has_context=not is_top,
                                    outputs=outputs or 2 * channels, seed=seed,
                                    name="encoder")

    def build(self, input_shape=None):
        if self.is_top:
            params_shape = self.latent_shape[:2] + (2 * self.latent_shape[2],)
            self.top_params = self.add_weight(shape=params_shape, initializer="zeros",
                                              name="top_params")
        else:
            self.context_conv.build((None,) + self.latent_shape)
        self.encoder.build()

    def _unconditional_params(self, x1, batch_size):
        if self.is_top:
            params = tf.broadcast_to(self.top_params, tf.concat(
                [[batch_size], tf.shape(self.top_params)], axis=0))
        else:
            params = self.context_conv(x1)
        return split_params(params)

    def unconditional(self, x1, batch_size):
        """p(z) [N, h, w, c] given x1 [N, h, w, c] (None at the top)."""
        return gaussian(*self._unconditional_params(x1, batch_size))

    def _encode(self, history, x1, initialize=False):
        """The encoder's parameters [N, h, w, outputs] for `conditional`."""
        context = None if self.is_top else self._unconditional_params(x1, None)[0]
        return self.encoder(history, context, initialize=initialize)

    def conditional(self, history, x1):
        """p(z) [N, h, w, c] given the K previous latents [N, K, h, w, c] and x1."""
        loc, log_scale = split_params(self._encode(history, x1))
        if self.latent_skip:
            loc = loc + history[:, -1]
        return gaussian(loc, log_scale)

    def either(self, conditional, history, x1):
        """`conditional(history, x1)` if the scalar bool tensor `conditional` holds at run
        time, else `unconditional(x1, N)`: one distribution of the same kind either way."""
        def params(distribution):
            return distribution.distribution.loc, distribution.distribution.scale
        loc, scale = tf.cond(
            conditional, lambda: params(self.conditional(history, x1)),
            lambda: params(self.unconditional(x1, tf.shape(history)[0])))
        return tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=3)

    @staticmethod
    def draw(distribution, temperature, normal, uniform):
        """A reparameterised draw mu + temperature * sigma * normal from `distribution`
        (made by this level), given standard normals [N, h, w, c]; temperature is a scalar
        or [N, 1, 1, 1]. `uniform` [N] is unused (a mixture picks its component with it).
        Stateless: the caller's noise fixes the draw."""
        del uniform
        normal_dist = distribution.distribution
        return normal_dist.loc + normal_dist.scale * temperature * normal

    def initialize(self, history, x1, z):
        """Data-dependent initialisation (eager) of the encoder's ActNorms from the
        conditional frames of a batch (as `LatentPrior.conditional_frames` gives them)."""
        del z  # a Gaussian's parameters start where the encoder puts them
        self._encode(history, x1, initialize=True)


class LatentPrior(keras.layers.Layer):
    """The priors of all levels, finest first; `levels[-1]` is the top level.

    Args:
      latent_shapes: (h, w, c) of every level's latent, finest first.
      num_cond_latents: K, the earlier latents each conditional prior reads.
      pad_history: frames with 1 <= n < K predecessors get the conditional prior of their
        history padded with the oldest latent (else the unconditional prior).
      latent_skip: of every `LevelPrior`.
      encoder: the `EncoderSpec` of every level's prior, or a list of them, finest first.
      top_prior: the class of the top level's prior (a `LevelPrior`, the default, or a
        subclass such as a `functools.partial` of `mixture_prior.MixtureTopPrior`).
      seed: seeds the encoders' random kernels (None: unseeded).
    """

    def __init__(self, latent_shapes, num_cond_latents, pad_history=False, latent_skip=True,
                 encoder=EncoderSpec(), top_prior=LevelPrior, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_cond_latents = num_cond_latents
        # Predecessors a frame needs for the conditional prior; earlier frames get the
        # unconditional one.
        self.min_history = 1 if pad_history else num_cond_latents
        top = len(latent_shapes) - 1
        encoders = list(encoder) if isinstance(encoder, (list, tuple)) else (
            [encoder] * len(latent_shapes))
        if len(encoders) != len(latent_shapes):
            raise ValueError(f"got {len(encoders)} encoder specs for {len(latent_shapes)} "
                             "levels: give one, or one per level")
        # (seed, level, step) seeds the flow's steps; _PRIOR_SEED keeps the priors' apart.
        self.levels = [(top_prior if i == top else LevelPrior)(
            shape, is_top=i == top, num_cond_latents=num_cond_latents,
            latent_skip=latent_skip, encoder=level_encoder,
            seed=seeds.derived(seed, _PRIOR_SEED, i), name=f"level_{i + 1}")
            for i, (shape, level_encoder) in enumerate(zip(latent_shapes, encoders))]

    def build(self, input_shape=None):
        for level in self.levels:
            level.build()

    def log_prob(self, latents, conditions, first_frame, score=None):
        """log p(z_t | z_<t) of frames t >= first_frame, summed over levels: [B, T - first].

        latents: per level [B, T, h, w, c]; conditions: per level below the top, x1 of
        every frame [B, T, h, w, c]. T may be unknown until run time. All frames of a level
        are scored in one batched call per prior kind. `score(distribution, z)`: how a
        frame is scored (default: `distribution.log_prob(z)`).
        """
        score = score or (lambda distribution, z: distribution.log_prob(z))
        total = 0.0
        for level, z in enumerate(latents):
            x1 = conditions[level] if level < len(conditions) else None
            total += self._level_log_prob(self.levels[level], z, x1, first_frame, score)
        return total

    def _level_log_prob(self, prior, z, x1, first, score):
        batch = tf.shape(z)[0]
        parts = []
        # Frames before `start` lack the history for the conditional prior.
        start = max(first, self.min_history)
        if first < start:
            z_now = _merge(z[:, first:start])
            x1_now = None if x1 is None else _merge(x1[:, first:start])
            parts.append(score(prior.unconditional(x1_now, tf.shape(z_now)[0]), z_now))

        def conditional_log_prob():
            history, x1_now, z_now = self.conditional_frames(z, x1, start)
            return tf.reshape(score(prior.conditional(history, x1_now), z_now), [batch, -1])

        # Convolutions must not see an empty batch: skip the conditional frames when a
        # clip has none (statically if the length is known, else at run time).
        if z.shape[1] is None:
            parts.append(tf.cond(tf.shape(z)[1] > start, conditional_log_prob,
                                 lambda: tf.zeros([batch, 0])))
        elif z.shape[1] > start:
            parts.append(conditional_log_prob())
        return tf.concat([tf.reshape(part, [batch, -1]) for part in parts], axis=1)

    def initialize(self, latents, conditions):
        """Data-dependent initialisation (eager) of every level from the latents and x1
        of a batch of clips (as `log_prob` takes them): each level initialises itself on
        its conditional frames (`LevelPrior.initialize`). Initialised parts are kept."""
        for level, z in enumerate(latents):
            if z.shape[1] > self.min_history:
                x1 = conditions[level] if level < len(conditions) else None
                self.levels[level].initialize(
                    *self.conditional_frames(z, x1, self.min_history))

    def conditional_frames(self, z, x1, start):
        """The frames t >= start of one level's latents z [B, T, h, w, c] (and x1, or None),
        with their histories, as `LevelPrior.conditional` takes them: (history
        [B * (T - start), K, h, w, c], x1 [B * (T - start), h, w, c] or None, z [B * (T -
        start), h, w, c]). With `pad_history`, indices before the first frame repeat it."""
        num_cond = self.num_cond_latents
        # windows[s] = the K frame indices before frame start + s.
        windows = tf.maximum(start - num_cond + tf.range(tf.shape(z)[1] - start)[:, None]
                             + tf.range(num_cond)[None, :], 0)
        history = _merge(tf.gather(z, windows, axis=1))
        return history, None if x1 is None else _merge(x1[:, start:]), _merge(z[:, start:])

    def distribution(self, level, history, x1, conditional):
        """p(z^(level)) of one new frame, for sampling (see `LevelPrior.draw`).

        history: [N, K, h, w, c] previous latents of the level; x1: [N, h, w, c] or None at
        the top; conditional: Python or scalar-tensor bool, False while fewer than
        `min_history` predecessors exist (then `history` is ignored).
        """
        prior = self.levels[level]
        if isinstance(conditional, bool):
            return (prior.conditional(history, x1) if conditional
                    else prior.unconditional(x1, tf.shape(history)[0]))
        return prior.either(conditional, history, x1)


def _merge(x):
    """[B, T, ...] -> [B * T, ...], keeping the static trailing shape."""
    return tf.reshape(x, [-1] + x.shape[2:].as_list())
