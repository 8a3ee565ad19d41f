"""The mixture top prior (videoflow_tf/model/mixture_prior.py): its density and draws, its
initialisation from data and the revival of its dead components."""
import numpy as np
import pytest

from helpers import make_prior, random_latents, randomize

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.model import optim
from videoflow_tf.model.mixture_prior import (MixtureTopPrior, _split_shift, farthest_points,
                                              responsibilities)


def mixture_prior(**changes):
    """A 4-component mixture top prior with random weights."""
    return randomize(make_prior(components=4, **changes))


@pytest.mark.parametrize("skip", [False, True])
def test_mixture_top_prior_is_the_weighted_sum_of_its_gaussians(skip):
    """log p(z) = logsumexp_k(log w_k + log N(z; mu_k, sigma_k)), every component from
    the encoder's output channels plus its offset (and the previous latent with the skip)."""
    prior = mixture_prior(latent_skip=skip)
    top = prior.levels[-1]
    latents, _ = random_latents(3, 3, seed=9)
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
    latents, _ = random_latents(2, 3, seed=10)
    history = latents[-1][:, :2]
    dist = prior.distribution(len(latents) - 1, history, None, conditional=True)
    weights = dist.mixture_distribution.probs_parameter().numpy()
    means = dist.components_distribution.mean().numpy()  # [N, K, h, w, c]
    normal = tf.zeros_like(history[:, 0])
    for uniform in (0.0, 0.3, 0.6, 0.999):
        picked = [int(np.argmax(np.cumsum(w) > uniform)) for w in weights]
        cold = MixtureTopPrior.draw(dist, 0.0, normal, tf.fill([2], np.float32(uniform)))
        np.testing.assert_allclose(cold, means[np.arange(2), picked], rtol=1e-6)
    components = {tuple(np.round(MixtureTopPrior.draw(dist, 0.0, normal, tf.fill([2], np.float32(u)))
                                 .numpy()[0, 0, 0], 4))
                  for u in np.linspace(0.0, 0.999, 50)}
    assert len(components) == 4


def test_farthest_points_spread_out_from_the_middle():
    values = np.arange(11.0) ** 1.5  # 0, 1, 2.8, ..., 31.6; mean 13.0, nearest 14.7
    chosen = farthest_points(tf.constant(values[:, None]), 3).numpy().ravel()
    np.testing.assert_allclose(chosen, [6 ** 1.5, 10 ** 1.5, 0.0])


def test_mixture_components_start_at_far_apart_residuals_of_the_data():
    """Data-dependent init sets the offsets once, to residuals z - mu of M different
    initialisation frames; the components then get different gradients."""
    prior = make_prior(components=4)
    top = prior.levels[-1]
    np.testing.assert_array_equal(top.component_offsets.numpy(), 0.0)
    latents, conditions = random_latents(3, 4, seed=11)
    prior.initialize(latents, conditions)
    offsets = top.component_offsets.numpy()
    frames = latents[-1][:, 2:].numpy().reshape((-1,) + offsets.shape[1:])  # skip: mu = z_t-1
    residuals = frames - latents[-1][:, 1:3].numpy().reshape(frames.shape)
    for offset in offsets:
        assert np.min(np.abs(residuals - offset).max(axis=(1, 2, 3))) < 1e-5
    assert len({tuple(o.ravel().round(5)) for o in offsets}) == 4
    prior.initialize([z + 1.0 for z in latents], conditions)  # once only
    np.testing.assert_array_equal(top.component_offsets.numpy(), offsets)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(prior.log_prob(latents, conditions, 1))
    grads = tape.gradient(loss, top.component_offsets).numpy()
    assert not np.allclose(grads[0], grads[1])


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
    latents, _ = random_latents(64, 1, seed=12)
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


def test_a_copy_takes_the_optimizers_state_of_its_source():
    """Adam's moments of a dead component's weights are zero (they got no gradient); a
    copy gets its source's moments instead, and the other components keep theirs."""
    top, history = collapsed_mixture()
    optimizer = keras.optimizers.Adam(1e-3)
    variables = [top.encoder.head.kernel, top.encoder.head.bias, top.component_offsets]
    optimizer.build(variables)
    rng = np.random.default_rng(17)
    for variable in variables:  # moments that differ from component to component
        for slot in optim.slot_variables(optimizer, variable):
            slot.assign(rng.uniform(size=slot.shape).astype(np.float32))
    names = {slot.name for v in variables for slot in optim.slot_variables(optimizer, v)}
    assert len(names) == 6 and all(n.endswith(("_momentum", "_velocity")) for n in names)
    before = {slot.name: slot.numpy() for v in variables
              for slot in optim.slot_variables(optimizer, v)}
    top._copy_component(0, 2, shift=0.0, optimizer=optimizer)
    width = 2 * top.latent_shape[-1]
    component = {k: np.r_[k * width:(k + 1) * width, 4 * width + k] for k in range(4)}
    for variable in variables[:2]:
        for slot in optim.slot_variables(optimizer, variable):
            old, new = before[slot.name], slot.numpy()
            np.testing.assert_array_equal(new[..., component[2]], old[..., component[0]])
            for k in (0, 1, 3):
                np.testing.assert_array_equal(new[..., component[k]], old[..., component[k]])
    for slot in optim.slot_variables(optimizer, top.component_offsets):
        old, new = before[slot.name], slot.numpy()
        np.testing.assert_array_equal(new[2], old[0])
        np.testing.assert_array_equal(new[[0, 1, 3]], old[[0, 1, 3]])


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


def healthy_mixture():
    """A 4-component mixture whose components are far apart, and 64 frames near their means
    that each component is the most responsible for 45, 13, 3 and 3 of: every component
    is alive under the default min_share, 1/(16M) = 1/64, though the last two hold
    fewer than 1/(4M) of the frames."""
    top, history = collapsed_mixture()
    kernel, bias = top.encoder.head.kernel.numpy(), top.encoder.head.bias.numpy()
    bias[-4:] = 0.0  # equal weights
    top.encoder.head.bias.assign(bias)
    rng = np.random.default_rng(15)
    top.component_offsets.assign(20.0 * rng.normal(size=top.component_offsets.shape))
    means = top.conditional(history, None).components_distribution.mean().numpy()
    owners = np.repeat([0, 1, 2, 3], [45, 13, 3, 3])
    z = means[np.arange(64), owners] + 0.1 * rng.normal(size=means.shape[:1] + means.shape[2:])
    return top, history, z.astype(np.float32), owners


def test_split_components_leaves_a_mixture_without_dead_components_alone():
    top, history, z, owners = healthy_mixture()
    winners = np.argmax(responsibilities(top.conditional(history, None), z), axis=1)
    np.testing.assert_array_equal(winners, owners)
    weights = [w.numpy() for w in top.weights]
    assert top.split_components(history, None, z) == []
    for old, new in zip(weights, top.weights):
        np.testing.assert_array_equal(old, new.numpy())
    # The test can fail: a stricter threshold than the default takes components 2 and 3
    # for dead and splits live ones into them.
    assert [dead for _, dead in top.split_components(history, None, z, min_share=1 / 16)] == [2, 3]

