import math

import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from helpers import TINY, moving_squares, noise_videos, perturb, perturbed_model
from videoflow_tf.config import LATENT_ENCODERS
from videoflow_tf.training.callbacks import BatchValues, StopOnNonFiniteLoss, WarnAboveUniform

PIXELS = 8 * 8 * 3


@pytest.fixture(scope="module")
def model():
    """An initialised tiny model with random (non-zero) prior outputs, shared read-only."""
    model = vf.VideoFlow(TINY)
    model.initialize(moving_squares())
    perturb(model.prior, seed=1)
    return model


def test_bits_per_pixel_is_log_prob_in_bits_and_averages_per_frame(model):
    video = noise_videos(frames=5)
    log_prob = model.log_prob(video, seed=3)
    bpp = model.bits_per_pixel(video, seed=3)
    per_frame = model.bits_per_pixel(video, seed=3, per_frame=True)
    assert log_prob.shape == (3,) and per_frame.shape == (3, 3)
    np.testing.assert_allclose(bpp, -log_prob / (math.log(2) * PIXELS * 3), rtol=1e-6)
    np.testing.assert_allclose(tf.reduce_mean(per_frame, axis=1), bpp, rtol=1e-6)
    assert model(video).shape == (3,)


@pytest.mark.parametrize("encoder", LATENT_ENCODERS)
def test_config_seed_fixes_every_initial_weight(encoder):
    config = TINY.replace(latent_encoder=encoder, top_prior_components=2)
    first, second = vf.VideoFlow(config), vf.VideoFlow(config)
    other = vf.VideoFlow(config.replace(seed=config.seed + 1))
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    random = [w.path for w, v in zip(first.weights, other.weights)
              if not np.array_equal(w.numpy(), v.numpy())]
    assert any(path.startswith("prior/") for path in random)
    assert any(path.startswith("level") for path in random)  # the flow's


def test_seed_fixes_the_dequantisation_noise(model):
    video = noise_videos()
    np.testing.assert_array_equal(model.log_prob(video, seed=4), model.log_prob(video, seed=4))
    assert not np.allclose(model.log_prob(video, seed=4), model.log_prob(video, seed=5))


def test_scores_are_causal(model):
    video = noise_videos(frames=5)
    changed = video.copy()
    changed[:, 3] = 255 - changed[:, 3]
    before = model.bits_per_pixel(video, seed=6, per_frame=True)
    after = model.bits_per_pixel(changed, seed=6, per_frame=True)
    np.testing.assert_array_equal(before[:, :1], after[:, :1])  # frame 2
    assert np.all(np.abs(before[:, 1:] - after[:, 1:]) > 1e-3)  # frames 3 (changed) and 4


@pytest.mark.parametrize("changes", [dict(), dict(latent_skip=False, num_cond_latents=3)])
def test_at_initialisation_every_prior_is_standard_normal(changes):
    """log p = sum_t [log N(z_t; mu_t, 1) + log|det|] - H*W*C*ln 256 with mu_t = z_{t-1}
    under latent_skip, else 0 (frame 2 of the second case lacks 3 predecessors and uses the
    unconditional prior, also N(0, 1) at initialisation)."""
    config = TINY.replace(**changes)
    model = vf.VideoFlow(config)
    model.initialize(moving_squares())
    video = noise_videos(frames=4)
    noise = tf.random.stateless_uniform(video.shape[1:], [7, 0], 0.0, 1.0 / 256.0)  # all videos
    x = tf.cast(video, tf.float32) / 255.0 - 0.5 + noise
    latents, _, log_det = model.flow.encode(tf.reshape(x, [-1, 8, 8, 3]))
    expected = tf.reshape(log_det, [3, 4])[:, 2:] - PIXELS * math.log(256.0)
    for z in latents:
        z = tf.reshape(z, [3, 4] + z.shape[1:].as_list())
        mean = z[:, 1:3] if config.latent_skip else tf.zeros_like(z[:, 2:])
        standard = tfp.distributions.Normal(mean, 1.0)
        expected += tf.reduce_sum(standard.log_prob(z[:, 2:]), axis=[2, 3, 4])
    np.testing.assert_allclose(model.log_prob(video, seed=7), tf.reduce_sum(expected, axis=1),
                               rtol=1e-5)


