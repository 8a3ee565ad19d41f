"""The paper's conditional Gaussian prior (videoflow_tf/model/prior.py) and its latent encoders,
built from explicit arguments (helpers.make_prior)."""
import dataclasses

import numpy as np
import pytest

from helpers import PRIOR_LATENT_SHAPES, make_prior, random_latents, randomize

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import tensorflow as tf

from videoflow_tf.config import LATENT_ENCODERS
from videoflow_tf.model.latent_encoders import CausalConv3D, EncoderSpec, fitting_dilations
from videoflow_tf.model.prior import LOG_SCALE_LIMIT, LatentPrior


def test_dilations_are_those_that_fit():
    assert fitting_dilations(4, True) == [1]
    assert fitting_dilations(8, True) == [1, 2]
    assert fitting_dilations(9, True) == [1, 2, 4]
    assert fitting_dilations(32, False) == [1]


@pytest.mark.parametrize("frames", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_3d_conv_is_the_sum_of_its_delayed_taps(frames, dilation):
    """y_t = b + sum_{j <= t} W_j * x_{t-j}, computed frame by frame as a reference."""
    conv = CausalConv3D(4, (2, 3, 3), dilation=dilation)
    x = tf.random.normal([2, frames, 8, 8, 3], seed=5)
    conv.build(x.shape)
    randomize(conv)
    taps = tf.split(conv.conv.kernel, 2, axis=-1)  # tap j: output channels j*4 to j*4 + 3
    for t in range(frames):
        expected = conv.bias + sum(
            tf.nn.conv2d(x[:, t - j], taps[j], 1, "SAME", dilations=dilation)
            for j in range(min(2, t + 1)))
        np.testing.assert_allclose(conv(x)[:, t], expected, atol=1e-5)


def test_3d_conv_is_causal_in_time():
    conv = CausalConv3D(3, (2, 3, 3), dilation=2)
    x = tf.random.normal([2, 4, 8, 8, 5], seed=1)
    conv.build(x.shape)
    randomize(conv)
    changed = tf.concat([x[:, :2], x[:, 2:] + 1.0], axis=1)
    y, y_changed = conv(x), conv(changed)
    assert y.shape == x.shape[:-1] + (3,)
    np.testing.assert_array_equal(y[:, :2], y_changed[:, :2])
    assert not np.allclose(y[:, 2:], y_changed[:, 2:])


@pytest.mark.parametrize("encoder", LATENT_ENCODERS)
@pytest.mark.parametrize("skip", [False, True])
def test_every_prior_starts_as_standard_normal(encoder, skip):
    prior = make_prior(encoder=encoder, latent_skip=skip)
    latents, conditions = random_latents(2, 3, seed=2)
    for level, z in enumerate(latents):
        x1 = conditions[level][:, -1] if level < len(conditions) else None
        history = z[:, :2]
        conditional = prior.distribution(level, history, x1, conditional=True)
        unconditional = prior.distribution(level, history, x1, conditional=False)
        expected_loc = history[:, -1] if skip else tf.zeros_like(history[:, -1])
        np.testing.assert_array_equal(conditional.mean(), expected_loc)
        np.testing.assert_array_equal(conditional.stddev(), tf.ones_like(expected_loc))
        np.testing.assert_array_equal(unconditional.mean(), tf.zeros_like(expected_loc))
        np.testing.assert_array_equal(unconditional.stddev(), tf.ones_like(expected_loc))


@pytest.mark.parametrize("first_frame", [0, 1, 2, 3])
def test_batched_log_prob_equals_frame_by_frame(first_frame):
    """The windowed, batched scoring agrees with scoring each frame from its own history,
    and frames with fewer than num_cond_latents (2) predecessors use the unconditional prior."""
    prior = make_prior(latent_skip=True)
    randomize(prior)
    latents, conditions = random_latents(2, 5, seed=3)
    batched = prior.log_prob(latents, conditions, first_frame)
    assert batched.shape == (2, 5 - first_frame)
    k = 2  # num_cond_latents
    for t in range(first_frame, 5):
        expected = 0.0
        for level, z in enumerate(latents):
            x1 = conditions[level][:, t] if level < len(conditions) else None
            history = z[:, max(t - k, 0):t] if t >= k else tf.zeros_like(z[:, :k])
            dist = prior.distribution(level, history, x1, conditional=t >= k)
            expected += dist.log_prob(z[:, t])
        np.testing.assert_allclose(batched[:, t - first_frame], expected, rtol=1e-5)


@pytest.mark.parametrize("first_frame", [0, 1, 2])
def test_padded_history_repeats_the_oldest_latent(first_frame):
    """With pad_history, only frame 0 uses the unconditional prior; frame t < K is scored
    by the conditional prior of its history padded in front with copies of frame 0."""
    prior = make_prior(latent_skip=True, pad_history=True, num_cond_latents=3)
    randomize(prior)
    assert prior.min_history == 1
    latents, conditions = random_latents(2, 5, seed=8)
    batched = prior.log_prob(latents, conditions, first_frame)
    for t in range(first_frame, 5):
        expected = 0.0
        for level, z in enumerate(latents):
            x1 = conditions[level][:, t] if level < len(conditions) else None
            padded = tf.concat([tf.repeat(z[:, :1], max(3 - t, 0), axis=1), z[:, :t]], axis=1)
            dist = prior.distribution(level, padded[:, -3:] if t else z[:, :3], x1,
                                      conditional=t >= 1)
            expected += dist.log_prob(z[:, t])
        np.testing.assert_allclose(batched[:, t - first_frame], expected, rtol=1e-5)
    # The paper's rule scores frames 1 and 2 differently (unconditionally).
    unpadded = make_prior(latent_skip=True, num_cond_latents=3)
    unpadded.set_weights(prior.get_weights())
    other = unpadded.log_prob(latents, conditions, first_frame)
    np.testing.assert_allclose(other[:, 3 - first_frame:], batched[:, 3 - first_frame:],
                               rtol=1e-5)
    for t in range(max(first_frame, 1), 3):
        assert not np.allclose(other[:, t - first_frame], batched[:, t - first_frame])


def test_one_encoder_spec_per_level_or_one_for_all():
    spec = EncoderSpec("conv_net", 8, 1, True, "relu")
    wide = dataclasses.replace(spec, width=16)
    prior = LatentPrior(PRIOR_LATENT_SHAPES, 1, encoder=[wide, spec])
    prior.build()
    same = LatentPrior(PRIOR_LATENT_SHAPES, 1, encoder=spec)
    same.build()

    def hidden(level):  # the first residual block's output channels
        return level.encoder.weights[0].shape[-1]
    assert [hidden(level) for level in prior.levels] == [16, 8]
    assert [hidden(level) for level in same.levels] == [8, 8]
    with pytest.raises(ValueError, match="got 3 encoder specs for 2 levels"):
        LatentPrior(PRIOR_LATENT_SHAPES, 1, encoder=[spec] * 3)


def test_log_prob_is_causal():
    prior = make_prior()
    randomize(prior)
    latents, conditions = random_latents(2, 5, seed=4)
    before = prior.log_prob(latents, conditions, 0)
    changed = [tf.concat([z[:, :3], z[:, 3:] + 0.5], axis=1) for z in latents]
    after = prior.log_prob(changed, conditions, 0)
    np.testing.assert_array_equal(before[:, :3], after[:, :3])
    assert np.all(np.abs(before[:, 3:] - after[:, 3:]) > 1e-3)


def test_log_prob_with_unknown_batch_and_length_in_tf_function():
    prior = make_prior()
    randomize(prior)
    latents, conditions = random_latents(3, 4, seed=5)
    signature = [[tf.TensorSpec([None, None] + list(s)) for s in PRIOR_LATENT_SHAPES],
                 [tf.TensorSpec([None, None] + list(s)) for s in PRIOR_LATENT_SHAPES[:-1]]]
    traced = tf.function(lambda z, c: prior.log_prob(z, c, 1), input_signature=signature)
    np.testing.assert_allclose(traced(latents, conditions), prior.log_prob(latents, conditions, 1),
                               rtol=1e-5)
    short = traced([z[:, :2] for z in latents], [c[:, :2] for c in conditions])
    assert short.shape == (3, 1)


def test_temperature_scales_every_standard_deviation_of_a_draw():
    prior = make_prior()
    randomize(prior)
    latents, conditions = random_latents(2, 3, seed=6)
    for level, z in enumerate(latents):
        x1 = conditions[level][:, -1] if level < len(conditions) else None
        dist = prior.distribution(level, z[:, :2], x1, conditional=True)
        normal = tf.random.stateless_normal(tf.shape(z[:, 0]), (1, 2))
        uniform = tf.zeros([2])
        draw = prior.levels[level].draw
        warm, cool, cold = (draw(dist, t, normal, uniform) for t in (1.0, 0.5, 0.0))
        np.testing.assert_allclose(warm, dist.mean() + dist.stddev() * normal, rtol=1e-6)
        np.testing.assert_allclose(cool - dist.mean(), 0.5 * (warm - dist.mean()),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(cold, dist.mean())



def test_log_scales_are_clipped_so_densities_stay_finite():
    prior = make_prior()
    top = prior.levels[-1]
    top.top_params.assign(tf.fill(top.top_params.shape, -1000.0))  # log sigma -1000
    latents, conditions = random_latents(2, 3, seed=12)
    log_prob = prior.log_prob([z * 1e3 for z in latents], conditions, 0)
    assert np.all(np.isfinite(log_prob))
    dist = prior.distribution(len(latents) - 1, latents[-1][:, :2], None, conditional=False)
    np.testing.assert_allclose(dist.stddev(), np.exp(-LOG_SCALE_LIMIT), rtol=1e-5)


def test_conditional_flag_may_be_a_tensor():
    prior = make_prior()
    randomize(prior)
    latents, conditions = random_latents(2, 3, seed=7)
    z, x1 = latents[0], conditions[0][:, -1]
    for flag in (True, False):
        eager = prior.distribution(0, z[:, :2], x1, conditional=flag).mean()
        traced = prior.distribution(0, z[:, :2], x1, conditional=tf.constant(flag)).mean()
        np.testing.assert_array_equal(eager, traced)
