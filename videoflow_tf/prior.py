"""VideoFlow's latent prior: a diagonal Gaussian per frame and level, conditioned on the past.

    p(z_t) = prod_l p(z_t^(l) | z_{t-K..t-1}^(l), x1_t^(l)),   K = num_cond_latents,

where x1_t^(l) is the half of frame t's flow activations that continues past level l (it
carries the coarser levels z_t^(>l)); the top level has no x1 and conditions only on its
own past (REFERENCE.md §1). Per level:

- unconditional prior (a frame with fewer than K predecessors, or with `pad_history` a
  frame with none): N(mu, sigma) with (mu, log sigma) from a zero-initialised 3x3 conv of
  x1, or learned constants at the top;
- conditional prior: (mu, log sigma) from the level's latent encoder (`latent_encoders`)
  reading the K previous latents and the unconditional mean (the coarser information);
  with `latent_skip`, mu = z_{t-1}^(l) + predicted mu. With `pad_history`, a frame with
  1 <= n < K predecessors is conditional too: its history is padded in front with copies
  of the oldest latent, as if the video had stood still before it began. Then a
  stochastic-shapes prior with K = 2 sees "not moving yet" for the second frame (any
  direction may start) and the displacement between the last two frames after that.

Every prior starts as N(0, 1) (N(z_{t-1}, 1) with the skip). Sampling at temperature T
scales every sigma by T; T = 0 gives the mean.
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.latent_encoders import make_conv, make_latent_encoder

tfd = tfp.distributions


def gaussian(loc, log_scale, temperature=1.0):
    """A diagonal Gaussian over the last three axes, its sigma scaled by `temperature`."""
    return tfd.Independent(tfd.Normal(loc, tf.exp(log_scale) * temperature),
                           reinterpreted_batch_ndims=3)


def _split_params(params):
    return params[..., 0::2], params[..., 1::2]


class LevelPrior(keras.layers.Layer):
    """The unconditional and conditional prior of one level's latent."""

    def __init__(self, config, latent_shape, is_top, **kwargs):
        super().__init__(**kwargs)
        self.latent_shape, self.is_top = tuple(latent_shape), is_top
        self.latent_skip = config.latent_skip
        channels = self.latent_shape[-1]
        if not is_top:
            self.context_conv = make_conv(2 * channels, (3, 3), zero_init=True)
        self.encoder = make_latent_encoder(config, latent_shape, has_context=not is_top,
                                           name="encoder")

    def build(self, input_shape=None):
        params_shape = self.latent_shape[:2] + (2 * self.latent_shape[2],)
        if self.is_top:
            self.top_params = self.add_weight(shape=params_shape, initializer="zeros",
                                              name="top_params")
        else:
            self.context_conv.build((None,) + self.latent_shape)
        self.encoder.build()

    def unconditional(self, x1, batch_size):
        """(mu, log sigma) [N, h, w, c] from x1 [N, h, w, c] (None at the top)."""
        if self.is_top:
            params = tf.broadcast_to(self.top_params, tf.concat(
                [[batch_size], tf.shape(self.top_params)], axis=0))
        else:
            params = self.context_conv(x1)
        return _split_params(params)

    def conditional(self, history, x1):
        """(mu, log sigma) [N, h, w, c] given the K previous latents [N, K, h, w, c]."""
        context = None
        if not self.is_top:
            context, _ = self.unconditional(x1, None)
        loc, log_scale = _split_params(self.encoder(history, context))
        if self.latent_skip:
            loc = loc + history[:, -1]
        return loc, log_scale


class LatentPrior(keras.layers.Layer):
    """The priors of all levels, finest first; `levels[-1]` is the top level."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.num_cond_latents = config.num_cond_latents
        self.min_history = config.min_history
        shapes = config.latent_shapes
        self.levels = [LevelPrior(config, shape, is_top=i == len(shapes) - 1,
                                  name=f"level_{i + 1}") for i, shape in enumerate(shapes)]

    def build(self, input_shape=None):
        for level in self.levels:
            level.build()

    def log_prob(self, latents, conditions, first_frame):
        """log p(z_t | z_<t) of frames t >= first_frame, summed over levels: [B, T - first].

        latents: per level [B, T, h, w, c]; conditions: per level below the top, x1 of
        every frame [B, T, h, w, c]. T may be unknown until run time. All frames of a level
        are scored in one batched call per prior kind.
        """
        total = 0.0
        for level, z in enumerate(latents):
            x1 = conditions[level] if level < len(conditions) else None
            total += self._level_log_prob(self.levels[level], z, x1, first_frame)
        return total

    def _level_log_prob(self, prior, z, x1, first):
        num_cond = self.num_cond_latents
        batch = tf.shape(z)[0]
        parts = []
        # Frames before `start` lack the history for the conditional prior.
        start = max(first, self.min_history)
        if first < start:
            z_now = _merge(z[:, first:start])
            x1_now = None if x1 is None else _merge(x1[:, first:start])
            loc, log_scale = prior.unconditional(x1_now, tf.shape(z_now)[0])
            parts.append(gaussian(loc, log_scale).log_prob(z_now))

        def conditional_log_prob():
            count = tf.shape(z)[1] - start
            # windows[s] = the K frame indices before frame start + s (with padding, indices
            # before the first frame repeat frame 0).
            windows = tf.maximum(start - num_cond + tf.range(count)[:, None]
                                 + tf.range(num_cond)[None, :], 0)
            history = _merge(tf.gather(z, windows, axis=1))
            x1_now = None if x1 is None else _merge(x1[:, start:])
            loc, log_scale = prior.conditional(history, x1_now)
            return tf.reshape(gaussian(loc, log_scale).log_prob(_merge(z[:, start:])),
                              [batch, -1])

        # Convolutions must not see an empty batch: skip the conditional frames when a
        # clip has none (statically if the length is known, else at run time).
        if z.shape[1] is None:
            parts.append(tf.cond(tf.shape(z)[1] > start, conditional_log_prob,
                                 lambda: tf.zeros([batch, 0])))
        elif z.shape[1] > start:
            parts.append(conditional_log_prob())
        return tf.concat([tf.reshape(part, [batch, -1]) for part in parts], axis=1)

    def distribution(self, level, history, x1, conditional, temperature=1.0):
        """p(z^(level)) of one new frame for sampling.

        history: [N, K, h, w, c] previous latents of the level; x1: [N, h, w, c] or None at
        the top; conditional: Python or scalar-tensor bool, False while fewer than
        `min_history` predecessors exist (then `history` is ignored).
        """
        prior = self.levels[level]

        def conditional_params():
            return prior.conditional(history, x1)

        def unconditional_params():
            return prior.unconditional(x1, tf.shape(history)[0])

        if isinstance(conditional, bool):
            params = conditional_params() if conditional else unconditional_params()
        else:
            params = tf.cond(conditional, conditional_params, unconditional_params)
        return gaussian(*params, temperature=temperature)


def _merge(x):
    """[B, T, ...] -> [B * T, ...], keeping the static trailing shape."""
    return tf.reshape(x, [-1] + x.shape[2:].as_list())