def test_log_likelihood_is_a_transformed_distribution_through_the_flows_bijector():
    """With latent_skip off, every prior is N(0, 1) at initialisation (zero-initialised
    heads), so log p(x_t | x_<t) of each scored frame is the log-density of
    tfd.TransformedDistribution(N(0, I), model.flow.bijector) at the dequantised frame,
    minus H*W*C*ln 256. The flow's weights are perturbed off the identity."""
    model = vf.VideoFlow(TINY.replace(latent_skip=False))
    model.initialize(moving_squares())
    rng = np.random.default_rng(2)
    for variable in model.flow.trainable_variables:
        variable.assign(variable + 0.05 * rng.normal(size=variable.shape))
    video = noise_videos(frames=4)
    noise = tf.random.stateless_uniform(video.shape[1:], [7, 0], 0.0, 1.0 / 256.0)
    x = tf.cast(video, tf.float32) / 255.0 - 0.5 + noise
    distribution = tfp.distributions.TransformedDistribution(
        tfp.distributions.Sample(tfp.distributions.Normal(0.0, 1.0), [PIXELS]),
        model.flow.bijector)
    frame_log_prob = tf.reshape(distribution.log_prob(tf.reshape(x, [-1, 8, 8, 3])), [3, 4])
    expected = tf.reduce_sum(frame_log_prob[:, 2:], axis=1) - 2 * PIXELS * math.log(256.0)
    np.testing.assert_allclose(model.log_prob(video, seed=7), expected, rtol=1e-5)


def test_log_likelihood_is_the_prior_of_the_bijectors_latents_plus_its_log_det():
    """A trained-like model (every weight perturbed, so the priors are not N(0, 1)):
    log p(x_t | x_<t) = log p_prior(z_t | z_<t) - log|det dx/dz| at z_t, the flat latent
    that model.flow.bijector (latent -> frame) maps to the dequantised frame x_t, minus
    H*W*C*ln 256; bits per pixel divide minus that by ln 2 * H*W*C per scored frame."""
    model = perturbed_model()
    video = noise_videos(frames=4)
    noise = tf.random.stateless_uniform(video.shape[1:], [7, 0], 0.0, 1.0 / 256.0)
    x = tf.reshape(tf.cast(video, tf.float32) / 255.0 - 0.5 + noise, [-1, 8, 8, 3])
    bijector = model.flow.bijector
    z = bijector.inverse(x)
    log_det = tf.reshape(-bijector.forward_log_det_jacobian(tf.identity(z)), [3, 4])
    latents = [tf.reshape(level, [3, 4, *level.shape[1:]])
               for level in model.flow.unflatten_latents(z)]
    _, conditions, _ = model.encode_values(tf.reshape(x, [3, 4, 8, 8, 3]))
    frame_log_prob = model.prior.log_prob(latents, conditions, 2) + log_det[:, 2:]
    expected = tf.reduce_sum(frame_log_prob, axis=1) - 2 * PIXELS * math.log(256.0)
    np.testing.assert_allclose(model.log_prob(video, seed=7), expected, rtol=1e-5)
    np.testing.assert_allclose(model.bits_per_pixel(video, seed=7),
                               -expected / (math.log(2.0) * PIXELS * 2), rtol=1e-5)


def test_decode_inverts_encode(model):
    video = noise_videos()
    latents = model.encode(video)
    assert [tuple(z.shape) for z in latents] == [(3, 4, 4, 4, 6), (3, 4, 2, 2, 24)]
    decoded = model.decode(latents)
    assert decoded.dtype == tf.uint8
    np.testing.assert_array_equal(decoded, video)
    for again, z in zip(model.encode(decoded), latents):
        np.testing.assert_allclose(again, z, atol=1e-5)


