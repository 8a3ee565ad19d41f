"""Tests of vf.flow.MultiScaleGlow (tiny sizes; float64 where a Jacobian is compared)."""
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import videoflow_tf as vf
from videoflow_tf.model import flow as flow_lib
from helpers import assert_bijective_and_finite, brute_force_log_det

SHAPE = (8, 8, 3)
SIZE = 8 * 8 * 3


def make_flow(dtype="float64", seed=1, **kwargs):
    options = dict(num_levels=2, num_steps=2, width=8, seed=seed, dtype=dtype)
    return flow_lib.MultiScaleGlow(SHAPE, **{**options, **kwargs})


def frames(batch=3, seed=0, dtype=tf.float64):
    return tf.random.stateless_uniform([batch, *SHAPE], [seed, 3], -0.5, 0.5, dtype=dtype)


def perturbed(flow, seed=0, scale=0.05):
    """Initialises the flow on data, then moves every trainable weight off its
    identity initialisation (zero output kernels would hide most errors)."""
    flow.initialize(frames(batch=4, seed=9, dtype=flow.compute_dtype))
    rng = np.random.default_rng(seed)
    for variable in flow.trainable_weights:
        variable.assign(variable.numpy() + scale * rng.standard_normal(variable.shape))
    return flow


AFFINE = perturbed(make_flow())
ADDITIVE_GATU = perturbed(make_flow(coupling="additive", activation="gatu", seed=2))
# Mixed precision: the coupling networks compute in bfloat16 inside a float64 flow.
MIXED = perturbed(make_flow(network_dtype="bfloat16", seed=3))
FLOWS = pytest.mark.parametrize("flow", [AFFINE, ADDITIVE_GATU, MIXED],
                                ids=["affine_relu", "additive_gatu", "affine_bfloat16"])


def test_paper_latent_shapes():
    flow = flow_lib.MultiScaleGlow((64, 64, 3), num_levels=3, num_steps=1, width=4)
    assert flow.latent_shapes == [(32, 32, 6), (16, 16, 12), (8, 8, 48)]


@FLOWS
def test_encode_decode_round_trip_and_shapes(flow):
    x = frames()
    latents, conditions, log_det = flow.encode(x)
    assert [tuple(z.shape[1:]) for z in latents] == flow.latent_shapes
    assert [tuple(c.shape) for c in conditions] == [tuple(z.shape) for z in latents[:-1]]
    assert log_det.shape == [3]
    np.testing.assert_allclose(flow.decode(latents), x, atol=1e-4)
    z = [tf.random.stateless_normal([2, *s], [i, 1], dtype=tf.float64)
         for i, s in enumerate(flow.latent_shapes)]
    again = flow.encode(flow.decode(z))[0]
    for a, b in zip(again, z):
        np.testing.assert_allclose(a, b, atol=1e-4)


@FLOWS
def test_bijector_is_bijective_and_finite_with_the_jacobians_log_det(flow):
    """flow.bijector (latent -> frame) and so the composition it inverts, whose
    log-determinant `encode` returns.

    With bfloat16 networks the brute-force Jacobian itself is off by about 3e-5 of the
    log-determinant (as with the code before the bijectors were reworked): each row is
    a backpropagation whose cotangents the networks round to bfloat16, so the rows are
    not those of one product of block-triangular Jacobians."""
    jacobian_rtol = 1e-4 if flow.network_dtype == "bfloat16" else 1e-8
    latents = flow.bijector.inverse(frames(batch=2, seed=5))
    assert_bijective_and_finite(flow.bijector, latents, frames(batch=2), event_ndims=1,
                                jacobian_rtol=jacobian_rtol)
    x = frames(batch=2)
    np.testing.assert_allclose(flow.encode(x)[2], brute_force_log_det(
        lambda v: flow.flatten_latents(flow.encode(v)[0]), x), rtol=jacobian_rtol)


