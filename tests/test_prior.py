import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.config import LATENT_ENCODERS
from videoflow_tf.latent_encoders import CausalConv3D, fitting_dilations
from videoflow_tf.bijectors.actnorm import data_dependent_init
from videoflow_tf.prior import (LOG_SCALE_LIMIT, LatentPrior, draw, farthest_points,
                                fitting_log_prob, gaussian)

# 16x16 frames: level-1 latents are 8x8, wide enough for the dilation-2 branch.
CONFIG = vf.get_config("tiny").replace(image_size=16, latent_dilations=True)


def make_prior(**changes):
    prior = LatentPrior(CONFIG.replace(**changes))
    prior.build()
    return prior


def random_latents(config, batch, frames, seed):
    rng = np.random.default_rng(seed)
    latents = [tf.constant(rng.normal(size=(batch, frames) + s), tf.float32)
               for s in config.latent_shapes]
    conditions = [tf.constant(rng.normal(size=(batch, frames) + s), tf.float32)
                  for s in config.latent_shapes[:-1]]
    return latents, conditions


def perturb(layer, seed=0):
    """Random weights everywhere, so that no test passes because of zero-initialised outputs."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        variable.assign(0.2 * rng.normal(size=variable.shape))


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
    perturb(conv)
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
    perturb(conv)
    changed = tf.concat([x[:, :2], x[:, 2:] + 1.0], axis=1)
    y, y_changed = conv(x), conv(changed)
    assert y.shape == x.shape[:-1] + (3,)
    np.testing.assert_array_equal(y[:, :2], y_changed[:, :2])
    assert not np.allclose(y[:, 2:], y_changed[:, 2:])


@pytest.mark.parametrize("encoder", LATENT_ENCODERS)
@pytest.mark.parametrize("skip", [False, True])
def test_every_prior_starts_as_standard_normal(encoder, skip):
    prior = make_prior(latent_encoder=encoder, latent_skip=skip)
    latents, conditions = random_latents(CONFIG, 2, 3, seed=2)
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
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 2, 5, seed=3)
    batched = prior.log_prob(latents, conditions, first_frame)
    assert batched.shape == (2, 5 - first_frame)
    k = CONFIG.num_cond_latents
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
    perturb(prior)
    assert prior.min_history == 1
    latents, conditions = random_latents(CONFIG, 2, 5, seed=8)
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


def test_log_prob_is_causal():
    prior = make_prior()
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 2, 5, seed=4)
    before = prior.log_prob(latents, conditions, 0)
    changed = [tf.concat([z[:, :3], z[:, 3:] + 0.5], axis=1) for z in latents]
    after = prior.log_prob(changed, conditions, 0)
    np.testing.assert_array_equal(before[:, :3], after[:, :3])
    assert np.all(np.abs(before[:, 3:] - after[:, 3:]) > 1e-3)


def test_log_prob_with_unknown_batch_and_length_in_tf_function():
    prior = make_prior()
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 3, 4, seed=5)
    signature = [[tf.TensorSpec([None, None] + list(s)) for s in CONFIG.latent_shapes],
                 [tf.TensorSpec([None, None] + list(s)) for s in CONFIG.latent_shapes[:-1]]]
    traced = tf.function(lambda z, c: prior.log_prob(z, c, 1), input_signature=signature)
    np.testing.assert_allclose(traced(latents, conditions), prior.log_prob(latents, conditions, 1),
                               rtol=1e-5)
    short = traced([z[:, :2] for z in latents], [c[:, :2] for c in conditions])
    assert short.shape == (3, 1)


def test_temperature_scales_every_standard_deviation_of_a_draw():
    prior = make_prior()
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 2, 3, seed=6)
    for level, z in enumerate(latents):
        x1 = conditions[level][:, -1] if level < len(conditions) else None
        dist = prior.distribution(level, z[:, :2], x1, conditional=True)
        normal = tf.random.stateless_normal(tf.shape(z[:, 0]), (1, 2))
        uniform = tf.zeros([2])
        warm, cool, cold = (draw(dist, t, normal, uniform) for t in (1.0, 0.5, 0.0))
        np.testing.assert_allclose(warm, dist.mean() + dist.stddev() * normal, rtol=1e-6)
        np.testing.assert_allclose(cool - dist.mean(), 0.5 * (warm - dist.mean()),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(cold, dist.mean())


def mixture_prior(**changes):
    prior = make_prior(top_prior_components=4, **changes)
    perturb(prior)
    return prior


@pytest.mark.parametrize("skip", [False, True])
def test_mixture_top_prior_is_the_weighted_sum_of_its_gaussians(skip):
    """log p(z) = logsumexp_k(log w_k + log N(z; mu_k, sigma_k)), every component from
    the encoder's output channels plus its offset (and the previous latent with the skip)."""
    prior = mixture_prior(latent_skip=skip)
    top = prior.levels[-1]
    latents, _ = random_latents(CONFIG, 3, 3, seed=9)
    z, history = latents[-1][:, 2], latents[-1][:, :2]
    dist = prior.distribution(len(latents) - 1, history, None, conditional=True)
    params = top.encoder(history, None).numpy()  # [N, h, w, K * 2c + K]
    count, channels = 4, z.shape[-1]
    logits = params[..., count * 2 * channels:].mean(axis=(1, 2))
    per_component = []
    for k in range(count):
        block = params[..., k * 2 * channels:(k + 1) * 2 * channels]
        loc = block[..., 0::2] + top.component_offsets[k].numpy()
        if skip:
            loc = loc + history[:, -1].numpy()
        gaussian = tfp.distributions.Normal(loc, np.exp(block[..., 1::2]))
        per_component.append(tf.reduce_sum(gaussian.log_prob(z.numpy()), axis=[1, 2, 3]))
    expected = tf.reduce_logsumexp(tf.nn.log_softmax(logits) + tf.stack(per_component, -1), -1)
    np.testing.assert_allclose(dist.log_prob(z), expected, rtol=1e-5)