def test_output_pixels_invert_the_dequantised_input_map():
    """Every dequantised value of pixel k (k/255 - 0.5 + u, u in [0, 1/256)) decodes to k,
    so a sampled frame is the pixel whose bin its value lies in."""
    from videoflow_tf.model.pixels import to_uint8
    k = np.arange(256, dtype=np.float32)
    for u in (0.0, 0.25 / 256, 0.5 / 256, 0.75 / 256, 0.999 / 256):
        x = tf.constant(k / 255.0 - 0.5 + u, tf.float32)
        np.testing.assert_array_equal(to_uint8(x).numpy(), k.astype(np.uint8))


def test_sampling_is_seeded_and_temperature_zero_is_deterministic(model):
    context = noise_videos(frames=2)
    first = model.sample(context, 3, seed=11)
    assert first.shape == (3, 3, 8, 8, 3) and first.dtype == tf.uint8
    np.testing.assert_array_equal(first, model.sample(context, 3, seed=11))
    assert not np.array_equal(first, model.sample(context, 3, seed=12))
    np.testing.assert_array_equal(model.sample(context, 3, temperature=0.0, seed=1),
                                  model.sample(context, 3, temperature=0.0, seed=2))
    # A longer context: only the last num_cond_latents frames condition the future.
    longer = np.concatenate([noise_videos(frames=1, seed=9), context], axis=1)
    np.testing.assert_array_equal(model.sample(longer, 3, seed=11), first)


def test_sampling_from_a_short_context_uses_unconditional_priors():
    """With num_cond_latents 3, the first frame after a 2-frame context has too few
    predecessors: every level's prior is unconditional, so the frame does not depend on
    the context. The next one has 3 and is drawn from the conditional priors, which read it."""
    config = TINY.replace(num_cond_latents=3)
    model = vf.VideoFlow(config)
    model.initialize(moving_squares())
    perturb(model.prior, seed=2)
    one, other = (model.sample(noise_videos(frames=2, seed=seed), 2, seed=3)
                  for seed in (0, 5))
    assert one.shape == (3, 2, 8, 8, 3)
    np.testing.assert_array_equal(one[:, 0], other[:, 0])
    assert not np.array_equal(one[:, 1], other[:, 1])


def test_padded_history_samples_as_if_the_first_frame_had_stood_still():
    """With pad_history a one-frame context is conditioned on: it samples exactly as that
    frame repeated num_cond_latents times; the paper's rule samples from the
    unconditional prior instead, which ignores the context."""
    config = TINY.replace(num_context_frames=1, pad_history=True)
    model = vf.VideoFlow(config)
    model.initialize(moving_squares())
    perturb(model.prior, seed=2)
    one = noise_videos(frames=1)
    # At temperature 0 the context frames are their bin centres: two copies of a frame
    # are then exactly "standing still".
    padded = model.sample(one, 3, temperature=0.0, seed=4)
    np.testing.assert_array_equal(
        padded, model.sample(np.repeat(one, 2, axis=1), 3, temperature=0.0, seed=4))
    unpadded = vf.VideoFlow(config.replace(pad_history=False))
    unpadded.initialize(moving_squares())
    unpadded.set_weights(model.get_weights())
    assert not np.array_equal(unpadded.sample(one, 3, temperature=0.0, seed=4), padded)
    # Under the paper's rule the first new frame does not depend on the context frame.
    np.testing.assert_array_equal(unpadded.sample(one, 1, seed=4),
                                  unpadded.sample(noise_videos(frames=1, seed=7), 1, seed=4))


def test_gradient_clipping_shrinks_the_first_update():
    """Adam's first update is lr * g / (|g| + epsilon) per weight, so clipping the global
    norm to far below epsilon makes it tiny; unclipped it is about lr."""
    videos = moving_squares(frames=3)
    changes = {}
    for clip in (None, 1e-9):
        model = vf.VideoFlow(TINY.replace(gradient_clip_norm=clip, learning_rate=1e-2))
        model.initialize(videos)
        before = [w.numpy() for w in model.trainable_weights]
        model.fit(videos, batch_size=4, epochs=1, verbose=0)
        changes[clip] = max(np.abs(w.numpy() - b).max()
                            for w, b in zip(model.trainable_weights, before))
    assert changes[None] > 1e-3
    assert changes[1e-9] < 1e-4 * changes[None]


