"""Test data, models and scripts shared by the test modules (pytest.ini puts tests/ on
sys.path); the shared fixtures are in conftest.py."""
import functools
import os
import subprocess
import sys

import numpy as np

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import tensorflow as tf
import tensorflow_datasets as tfds

from videoflow_tf.config import latent_shapes
from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder as bair
from videoflow_tf.datasets.bair_action_free import fake_data
from videoflow_tf.model.latent_encoders import EncoderSpec
from videoflow_tf.model.mixture_prior import MixtureTopPrior
from videoflow_tf.model.prior import LatentPrior, LevelPrior

TINY = vf.get_config("tiny")  # 8x8 frames, 2 levels, 2 context + 2 target frames, skip
CONTEXT, TARGET = TINY.num_context_frames, TINY.num_target_frames
SHAPES_SPLIT_SIZES = {"train": 32, "validation": 8, "test": 8}  # the videos of conftest's shapes_data_dir


def moving_squares(num_videos=4, frames=4, seed=0):
    """Videos of a bright 3x3 square moving one pixel per frame on a dark background."""
    rng = np.random.default_rng(seed)
    videos = np.full((num_videos, frames, 8, 8, 3), 20, np.uint8)
    for v in range(num_videos):
        y, x = rng.integers(0, 3, size=2)
        colour = rng.integers(120, 256, size=3)
        for t in range(frames):
            videos[v, t, y + t:y + t + 3, x + t:x + t + 3] = colour
    return videos


def noise_videos(num_videos=3, frames=4, seed=0, size=8):
    """uint8 [num_videos, frames, size, size, 3] of uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (num_videos, frames, size, size, 3),
                                                np.uint8)


def perturb(layer, seed=0, scale=0.05):
    """Moves every trainable weight of `layer` off its initialisation, so that no test
    passes because of zero-initialised outputs or identity steps."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        variable.assign(variable.numpy() + scale * rng.standard_normal(variable.shape))
    return layer


# The priors of tests/test_prior.py and test_mixture_prior.py: tiny's, on 16x16 frames (the
# level-1 latents are 8x8, wide enough for the dilation-2 branch).
PRIOR_LATENT_SHAPES = latent_shapes((16, 16, 3), 2)


def make_prior(num_cond_latents=2, pad_history=False, latent_skip=True, encoder="conv3d_net",
               components=1, seed=0):
    """A built `LatentPrior` with tiny's encoder (width 8, depth 1, relu, dilations), made
    from explicit arguments; `components` > 1: a mixture top prior."""
    top = (LevelPrior if components == 1
           else functools.partial(MixtureTopPrior, components=components))
    prior = LatentPrior(PRIOR_LATENT_SHAPES, num_cond_latents, pad_history=pad_history,
                        latent_skip=latent_skip, encoder=EncoderSpec(encoder, 8, 1, True, "relu"),
                        top_prior=top, seed=seed)
    prior.build()
    return prior


def random_latents(batch, frames, seed, shapes=PRIOR_LATENT_SHAPES):
    """(latents per level [batch, frames, h, w, c], x1 per level below the top) of
    standard normals."""
    rng = np.random.default_rng(seed)
    latents = [tf.constant(rng.normal(size=(batch, frames) + s), tf.float32) for s in shapes]
    conditions = [tf.constant(rng.normal(size=(batch, frames) + s), tf.float32)
                  for s in shapes[:-1]]
    return latents, conditions


def randomize(layer, seed=0):
    """Every trainable weight of `layer` replaced by 0.2 N(0, 1) draws, so that no test
    passes because of zero-initialised outputs."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        variable.assign(0.2 * rng.normal(size=variable.shape))
    return layer


def perturbed_model(config=TINY, seed=1, scale=0.05):
    """A model initialised on moving squares, every trainable weight then perturbed (the
    same weights for every config with the same sizes)."""
    keras.utils.set_random_seed(0)  # the prior's Keras initialisers
    model = vf.VideoFlow(config)
    model.initialize(moving_squares())
    return perturb(model, seed, scale)


def write_bair_folder(root, records_by_file):
    """Writes {relative path: [tf.train.Example or raw bytes]} under root/softmotion30_44k,
    the layout of BAIR's archive; returns root."""
    for relative, records in records_by_file.items():
        path = root / bair.ROOT_FOLDER / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fake_data.write_records(path, records)
    return root