def test_a_mixture_draw_is_one_components_gaussian_draw():
    """The uniform picks component k where the weights' CDF first exceeds it; at
    temperature 0 the draw is that component's mean, so draws span several components."""
    prior = mixture_prior()
    latents, _ = random_latents(CONFIG, 2, 3, seed=10)
    history = latents[-1][:, :2]
    dist = prior.distribution(len(latents) - 1, history, None, conditional=True)
    weights = dist.mixture_distribution.probs_parameter().numpy()
    means = dist.components_distribution.mean().numpy()  # [N, K, h, w, c]
    normal = tf.zeros_like(history[:, 0])
    for uniform in (0.0, 0.3, 0.6, 0.999):
        picked = [int(np.argmax(np.cumsum(w) > uniform)) for w in weights]
        cold = draw(dist, 0.0, normal, tf.fill([2], np.float32(uniform)))
        np.testing.assert_allclose(cold, means[np.arange(2), picked], rtol=1e-6)
    components = {tuple(np.round(draw(dist, 0.0, normal, tf.fill([2], np.float32(u))).numpy()[0, 0, 0], 4))
                  for u in np.linspace(0.0, 0.999, 50)}
    assert len(components) == 4


def test_farthest_points_spread_out_from_the_middle():
    values = np.arange(11.0) ** 1.5  # 0, 1, 2.8, ..., 31.6; mean 13.0, nearest 14.7
    chosen = farthest_points(tf.constant(values[:, None]), 3).numpy().ravel()
    np.testing.assert_allclose(chosen, [6 ** 1.5, 10 ** 1.5, 0.0])


def test_mixture_components_start_at_far_apart_residuals_of_the_data():
    """Data-dependent init sets the offsets once, to residuals z - mu of M different
    initialisation frames; the components then get different gradients."""
    prior = make_prior(top_prior_components=4)
    top = prior.levels[-1]
    np.testing.assert_array_equal(top.component_offsets.numpy(), 0.0)
    latents, conditions = random_latents(CONFIG, 3, 4, seed=11)
    with data_dependent_init():
        prior.log_prob(latents, conditions, 1)
    offsets = top.component_offsets.numpy()
    frames = latents[-1][:, 2:].numpy().reshape((-1,) + offsets.shape[1:])  # skip: mu = z_t-1
    residuals = frames - latents[-1][:, 1:3].numpy().reshape(frames.shape)
    for offset in offsets:
        assert np.min(np.abs(residuals - offset).max(axis=(1, 2, 3))) < 1e-5
    assert len({tuple(o.ravel().round(5)) for o in offsets}) == 4
    with data_dependent_init():  # once only
        prior.log_prob([z + 1.0 for z in latents], conditions, 1)
    np.testing.assert_array_equal(top.component_offsets.numpy(), offsets)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(prior.log_prob(latents, conditions, 1))
    grads = tape.gradient(loss, top.component_offsets).numpy()
    assert not np.allclose(grads[0], grads[1])