def test_prior_beta_trains_differently_from_the_same_exact_loss():
    """beta-NLL changes the gradient, not the loss: from the same weights (random prior
    outputs, so that sigma is not 1 everywhere) and noise the first step reports the same
    bits per pixel, and the updated models differ."""
    videos = moving_squares(frames=3)
    losses, weights = {}, {}
    for beta in (0.0, 0.5):
        model = vf.VideoFlow(TINY.replace(seed=3, prior_beta=beta, learning_rate=1e-2))
        model.initialize(videos)
        perturb(model.prior, seed=1)
        history = model.fit(videos, batch_size=8, epochs=2, verbose=0, shuffle=False)
        losses[beta] = history.history["loss"]
        weights[beta] = [w.numpy() for w in model.prior.trainable_weights]
    assert losses[0.0][0] == pytest.approx(losses[0.5][0], rel=1e-6)
    assert losses[0.0][1] != pytest.approx(losses[0.5][1], rel=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(weights[0.0], weights[0.5])) > 1e-4


def test_a_video_bpp_cap_reweights_only_videos_above_it_and_reports_exact_bpp():
    """From the same weights and noise, a cap above every video's bits per pixel trains
    as no cap does; a cap below them all weights each video by cap / its bpp, so the
    updates differ, while the reported bits per pixel stay exact."""
    videos = moving_squares(frames=3)
    losses, weights = {}, {}
    for cap in (None, 1e6, 1e-3):
        model = vf.VideoFlow(TINY.replace(seed=3, video_bpp_cap=cap, learning_rate=1e-2))
        model.initialize(videos)
        history = model.fit(videos, batch_size=8, epochs=2, verbose=0, shuffle=False)
        losses[cap] = history.history["loss"]
        weights[cap] = [w.numpy() for w in model.trainable_weights]
    assert losses[1e6][0] == losses[1e-3][0] == pytest.approx(losses[None][0], rel=1e-6)
    assert losses[1e6][1] == pytest.approx(losses[None][1], rel=1e-5)
    for a, b in zip(weights[None], weights[1e6]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(weights[None], weights[1e-3])) > 1e-4


def test_mixed_precision_model_scores_like_float32_and_trains(tmp_path):
    """The same weights with the coupling networks in bfloat16: bits per pixel within
    0.1% (not identical: the networks really run in bfloat16), float32 results, exact
    decode of its own encoding, a .keras round trip that keeps bfloat16, and a training
    step that updates every flow weight."""
    model = vf.VideoFlow(TINY)
    model.initialize(moving_squares())
    perturb(model.flow, seed=3, scale=0.02)  # zero output convs would hide the difference
    mixed = vf.VideoFlow(TINY.replace(mixed_precision=True))
    mixed.initialize(moving_squares())
    mixed.set_weights(model.get_weights())
    video = noise_videos(frames=4)
    bpp, reference = mixed.bits_per_pixel(video, seed=3), model.bits_per_pixel(video, seed=3)
    assert bpp.dtype == tf.float32
    assert not np.array_equal(bpp, reference)
    np.testing.assert_allclose(bpp, reference, rtol=1e-3)
    np.testing.assert_array_equal(mixed.decode(mixed.encode(video)), video)
    mixed.save(tmp_path / "mixed.keras")
    loaded = keras.models.load_model(tmp_path / "mixed.keras")
    assert loaded.config.mixed_precision
    np.testing.assert_array_equal(loaded.bits_per_pixel(video, seed=3), bpp)
    before = [w.numpy() for w in mixed.flow.trainable_weights]
    mixed.fit(moving_squares(frames=3), batch_size=4, epochs=1, verbose=0)
    assert all(not np.array_equal(w.numpy(), b)
               for w, b in zip(mixed.flow.trainable_weights, before))