def build_bair(data_dir, manual_dir):
    """The bair_action_free builder in `data_dir`, prepared from `manual_dir`."""
    builder = bair.Builder(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def script(name):
    """The path of tests/scripts/`name`: programs the tests run in a fresh Python."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", name)


def run_script(name, *args, timeout=240, **kwargs):
    """Runs tests/scripts/`name` with `args`; its stdout, once it exited with status 0."""
    result = subprocess.run([sys.executable, script(name), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _flat(value, batch):
    """A tensor or a list of tensors [B, ...] as one [B, N] tensor (parts concatenated)."""
    parts = value if isinstance(value, (list, tuple)) else [value]
    return tf.concat([tf.reshape(part, [batch, -1]) for part in parts], axis=-1)


def _fresh(value):
    """New tensors with the same values: no TFP cache holds an entry for them."""
    return tf.nest.map_structure(tf.identity, value)


def brute_force_log_det(fn, x):
    """log|det| of the Jacobian of fn at every member of the batch x [B, ...], input and
    output (a tensor or a list of parts) flattened."""
    batch = x.shape[0]
    flat = tf.reshape(x, [batch, -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        out = _flat(fn(tf.reshape(flat, x.shape)), batch)
    return tf.linalg.slogdet(tape.batch_jacobian(out, flat))[1]


def assert_bijective_and_finite(bijector, x, y, event_ndims, rtol=1e-8, atol=1e-10,
                                jacobian_rtol=1e-8, jacobian_atol=0.0, nonzero_log_det=True):
    """What TFP's bijector_test_util.assert_bijective_and_finite checks, for a batch x of
    inputs [B, ...] and a batch y of outputs (a tensor, or a list for a multi-part
    output), plus the log-determinant against the brute-force Jacobian:

    * x, y, f(x), f^-1(y) and both log-determinants are finite;
    * f^-1(f(x)) = x and f(f^-1(y)) = y;
    * log|det df/dx| at x = -log|det df^-1/dy| at f(x), and the same at y;
    * log|det df/dx| at x is the log|det| of the Jacobian of f at x (TFP's automatic
      differentiation through the bijector's forward), and is not about 0 when
      `nonzero_log_det` (a test on identity-like weights would prove nothing);
    * if the bijector has the one-pass `forward_and_log_det` / `inverse_and_log_det`, they
      return the same output and log-determinant as TFP's interface.

    Every call gets new tensors (`tf.identity`), so no answer comes from TFP's cache.
    """
    output_event_ndims = bijector.forward_event_ndims(event_ndims)
    close = dict(rtol=rtol, atol=atol)
    forward_x = bijector.forward(_fresh(x))
    inverse_y = bijector.inverse(_fresh(y))
    fldj = bijector.forward_log_det_jacobian(_fresh(x), event_ndims=event_ndims)
    ildj = bijector.inverse_log_det_jacobian(_fresh(y), event_ndims=output_event_ndims)
    for name, value in [("x", x), ("y", y), ("f(x)", forward_x), ("f^-1(y)", inverse_y),
                        ("fldj(x)", fldj), ("ildj(y)", ildj)]:
        for part in tf.nest.flatten(value):
            assert np.all(np.isfinite(part)), f"{name} is not finite"
    tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, **close),
                          bijector.inverse(_fresh(forward_x)), x)
    tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, **close),
                          bijector.forward(_fresh(inverse_y)), y)
    np.testing.assert_allclose(fldj, -bijector.inverse_log_det_jacobian(
        _fresh(forward_x), event_ndims=output_event_ndims), **close)
    np.testing.assert_allclose(ildj, -bijector.forward_log_det_jacobian(
        _fresh(inverse_y), event_ndims=event_ndims), **close)
    expected = brute_force_log_det(bijector.forward, x)
    np.testing.assert_allclose(np.broadcast_to(fldj, expected.shape), expected,
                               rtol=jacobian_rtol, atol=jacobian_atol)
    if nonzero_log_det:
        assert np.all(np.abs(expected) > 1e-2), "weights this close to the identity prove nothing"
    if hasattr(bijector, "forward_and_log_det"):
        one_pass_y, one_pass_fldj = bijector.forward_and_log_det(_fresh(x))
        one_pass_x, one_pass_ildj = bijector.inverse_and_log_det(_fresh(y))
        tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, **close),
                              one_pass_y, forward_x)
        tf.nest.map_structure(lambda a, b: np.testing.assert_allclose(a, b, **close),
                              one_pass_x, inverse_y)
        np.testing.assert_allclose(np.broadcast_to(one_pass_fldj, np.shape(fldj)), fldj,
                                   **close)
        np.testing.assert_allclose(np.broadcast_to(one_pass_ildj, np.shape(ildj)), ildj,
                                   **close)