def test_mixed_precision_runs_the_networks_in_bfloat16_and_keeps_the_rest():
    """Same weights: the bfloat16 networks give slightly different latents (so they
    really run in bfloat16), within bfloat16's relative precision; latents and
    log-determinants keep the flow's dtype."""
    full = make_flow(seed=3)
    full.set_weights(MIXED.get_weights())
    x = frames()
    latents, _, log_det = MIXED.encode(x)
    reference, _, reference_log_det = full.encode(x)
    assert log_det.dtype == tf.float64 and all(z.dtype == tf.float64 for z in latents)
    for z, r in zip(latents, reference):
        assert not np.array_equal(z, r)
        np.testing.assert_allclose(z, r, atol=0.05 * float(tf.reduce_max(tf.abs(r))))
    np.testing.assert_allclose(log_det, reference_log_det, rtol=1e-2)
    with pytest.raises(ValueError, match="network_dtype must be one of"):
        make_flow(network_dtype="float16")


def test_bijector_is_the_composition_of_the_steps_bijectors():
    """flow.bijector inverts a MultiScale whose levels chain a squeeze and the level's
    steps, each step the chain of its layers' bijectors; encode runs that composition."""
    flow = AFFINE
    composition = flow.bijector.bijector  # tfp.bijectors.Invert's
    assert isinstance(composition, vf.bijectors.MultiScale)
    assert len(composition.levels) == flow.num_levels
    for level, steps in zip(composition.levels, flow.levels):
        *step_chains, squeeze = level.bijectors  # applied last to first
        assert isinstance(squeeze, vf.bijectors.Squeeze)
        assert [chain.name for chain in step_chains] == [step.name for step in reversed(steps)]
        for chain in step_chains:
            assert [type(part) for part in chain.bijectors] == [
                vf.bijectors.CouplingBijector, vf.bijectors.InvertibleConv1x1Bijector,
                vf.bijectors.ActNormBijector]
    x = frames()
    latents, conditions, log_det = flow.encode(x)
    via_walk = composition.forward_levels(x)
    for got, expected in zip(via_walk[0] + via_walk[1] + [via_walk[2]],
                             latents + conditions + [log_det]):
        np.testing.assert_array_equal(got, expected)


def test_bijector_agrees_with_encode_and_decode():
    flow, x = AFFINE, frames()
    bijector = flow.bijector
    latents, _, log_det = flow.encode(x)
    z = bijector.inverse(x)
    assert z.shape == [3, SIZE]
    np.testing.assert_allclose(z, flow.flatten_latents(latents), atol=1e-10)
    np.testing.assert_allclose(bijector.inverse_log_det_jacobian(x), log_det, rtol=1e-10)
    # new tensors, so TFP's cache cannot answer from the calls above
    fresh_z = tf.identity(z)
    np.testing.assert_allclose(bijector.forward(fresh_z), flow.decode(latents), atol=1e-10)
    np.testing.assert_allclose(bijector.forward(fresh_z), x, atol=1e-4)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(fresh_z), -log_det, rtol=1e-6)
    assert bijector.forward_min_event_ndims == 1
    assert bijector.inverse_min_event_ndims == 3
    assert bijector.forward_event_shape([SIZE]) == list(SHAPE)
    assert bijector.inverse_event_shape(SHAPE) == [SIZE]
    # extra batch dimensions, as distributions sample them
    x5 = tf.reshape(frames(batch=4), [2, 2, *SHAPE])
    np.testing.assert_allclose(tf.reshape(bijector.inverse(x5), [4, SIZE]),
                               bijector.inverse(frames(batch=4)), atol=1e-12)


def test_transformed_distribution_log_prob():
    flow, x = AFFINE, frames()
    base = tfp.distributions.Sample(tfp.distributions.Normal(tf.constant(0.0, tf.float64), 1.0),
                                    [SIZE])
    distribution = tfp.distributions.TransformedDistribution(base, flow.bijector)
    latents, _, log_det = flow.encode(x)
    expected = base.log_prob(flow.flatten_latents(latents)) + log_det
    np.testing.assert_allclose(distribution.log_prob(x), expected, rtol=1e-10)
    assert distribution.sample(2, seed=1).shape == [2, *SHAPE]


def test_flatten_and_unflatten_latents_round_trip():
    flow = AFFINE
    flat = tf.random.stateless_normal([2, SIZE], [0, 0], dtype=tf.float64)
    latents = flow.unflatten_latents(flat)
    assert [tuple(z.shape[1:]) for z in latents] == flow.latent_shapes
    np.testing.assert_array_equal(flow.flatten_latents(latents), flat)
    np.testing.assert_array_equal(latents[0], tf.reshape(flat[:, :96], [2, 4, 4, 6]))


