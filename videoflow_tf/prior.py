"""VideoFlow's latent prior: a diagonal Gaussian per frame and level, conditioned on the past.

    p(z_t) = prod_l p(z_t^(l) | z_{t-K..t-1}^(l), x1_t^(l)),   K = num_cond_latents,

where x1_t^(l) is the half of frame t's flow activations that continues past level l (it
carries the coarser levels z_t^(>l)); the top level has no x1 and conditions only on its
own past (Kumar et al. 2020, section 3; tensor2tensor's next_frame_glow). Per level:

- unconditional prior (a frame with fewer than K predecessors, or with `pad_history` a
  frame with none): N(mu, sigma) with (mu, log sigma) from a zero-initialised 3x3 conv of
  x1, or learned constants at the top;
- conditional prior: (mu, log sigma) from the level's latent encoder (`latent_encoders`)
  reading the K previous latents and the unconditional mean (the coarser information; with
  `prior_reads_x1`, x1 itself, which unlike that mean is not zero at initialisation);
  with `latent_skip`, mu = z_{t-1}^(l) + predicted mu. With `pad_history`, a frame with
  1 <= n < K predecessors is conditional too: its history is padded in front with copies
  of the oldest latent, as if the video had stood still before it began. Then a
  stochastic-shapes prior with K = 2 sees "not moving yet" for the second frame (any
  direction may start) and the displacement between the last two frames after that.
- with `top_prior_components` M > 1, the top level's conditional prior is a mixture of M
  such Gaussians over the whole top latent (`tfd.MixtureSameFamily`): the encoder predicts
  every component's mean and log-scale and, averaged over positions, its logit. A draw
  first picks a component, so one frame's whole coarse layout follows one of M futures (a
  unimodal Gaussian can only spread around their average). Each component's mean also
  has a learned offset. Components that start alike get alike gradients and never part,
  and random offsets make the one with the smallest offsets win everywhere, so the
  offsets are initialised from data (with the ActNorms, `data_dependent_init`): the
  residuals z - mu of the initialisation batch's frames, M of them chosen far apart
  (farthest-point), so each component starts at a different real future. Components that
  still die (lose all their frames to others) can be revived by splitting live ones
  (`split_components`, run during training with `revive_components_every`).

Every log sigma is clipped to [-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT] so that densities stay
finite for any input (trained priors stay far inside). Every Gaussian prior starts as
N(0, 1) (N(z_{t-1}, 1) with the skip). Sampling scales every sigma by a temperature
(`draw`); the mixture weights are not tempered, so at temperature 0 a draw is the mean of
a randomly picked component.

Training may fit the priors with beta-NLL's gradient (`prior_beta`,
`fitting_log_prob`). Maximum likelihood weights the error of a prior's mean by 1/sigma^2,
so on stochastic shapes the thousands of background dimensions (sigma ~ 0.06) outweigh
the few dozen where the shape is (sigma ~ 8) by about 10^4: a maximum-likelihood prior
learns where the shape is (a wide sigma there) but not what it looks like.
"""
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.bijectors import seeds
from videoflow_tf.bijectors.actnorm import initializing
from videoflow_tf.latent_encoders import make_conv, make_latent_encoder

tfd = tfp.distributions

# exp(-15) is about 3e-7: a latent 1e8 away from its mean still has a finite float32
# log-density, while no trained prior comes near (they stay within about [-5, 5]).
LOG_SCALE_LIMIT = 15.0

_PRIOR_SEED = 2 ** 16  # no flow has that many levels