def test_methods_in_tf_function_with_unknown_batch_and_length(model):
    video_spec = tf.TensorSpec([None, None, 8, 8, 3], tf.uint8)
    log_prob = tf.function(lambda v: model.log_prob(v, seed=2), input_signature=[video_spec])
    # The perturbed fixture's samples diverge (|x| up to 1e10), where eager and traced
    # rounding differ; an unperturbed model's samples stay within a few units.
    tame = vf.VideoFlow(TINY)
    tame.initialize(moving_squares())
    sample = tf.function(lambda c: tame.sample(c, 4, seed=5), input_signature=[video_spec])
    for batch, frames in [(1, 3), (3, 5)]:
        video = noise_videos(batch, frames)
        np.testing.assert_allclose(log_prob(video), model.log_prob(video, seed=2), rtol=1e-5)
        np.testing.assert_array_equal(sample(video), tame.sample(video, 4, seed=5))


def test_sample_memory_is_flat_in_the_number_of_frames(model):
    """A 100-frame rollout runs one loop body: its graph is no bigger than a 2-frame one."""
    sample = tf.function(lambda c, n: model.sample(c, n, seed=1))
    context = noise_videos(1, 2)
    sizes = [len(sample.get_concrete_function(context, n).graph.get_operations())
             for n in (2, 100)]  # Python ints: one trace each
    assert sizes[0] == sizes[1]
    frames = sample(context, 100)
    assert frames.shape == (1, 100, 8, 8, 3)
    np.testing.assert_array_equal(frames[:, :2], sample(context, 2))


def test_interpolation_runs_from_one_video_to_the_other(model):
    a, b = noise_videos(2, 2, seed=1), noise_videos(2, 2, seed=2)
    frames = model.interpolate(a, b, 4)
    assert frames.shape == (2, 4, 2, 8, 8, 3)
    np.testing.assert_array_equal(frames[:, 0], a)
    np.testing.assert_array_equal(frames[:, -1], b)
    assert not np.array_equal(frames[:, 1], a) and not np.array_equal(frames[:, 1], b)


@pytest.mark.parametrize("call, message", [
    (lambda m: m.log_prob(noise_videos().astype(np.float32)), "uint8"),
    (lambda m: m.log_prob(noise_videos()[0]), "shape"),
    (lambda m: m.log_prob(np.zeros((2, 4, 16, 16, 3), np.uint8)), r"8, 8, 3\]"),
    (lambda m: m.log_prob(np.zeros((2, 4, 8, 8, 1), np.uint8)), r"8, 8, 3\]"),
    (lambda m: m.log_prob(noise_videos(frames=2)), "frames >= 3"),
    (lambda m: m.sample(noise_videos(frames=1), 2), "frames >= 2"),
    (lambda m: m.sample(noise_videos(frames=2), 2, temperature=-1.0), "temperature"),
    (lambda m: m.sample(noise_videos(frames=2), 0), "num_frames"),
    (lambda m: m.sample(noise_videos(frames=2), 2, seed=1.5), "seed must be an int"),
    (lambda m: m.log_prob(noise_videos(), seed=1.5), "seed must be an int"),
    (lambda m: m.decode([tf.zeros([1, 1, 4, 4, 6])]), "2 float32 tensors"),
    (lambda m: m.interpolate(noise_videos(2), noise_videos(3), 3), "same batch size"),
    (lambda m: m.interpolate(noise_videos(2), noise_videos(2), 1), "num_steps"),
    (lambda m: vf.VideoFlow("tiny"), "VideoFlowConfig"),
])
def test_bad_inputs_raise_value_errors_saying_what_was_expected(model, call, message):
    with pytest.raises(ValueError, match=message):
        call(model)


def test_fit_initialises_itself_and_drives_bits_per_pixel_down():
    keras.utils.set_random_seed(0)
    model = vf.VideoFlow(TINY)
    videos = moving_squares(num_videos=4, frames=3)
    assert int(model.is_initialized.numpy()) == 0
    history = model.fit(videos, batch_size=4, epochs=50, verbose=0)
    assert int(model.is_initialized.numpy()) == 1
    bpp = history.history["bpp"]
    assert np.isfinite(bpp).all() and history.history["loss"] == bpp
    assert np.mean(bpp[-5:]) < bpp[0] - 2.0, bpp  # from about 7.8 bits per pixel
    evaluated = model.evaluate(np.concatenate([videos, videos[:, :1]], axis=1), verbose=0,
                               return_dict=True)["bpp"]
    seeded = [float(tf.reduce_mean(model.bits_per_pixel(
        np.concatenate([videos, videos[:, :1]], axis=1), seed=s))) for s in range(5)]
    # evaluate scores the 2 target frames after the 2 context frames with random noise.
    assert abs(evaluated - np.mean(seeded)) < 5 * np.std(seeded) + 1e-4