def test_decode_sampling_calls_sample_fn_top_down_with_the_conditions():
    flow = make_flow(num_levels=3, num_steps=1, seed=3)
    perturbed(flow)
    x = frames()
    latents, conditions, log_det = flow.encode(x)
    calls = []

    def sample_fn(index, x1):
        calls.append(index)
        np.testing.assert_allclose(x1, conditions[index], atol=1e-6)
        return latents[index]

    decoded, sampled, decode_log_det = flow.decode_sampling(latents[-1], sample_fn)
    assert calls == [1, 0]
    np.testing.assert_allclose(decoded, x, atol=1e-4)
    np.testing.assert_allclose(decode_log_det, -log_det, rtol=1e-5)
    for a, b in zip(sampled, latents):
        np.testing.assert_array_equal(a, b)


def test_initialize_normalises_the_first_actnorm_and_is_idempotent():
    flow = make_flow(seed=4)
    assert not flow.initialized
    x = frames(batch=8) * 0.3 + 0.1
    flow.initialize(x)
    assert flow.initialized
    squeezed = vf.bijectors.Squeeze().forward(x)
    y = flow.levels[0][0].actnorm(squeezed)
    np.testing.assert_allclose(tf.reduce_mean(y, [0, 1, 2]), 0.0, atol=1e-9)
    std = tf.math.reduce_std(squeezed, [0, 1, 2])  # std 1 up to the 1e-6 in log(std + 1e-6)
    np.testing.assert_allclose(tf.math.reduce_std(y, [0, 1, 2]), std / (std + 1e-6), rtol=1e-12)
    # a later ActNorm sees the output of earlier, initialised layers
    second = flow.levels[0][1]
    h = flow.levels[0][0](squeezed)
    np.testing.assert_allclose(tf.reduce_mean(second.actnorm(h), [0, 1, 2]), 0.0, atol=1e-9)
    before = [w.numpy() for w in flow.weights]
    flow.initialize(frames(batch=8, seed=5))
    for old, new in zip(before, flow.weights):
        np.testing.assert_array_equal(old, new.numpy())


def test_dynamic_batch_tracing_and_xla_agree_with_eager():
    flow = perturbed(make_flow(dtype="float32", num_steps=1))
    bijector = flow.bijector
    x = frames(batch=3, dtype=tf.float32)
    spec = [tf.TensorSpec([None, *SHAPE], tf.float32)]

    def inverse(frames_):
        latents, _, log_det = flow.encode(frames_)
        return flow.flatten_latents(latents), log_det, bijector.inverse_log_det_jacobian(frames_)

    def forward(z):
        return bijector.forward(z), flow.decode(flow.unflatten_latents(z))

    eager_z, eager_log_det, _ = inverse(x)
    for jit in (False, True):
        traced_inverse = tf.function(inverse, input_signature=spec, jit_compile=jit)
        traced_forward = tf.function(
            forward, input_signature=[tf.TensorSpec([None, SIZE], tf.float32)], jit_compile=jit)
        for batch in (3, 5):  # one trace serves every batch size
            z, log_det, ildj = traced_inverse(frames(batch=batch, dtype=tf.float32))
            assert z.shape == [batch, SIZE]
        z, log_det, ildj = traced_inverse(x)
        np.testing.assert_allclose(z, eager_z, atol=1e-5)
        np.testing.assert_allclose(log_det, eager_log_det, rtol=1e-5)
        np.testing.assert_allclose(ildj, eager_log_det, rtol=1e-5)
        via_bijector, via_decode = traced_forward(z)
        np.testing.assert_allclose(via_bijector, x, atol=1e-4)
        np.testing.assert_allclose(via_decode, x, atol=1e-4)
        assert traced_inverse.experimental_get_tracing_count() == 1


def negative_log_likelihood(flow, x):
    latents, _, log_det = flow.encode(x)
    z = flow.flatten_latents(latents)
    return -tf.reduce_mean(-0.5 * tf.reduce_sum(z * z, -1) + log_det)


