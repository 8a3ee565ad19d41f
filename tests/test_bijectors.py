"""Tests of the invertible layers in videoflow_tf.model.bijectors (tiny sizes, float64 for Jacobians)."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import videoflow_tf  # noqa: F401
from videoflow_tf.model import bijectors as vfb
from videoflow_tf.model import flow as flow_lib
from videoflow_tf.model.bijectors import coupling_network
from helpers import assert_bijective_and_finite

SHAPE = (8, 8, 3)


def perturb(layer, seed, scale=0.1):
    """Moves every trainable weight away from its identity initialisation, so tests
    see the general case (zero-initialised kernels and identity scales hide errors)."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        variable.assign(variable.numpy() + scale * rng.standard_normal(variable.shape))


def frames(shape=SHAPE, batch=3, seed=0, dtype=tf.float64):
    return tf.random.stateless_uniform([batch, *shape], [seed, 7], -0.5, 0.5, dtype=dtype)


def built(layer, shape):
    layer.build((None, *shape))
    return layer


def layer_cases():
    """(name, layer, event shape) of every per-frame bijector layer, weights perturbed."""
    cases = [("actnorm", vfb.ActNorm(dtype="float64"), SHAPE),
             ("invertible_conv", vfb.InvertibleConv1x1(seed=3, dtype="float64"), SHAPE)]
    for kind in ("affine", "additive"):
        for activation in ("relu", "gatu"):
            cases.append((f"{kind}_{activation}",
                          vfb.Coupling(kind, width=8, activation=activation, seed=4,
                                       dtype="float64"), (8, 8, 6)))
    for index, (name, layer, shape) in enumerate(cases):
        built(layer, shape)
        perturb(layer, index)
    return cases


CASES = layer_cases()


@pytest.mark.parametrize("name,layer,shape", CASES, ids=[c[0] for c in CASES])
def test_bijector_is_bijective_and_finite_with_the_jacobians_log_det(name, layer, shape):
    assert_bijective_and_finite(layer.bijector, frames(shape), frames(shape, seed=1),
                                event_ndims=3, nonzero_log_det=not name.startswith("additive"))


def test_squeeze_and_split_are_bijective_and_finite():
    x, y = frames((4, 6, 3)), frames((2, 3, 12), seed=1)
    assert_bijective_and_finite(vfb.Squeeze(), x, y, event_ndims=3, nonzero_log_det=False)
    x = frames((2, 2, 8))
    assert_bijective_and_finite(vfb.LevelSplit(), x, [x[..., :4] + 1.0, x[..., 4:] - 1.0],
                                event_ndims=3, nonzero_log_det=False)


def test_the_bijective_check_fails_on_a_wrong_log_det():
    """assert_bijective_and_finite can fail: an ActNorm whose log-det misses a pixel."""
    layer = CASES[0][1]

    class WrongLogDet(vfb.ActNormBijector):
        def _forward_and_log_det(self, x):
            y, log_det = super()._forward_and_log_det(x)
            return y, log_det * (1.0 - 1.0 / 64)

        def _inverse_and_log_det(self, y):  # consistent, so only the Jacobian can tell
            x, log_det = super()._inverse_and_log_det(y)
            return x, log_det * (1.0 - 1.0 / 64)

    assert_bijective_and_finite(vfb.ActNormBijector(layer), frames(), frames(seed=1), 3)
    with pytest.raises(AssertionError):
        assert_bijective_and_finite(WrongLogDet(layer), frames(), frames(seed=1), 3)


def test_squeeze_matches_glow_channel_order():
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 3))
    expected = np.zeros((2, 2, 3, 12))
    for i in range(2):
        for j in range(3):
            for c in range(3):
                for dy in range(2):
                    for dx in range(2):
                        expected[:, i, j, c * 4 + dy * 2 + dx] = x[:, 2 * i + dy, 2 * j + dx, c]
    bijector = vfb.Squeeze()
    y = bijector.forward(tf.constant(x))
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(bijector.inverse(tf.constant(expected)), x)
    assert not np.array_equal(tf.nn.space_to_depth(x, 2), expected)  # a different order
    assert bijector.forward_event_shape([4, 6, 3]) == [2, 3, 12]
    assert bijector.inverse_event_shape([2, 3, 12]) == [4, 6, 3]
    assert float(bijector.forward_log_det_jacobian(tf.constant(x), 3)) == 0.0