def test_a_prior_reading_x1_ignores_the_unconditional_mean():
    """With prior_reads_x1 the conditional prior sees x1 itself: the unconditional prior's
    conv no longer matters to it, while x1 does, and does from initialisation on."""
    prior = make_prior(prior_reads_x1=True)
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 2, 3, seed=13)
    z, x1 = latents[0], conditions[0][:, -1]
    before = prior.distribution(0, z[:, :2], x1, conditional=True).mean()
    conv = prior.levels[0].context_conv.kernel
    conv.assign(conv + 1.0)
    np.testing.assert_array_equal(prior.distribution(0, z[:, :2], x1, conditional=True).mean(),
                                  before)
    assert not np.allclose(prior.distribution(0, z[:, :2], x1 + 1.0, conditional=True).mean(),
                           before)
    # At initialisation the head's gradient for its context input channels (after the
    # c history channels) is zero on the paper's path, whose context starts at zero.
    for reads_x1, fresh in [(True, make_prior(prior_reads_x1=True)), (False, make_prior())]:
        encoder = fresh.levels[0].encoder
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(fresh.log_prob(latents, conditions, 2))
        head = tape.gradient(loss, encoder.head.conv.kernel if hasattr(encoder.head, "conv")
                             else encoder.head.kernel).numpy()
        channels = z.shape[-1]
        assert np.any(head[..., :channels, :] != 0)
        assert np.any(head[..., channels:, :] != 0) == reads_x1


def test_log_scales_are_clipped_so_densities_stay_finite():
    prior = make_prior()
    top = prior.levels[-1]
    top.top_params.assign(tf.fill(top.top_params.shape, -1000.0))  # log sigma -1000
    latents, conditions = random_latents(CONFIG, 2, 3, seed=12)
    log_prob = prior.log_prob([z * 1e3 for z in latents], conditions, 0)
    assert np.all(np.isfinite(log_prob))
    dist = prior.distribution(len(latents) - 1, latents[-1][:, :2], None, conditional=False)
    np.testing.assert_allclose(dist.stddev(), np.exp(-LOG_SCALE_LIMIT), rtol=1e-5)


def test_conditional_flag_may_be_a_tensor():
    prior = make_prior()
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 2, 3, seed=7)
    z, x1 = latents[0], conditions[0][:, -1]
    for flag in (True, False):
        eager = prior.distribution(0, z[:, :2], x1, conditional=flag).mean()
        traced = prior.distribution(0, z[:, :2], x1, conditional=tf.constant(flag)).mean()
        np.testing.assert_array_equal(eager, traced)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_beta_nll_keeps_value_and_latent_gradient_and_weights_the_priors(beta):
    rng = np.random.default_rng(3)
    loc, log_scale, z = (tf.Variable(rng.normal(size=(2, 3, 3, 2)), dtype=tf.float32)
                         for _ in range(3))
    with tf.GradientTape(persistent=True) as tape:
        exact = gaussian(loc, log_scale).log_prob(z)
        fitted = fitting_log_prob(gaussian(loc, log_scale), z, beta)
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
        fitted = fitting_log_prob(mixture, z, 0.5)
    np.testing.assert_allclose(fitted, exact, rtol=1e-6)
    for variable in (z, logits):
        np.testing.assert_allclose(tape.gradient(fitted, variable),
                                   tape.gradient(exact, variable), rtol=1e-5, atol=1e-7)
    weight = np.exp(log_scale.numpy())  # sigma^(2 beta) at beta = 0.5
    for parameter in (loc, log_scale):
        np.testing.assert_allclose(tape.gradient(fitted, parameter),
                                   weight * tape.gradient(exact, parameter), rtol=1e-5,
                                   atol=1e-7)


def test_beta_nll_reaches_training_only():
    prior = make_prior(prior_beta=0.5, top_prior_components=3)
    perturb(prior)
    latents, conditions = random_latents(CONFIG, 2, 3, seed=5)
    with tf.GradientTape(persistent=True) as tape:
        scored = prior.log_prob(latents, conditions, 1)
        trained = prior.log_prob(latents, conditions, 1, training=True)
    np.testing.assert_allclose(trained, scored, rtol=1e-6)
    for level in (prior.levels[0], prior.levels[-1]):
        kernel = level.encoder.head.trainable_variables[0]
        assert not np.allclose(tape.gradient(trained, kernel), tape.gradient(scored, kernel),
                               rtol=1e-3)


def collapsed_mixture():
    """A perturbed 4-component top prior whose components 1-3 have no weight and whose
    scales are 1 (a frame's mean still depends on its history), and history for 64
    frames."""
    prior = mixture_prior(num_cond_latents=1)
    top = prior.levels[-1]
    kernel, bias = top.encoder.head.kernel.numpy(), top.encoder.head.bias.numpy()
    log_scales = slice(1, 4 * 2 * top.latent_shape[-1], 2)  # (mean, log-scale) pairs
    kernel[..., log_scales], bias[log_scales] = 0.0, 0.0
    bias[-3:] = -30.0  # the logit channels of components 1-3
    top.encoder.head.kernel.assign(kernel)
    top.encoder.head.bias.assign(bias)
    latents, _ = random_latents(CONFIG, 64, 1, seed=12)
    return top, latents[-1]


