"""Memory-saving backpropagation (config.memory_saving) and retracing of the train step."""
import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import tensorflow as tf

from helpers import TINY, noise_videos, perturbed_model
from videoflow_tf.model import flow as flow_lib

def gradient_function(model):
    """tf.function of the loss gradients, traced for an unknown batch and clip length."""
    spec = tf.TensorSpec([None, None, 8, 8, 3], tf.uint8)

    @tf.function(input_signature=[spec])
    def gradients(video):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.bits_per_pixel(video, seed=3))
        return tape.gradient(loss, model.trainable_variables)

    return gradients


def count_ops(function, op_type):
    graph = function.get_concrete_function().graph
    return sum(op.type == op_type for op in graph.get_operations())


def test_config_resolves_memory_saving():
    assert not TINY.recomputes_activations  # "auto": 8x8 frames store little
    for name in ("shapes", "bair_quant", "bair_qual"):
        config = vf.get_config(name)
        assert config.memory_saving == "auto" and config.flow_activation_bytes > 2 ** 30
        assert config.recomputes_activations
    assert TINY.replace(memory_saving="on").recomputes_activations
    assert not vf.get_config("shapes").replace(memory_saving="off").recomputes_activations
    with pytest.raises(ValueError, match=r"memory_saving = 'yes': expected one of \('auto'"):
        TINY.replace(memory_saving="yes")


@pytest.mark.parametrize("changes", [{}, dict(coupling="additive", coupling_activation="gatu")])
def test_memory_saving_gives_the_gradients_of_plain_backpropagation(changes):
    plain = perturbed_model(TINY.replace(memory_saving="off", **changes))
    saving = perturbed_model(TINY.replace(memory_saving="on", **changes))
    plain_gradients, saving_gradients = gradient_function(plain), gradient_function(saving)
    # The saving graph recomputes the flow's convolutions in its backward pass.
    assert count_ops(saving_gradients, "Conv2D") > count_ops(plain_gradients, "Conv2D")
    for batch, frames in [(2, 3), (3, 4)]:
        video = noise_videos(batch, frames, seed=batch)
        expected = plain_gradients(video)
        got = saving_gradients(video)
        assert len(got) == len(expected) == len(plain.trainable_variables)
        assert sum(a is not None for a in expected) > 0.8 * len(expected)
        for variable, a, b in zip(plain.trainable_variables, expected, got):
            if a is None:  # e.g. an unconditional prior these clips never use
                assert b is None, variable.path
                continue
            # Same operations on the same inputs: equal up to float32 rounding.
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * np.abs(a).max(),
                                       err_msg=variable.path)


def test_memory_saving_keeps_one_steps_activations():
    """Peak tensor memory of a flow's gradient: without memory saving it grows with the
    number of steps (every step's activations are stored), with it not at all. (The
    CPU allocator's statistics count large allocations only, here the 8 x 16 x 16 x 64
    hidden activations of 512 KiB; the step inputs stored instead are smaller.)"""
    x = tf.random.stateless_uniform([8, 32, 32, 3], [1, 2], -0.5, 0.5)

    def peak_bytes(num_steps, memory_saving):
        flow = flow_lib.MultiScaleGlow((32, 32, 3), num_levels=1, num_steps=num_steps,
                                       width=64, seed=0, memory_saving=memory_saving)
        flow.initialize(x)

        @tf.function
        def gradients():
            with tf.GradientTape() as tape:
                latents, _, log_det = flow.encode(x)
                loss = tf.reduce_sum(latents[-1] ** 2) - tf.reduce_sum(log_det)
            return tape.gradient(loss, flow.trainable_variables)

        gradients()  # traced and run once
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        gradients()
        return tf.config.experimental.get_memory_info("CPU:0")["peak"] - before

    plain = peak_bytes(8, False) - peak_bytes(2, False)
    saving = peak_bytes(8, True) - peak_bytes(2, True)
    # 6 more steps store at least one 512 KiB hidden activation each (two, less fusions).
    assert plain >= 6 * 2 ** 19, plain
    assert saving <= 2 ** 19, saving  # the order of the executor's ops may vary by one


class CountingTraces(vf.VideoFlow):
    """Counts the Python executions of train_step: one per trace of the train function."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.traces = 0

    def train_step(self, data):
        self.traces += 1
        return super().train_step(data)


def test_fit_traces_the_train_step_once_and_memory_saving_changes_no_update():
    trained = []
    for memory_saving in ("off", "on"):
        keras.utils.set_random_seed(0)
        model = CountingTraces(TINY.replace(memory_saving=memory_saving))
        data = noise_videos(4, 3)
        model.fit(data, batch_size=2, epochs=2, verbose=0)
        model.fit(data, batch_size=2, epochs=1, verbose=0)  # a second fit reuses it
        assert int(model.optimizer.iterations.numpy()) == 6
        assert model.traces == 1
        trained.append(model)
    for a, b in zip(*(model.trainable_variables for model in trained)):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.path)


def test_derived_weights_are_built_once_per_call_not_once_per_frame():
    model = vf.VideoFlow(TINY)
    model.initialize(noise_videos(4, 3))
    steps = TINY.num_levels * TINY.num_steps
    spec = tf.TensorSpec([None, None, 8, 8, 3], tf.uint8)

    def ops(graph_def_or_function, op_type):
        nodes = getattr(graph_def_or_function, "node", None)
        if nodes is None:
            nodes = graph_def_or_function.node_def
        return sum(node.op == op_type for node in nodes)

    # log_prob runs every frame of every video through the flow in one call: the 1x1
    # conv's W = P (L + I)(U + D) is built once per flow step (one one-hot P each).
    log_prob = tf.function(lambda v: model.log_prob(v, seed=1)).get_concrete_function(spec)
    assert ops(log_prob.graph.as_graph_def(), "OneHot") == steps
    # Sampling decodes one frame per loop iteration; W^-1 (two triangular solves) and
    # the folded kernels are built before the loop, none inside its body.
    sample = tf.function(lambda c: model.sample(c, 5, seed=1)).get_concrete_function(spec)
    graph_def = sample.graph.as_graph_def()
    bodies = [f for f in graph_def.library.function if "while_body" in f.signature.name]
    assert bodies and all(ops(body, "MatrixTriangularSolve") == 0 and ops(body, "OneHot") == 0
                          for body in bodies)
    assert ops(graph_def, "MatrixTriangularSolve") == 2 * steps