def gaussian(loc, log_scale):
    """A diagonal Gaussian over the last three axes ([..., h, w, c] events)."""
    log_scale = tf.clip_by_value(log_scale, -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
    return tfd.Independent(tfd.Normal(loc, tf.exp(log_scale)), reinterpreted_batch_ndims=3)


def draw(distribution, temperature, normal, uniform):
    """A reparameterised draw from a prior made by this module, with every standard
    deviation scaled by `temperature` (a scalar or [N, 1, 1, 1]).

    normal: standard normals [N, h, w, c]; uniform: U(0, 1) [N], which picks a mixture's
    component by inverting its weights' CDF (unused for a Gaussian). Stateless and exact:
    the caller's noise fixes the draw.
    """
    if isinstance(distribution, tfd.MixtureSameFamily):
        weights = distribution.mixture_distribution.probs_parameter()
        cdf = tf.math.cumsum(weights, axis=-1)
        count = tf.shape(weights)[-1]
        component = tf.minimum(tf.reduce_sum(tf.cast(cdf < uniform[:, None], tf.int32), -1),
                               count - 1)
        normal_dist = distribution.components_distribution.distribution
        loc = tf.gather(normal_dist.loc, component, batch_dims=1)
        scale = tf.gather(normal_dist.scale, component, batch_dims=1)
    else:
        loc, scale = distribution.distribution.loc, distribution.distribution.scale
    return loc + scale * temperature * normal


def fitting_log_prob(distribution, z, beta):
    """distribution.log_prob(z), with beta-NLL's gradient (Seitzer et al. 2022) when
    beta > 0, for a prior made by this module (a Gaussian or the top level's mixture).

    Per dimension of a Gaussian (of each mixture component), with sg() stopping gradients
    and w = sg(sigma^(2 beta)):

        value:                 log N(z; mu, sigma)                      (exact)
        gradient through z:    d/dz log N(z; mu, sigma)                 (exact)
        gradient through mu, sigma: w * d/d(mu, sigma) log N(z; mu, sigma)

    so the flow is fitted by maximum likelihood through the scored latents z while each
    prior dimension's mean gets the error (z - mu) / sigma^(2 - 2 beta): with beta = 0.5,
    an uncertain dimension pulls on the mean as hard as a precise one. The weight w also
    scales everything behind mu and sigma: the prior network's weights and the
    gradient that reaches the flow through the prior's inputs (the earlier frames'
    latents and the coarser levels x1), which is therefore not maximum likelihood's. A mixture combines its
    components' log-densities exactly (its weights' gradient is exact too), so component
    k's mean gets its responsibility times the same error.
    """
    if beta == 0:
        return distribution.log_prob(z)
    if not isinstance(distribution, tfd.MixtureSameFamily):
        return _fitting_gaussian_log_prob(distribution.distribution, z, beta)
    components = _fitting_gaussian_log_prob(
        distribution.components_distribution.distribution, z[:, None], beta)
    log_weights = tf.math.log_softmax(distribution.mixture_distribution.logits, axis=-1)
    return tf.reduce_logsumexp(log_weights + components, axis=-1)


def _fitting_gaussian_log_prob(normal, z, beta):
    """`fitting_log_prob` of tfd.Normal `normal` over [..., h, w, c] events."""
    loc, scale = normal.loc, normal.scale
    # The exact value with the gradient through z only, plus a term that is zero in value
    # and carries the weighted gradient through mu and sigma.
    through_z = tfd.Normal(tf.stop_gradient(loc), tf.stop_gradient(scale)).log_prob(z)
    through_prior = tf.stop_gradient(scale ** (2.0 * beta)) * normal.log_prob(
        tf.stop_gradient(z))
    per_dimension = through_z + (through_prior - tf.stop_gradient(through_prior))
    return tf.reduce_sum(per_dimension, axis=[-3, -2, -1])


def _split_params(params):
    return params[..., 0::2], params[..., 1::2]


class LevelPrior(keras.layers.Layer):
    """The unconditional and conditional prior of one level's latent."""

    def __init__(self, config, latent_shape, is_top, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_shape, self.is_top = tuple(latent_shape), is_top
        self.latent_skip, self.reads_x1 = config.latent_skip, config.prior_reads_x1
        self.components = config.top_prior_components if is_top else 1
        channels = self.latent_shape[-1]
        if not is_top:
            self.context_conv = make_conv(2 * channels, (3, 3), zero_init=True)
        # A mixture's encoder gives every component 2c parameter channels and one logit.
        outputs = 2 * channels if self.components == 1 else self.components * (2 * channels + 1)
        self.encoder = make_latent_encoder(config, latent_shape, has_context=not is_top,
                                           outputs=outputs, seed=seed, name="encoder")

    def build(self, input_shape=None):
        params_shape = self.latent_shape[:2] + (2 * self.latent_shape[2],)
        if self.is_top:
            self.top_params = self.add_weight(shape=params_shape, initializer="zeros",
                                              name="top_params")
        else:
            self.context_conv.build((None,) + self.latent_shape)
        if self.components > 1:
            self.component_offsets = self.add_weight(
                shape=(self.components,) + self.latent_shape, initializer="zeros",
                name="component_offsets")
        self.encoder.build()

    def _unconditional_params(self, x1, batch_size):
        if self.is_top:
            params = tf.broadcast_to(self.top_params, tf.concat(
                [[batch_size], tf.shape(self.top_params)], axis=0))
        else:
            params = self.context_conv(x1)
        return _split_params(params)

    def unconditional(self, x1, batch_size):
        """p(z) [N, h, w, c] given x1 [N, h, w, c] (None at the top)."""
        return gaussian(*self._unconditional_params(x1, batch_size))

    def conditional(self, history, x1):
        """p(z) [N, h, w, c] given the K previous latents [N, K, h, w, c] and x1."""
        context = None
        if not self.is_top:
            context = x1 if self.reads_x1 else self._unconditional_params(x1, None)[0]
        params = self.encoder(history, context)
        if self.components == 1:
            loc, log_scale = _split_params(params)
            if self.latent_skip:
                loc = loc + history[:, -1]
            return gaussian(loc, log_scale)
        return self._mixture(params, history)

    def initialize_components(self, history, x1, z):
        """Data-dependent init of the mixture's offsets (eager, once): the residuals
        z - mu of M of the given frames, chosen far apart. history, x1, z: the
        conditional frames of the initialisation batch, as `conditional` takes them.
        Offsets that are not all zero count as initialised (residuals of real frames
        never are)."""
        if self.components == 1 or np.any(self.component_offsets.numpy() != 0):
            return
        means = self.conditional(history, x1).components_distribution.mean()
        residuals = (z[:, None] - means)[:, 0]  # all components alike before this
        self.component_offsets.assign(farthest_points(residuals, self.components))

    def split_components(self, history, x1, z, min_share=None):
        """Revives the mixture's dead components (eager): each takes over part of a live
        one's frames. Returns the (live, dead) pairs split; [] if none was dead.

        history, x1, z: conditional frames, as `conditional` takes them (see
        `LatentPrior.conditional_frames`). A component is dead when it is the most
        responsible one for fewer than `min_share` of these frames (default 1 / (16M): a
        healthy component may explain a single future of a single step, such as one of
        stochastic shapes' 8 directions at the first of 4 steps, 1 / (4M) of the frames).
        Each live component k, the one most responsible for the most frames first, is split
        into one dead component j while dead ones remain; then the responsibilities are
        recomputed and it repeats (one live component fills 8 in 3 rounds; a component
        revived here is not taken for dead again).

        Splitting k into j: j gets k's columns of the encoder's head (so k's mean, scale
        and logit), and both logits drop by log 2, which leaves the mixture unchanged; then
        j's offset moves by the residual z - mu_k of one real frame that k fits badly
        (`_split_shift`): of the half of k's frames with the lowest density under k, the
        2-means cluster (of residuals whitened by k's scale) farther from k's mean, and of
        it the frame nearest its centroid. k is unchanged, so a frame it fitted loses at
        most log 2 of density, while j starts on a future that k explains poorly rather
        than on the blurred mean of several (an earlier version moved j by the mean
        residual of the far half of all k's frames: on stochastic shapes, whose first
        step has 8 futures, its copies died within 1,000 steps of training from scratch).
        """
        count = self.components
        if count == 1:
            return []
        min_share = 1 / (16 * count) if min_share is None else min_share
        z = np.asarray(z)
        pairs, revived = [], set()
        for _ in range(count - 1):  # each round revives a component or is the last
            distribution = self.conditional(history, x1)
            responsible = responsibilities(distribution, z)
            share = np.bincount(np.argmax(responsible, axis=1), minlength=count) / len(z)
            dead = [k for k in range(count) if share[k] < min_share and k not in revived]
            if not dead:
                break
            live = sorted((k for k in range(count) if share[k] >= min_share),
                          key=lambda k: -share[k])
            normal = distribution.components_distribution.distribution
            loc, scale = normal.loc.numpy(), normal.scale.numpy()
            split_before = len(pairs)
            for k in live:
                mine = responsible[:, k] > 0.5
                if not dead:
                    break
                if mine.sum() < 2:
                    continue
                shift = _split_shift(z[mine] - loc[mine, k], scale[mine, k])
                if shift is None:
                    continue
                j = dead.pop(0)
                self._copy_component(k, j, shift)
                pairs.append((k, j))
                revived.add(j)
            if len(pairs) == split_before:
                break
        return pairs

    def _copy_component(self, source, target, shift):
        """Component `target` becomes `source` with its offset moved by `shift`; both
        logits drop by log 2 (see `split_components`)."""
        width = 2 * self.latent_shape[-1]
        logit = self.components * width
        head = self.encoder.head
        kernel, bias = head.kernel.numpy(), head.bias.numpy()
        for array in (kernel, bias):
            array[..., target * width:(target + 1) * width] = (
                array[..., source * width:(source + 1) * width])
            array[..., logit + target] = array[..., logit + source]
        # The logit is the logit map's mean over positions: its bias moves it one for one.
        bias[[logit + source, logit + target]] -= np.log(2.0)
        head.kernel.assign(kernel)
        head.bias.assign(bias)
        offsets = self.component_offsets.numpy()
        offsets[target] = offsets[source] + shift
        self.component_offsets.assign(offsets)

    def _mixture(self, params, history):
        count, (height, width, channels) = self.components, self.latent_shape
        gaussians, logit_maps = tf.split(params, [count * 2 * channels, count], axis=-1)
        gaussians = tf.reshape(gaussians, [-1, height, width, count, 2 * channels])
        loc, log_scale = _split_params(tf.transpose(gaussians, [0, 3, 1, 2, 4]))
        loc = loc + self.component_offsets
        if self.latent_skip:
            loc = loc + history[:, -1, None]
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=tf.reduce_mean(logit_maps, axis=[1, 2])),
            gaussian(loc, log_scale))


