"""The training loss (videoflow_tf/model/loss.py): bits per pixel, and beta-NLL's gradient."""
import math

import numpy as np
import pytest

from helpers import make_prior, random_latents, randomize

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.model import loss
from videoflow_tf.model.loss import beta_nll_log_prob
from videoflow_tf.model.prior import gaussian


def test_bits_per_pixel_is_nats_per_subpixel_in_bits():
    np.testing.assert_allclose(loss.bits_per_pixel(-math.log(2.0) * 8 * 8 * 3, (8, 8, 3)), 1.0)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_beta_nll_keeps_value_and_latent_gradient_and_weights_the_priors(beta):
    rng = np.random.default_rng(3)
    loc, log_scale, z = (tf.Variable(rng.normal(size=(2, 3, 3, 2)), dtype=tf.float32)
                         for _ in range(3))
    with tf.GradientTape(persistent=True) as tape:
        exact = gaussian(loc, log_scale).log_prob(z)
        fitted = beta_nll_log_prob(gaussian(loc, log_scale), z, beta)
    np.testing.assert_allclose(fitted, exact, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(fitted, z), tape.gradient(exact, z), rtol=1e-5)
    # Per dimension, the prior's gradients are the exact ones times sigma^(2 beta).
    weight = np.exp(2 * beta * log_scale.numpy())
    for parameter in (loc, log_scale):
        np.testing.assert_allclose(tape.gradient(fitted, parameter),
                                   weight * tape.gradient(exact, parameter), rtol=1e-5)


def test_beta_nll_weights_each_mixture_components_gradient():
    rng = np.random.default_rng(4)
    loc, log_scale = (tf.Variable(rng.normal(size=(2, 3, 2, 2, 2)), dtype=tf.float32)
                      for _ in range(2))
    logits = tf.Variable(rng.normal(size=(2, 3)), dtype=tf.float32)
    z = tf.Variable(rng.normal(size=(2, 2, 2, 2)), dtype=tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        mixture = tfp.distributions.MixtureSameFamily(
            tfp.distributions.Categorical(logits=logits), gaussian(loc, log_scale))
        exact = mixture.log_prob(z)
        fitted = beta_nll_log_prob(mixture, z, 0.5)
    np.testing.assert_allclose(fitted, exact, rtol=1e-6)
    for variable in (z, logits):
        np.testing.assert_allclose(tape.gradient(fitted, variable),
                                   tape.gradient(exact, variable), rtol=1e-5, atol=1e-7)
    weight = np.exp(log_scale.numpy())  # sigma^(2 beta) at beta = 0.5
    for parameter in (loc, log_scale):
        np.testing.assert_allclose(tape.gradient(fitted, parameter),
                                   weight * tape.gradient(exact, parameter), rtol=1e-5,
                                   atol=1e-7)


def test_beta_nll_scores_every_level_of_the_prior():
    """As the prior's `score`, beta-NLL keeps every level's value and changes the gradient
    of every level's network (a Gaussian's and a mixture's); beta = 0 is the plain score."""
    assert loss.beta_nll(0.0) is None
    prior = randomize(make_prior(components=3))
    latents, conditions = random_latents(2, 3, seed=5)
    with tf.GradientTape(persistent=True) as tape:
        scored = prior.log_prob(latents, conditions, 1)
        trained = prior.log_prob(latents, conditions, 1, score=loss.beta_nll(0.5))
    np.testing.assert_allclose(trained, scored, rtol=1e-6)
    for level in (prior.levels[0], prior.levels[-1]):
        kernel = level.encoder.head.trainable_variables[0]
        assert not np.allclose(tape.gradient(trained, kernel), tape.gradient(scored, kernel),
                               rtol=1e-3)


def test_capped_mean_counts_a_video_above_the_cap_at_the_cap_in_its_own_direction():
    theta = tf.Variable(1.0)
    with tf.GradientTape(persistent=True) as tape:
        bpp = tf.stack([10.0 * theta, theta, -2.0 * theta])  # one above the cap of 5
        capped = loss.capped_mean(bpp, 5.0)
        plain = tf.reduce_mean(bpp)
    assert float(capped) == pytest.approx((5.0 + 1.0 - 2.0) / 3)
    assert float(tape.gradient(capped, theta)) == pytest.approx((10.0 * 0.5 + 1.0 - 2.0) / 3)
    assert float(tape.gradient(plain, theta)) == pytest.approx((10.0 + 1.0 - 2.0) / 3)
