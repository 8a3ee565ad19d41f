"""Variational dequantisation: q(u | x) is the density of its own draws, keeps every value
in its pixel's bin, starts as uniform dequantisation, and enters the bound as -log q."""
import math

import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import tensorflow as tf

from helpers import TINY, moving_squares, noise_videos, perturb
from videoflow_tf.model import pixels, sampling
from videoflow_tf.model.dequantization import VariationalDequantizer

VARIATIONAL = TINY.replace(dequantization="variational")


def dequantizer(scale, seed=0, size=4):
    """A VariationalDequantizer whose every weight (its zero head too) is moved off its
    initialisation by `scale` standard normals."""
    layer = VariationalDequantizer(seed=seed)
    layer.build((None, size, size, 3))
    return perturb(layer, seed=seed, scale=scale)


@pytest.mark.parametrize("scale", [0.05, 0.15])
def test_log_q_is_the_density_of_the_draws_by_finite_differences(scale):
    """Per subpixel, u(n) maps base noise n ~ U(0, 1) to u, so q(u) = dn/du. Vary one
    channel's noise, the others fixed: log q (up to the fixed channels' constant) against
    the brute-force -log(du/dn) by central differences of the draws."""
    layer = dequantizer(scale)
    video = noise_videos(1, 1, seed=4, size=4)
    video[0, 0, 1, 2] = 128  # values near 0, where float32 resolves u finely
    points, h = np.linspace(0.05, 0.95, 19), 1e-3
    for channel in range(3):
        grid = np.concatenate([points - h, points + h, points])
        noise = np.full((len(grid), 1, 4, 4, 3), 0.5, np.float32)
        noise[:, 0, 1, 2, channel] = grid
        values, log_q = layer(tf.constant(video), tf.constant(noise))
        u = (values.numpy()[:, 0, 1, 2, channel].astype(np.float64)
             - float(pixels.lower_edges(video[0, 0, 1, 2, channel]))) / pixels.BIN_WIDTH
        below, above, _ = np.split(u, 3)
        brute = -np.log((above - below) / (2 * h))
        log_q = np.split(log_q.numpy()[:, 0].astype(np.float64), 3)[2]
        np.testing.assert_allclose(log_q - log_q[9], brute - brute[9], atol=1e-3)
        assert np.ptp(log_q) > 0.1  # the density is not flat: the check has teeth


def test_values_stay_in_their_pixels_bins_even_for_extreme_q():
    layer = dequantizer(30.0)
    video = noise_videos(2, 3, seed=1, size=4)
    for noise in (np.zeros, np.ones, lambda s: np.random.default_rng(0).random(s)):
        values, log_q = layer(tf.constant(video), tf.constant(noise(video.shape), tf.float32))
        offsets = (values - pixels.lower_edges(video)).numpy()
        assert offsets.min() >= 0.0 and offsets.max() <= pixels.BIN_WIDTH
        np.testing.assert_array_equal(pixels.to_uint8(values), video)
        assert np.all(np.isfinite(log_q))


def test_variational_starts_as_uniform_dequantisation():
    """The head starts at zero, so q = U(0, 1): log q = 0 and the same values, so the
    same log_prob as a uniform model with the same flow and prior."""
    uniform, variational = vf.VideoFlow(TINY), vf.VideoFlow(VARIATIONAL)
    uniform.initialize(moving_squares())
    perturb(uniform, seed=2, scale=0.05)
    variational.initialize(moving_squares())
    for target, source in zip(variational.flow.weights + variational.prior.weights,
                              uniform.flow.weights + uniform.prior.weights):
        target.assign(source)
    video = noise_videos(3, 4, seed=5)
    noise = tf.random.stateless_uniform(video.shape, [1, 2])
    values, log_q = variational.dequantizer(video, noise)
    expected, _ = uniform.dequantizer(video, noise)
    np.testing.assert_allclose(values, expected, atol=1e-7)
    np.testing.assert_allclose(log_q, 0.0, atol=1e-3)
    np.testing.assert_allclose(variational.log_prob(video, seed=3), uniform.log_prob(video, seed=3),
                               rtol=1e-5)


def test_log_prob_subtracts_log_q_of_the_scored_frames():
    model = vf.VideoFlow(VARIATIONAL)
    model.initialize(moving_squares())
    perturb(model, seed=3, scale=0.05)
    video = noise_videos(2, 4, seed=6)
    noise = tf.random.stateless_uniform(video.shape[1:], sampling.seed_tensor(7))
    values, log_q = model.dequantizer(video, noise)
    assert np.all(np.abs(log_q[:, CONTEXT_FRAMES:]) > 1.0)  # q is far from uniform here
    expected = (tf.reduce_sum(model.log_density(values), axis=1)
                - tf.reduce_sum(log_q[:, CONTEXT_FRAMES:], axis=1)
                - 2 * math.prod(TINY.image_shape) * math.log(256.0))
    np.testing.assert_allclose(model.log_prob(video, seed=7), expected, rtol=1e-6)


CONTEXT_FRAMES = TINY.num_context_frames


def test_training_fits_q_and_a_keras_file_keeps_it(tmp_path):
    model = vf.VideoFlow(VARIATIONAL)
    videos = moving_squares(8, 3)
    before = [w.numpy() for w in model.dequantizer.trainable_weights]
    model.fit(videos, batch_size=4, epochs=2, verbose=0)
    assert all(not np.array_equal(w.numpy(), b)
               for w, b in zip(model.dequantizer.trainable_weights, before))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.config.dequantization == "variational"
    np.testing.assert_array_equal(loaded.log_prob(videos, seed=1), model.log_prob(videos, seed=1))


def test_samples_condition_on_q_dequantised_context():
    """At temperature 0 the context's values are q's centres, lower edge + sigmoid(mu)
    of a bin; at 1 they spread within the bins."""
    model = vf.VideoFlow(VARIATIONAL)
    model.initialize(moving_squares())
    perturb(model.dequantizer, seed=4, scale=0.5)
    context = noise_videos(2, CONTEXT_FRAMES, seed=8)
    loc, _ = model.dequantizer.logistic(context)
    centred = model.sample_details(context, 1, temperature=0.0, seed=2).context_values
    np.testing.assert_allclose(
        centred, pixels.lower_edges(context) + pixels.BIN_WIDTH * tf.sigmoid(loc), atol=1e-7)
    spread = model.sample_details(context, 1, temperature=1.0, seed=2).context_values
    np.testing.assert_array_equal(pixels.to_uint8(spread), context)
    assert np.abs(spread - centred).max() > 0.05 * pixels.BIN_WIDTH
