"""VideoFlow's training loss: bits per pixel of the scored frames, optionally with beta-NLL.

    loss = mean over videos and scored frames t of  -log p(x_t | x_<t) / (ln 2 * H*W*C)

(`bits_per_pixel`; log p is the model's, `VideoFlow.log_prob`), the convention of the
paper and tensor2tensor, so numbers compare with the paper's.

Training may fit the priors with beta-NLL's gradient instead of maximum likelihood's
(`beta_nll`, config field `prior_beta`; Seitzer et al. 2022, "On the pitfalls of
heteroscedastic uncertainty estimation"). Maximum likelihood weights the error of a
prior's mean by 1/sigma^2, so on stochastic shapes the thousands of background dimensions
(sigma ~ 0.06) outweigh the few dozen where the shape is (sigma ~ 8) by about 10^4: a
maximum-likelihood prior learns where the shape is (a wide sigma there) but not what it
looks like. Per dimension of a Gaussian (of each mixture component), with sg() stopping
gradients and w = sg(sigma^(2 beta)):

    value:                      log N(z; mu, sigma)                      (exact)
    gradient through z:         d/dz log N(z; mu, sigma)                 (exact)
    gradient through mu, sigma: w * d/d(mu, sigma) log N(z; mu, sigma)

so the flow is fitted by maximum likelihood through the scored latents z while each prior
dimension's mean gets the error (z - mu) / sigma^(2 - 2 beta): with beta = 0.5, an
uncertain dimension pulls on the mean as hard as a precise one. The weight w also scales
everything behind mu and sigma: the prior network's weights and the gradient that reaches
the flow through the prior's inputs (the earlier frames' latents and the coarser levels
x1), which is therefore not maximum likelihood's. A mixture combines its components'
log-densities exactly (its weights' gradient is exact too), so component k's mean gets its
responsibility times the same error. The loss's value, and every reported likelihood,
stay exact.

Training may also cap each video's pull (`capped_mean`, config field `video_bpp_cap`): a
video scoring b > cap bits per pixel counts in the loss as cap, with its gradient scaled
by cap / b, so it still points where that video needs the model to go, with the weight of
a video at the cap:

    training loss = mean over videos v of  b_v * sg(cap / max(b_v, cap))

A prior that has grown over-confident somewhere can score one rare video at millions of
bits per pixel; without the cap that video's gradient is all the (clipped) update, and a
few such updates in a row can throw the whole model off (docs/shapes_64.md). Reported
bits per pixel stay exact.
"""
import functools
import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

# What a uniform guess over the 256 values of a subpixel scores, in bits per pixel: a model
# scoring worse has lost what it learnt.
UNIFORM_BPP = 8.0


def bits_per_pixel(log_likelihood, image_shape):
    """-log_likelihood (nats, per frame) / (ln 2 * H*W*C): bits per subpixel."""
    return -log_likelihood / (math.log(2.0) * math.prod(image_shape))


def capped_mean(bpp, cap):
    """The training loss of per-video bits per pixel `bpp` [B]: their mean, where a video
    above `cap` counts as `cap` and pulls with its gradient scaled by cap / bpp (module
    docstring)."""
    return tf.reduce_mean(bpp * tf.stop_gradient(cap / tf.maximum(bpp, cap)))


def beta_nll(beta):
    """The prior's score for training at `prior_beta` = beta, as `LatentPrior.log_prob`
    takes it: None (each distribution's log_prob) at beta = 0, maximum likelihood."""
    return None if beta == 0 else functools.partial(beta_nll_log_prob, beta=beta)


def beta_nll_log_prob(distribution, z, beta):
    """distribution.log_prob(z) with beta-NLL's gradient (module docstring), for a
    diagonal Gaussian over [..., h, w, c] events or a mixture of them."""
    if not isinstance(distribution, tfd.MixtureSameFamily):
        return _gaussian_beta_nll(distribution.distribution, z, beta)
    components = _gaussian_beta_nll(distribution.components_distribution.distribution,
                                    z[:, None], beta)
    log_weights = tf.math.log_softmax(distribution.mixture_distribution.logits, axis=-1)
    return tf.reduce_logsumexp(log_weights + components, axis=-1)


def _gaussian_beta_nll(normal, z, beta):
    """`beta_nll_log_prob` of tfd.Normal `normal` over [..., h, w, c] events."""
    loc, scale = normal.loc, normal.scale
    # The exact value with the gradient through z only, plus a term that is zero in value
    # and carries the weighted gradient through mu and sigma.
    through_z = tfd.Normal(tf.stop_gradient(loc), tf.stop_gradient(scale)).log_prob(z)
    through_prior = tf.stop_gradient(scale ** (2.0 * beta)) * normal.log_prob(
        tf.stop_gradient(z))
    per_dimension = through_z + (through_prior - tf.stop_gradient(through_prior))
    return tf.reduce_sum(per_dimension, axis=[-3, -2, -1])