class LatentPrior(keras.layers.Layer):
    """The priors of all levels, finest first; `levels[-1]` is the top level."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.num_cond_latents = config.num_cond_latents
        self.min_history = config.min_history
        self.beta = config.prior_beta
        shapes = config.latent_shapes
        # (seed, level, step) seeds the flow's steps; _PRIOR_SEED keeps the priors' apart.
        self.levels = [LevelPrior(config, shape, is_top=i == len(shapes) - 1,
                                  seed=seeds.derived(config.seed, _PRIOR_SEED, i),
                                  name=f"level_{i + 1}") for i, shape in enumerate(shapes)]

    def build(self, input_shape=None):
        for level in self.levels:
            level.build()

    def log_prob(self, latents, conditions, first_frame, training=False):
        """log p(z_t | z_<t) of frames t >= first_frame, summed over levels: [B, T - first].

        latents: per level [B, T, h, w, c]; conditions: per level below the top, x1 of
        every frame [B, T, h, w, c]. T may be unknown until run time. All frames of a level
        are scored in one batched call per prior kind. `training`: the same values, with
        the gradient of `fitting_log_prob` at the config's `prior_beta`.
        """
        beta = self.beta if training else 0.0
        total = 0.0
        for level, z in enumerate(latents):
            x1 = conditions[level] if level < len(conditions) else None
            total += self._level_log_prob(self.levels[level], z, x1, first_frame, beta)
        return total

    def _level_log_prob(self, prior, z, x1, first, beta):
        batch = tf.shape(z)[0]
        parts = []
        # Frames before `start` lack the history for the conditional prior.
        start = max(first, self.min_history)
        if first < start:
            z_now = _merge(z[:, first:start])
            x1_now = None if x1 is None else _merge(x1[:, first:start])
            parts.append(fitting_log_prob(prior.unconditional(x1_now, tf.shape(z_now)[0]),
                                          z_now, beta))

        def conditional_log_prob():
            history, x1_now, z_now = self.conditional_frames(z, x1, start)
            if initializing():
                prior.initialize_components(history, x1_now, z_now)
            log_prob = fitting_log_prob(prior.conditional(history, x1_now), z_now, beta)
            return tf.reshape(log_prob, [batch, -1])

        # Convolutions must not see an empty batch: skip the conditional frames when a
        # clip has none (statically if the length is known, else at run time).
        if z.shape[1] is None:
            parts.append(tf.cond(tf.shape(z)[1] > start, conditional_log_prob,
                                 lambda: tf.zeros([batch, 0])))
        elif z.shape[1] > start:
            parts.append(conditional_log_prob())
        return tf.concat([tf.reshape(part, [batch, -1]) for part in parts], axis=1)

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
        """p(z^(level)) of one new frame, for sampling (see `draw`).

        history: [N, K, h, w, c] previous latents of the level; x1: [N, h, w, c] or None at
        the top; conditional: Python or scalar-tensor bool, False while fewer than
        `min_history` predecessors exist (then `history` is ignored).
        """
        prior = self.levels[level]
        if isinstance(conditional, bool):
            return (prior.conditional(history, x1) if conditional
                    else prior.unconditional(x1, tf.shape(history)[0]))
        # Chosen at run time: both branches as M-component parameters, the unconditional
        # Gaussian repeated M times (the same distribution as a mixture).
        count = prior.components
        logits, loc, scale = tf.cond(
            conditional, lambda: _mixture_params(prior.conditional(history, x1), count),
            lambda: _mixture_params(prior.unconditional(x1, tf.shape(history)[0]), count))
        if count == 1:
            return tfd.Independent(tfd.Normal(loc[:, 0], scale[:, 0]),
                                   reinterpreted_batch_ndims=3)
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=logits),
            tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=3))


def _mixture_params(distribution, count):
    """(logits [N, M], loc [N, M, h, w, c], scale [N, M, h, w, c]) of a prior."""
    if isinstance(distribution, tfd.MixtureSameFamily):
        normal = distribution.components_distribution.distribution
        return distribution.mixture_distribution.logits, normal.loc, normal.scale
    normal = distribution.distribution
    loc = tf.repeat(normal.loc[:, None], count, axis=1)
    scale = tf.repeat(normal.scale[:, None], count, axis=1)
    return tf.zeros(tf.shape(loc)[:2]), loc, scale


def farthest_points(points, count):
    """`count` of `points` [N, ...] (N >= 1), each in turn the farthest (Euclidean) from
    those already chosen, starting from the one nearest their mean (with N < count, some
    come twice)."""
    flat = np.reshape(np.asarray(points, np.float64), (len(points), -1))
    chosen = [int(np.argmin(np.sum((flat - flat.mean(0)) ** 2, axis=1)))]
    distances = np.sum((flat - flat[chosen[0]]) ** 2, axis=1)
    while len(chosen) < count:
        chosen.append(int(np.argmax(distances)))
        distances = np.minimum(distances, np.sum((flat - flat[chosen[-1]]) ** 2, axis=1))
    return tf.gather(points, chosen)


def responsibilities(mixture, z):
    """p(component | z) [N, M] of frames z [N, h, w, c] under `mixture`, as numpy."""
    joint = (tf.math.log_softmax(mixture.mixture_distribution.logits, axis=-1)
             + mixture.components_distribution.log_prob(z[:, None]))
    return tf.nn.softmax(joint, axis=-1).numpy()


def _split_shift(residuals, scale):
    """Where a split moves the copy of a component, from the residuals z - mu [N, h, w, c]
    of the frames it explains and its scales there: the residual of a real frame among
    those it fits worst. Of the half with the lowest log-density under it (a component
    that explains both predictable and uncertain frames, such as the continued steps and
    the first step of stochastic shapes, fits the uncertain ones worst), the 2-means half
    farther from its mean (`_far_half`, on residuals whitened by its scale), and of that
    half the frame nearest its centroid: a real frame, so the copy starts on one future
    rather than on the blurred average of several. None when no split is possible."""
    whitened = np.reshape(residuals / scale, (len(residuals), -1))
    log_density = -0.5 * np.sum(whitened ** 2, axis=1) - np.sum(
        np.log(np.reshape(scale, (len(scale), -1))), axis=1)
    worst = log_density <= np.median(log_density)
    if worst.sum() < 2:
        return None
    far = _far_half(whitened[worst])
    if far is None:
        return None
    candidates = whitened[worst][far]
    nearest = np.argmin(np.sum((candidates - candidates.mean(axis=0)) ** 2, axis=1))
    return residuals[worst][far][nearest]


def _far_half(points, iterations=20):
    """2-means of `points` [N, D], started from the sign of their first principal
    component: a bool mask [N] of the cluster whose centroid is farther from 0, or None
    when one cluster is empty (all points alike)."""
    centred = points - points.mean(axis=0)
    labels = centred @ np.linalg.svd(centred, full_matrices=False)[2][0] > 0
    for _ in range(iterations):
        if labels.all() or not labels.any():
            return None
        centroids = [points[labels == side].mean(axis=0) for side in (False, True)]
        nearer_true = (np.sum((points - centroids[1]) ** 2, axis=1)
                       < np.sum((points - centroids[0]) ** 2, axis=1))
        if np.array_equal(nearer_true, labels):
            break
        labels = nearer_true
    if labels.all() or not labels.any():
        return None
    centroids = [points[labels == side].mean(axis=0) for side in (False, True)]
    return labels if np.sum(centroids[1] ** 2) > np.sum(centroids[0] ** 2) else ~labels


def _merge(x):
    """[B, T, ...] -> [B * T, ...], keeping the static trailing shape."""
    return tf.reshape(x, [-1] + x.shape[2:].as_list())
