"""Sampling futures from a VideoFlow model, frame by frame, with every draw accounted for.

For each new frame: z_top is drawn from its prior, then the flow runs in reverse level by
level, each level's latent drawn from its prior given the level's past latents and the
coarser levels of this frame; the new latents join the history. At temperature 1 the
context frames are dequantised exactly as in training (seeded noise within each pixel's
bin, from the model's dequantizer), so the samples are draws from the same density that
`log_prob` scores.

`sample(model, ...)` returns a `Samples` record: the uint8 frames, the values before
rounding, the drawn latents, and for each frame the log-density of its draws under the
priors that drew them and the flow's log-determinant, so that

    model.log_density(concat(context_values, values))  ==  log_prob + log_det

holds exactly (up to float rounding): the samples are what the model scores.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from videoflow_tf.model import pixels

# Salts that keep a video's random streams apart: its context's dequantisation noise, and
# per sampled frame and level the standard normals and the mixture-component uniforms.
_CONTEXT_NOISE, _NORMALS, _COMPONENTS = 0, 1, 2


@dataclasses.dataclass(frozen=True)
class Samples:
    """What `sample` drew, for B videos and N new frames.

    frames: uint8 [B, N, H, W, 3], the sampled frames.
    values: float32 [B, N, H, W, 3], the flow's output before rounding to pixels.
    context_values: float32 [B, K', H, W, 3], the dequantised context frames the samples
      are conditioned on (the last K' = min(context frames, num_cond_latents)).
    latents: per level, finest first, float32 [B, N, h, w, c]: the draws.
    log_prob: float32 [B, N], log-density of each frame's draws under the (untempered)
      priors that drew them, summed over levels.
    log_det: float32 [B, N], log|det dz/dx| of the flow at `values`.
    invalid: int32 [B], sampled subpixels that are NaN or outside the pixel range before
      clipping (`pixels.invalid_count`).
    """
    frames: tf.Tensor
    values: tf.Tensor
    context_values: tf.Tensor
    latents: list
    log_prob: tf.Tensor
    log_det: tf.Tensor
    invalid: tf.Tensor


def sample(model, context, num_frames, temperature, seed):
    """`Samples` of `num_frames` frames after uint8 `context` [B, Tc, H, W, 3] (checked by
    the caller). temperature: float32 scalar or [B, 1, 1, 1]; seed: see `row_seeds`.

    A tf.while_loop carries a fixed-size history of num_cond_latents frames, so the graph
    does not grow with num_frames.
    """
    config, flow, prior = model.config, model.flow, model.prior
    num_cond, top = config.num_cond_latents, config.num_levels - 1
    streams = row_seeds(seed, context)
    context = context[:, -num_cond:]
    context_values = _dequantize_context(model.dequantizer, context, streams, temperature)
    latents, _, _ = model.encode_values(context_values)
    histories = [_last_frames(z, num_cond, config.pad_history) for z in latents]
    known = tf.minimum(tf.shape(context)[1], num_cond)
    conditional_now = (True if _static_at_least(context, config.min_history)
                       else None)  # else decided per frame at run time
    decoder = flow.frozen_bijector()  # W^-1 and folded kernels once, not once per frame

    def body(step, known, histories, outputs):
        conditional = (conditional_now if conditional_now is not None
                       else known >= config.min_history)
        densities = []

        def draw_level(level, x1):
            distribution = prior.distribution(level, histories[level], x1, conditional)
            normal = row_normals(streams, config.latent_shapes[level], _NORMALS, step, level)
            uniform = row_uniforms(streams, [], 1.0, _COMPONENTS, step, level)
            z = prior.levels[level].draw(distribution, temperature, normal, uniform)
            densities.append(distribution.log_prob(z))
            return z

        x, new_latents, decode_log_det = flow.decode_sampling(draw_level(top, None),
                                                              draw_level, decoder)
        histories = [tf.concat([h[:, 1:], z[:, None]], axis=1)
                     for h, z in zip(histories, new_latents)]
        written = [array.write(step, value) for array, value in zip(
            outputs, [x, tf.add_n(densities), -decode_log_det] + new_latents)]
        return step + 1, tf.minimum(known + 1, num_cond), histories, written

    shapes = [config.image_shape, (), ()] + list(config.latent_shapes)
    outputs = [tf.TensorArray(tf.float32, size=num_frames,
                              element_shape=tf.TensorShape([None] + list(shape)))
               for shape in shapes]
    _, _, _, outputs = tf.while_loop(lambda step, *_: step < num_frames, body,
                                     (tf.constant(0), known, histories, outputs))
    # [N, B, ...] -> [B, N, ...]
    values, log_prob, log_det, *latents = [_batch_major(array.stack()) for array in outputs]
    static_frames = tf.get_static_value(num_frames)
    frames = pixels.to_uint8(values)
    return Samples(
        frames=tf.ensure_shape(frames, [None, static_frames] + list(config.image_shape)),
        values=values, context_values=context_values, latents=latents, log_prob=log_prob,
        log_det=log_det, invalid=pixels.invalid_count(values, axis=[1, 2, 3, 4]))


def _dequantize_context(dequantizer, context, streams, temperature):
    """The context's pixels dequantised by the model's `dequantizer`: at temperature 1
    as in training, and shrunk towards the bin's centre (q's, for a variational one) like
    every other draw at lower temperatures, so that temperature 0 is deterministic given
    the mixture components picked."""
    noise = row_uniforms(streams, tf.shape(context)[1:], 1.0, _CONTEXT_NOISE)
    return dequantizer.sample_values(context, noise, tf.minimum(temperature, 1.0))


def _batch_major(stacked):
    return tf.transpose(stacked, [1, 0] + list(range(2, stacked.shape.rank)))


def check_temperature(temperature, context):
    """float32 temperature: a scalar, or [B, 1, 1, 1] to scale [B, h, w, c] sigmas.
    Negative or non-finite values raise ValueError, or InvalidArgumentError at run
    time when only known then."""
    expected = "a finite number >= 0, or one per video [batch]"
    temperature = tf.cast(temperature, tf.float32)
    if temperature.shape.rank not in (0, 1):
        raise ValueError(f"temperature must be {expected}; got shape {temperature.shape}")
    static = tf.get_static_value(temperature)
    if static is not None:
        if not np.all(np.isfinite(static) & (static >= 0)):
            raise ValueError(f"temperature must be {expected}; got {static}")
    else:
        check = tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(temperature) & (temperature >= 0)),
            [f"temperature must be {expected}; got", temperature])
        with tf.control_dependencies([check]):
            temperature = tf.identity(temperature)
    if temperature.shape.rank == 0:
        return temperature
    temperature = _check_one_per_video(temperature, context, "temperature")
    return tf.reshape(temperature, [-1, 1, 1, 1])


def seed_tensor(seed):
    """An int32 [2] stateless seed from an int, a pair, or None (a fresh random one)."""
    if seed is None:
        return tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:  # a cast would turn 1.5 into the seed 1 without a word
        raise ValueError(f"seed must be an int or a pair of ints; got {seed.dtype.name}")
    if seed.shape.rank == 0:
        seed = tf.stack([seed, 0])
    return tf.cast(seed, tf.int32)


def row_seeds(seed, context):
    """int32 [B, 2]: the stateless seed of each video's random stream. `seed` is an int
    from which the B streams derive, one integer per video [B] (video b's stream then
    depends on seed[b] alone, so a video gives the same frames alone or in any batch), or
    None for a fresh random seed."""
    if seed is None or tf.convert_to_tensor(seed).shape.rank == 0:
        return tf.random.experimental.stateless_split(seed_tensor(seed), tf.shape(context)[0])
    seeds = tf.convert_to_tensor(seed)
    if seeds.shape.rank != 1 or not seeds.dtype.is_integer:
        raise ValueError("seed must be an int or one integer per video [batch]; got "
                         f"{seeds.dtype.name} of shape {seeds.shape}")
    seeds = _check_one_per_video(seeds, context, "seed")
    # The two 32-bit halves of the int64 seed: a video's stream depends on its seed alone.
    return tf.bitcast(tf.cast(seeds, tf.int64), tf.int32)


def _check_one_per_video(values, context, name):
    """`values` [N] if N is the batch size of context, else ValueError (or
    InvalidArgumentError at run time, before anything uses the values)."""
    expected = f"{name} must be a scalar or have one value per video"
    if values.shape[0] is not None and context.shape[0] is not None:
        if values.shape[0] != context.shape[0]:
            raise ValueError(f"{expected} ([{context.shape[0]}]); got shape {values.shape}")
        return values
    check = tf.debugging.assert_equal(tf.shape(values)[0], tf.shape(context)[0],
                                      message=f"{expected} of context ([batch])")
    with tf.control_dependencies([check]):
        return tf.identity(values)


def _row_draws(row_seeds_, draw_fn, salt):
    def one_row(seed):
        for value in salt:
            seed = tf.random.experimental.stateless_fold_in(seed, value)
        return draw_fn(seed)

    return tf.map_fn(one_row, row_seeds_, fn_output_signature=tf.float32)


def row_normals(row_seeds_, shape, *salt):
    """Standard normals [B, *shape]; row b from its own seed row_seeds_[b] folded with salt."""
    return _row_draws(row_seeds_, lambda seed: tf.random.stateless_normal(shape, seed), salt)


def row_uniforms(row_seeds_, shape, maxval, *salt):
    """U(0, maxval) [B, *shape]; row b from its own seed folded with salt."""
    return _row_draws(row_seeds_, lambda seed: tf.random.stateless_uniform(
        shape, seed, 0.0, maxval), salt)


def _last_frames(z, count, repeat_first):
    """The last `count` frames of z [B, T, ...], padded in front if T < count: with
    copies of the first frame if `repeat_first`, else zeros (which no prior reads)."""
    padding = tf.maximum(count - tf.shape(z)[1], 0)
    if repeat_first:
        padded = tf.concat([tf.repeat(z[:, :1], padding, axis=1), z], axis=1)
    else:
        padded = tf.pad(z, [[0, 0], [padding, 0]] + [[0, 0]] * (z.shape.rank - 2))
    return tf.ensure_shape(padded[:, -count:], [None, count] + z.shape[2:].as_list())


def _static_at_least(video, frames):
    return video.shape[1] is not None and video.shape[1] >= frames