def test_split_halves_channels():
    x = tf.reshape(tf.range(2 * 2 * 2 * 8, dtype=tf.float32), [2, 2, 2, 8])
    bijector = vfb.LevelSplit()
    x1, z = bijector.forward(x)
    np.testing.assert_array_equal(x1, x[..., :4])
    np.testing.assert_array_equal(z, x[..., 4:])
    np.testing.assert_array_equal(bijector.inverse([x1, z]), x)


def test_actnorm_data_dependent_init_normalises_each_channel():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal([1.0, -2.0, 5.0], [0.1, 3.0, 10.0], size=(16, 4, 4, 3)))
    layer = built(vfb.ActNorm(dtype="float64"), (4, 4, 3))
    assert not layer.is_initialized()
    y = layer(x, initialize=True)
    np.testing.assert_allclose(tf.reduce_mean(y, [0, 1, 2]), 0.0, atol=1e-9)
    std = np.std(x.numpy(), axis=(0, 1, 2))
    # exactly 1 up to the 1e-6 that keeps log(std + 1e-6) finite
    np.testing.assert_allclose(tf.math.reduce_std(y, [0, 1, 2]), std / (std + 1e-6), rtol=1e-12)
    np.testing.assert_allclose(layer(x), y)  # after that a fixed map
    before = [w.numpy() for w in layer.weights]
    layer(x * 3.0 + 1.0, initialize=True)  # already initialised: kept
    for old, new in zip(before, layer.weights):
        np.testing.assert_array_equal(old, new.numpy())
    fresh = built(vfb.ActNorm(dtype="float64"), (4, 4, 3))
    with pytest.raises(RuntimeError, match="eagerly"):
        tf.function(lambda x: fresh(x, initialize=True))(x)


def test_actnorm_without_data_dependent_init_stays_identity():
    layer = built(vfb.ActNorm(data_dependent=False, dtype="float64"), (4, 4, 3))
    x = frames((4, 4, 3))
    np.testing.assert_array_equal(layer(x, initialize=True), x)