def test_copying_a_component_halves_its_weight_and_keeps_the_mixture():
    top, history = collapsed_mixture()
    before = top.conditional(history, None)
    normal = before.components_distribution.distribution
    z = normal.loc[:, 0] + normal.scale[:, 0] * tf.random.stateless_normal(
        normal.loc.shape[:1] + normal.loc.shape[2:], seed=[13, 0])
    top._copy_component(0, 2, shift=0.0)
    after = top.conditional(history, None)
    np.testing.assert_allclose(after.log_prob(z), before.log_prob(z), rtol=1e-5)
    weights = after.mixture_distribution.probs_parameter().numpy()
    np.testing.assert_allclose(weights[:, [0, 2]], 0.5 * before.mixture_distribution
                               .probs_parameter().numpy()[:, [0, 0]], rtol=1e-5)
    normal = after.components_distribution.distribution
    np.testing.assert_array_equal(normal.loc[:, 2], normal.loc[:, 0])
    np.testing.assert_array_equal(normal.scale[:, 2], normal.scale[:, 0])


def test_split_components_revives_the_dead_where_frames_gather():
    """Frames in two clusters 3 sigma either side of the one live component's mean: the
    split sends a dead component to one cluster, a later round (splitting the live one
    again) another to the other, so every frame ends up fitted to about its noise, and
    any component left without frames is revived in turn."""
    top, history = collapsed_mixture()
    loc = top.conditional(history, None).components_distribution.distribution.loc[:, 0]
    rng = np.random.default_rng(14)
    side = np.where(np.arange(64) % 2, 1.0, -1.0)[:, None, None, None]
    direction = rng.choice([-1.0, 1.0], size=loc.shape[1:])
    z = loc.numpy() + 3.0 * side * direction + 0.1 * rng.normal(size=loc.shape)
    before = top.conditional(history, None).log_prob(z).numpy()
    pairs = top.split_components(history, None, z)
    assert pairs[0] == (0, 1)
    after = top.conditional(history, None)
    joint = (tf.math.log_softmax(after.mixture_distribution.logits)
             + after.components_distribution.log_prob(z[:, None]))
    most_responsible = np.bincount(np.argmax(joint, axis=1), minlength=4)
    assert most_responsible.min() >= 64 / (16 * 4)  # none is left dead
    gained = (after.log_prob(z).numpy() - before) / np.prod(loc.shape[1:])
    # A fitted frame gains the 3-sigma error's 4.5 nats per dimension, less a little for
    # the noise and for weights split up to 3 ways.
    assert gained.min() > 4.0
    picked = np.argmax(after.components_distribution.log_prob(z[:, None]), axis=1)
    assert not set(picked[side.ravel() > 0]) & set(picked[side.ravel() < 0])


def test_a_split_moves_the_copy_onto_a_real_frame_it_fits_worst():
    """48 frames the component predicts well (small scale, small residuals) and 16 it is
    unsure of, 2 in each of 8 clusters 3 sigma out along 8 different axes (as a first
    step's 8 directions): the copy's shift is the residual of one of the unsure frames,
    a real future, not the blurred mean of several clusters (length 3, not about 1)."""
    from videoflow_tf.prior import _split_shift
    rng = np.random.default_rng(16)
    shape = (2, 2, 4)
    sure = 0.1 * rng.normal(size=(48,) + shape)
    axes = np.eye(16)[np.repeat(np.arange(8), 2)].reshape((16,) + shape)
    unsure = 3.0 * axes + 0.1 * rng.normal(size=(16,) + shape)
    residuals = np.concatenate([sure, unsure])
    scale = np.concatenate([np.full((48,) + shape, 0.1), np.ones((16,) + shape)])
    shift = _split_shift(residuals, scale)
    assert any(np.array_equal(shift, frame) for frame in unsure)
    assert np.linalg.norm(shift) > 2.9


def test_split_components_leaves_a_mixture_without_dead_components_alone():
    top, history = collapsed_mixture()
    z = random_latents(CONFIG, 64, 1, seed=15)[0][-1][:, 0]
    weights = [w.numpy() for w in top.weights]
    assert top.split_components(history, None, z, min_share=0.0) == []
    for old, new in zip(weights, top.weights):
        np.testing.assert_array_equal(old, new.numpy())
    assert make_prior().levels[-1].split_components(history, None, z) == []