def test_fit_under_a_strategy_calls_the_override_of_keras_symbolic_build():
    """VideoFlow overrides Keras' private `_maybe_symbolic_build` (its docstring says why
    no public API serves). This fails if Keras stops calling it from `fit` or changes
    its arguments, which would leave the override dead or break `fit`."""
    calls = []

    class Recording(vf.VideoFlow):
        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            calls.append((iterator is not None, data_batch))
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        model = Recording(TINY)
    model.fit(moving_squares(frames=3), batch_size=4, epochs=1, verbose=0)
    assert calls == [(True, None)]
    assert int(model.optimizer.iterations.numpy()) == 1


def test_fit_from_a_dataset_cuts_random_training_windows():
    """Each video of a batch of whole 5-frame videos is trained on its own window of
    num_train_frames (3) consecutive frames, drawn from its first train_clip_frames (4):
    starting at frame 0 or 1, never 2."""
    model = vf.VideoFlow(TINY.replace(init_batch_size=3))
    model.compile(optimizer=vf.make_optimizer(model.config), run_eagerly=True)
    # Every pixel of frame t of video v is 20 t + v.
    videos = (20 * np.arange(5)[None, :] + np.arange(12)[:, None]).astype(np.uint8)
    videos = np.broadcast_to(videos[..., None, None, None], (12, 5, 8, 8, 3))
    windows, score = [], model._bits_per_pixel

    def recording_score(video, *args, training=False, **kwargs):
        if training:
            windows.append(video.numpy()[:, :, 0, 0, 0])
        return score(video, *args, training=training, **kwargs)

    model._bits_per_pixel = recording_score
    dataset = tf.data.Dataset.from_tensor_slices(videos).batch(2)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert int(model.is_initialized.numpy()) == 1
    assert np.isfinite(history.history["bpp"]).all()
    assert int(model.optimizer.iterations.numpy()) == 6
    windows = np.concatenate(windows).astype(int)
    frames, video = windows // 20, windows % 20
    assert windows.shape == (12, 3)
    np.testing.assert_array_equal(video, np.arange(12)[:, None] + 0 * video)
    np.testing.assert_array_equal(np.diff(frames, axis=1), 1)
    assert set(frames[:, 0]) == {0, 1}
    assert any(a != b for a, b in frames[:, 0].reshape(-1, 2))  # per video, not per batch


@pytest.mark.parametrize("encoder", LATENT_ENCODERS)
def test_every_encoder_builds_and_trains_a_step(encoder):
    model = vf.VideoFlow(TINY.replace(latent_encoder=encoder))
    head = model.prior.levels[0].encoder.head
    model.fit(moving_squares(frames=3), batch_size=4, epochs=1, verbose=0)
    assert np.abs(head.kernel.numpy()).max() > 0  # the zero-initialised output moved


def test_the_finest_levels_encoder_alone_takes_latent_encoder_width_level1():
    def encoder_sizes(model):
        return [sum(int(np.prod(w.shape)) for w in level.encoder.weights)
                for level in model.prior.levels]

    same = vf.VideoFlow(TINY)
    narrow = vf.VideoFlow(TINY.replace(latent_encoder_width_level1=4))
    wide = vf.VideoFlow(TINY.replace(latent_encoder_width_level1=TINY.latent_encoder_width))
    assert encoder_sizes(wide) == encoder_sizes(same)
    assert encoder_sizes(narrow)[1:] == encoder_sizes(same)[1:]
    assert encoder_sizes(narrow)[0] < encoder_sizes(same)[0]
    history = narrow.fit(moving_squares(frames=3), batch_size=4, epochs=1, verbose=0).history
    assert np.isfinite(history["bpp"][-1])