def test_invertible_conv_starts_as_a_seeded_rotation():
    layer = built(vfb.InvertibleConv1x1(seed=5, dtype="float64"), (2, 2, 6))
    bijector = layer.bijector
    kernel = bijector.kernel().numpy()
    np.testing.assert_allclose(kernel @ kernel.T, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(float(bijector.log_det()), 0.0, atol=1e-12)
    np.testing.assert_allclose(bijector.inverse_kernel() @ kernel, np.eye(6), atol=1e-12)
    same = built(vfb.InvertibleConv1x1(seed=5, dtype="float64"), (2, 2, 6))
    other = built(vfb.InvertibleConv1x1(seed=6, dtype="float64"), (2, 2, 6))
    np.testing.assert_array_equal(same.bijector.kernel(), kernel)
    assert not np.allclose(other.bijector.kernel(), kernel)
    # log|det W| is sum(log_s) also away from the initialisation
    perturb(layer, 0)
    np.testing.assert_allclose(np.linalg.slogdet(bijector.kernel().numpy())[1],
                               float(bijector.log_det()), rtol=1e-10)


def edge_padded_conv_reference(x, kernel):
    """Direct 3x3 convolution of [zero-padded x, edge channel] (numpy, a sum over taps)."""
    batch, height, width, _ = x.shape
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    edge = np.pad(np.zeros((batch, height, width, 1)), [(0, 0), (1, 1), (1, 1), (0, 0)],
                  constant_values=1.0)
    stacked_input = np.concatenate([padded, edge], -1)
    out = np.zeros((batch, height, width, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += stacked_input[:, dy:dy + height, dx:dx + width, :] @ kernel[dy, dx]
    return out


def test_edge_padded_conv_matches_the_concatenated_edge_channel():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 4, 3))
    kernel = rng.standard_normal((3, 3, 4, 7))  # the last input channel is the edge channel
    expected = edge_padded_conv_reference(x, kernel)
    np.testing.assert_allclose(coupling_network.convolve_same(x, kernel), expected, atol=1e-10)
    np.testing.assert_allclose(coupling_network.convolve_padded(x, kernel), expected,
                               atol=1e-10)
    layer = built(vfb.EdgePaddedConv2D(7, dtype="float64"), (5, 4, 3))
    layer.kernel.assign(kernel)
    np.testing.assert_allclose(layer(x), expected, atol=1e-10)
    # the border differs from a plain zero-padded convolution by the edge weights
    plain = tf.nn.conv2d(x, kernel[:, :, :3], 1, "SAME")
    np.testing.assert_allclose(plain[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-10)
    assert np.all(np.abs(plain[:, 0] - expected[:, 0]) > 1e-6)


def layer_by_layer(network, x):
    """The coupling network's definition, one layer after another: each convolution, then
    its ActNorm, then its activation."""
    h = tf.nn.relu(network.norm_in(network.conv_in(x)))
    h = network.norm_hidden(network.hidden(h))
    if network.activation == "gatu":
        a, b = tf.split(h, 2, axis=-1)
        h = tf.tanh(a) * tf.sigmoid(b)
    else:
        h = tf.nn.relu(h)
    return network.norm_out(network.conv_out(h))


@pytest.mark.parametrize("activation", ["relu", "gatu"])
def test_coupling_network_runs_its_layers_with_the_actnorms_folded_in(activation):
    network = built(vfb.CouplingNetwork(6, width=8, activation=activation, seed=0,
                                        dtype="float64"), (4, 4, 3))
    perturb(network, 1)
    x = frames((4, 4, 3))
    reference = layer_by_layer(network, x)
    np.testing.assert_allclose(network(x), reference, atol=1e-10)
    np.testing.assert_allclose(network(x, weights=network.folded_weights()), reference,
                               atol=1e-10)
    order = [0, 2, 4, 1, 3, 5]
    permuted = built(vfb.CouplingNetwork(6, width=8, activation=activation, seed=0,
                                         output_order=order, dtype="float64"), (4, 4, 3))
    permuted.set_weights(network.get_weights())
    np.testing.assert_allclose(permuted(x), tf.gather(reference, order, axis=-1), atol=1e-10)


def test_coupling_network_initialises_each_actnorm_from_its_real_input():
    network = built(vfb.CouplingNetwork(4, width=8, seed=0, dtype="float64"), (4, 4, 3))
    x = frames((4, 4, 3), batch=16)
    network.initialize(x)
    first = network.norm_in(network.conv_in(x))
    second = network.norm_hidden(network.hidden(tf.nn.relu(first)))
    for normalised in (first, second):
        np.testing.assert_allclose(tf.reduce_mean(normalised, [0, 1, 2]), 0.0, atol=1e-9)
        np.testing.assert_allclose(tf.math.reduce_std(normalised, [0, 1, 2]), 1.0, rtol=1e-4)


def test_coupling_network_starts_at_zero():
    network = built(vfb.CouplingNetwork(4, width=8, seed=0), (4, 4, 2))
    np.testing.assert_array_equal(network(frames((4, 4, 2), dtype=tf.float32)), 0.0)


def test_affine_coupling_uses_interleaved_shift_and_scale():
    layer = built(vfb.Coupling("affine", width=8, seed=1, dtype="float64"), (4, 4, 4))
    perturb(layer, 2)
    x = frames((4, 4, 4))
    h = layer_by_layer(layer.network, x[..., :2])  # interleaved (shift, logit) channels
    scale = tf.sigmoid(h[..., 1::2] + 2.0)
    expected = tf.concat([x[..., :2], (x[..., 2:] + h[..., 0::2]) * scale], -1)
    y, log_det = layer.bijector.forward_and_log_det(x)
    np.testing.assert_allclose(y, expected, atol=1e-10)
    np.testing.assert_allclose(log_det, tf.reduce_sum(tf.math.log(scale), [1, 2, 3]), rtol=1e-10)


def counting_network_calls(coupling_layer):
    """A list that grows by one at every run of the coupling layer's network."""
    calls = []
    original = coupling_layer.network.call
    coupling_layer.network.call = lambda *args, **kwargs: (calls.append(1)
                                                           or original(*args, **kwargs))
    return calls


def test_flow_step_is_the_chain_of_its_layers_bijectors():
    step = built(flow_lib.FlowStep("affine", width=8, seed=2, dtype="float64"), (4, 4, 6))
    perturb(step, 3)
    bijector = step.bijector
    assert [type(part) for part in bijector.bijectors] == [
        vfb.CouplingBijector, vfb.InvertibleConv1x1Bijector, vfb.ActNormBijector]
    x = frames((4, 4, 6))
    assert_bijective_and_finite(bijector, x, frames((4, 4, 6), seed=1), event_ndims=3)
    reference = tfp.bijectors.Chain([step.coupling.bijector, step.invertible_conv.bijector,
                                     step.actnorm.bijector])
    y, log_det = bijector.forward_and_log_det(x)
    np.testing.assert_allclose(y, reference.forward(x), rtol=1e-12)
    np.testing.assert_array_equal(step(x), y)
    np.testing.assert_allclose(log_det, reference.forward_log_det_jacobian(x, event_ndims=3),
                               rtol=1e-12)


def test_tfp_interface_runs_one_pass_per_direction():
    """TFP keeps a log-determinant computed with the output only in its internal
    greedy-attribute cache (flow_bijector.py): this fails if TFP changes it. A forward
    then a log-determinant at the same tensor, through a chain as TransformedDistribution
    asks, runs each coupling network once."""
    step = built(flow_lib.FlowStep("affine", width=8, seed=2, dtype="float64"), (4, 4, 6))
    calls = counting_network_calls(step.coupling)
    bijector = step.bijector
    x = frames((4, 4, 6))
    y = bijector.forward(x)
    bijector.forward_log_det_jacobian(x, event_ndims=3)
    bijector.inverse_log_det_jacobian(y, event_ndims=3)  # cached: y's inverse is x
    assert len(calls) == 1
    bijector.inverse_log_det_jacobian(tf.identity(y), event_ndims=3)  # a log-det alone
    bijector.inverse(tf.identity(y))  # a new tensor: computed again
    assert len(calls) == 3


@pytest.mark.parametrize("name,layer,shape", CASES, ids=[c[0] for c in CASES])
def test_frozen_bijectors_keep_the_weights_they_were_frozen_with(name, layer, shape):
    bijector = layer.bijector
    frozen = bijector.frozen()
    x = frames(shape)
    y, log_det = bijector.forward_and_log_det(x)
    inverse, inverse_log_det = bijector.inverse_and_log_det(y)
    for got, expected in zip(frozen.forward_and_log_det(x) + frozen.inverse_and_log_det(y),
                             (y, log_det, inverse, inverse_log_det)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    saved = [w.numpy() for w in layer.weights]
    try:
        perturb(layer, 99)
        assert not np.allclose(bijector.forward(tf.identity(x)), y)  # live: new weights
        if name != "actnorm":  # ActNorm derives nothing: frozen is the live bijector
            np.testing.assert_allclose(frozen.inverse(tf.identity(y)), inverse, atol=1e-12)
    finally:
        for weight, value in zip(layer.weights, saved):
            weight.assign(value)


def test_batch_axes_beyond_one_are_flattened_for_the_network():
    layer = CASES[2][1]  # affine relu
    x = frames((8, 8, 6), batch=6)
    y, log_det = layer.bijector.forward_and_log_det(x)
    y5, log_det5 = layer.bijector.forward_and_log_det(tf.reshape(x, [2, 3, 8, 8, 6]))
    np.testing.assert_allclose(tf.reshape(y5, y.shape), y, atol=1e-12)
    np.testing.assert_allclose(tf.reshape(log_det5, [6]), log_det, rtol=1e-12)


def test_a_recomputed_chain_gives_the_gradients_of_plain_backpropagation():
    step = built(flow_lib.FlowStep("affine", width=8, seed=2), (4, 4, 6))
    perturb(step, 4)
    x = frames((4, 4, 6), dtype=tf.float32)
    results = []
    for recompute in (False, True):
        with tf.GradientTape() as tape:
            y, log_det = step.make_bijector(recompute).forward_and_log_det(x)
            loss = tf.reduce_sum(y ** 2) - tf.reduce_sum(log_det)
        results.append(tape.gradient(loss, step.trainable_variables))
    for plain, recomputed, variable in zip(*results, step.trainable_variables):
        np.testing.assert_allclose(recomputed, plain, rtol=1e-6, atol=1e-6,
                                   err_msg=variable.path)


@pytest.mark.parametrize("kwargs,message", [
    ({"coupling": "spline"}, "coupling must be one of"),
    ({"activation": "tanh"}, "activation must be one of"),
])
def test_bad_layer_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        built(vfb.Coupling(**kwargs), (4, 4, 4))


def test_odd_channel_coupling_is_rejected():
    with pytest.raises(ValueError, match="even channel count"):
        built(vfb.Coupling(), (4, 4, 3))


def test_kernels_are_drawn_independently():
    # A Keras initialiser returns the same values on every call, so kernels sharing
    # one would start correlated; each kernel has its own stream, seeded or not.
    for seed in (0, None):
        network = built(vfb.CouplingNetwork(4, width=8, seed=seed), (4, 4, 2))
        first = network.conv_in.kernel.numpy().ravel()[:64]
        hidden = network.hidden.kernel.numpy().ravel()[:64]
        assert abs(np.corrcoef(first, hidden)[0, 1]) < 0.5
