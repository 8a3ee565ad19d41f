"""Sampling and scoring agree: what `sample` draws is what `log_prob` scores."""
import warnings

import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import tensorflow as tf

from helpers import TINY, moving_squares, noise_videos, perturbed_model
from videoflow_tf.model import pixels

VARIANTS = {
    "tiny": TINY,
    "mixture, no skip": TINY.replace(top_prior_components=3, latent_skip=False),
    "padded one-frame context": TINY.replace(num_context_frames=1, pad_history=True),
    "affine, three frames of history": TINY.replace(coupling="affine", num_cond_latents=3),
    "variational dequantisation": TINY.replace(dequantization="variational"),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def model(request):
    # Perturbed enough to make every step non-trivial, little enough that the samples of
    # an untrained model stay finite.
    return perturbed_model(VARIANTS[request.param], scale=0.02)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_encoding_the_sampled_values_gives_back_the_drawn_latents(model, temperature):
    context = moving_squares(3, model.config.num_context_frames)
    samples = model.sample_details(context, 3, temperature=temperature, seed=5)
    again, _, _ = model.encode_values(samples.values)
    for z, drawn in zip(again, samples.latents):
        scale = np.abs(drawn).max()
        np.testing.assert_allclose(z, drawn, atol=1e-4 * max(scale, 1.0))


@pytest.mark.parametrize("temperature", [1.0, 0.6, 0.0])
def test_log_density_of_samples_is_their_draws_density_plus_the_log_det(model, temperature):
    """log p(x_t | x_<t) computed by encoding (log_density, as log_prob computes it) equals
    the density of the draws under the priors that drew them plus log|det dz/dx| from the
    decoding pass: two code paths for the same number."""
    context = moving_squares(3, model.config.num_context_frames)
    samples = model.sample_details(context, 3, temperature=temperature, seed=6)
    clip = tf.concat([samples.context_values, samples.values], axis=1)
    scored = model.log_density(clip, first=samples.context_values.shape[1])
    expected = samples.log_prob + samples.log_det
    np.testing.assert_allclose(scored, expected, rtol=1e-4, atol=1e-2)
    assert np.all(np.isfinite(expected))


def test_samples_at_temperature_one_score_like_real_clips():
    """A model's own samples are typical for it: their continuous log-density is of the
    order of real clips' (here an untrained model, so both are poor)."""
    model = perturbed_model()
    real = moving_squares(4, 4)
    samples = model.sample_details(real[:, :2], 2, temperature=1.0, seed=1)
    clip = tf.concat([samples.context_values, samples.values], axis=1)
    sampled_nats = model.log_density(clip, first=2).numpy().mean()
    real_nats = model.log_density(pixels.bin_centres(real), first=2).numpy().mean()
    assert sampled_nats > real_nats - 0.5 * abs(real_nats)


def test_the_context_is_dequantised_within_its_bins():
    model = perturbed_model()
    context = noise_videos(2, 2)
    for temperature in (1.0, 0.3):
        values = model.sample_details(context, 1, temperature=temperature, seed=2).context_values
        offsets = (values - pixels.lower_edges(context)).numpy()
        assert offsets.min() >= 0.0 and offsets.max() < pixels.BIN_WIDTH
        assert offsets.std() > 0.1 * temperature * pixels.BIN_WIDTH
    centred = model.sample_details(context, 1, temperature=0.0, seed=2).context_values
    np.testing.assert_allclose(centred, pixels.bin_centres(context), atol=1e-7)


@pytest.mark.parametrize("clip", ["noise", "black", "white", "own samples"])
def test_log_prob_is_finite_for_every_valid_clip(model, clip):
    config = model.config
    frames = config.num_context_frames + 2
    if clip == "noise":
        video = noise_videos(3, frames)
    elif clip in ("black", "white"):
        video = np.full((2, frames, 8, 8, 3), 0 if clip == "black" else 255, np.uint8)
    else:
        context = moving_squares(4, config.num_context_frames)
        video = np.concatenate([context, model.sample(context, 2, temperature=1.0, seed=3)], 1)
    assert np.all(np.isfinite(model.log_prob(video, seed=0)))


def test_values_outside_the_pixel_range_are_counted():
    model = perturbed_model(scale=0.02)
    context = moving_squares(3, 2)
    samples = model.sample_details(context, 2, temperature=3.0, seed=4)
    values = samples.values.numpy()
    assert np.all(np.isfinite(values))
    levels = np.round((values + 0.5) * 255 - 255 / 512)
    expected = ((levels < 0) | (levels > 255)).sum(axis=(1, 2, 3, 4))
    assert 0 < expected.sum() < values.size
    np.testing.assert_array_equal(samples.invalid, expected)
    np.testing.assert_array_equal(samples.frames, pixels.to_uint8(values))


def test_nan_samples_warn_and_are_counted():
    model = vf.VideoFlow(TINY)
    model.initialize(moving_squares())
    top = model.prior.levels[-1].encoder.head
    top.bias.assign(tf.fill(top.bias.shape, np.nan))
    context = moving_squares(2, 2)
    with pytest.warns(RuntimeWarning, match="NaN"):
        frames = model.sample(context, 1, seed=0)
    assert frames.shape == (2, 1, 8, 8, 3)
    assert np.all(model.sample_details(context, 1, seed=0).invalid == 8 * 8 * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vf.VideoFlow(TINY).sample(context, 1, seed=0)  # a sound model does not warn