def test_every_trainable_weight_gets_a_gradient():
    # From the identity initialisation, the zero output kernels of the coupling
    # networks block the gradient to every weight before them, so the weights are
    # perturbed first; the test then asks that no weight is disconnected from the
    # likelihood.
    for flow in (perturbed(make_flow(dtype="float32")),
                 perturbed(make_flow(dtype="float32", coupling="additive", activation="gatu"))):
        with tf.GradientTape() as tape:
            loss = negative_log_likelihood(flow, frames(dtype=tf.float32))
        gradients = tape.gradient(loss, flow.trainable_variables)
        names = [v.path for v, g in zip(flow.trainable_variables, gradients)
                 if g is None or not np.any(g.numpy())]
        assert not names, f"no gradient for {names}"
        # per step: ActNorm 2, 1x1 conv 1, coupling network 9 (three kernels, three ActNorms)
        assert len(flow.trainable_variables) == 2 * 2 * 12


class FlowModel(keras.Model):
    """A minimal Keras model around the flow, to check that `fit` sees every weight."""

    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def call(self, x):
        return negative_log_likelihood(self.flow, x)[None]


def test_keras_fit_trains_every_weight():
    flow = make_flow(dtype="float32", seed=6)
    flow.initialize(frames(batch=4, dtype=tf.float32))
    model = FlowModel(flow)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=lambda _, nll: nll)
    before = {v.path: v.numpy() for v in flow.trainable_variables}
    x = frames(batch=4, dtype=tf.float32)
    # Adam moves every weight whose gradient is nonzero at some step; the zero
    # output kernels make the earlier kernels' gradients nonzero from step 2 on.
    model.fit(x, tf.zeros([4]), batch_size=4, epochs=3, verbose=0)
    assert len(model.trainable_variables) == len(before)
    unchanged = [v.path for v in flow.trainable_variables
                 if np.array_equal(v.numpy(), before[v.path])]
    assert not unchanged, f"not trained: {unchanged}"


def test_config_round_trip_rebuilds_the_same_flow():
    flow = make_flow(dtype="float32", seed=7, coupling="additive", activation="gatu")
    clone = flow_lib.MultiScaleGlow.from_config(flow.get_config())
    assert clone.get_config() == flow.get_config()
    assert [v.shape for v in clone.weights] == [v.shape for v in flow.weights]
    for a, b in zip(flow.weights, clone.weights):  # seeded: identical initial weights
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("image_shape,message", [
    ((12, 8, 3), "multiples of 2\\*\\*num_levels = 8"),
    ((8, 4, 3), "multiples of 2\\*\\*num_levels = 8"),
    ((0, 8, 3), "multiples of 2\\*\\*num_levels = 8"),
    ((8, 8), "must be \\(height, width, channels\\)"),
])
def test_bad_image_shape_is_rejected_at_construction(image_shape, message):
    with pytest.raises(ValueError, match=message):
        flow_lib.MultiScaleGlow(image_shape, num_levels=3, num_steps=1, width=4)


def test_bad_inputs_are_rejected_at_call_time():
    flow = AFFINE
    with pytest.raises(ValueError, match=r"expected frames of shape \[batch, 8, 8, 3\]"):
        flow.encode(tf.zeros([2, 8, 8, 4], tf.float64))
    with pytest.raises(ValueError, match=r"expected frames of shape \[batch, 8, 8, 3\]"):
        flow.encode(tf.zeros([2, 16, 16, 3], tf.float64))
    with pytest.raises(ValueError, match=r"expected frames of shape"):
        flow.bijector.inverse(tf.zeros([2, 8, 8, 4], tf.float64))
    latents = flow.encode(frames())[0]
    with pytest.raises(ValueError, match=r"expected a list of 2 latents"):
        flow.decode(latents[:1])
    with pytest.raises(ValueError, match=r"expected latents\[0\] of shape \[batch, 4, 4, 6\]"):
        flow.decode([latents[0][..., :3], latents[1]])
    with pytest.raises(ValueError, match=r"expected flat latents of shape \[batch, 192\]"):
        flow.unflatten_latents(tf.zeros([2, 100], tf.float64))
    with pytest.raises(ValueError, match=r"expected latents\[0\]"):
        flow.decode_sampling(latents[-1], lambda index, x1: x1[..., :1])
