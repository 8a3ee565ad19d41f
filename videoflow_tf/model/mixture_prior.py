"""A mixture-of-Gaussians top prior, its initialisation from data and its revival.

The paper's top-level conditional prior is one Gaussian (`prior.LevelPrior`). This one is
a mixture of M Gaussians over the whole top latent (`tfd.MixtureSameFamily`):

    p(z_t) = sum_k w_k N(z_t; mu_k + o_k (+ z_{t-1} with the skip), sigma_k),
    (mu_k, log sigma_k, logit map_k) = NN(z_{t-K..t-1}),   w = softmax(mean of the logit maps),

o_k a learned offset per component. A draw first picks a component, so one frame's whole
coarse layout follows one of M futures (a unimodal Gaussian can only spread around their
average). The mixture weights are not tempered: at temperature 0 a draw is the mean of a
randomly picked component.

Initialisation (`initialize`): components that start alike get alike gradients and never
part, and random offsets make the one with the smallest offsets win everywhere, so the
offsets start as the residuals z - mu of M frames of the initialisation batch chosen far
apart (`farthest_points`): each component starts at a different real future.

Revival (`split_components`, run during training by `callbacks.ReviveComponents`):
components that still die (lose all their frames to others) are revived by splitting
live ones, each copy starting on a real frame its source fits badly.
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.model.optim import slot_variables
from videoflow_tf.model.prior import LevelPrior, gaussian, split_params

tfd = tfp.distributions


class MixtureTopPrior(LevelPrior):
    """The top level's prior with an M-component mixture as its conditional prior (the
    unconditional prior stays a Gaussian). Arguments as `LevelPrior`'s, plus
    `components` (M >= 2); the encoder gives every component 2c parameter channels and one
    logit map."""

    def __init__(self, latent_shape, is_top=True, *, components, **kwargs):
        if not is_top:
            raise ValueError("a mixture prior is for the top level only")
        self.components = int(components)
        outputs = self.components * (2 * latent_shape[-1] + 1)
        super().__init__(latent_shape, is_top, outputs=outputs, **kwargs)

    def build(self, input_shape=None):
        super().build(input_shape)
        self.component_offsets = self.add_weight(
            shape=(self.components,) + self.latent_shape, initializer="zeros",
            name="component_offsets")

    def conditional(self, history, x1):
        """The mixture p(z) [N, h, w, c] given the K previous latents [N, K, h, w, c]."""
        count, (height, width, channels) = self.components, self.latent_shape
        gaussians, logit_maps = tf.split(self._encode(history, x1),
                                         [count * 2 * channels, count], axis=-1)
        gaussians = tf.reshape(gaussians, [-1, height, width, count, 2 * channels])
        loc, log_scale = split_params(tf.transpose(gaussians, [0, 3, 1, 2, 4]))
        loc = loc + self.component_offsets
        if self.latent_skip:
            loc = loc + history[:, -1, None]
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=tf.reduce_mean(logit_maps, axis=[1, 2])),
            gaussian(loc, log_scale))

    def either(self, conditional, history, x1):
        """`LevelPrior.either` as a mixture: the unconditional Gaussian is repeated M times
        with equal weights (the same distribution)."""
        logits, loc, scale = tf.cond(
            conditional, lambda: self._mixture_params(self.conditional(history, x1)),
            lambda: self._mixture_params(self.unconditional(x1, tf.shape(history)[0])))
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=logits),
            tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=3))

    def _mixture_params(self, distribution):
        """(logits [N, M], loc [N, M, h, w, c], scale [N, M, h, w, c]) of either prior."""
        if isinstance(distribution, tfd.MixtureSameFamily):
            normal = distribution.components_distribution.distribution
            return distribution.mixture_distribution.logits, normal.loc, normal.scale
        normal = distribution.distribution
        loc = tf.repeat(normal.loc[:, None], self.components, axis=1)
        scale = tf.repeat(normal.scale[:, None], self.components, axis=1)
        return tf.zeros(tf.shape(loc)[:2]), loc, scale

    @staticmethod
    def draw(distribution, temperature, normal, uniform):
        """`LevelPrior.draw` from a mixture: U(0, 1) `uniform` [N] picks each draw's
        component by inverting the weights' CDF, then its Gaussian is drawn from."""
        weights = distribution.mixture_distribution.probs_parameter()
        cdf = tf.math.cumsum(weights, axis=-1)
        count = tf.shape(weights)[-1]
        component = tf.minimum(tf.reduce_sum(tf.cast(cdf < uniform[:, None], tf.int32), -1),
                               count - 1)
        normal_dist = distribution.components_distribution.distribution
        loc = tf.gather(normal_dist.loc, component, batch_dims=1)
        scale = tf.gather(normal_dist.scale, component, batch_dims=1)
        return loc + scale * temperature * normal

    def initialize(self, history, x1, z):
        """`LevelPrior.initialize`, then the offsets (once): the residuals z - mu of M of
        the given frames, chosen far apart. Offsets that are not all zero count as
        initialised (residuals of real frames never are)."""
        super().initialize(history, x1, z)
        if np.any(self.component_offsets.numpy() != 0):
            return
        means = self.conditional(history, x1).components_distribution.mean()
        residuals = (z[:, None] - means)[:, 0]  # all components alike before this
        self.component_offsets.assign(farthest_points(residuals, self.components))

    def split_components(self, history, x1, z, min_share=None, optimizer=None):
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

        `optimizer` (the one training the model, if any): its state of j's weights
        becomes k's too. A dead component's weights get exactly zero gradient, so Adam's
        moments of them are zero, and its first hundred steps on zero moments are 2 to 5
        times its usual step (the bias correction is long spent): the copies are thrown
        out again within a few steps.
        """
        count = self.components
        min_share = 1 / (16 * count) if min_share is None else min_share
        z = np.asarray(z)
        pairs, revived = [], set()
        for _ in range(count - 1):  # each round revives a component or is the last
            distribution = self.conditional(history, x1)
            responsible = responsibilities(distribution, z)
            share = np.bincount(np.argmax(responsible, axis=1), minlength=count) / len(z)
            dead = [k for k in range(count) if share[k] < min_share and k not in revived]
            live = sorted((k for k in range(count) if share[k] >= min_share),
                          key=lambda k: -share[k])
            split = self._split_round(distribution, responsible, z, live, dead, optimizer)
            pairs += split
            revived.update(j for _, j in split)
            if not split:
                break
        return pairs

    def _split_round(self, distribution, responsible, z, live, dead, optimizer):
        """One round of `split_components`: each live component in turn splits into the
        next dead one while dead ones remain. Returns the (live, dead) pairs split."""
        normal = distribution.components_distribution.distribution
        loc, scale = normal.loc.numpy(), normal.scale.numpy()
        pairs = []
        for k in live:
            mine = responsible[:, k] > 0.5
            if len(pairs) == len(dead) or mine.sum() < 2:
                continue
            shift = _split_shift(z[mine] - loc[mine, k], scale[mine, k])
            if shift is not None:
                j = dead[len(pairs)]
                self._copy_component(k, j, shift, optimizer)
                pairs.append((k, j))
        return pairs

    def _copy_component(self, source, target, shift, optimizer=None):
        """Component `target` becomes `source` with its offset moved by `shift`; both
        logits drop by log 2; the optimizer's state of its weights becomes the source's
        (see `split_components`)."""
        width = 2 * self.latent_shape[-1]
        logit = self.components * width
        head = self.encoder.head
        for variable in (head.kernel, head.bias):
            for state in [variable] + slot_variables(optimizer, variable):
                array = state.numpy()
                array[..., target * width:(target + 1) * width] = (
                    array[..., source * width:(source + 1) * width])
                array[..., logit + target] = array[..., logit + source]
                if state is head.bias:
                    # The logit is the logit map's mean over positions: its bias moves it
                    # one for one.
                    array[[logit + source, logit + target]] -= np.log(2.0)
                state.assign(array)
        for state in [self.component_offsets] + slot_variables(optimizer,
                                                               self.component_offsets):
            array = state.numpy()
            array[target] = array[source] + (shift if state is self.component_offsets else 0)
            state.assign(array)


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