def test_keras_file_and_checkpoint_round_trips(model, tmp_path):
    trained = vf.VideoFlow(TINY)
    trained.fit(moving_squares(frames=3), batch_size=4, epochs=2, verbose=0)
    video = noise_videos()
    path = str(tmp_path / "m.keras")
    trained.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, vf.VideoFlow) and loaded.config == TINY
    np.testing.assert_array_equal(loaded.log_prob(video, seed=1), trained.log_prob(video, seed=1))
    np.testing.assert_array_equal(loaded.sample(video, 2, seed=1), trained.sample(video, 2, seed=1))
    assert int(loaded.is_initialized.numpy()) == 1
    assert int(loaded.optimizer.iterations.numpy()) == 2
    restored = vf.VideoFlow.from_config(trained.get_config())
    restored.compile(optimizer=vf.make_optimizer(TINY))
    restored.optimizer.build(restored.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=trained).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=restored).restore(checkpoint).assert_consumed()
    assert int(restored.optimizer.iterations.numpy()) == 2
    np.testing.assert_array_equal(restored.log_prob(video, seed=1),
                                  trained.log_prob(video, seed=1))


class PoisonedVideoFlow(vf.VideoFlow):
    """Its loss turns NaN once `poison` is set to NaN."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.poison = tf.Variable(1.0, trainable=False)

    def _bits_per_pixel(self, video, first, seed, training=False):
        return super()._bits_per_pixel(video, first, seed, training) * self.poison


def test_a_non_finite_loss_stops_training_without_applying_the_bad_update():
    model = PoisonedVideoFlow(TINY)
    snapshots = {}

    class PoisonAtThirdStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                snapshots["good"] = [w.copy() for w in model.get_weights()]
                model.poison.assign(float("nan"))

    stop = StopOnNonFiniteLoss()
    data = tf.data.Dataset.from_tensor_slices(moving_squares(4, frames=3)).batch(1).repeat()
    model.fit(data, steps_per_epoch=10, epochs=2, verbose=0, callbacks=[PoisonAtThirdStep(), stop])
    assert stop.bad_step == 3
    assert int(model.optimizer.iterations.numpy()) == 2
    for after, good in zip(model.get_weights(), snapshots["good"]):
        np.testing.assert_array_equal(after, good)


def test_a_step_scoring_above_a_uniform_guess_after_the_run_scored_below_is_warned_about(
        capsys):
    model = PoisonedVideoFlow(TINY)
    # Scale each step's bits per pixel: above 8 before the run has learnt (no warning),
    # below, then a collapse at step 4 and below again.
    factors = {1: 1e3, 2: 1e3, 4: 1e6}

    class Poison(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            step = int(model.optimizer.iterations.numpy()) + 1
            model.poison.assign(factors.get(step, 1e-3))

    data = tf.data.Dataset.from_tensor_slices(moving_squares(4, frames=3)).batch(1).repeat()
    model.fit(data, steps_per_epoch=5, epochs=2, verbose=0,
              callbacks=[Poison(), WarnAboveUniform()])
    warnings = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("WarnAboveUniform")]
    assert len(warnings) == 1, warnings
    assert "from step 4 " in warnings[0] and "at step 4)" in warnings[0]
    assert "video_bpp_cap" in warnings[0]


def test_each_batchs_bits_per_pixel_is_recovered_after_a_batch_of_1e12():
    model = PoisonedVideoFlow(TINY)
    recovered = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            model.poison.assign(1e12 if batch == 1 else 1e-3)

        def on_epoch_begin(self, epoch, logs=None):
            self.values = BatchValues("bpp")

        def on_train_batch_end(self, batch, logs=None):
            recovered.append(self.values.update(batch, logs))

    data = tf.data.Dataset.from_tensor_slices(moving_squares(4, frames=3)).batch(1).repeat()
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0, callbacks=[Record()])
    assert recovered[1] > 1e10
    # A float32 running mean gives these as multiples of about 1e6, of either sign.
    assert all(0 < value < 1 for value in recovered[2:]), recovered
