"""VideoFlow as a Keras model: a per-frame multi-scale Glow and a conditional latent prior.

    log p(x_t | x_<t) = log p(z_t | z_<t) + log|det dz_t/dx_t| - H*W*C*ln(256)

for the dequantised frame x_t = u8/255 - 0.5 + U(0, 1/256) and its latents z_t = flow(x_t).
Bits per pixel of a clip = -(sum over scored frames) / (ln 2 * H*W*C * #scored frames), the
original's convention (REFERENCE.md §1), so numbers compare with the paper's.

Videos are uint8 [batch, frames, H, W, 3]. A clip's first `num_context_frames` frames are
context; every later frame is scored given all frames before it.
"""
import dataclasses
import math
import random

import keras
import numpy as np
import tensorflow as tf

from videoflow_tf import distribute
from videoflow_tf.bijectors.actnorm import data_dependent_init
from videoflow_tf.config import VideoFlowConfig
from videoflow_tf.flow import MultiScaleGlow
from videoflow_tf.optim import make_optimizer
from videoflow_tf.prior import LatentPrior


@keras.saving.register_keras_serializable(package="videoflow_tf")
class VideoFlow(keras.Model):
    """VideoFlow (Kumar et al., ICLR 2020) for `config` (a `VideoFlowConfig` or its dict).

    All weights exist after construction. `fit` trains on uint8 video batches (see
    `train_step`), initialising every ActNorm from the data first; `evaluate` reports the
    bits per pixel of the target frames given the context. `model(videos)` returns the bits
    per pixel of each video ([B]). `fit` on an uncompiled model compiles it with
    `make_optimizer(config)`.
    """

    def __init__(self, config, **kwargs):
        if isinstance(config, dict):
            config = VideoFlowConfig.from_dict(config)
        if not isinstance(config, VideoFlowConfig):
            raise ValueError(f"config must be a VideoFlowConfig or its dict; got {config!r}")
        super().__init__(**kwargs)
        self.config = config
        self.flow = MultiScaleGlow(
            image_shape=config.image_shape, num_levels=config.num_levels,
            num_steps=config.num_steps, coupling=config.coupling, width=config.coupling_width,
            activation=config.coupling_activation, seed=config.seed,
            memory_saving=config.recomputes_activations,
            network_dtype="bfloat16" if config.mixed_precision else None, name="flow")
        if not self.flow.built:
            self.flow.build((None,) + config.image_shape)
        self.prior = LatentPrior(config, name="prior")
        self.prior.build()
        self.is_initialized = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                              trainable=False, name="is_initialized")
        self._bpp = keras.metrics.Mean(name="bpp")
        self._training_seed = random.randrange(2 ** 31) if config.seed is None else config.seed
        self.built = True

    # ----------------------------------------------------------------- Keras plumbing

    def get_config(self):
        return {"name": self.name, "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        return cls(config["config"], name=config.get("name"))

    @property
    def metrics(self):
        return [self._bpp]

    def call(self, videos):
        return self.bits_per_pixel(videos)

    def fit(self, x=None, y=None, **kwargs):
        """keras.Model.fit; compiles with `make_optimizer(config)` if not compiled, and
        first initialises every ActNorm from `init_batch_size` videos of `x` (a batched
        tf.data.Dataset, a distributed one, or an array) unless already initialised.

        Under a tf.distribute strategy, create the model in `strategy.scope()`; `fit`
        builds the optimizer under it. `x` is then a dataset of global batches (Keras splits
        each over the replicas) or a distributed dataset of per-replica batches
        (`vf.data.distribute_dataset`), whose initialisation videos are this worker's first
        per-replica batches (see `initialize` for several workers).
        """
        with self.distribute_strategy.scope():
            if not self.compiled:
                self.compile(optimizer=make_optimizer(self.config))
            if not int(self.is_initialized.numpy()):
                self.initialize(self._initialization_videos(x))
            if not self.optimizer.built:
                # Built outside train_step: its update runs inside a tf.cond (see train_step).
                self.optimizer.build(self.trainable_variables)
        if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset)):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself; Keras would warn
        return super().fit(x, y, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds nothing: every weight exists after construction and `fit` builds the
        optimizer. (Keras 3.15 draws a batch from the training iterator here for a model
        made under a strategy: the batch is never trained on, keras-team/keras#20394, and
        MultiWorkerMirroredStrategy cannot all-reduce its uint8 videos.)"""

    def _initialization_videos(self, x):
        size, frames = self.config.init_batch_size, self.config.num_train_frames
        if isinstance(x, tf.data.Dataset):
            videos = x.map(lambda *element: _videos_of(element))
            x = next(iter(videos.unbatch().take(size).batch(size)))
        elif isinstance(x, tf.distribute.DistributedDataset):
            x = self._first_local_videos(x, size)
        elif isinstance(x, (tuple, list)):
            x = x[0]
        elif not hasattr(x, "shape"):
            raise ValueError(f"fit cannot take the initialisation videos from a {type(x)}; "
                             "call model.initialize(videos) before fit")
        return x[:size, :frames]

    def _first_local_videos(self, dataset, size):
        """At least `size` videos (or all) of this worker's replicas' first batches."""
        videos, count = [], 0
        for element in dataset:
            for batch in self.distribute_strategy.experimental_local_results(element):
                batch = _videos_of(batch)
                videos.append(batch)
                count += int(batch.shape[0])
            if count >= size:
                break
        return tf.concat(videos, axis=0)

    def initialize(self, videos):
        """Data-dependent initialisation (eager) from uint8 `videos` [N, T, H, W, 3]: every
        ActNorm of the flow, then of the prior (on the latents of these frames), gets mean
        0 and std 1 per channel on this batch. Already initialised layers are kept.

        Under a strategy, call it in `strategy.scope()` on every worker: all replicas of
        all workers then take the weights that replica 0 (the chief's first) computed from
        its videos, so workers given different videos still start identical.
        """
        videos = self._check_videos(videos, "videos", 1)
        noise_seed = tf.constant([self._training_seed, 1])  # training steps fold in [seed, 0]
        x = self._to_flow_input(videos, _TrainingNoise(noise_seed), dequantize=True)
        self.flow.initialize(_merge(x))
        with data_dependent_init():
            latents, conditions, _ = self._encode_frames(x)
            self.prior.log_prob(latents, conditions, first_frame=0)
        distribute.copy_first_replica(self.distribute_strategy, self.variables)
        self.is_initialized.assign(1)

    # ----------------------------------------------------------------- training

    def train_step(self, data):
        """One update on uint8 videos [B, T, H, W, 3] (or a tuple starting with them).

        If T > num_train_frames, each video is cut to its own random window of
        num_train_frames frames (the data pipeline normally does this already). The loss is
        the bits per pixel of the window's frames after the first num_context_frames. An
        update whose loss or gradients are not finite is skipped, so the weights stay those
        of the last good step (StopOnNonFiniteLoss then stops training).

        The windows and the dequantisation noise are stateless draws from the step number
        and `config.seed` (a random one if None), per video of the global batch. Under a
        strategy each replica's loss is its mean over its B / N videos scaled by 1 / N, so
        the summed gradients are those of the global batch's mean: one device with batch
        B or N replicas with B / N each make the same update. `config.gradient_clip_norm`
        clips that summed gradient's global norm (here, not by the optimizer, which would
        clip each replica's share). The finiteness check is agreed by all replicas, so
        they apply or skip an update together.
        """
        seed = self._step_seed()
        videos = self._random_windows(self._check_videos(
            _videos_of(data), "videos", self.config.num_train_frames), seed)
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            bpp = self._bits_per_pixel(videos, self.config.num_context_frames,
                                       seed=_TrainingNoise(seed))
            loss = tf.reduce_mean(bpp)
            replica_share = loss / num_replicas  # replicas' gradients are summed
        pairs = [(grad, var) for grad, var in
                 zip(tape.gradient(replica_share, self.trainable_variables),
                     self.trainable_variables)
                 if grad is not None]
        finite = distribute.all_replicas(tf.reduce_all([tf.math.is_finite(loss)] + [
            tf.reduce_all(tf.math.is_finite(grad)) for grad, _ in pairs]))
        grads = [grad for grad, _ in pairs]
        if self.config.gradient_clip_norm is not None:
            grads = distribute.clip_by_global_norm(grads, self.config.gradient_clip_norm)
        distribute.apply_if(finite, self.optimizer.apply, grads, [v for _, v in pairs])
        self._bpp.update_state(tf.reduce_mean(bpp, axis=-1))
        return distribute.keras_logs({"loss": self._bpp.result(), "bpp": self._bpp.result()})

    def test_step(self, data):
        """Bits per pixel of the num_target_frames frames after the num_context_frames
        context frames (later frames of longer videos are ignored)."""
        scored = self.config.num_context_frames + self.config.num_target_frames
        videos = self._check_videos(_videos_of(data), "videos", scored)[:, :scored]
        bpp = self._bits_per_pixel(videos, self.config.num_context_frames, seed=None)
        self._bpp.update_state(tf.reduce_mean(bpp, axis=-1))
        return distribute.keras_logs({"loss": self._bpp.result(), "bpp": self._bpp.result()})

    def _step_seed(self):
        """int32 [2]: the stateless seed of this training step's random draws."""
        return tf.random.experimental.stateless_fold_in(
            tf.constant([self._training_seed, 0]),
            tf.cast(self.optimizer.iterations, tf.int32), alg="philox")

    def _random_windows(self, videos, seed):
        frames = self.config.num_train_frames
        if videos.shape[1] == frames:
            return videos
        choices = tf.shape(videos)[1] - frames + 1
        uniform = distribute.global_batch_uniform(
            tf.stack([tf.shape(videos)[0], 1]),
            tf.random.experimental.stateless_fold_in(seed, 1, alg="philox"))
        starts = tf.minimum(tf.cast(uniform[:, 0] * tf.cast(choices, tf.float32), tf.int32),
                            choices - 1)
        return tf.gather(videos, starts[:, None] + tf.range(frames), batch_dims=1)

    # ----------------------------------------------------------------- likelihood

    def log_prob(self, video, seed=None):
        """log p(frames after the first num_context_frames | the frames before each) in
        nats, [B], for uint8 `video` [B, T, H, W, 3] of any length T > num_context_frames.
        `seed` (int or int32 [2]) fixes the dequantisation noise, the same for every video,
        so a video's result does not depend on the batch it is in."""
        first = self.config.num_context_frames
        video = self._check_videos(video, "video", first + 1)
        return tf.reduce_sum(self._frame_log_likelihoods(video, first, seed), axis=-1)

    def bits_per_pixel(self, video, seed=None, per_frame=False):
        """-log_prob / (ln 2 * H*W*C * scored frames): [B], or [B, T - num_context_frames]
        per scored frame with `per_frame` (these average to the total)."""
        first = self.config.num_context_frames
        video = self._check_videos(video, "video", first + 1)
        bpp = self._bits_per_pixel(video, first, seed)
        return bpp if per_frame else tf.reduce_mean(bpp, axis=-1)

    def _bits_per_pixel(self, video, first, seed):
        return -self._frame_log_likelihoods(video, first, seed) / (
            math.log(2.0) * math.prod(self.config.image_shape))

    def _frame_log_likelihoods(self, video, first, seed):
        """[B, T - first] log p(x_t | x_<t) of the discrete frames t >= first (nats)."""
        x = self._to_flow_input(video, seed, dequantize=True)
        latents, conditions, log_det = self._encode_frames(x)
        prior = self.prior.log_prob(latents, conditions, first)
        discretisation = math.prod(self.config.image_shape) * math.log(256.0)
        return prior + log_det[:, first:] - discretisation

    def _encode_frames(self, x):
        """All frames of x [B, T, H, W, C] through the flow in one call."""
        batch, frames = tf.shape(x)[0], tf.shape(x)[1]
        latents, conditions, log_det = self.flow.encode(_merge(x))
        return ([_split(z, batch, frames) for z in latents],
                [_split(c, batch, frames) for c in conditions],
                tf.reshape(log_det, [batch, frames]))

    # ----------------------------------------------------------------- latents

    def encode(self, video):
        """Latents of every frame: per level, finest first, [B, T, h, w, c]. The pixels are
        u8/255 - 0.5 without dequantisation noise, so `decode` returns `video` exactly."""
        video = self._check_videos(video, "video", 1)
        latents, _, _ = self._encode_frames(self._to_flow_input(video, None, dequantize=False))
        return latents

    def decode(self, latents):
        """uint8 frames [B, T, H, W, 3] from per-level latents [B, T, h, w, c]."""
        latents = self._check_latents(latents)
        batch, frames = tf.shape(latents[0])[0], tf.shape(latents[0])[1]
        x = self.flow.decode([_merge(z) for z in latents])
        return _split(_to_uint8(x), batch, frames)

    def interpolate(self, video_a, video_b, num_steps):
        """Frames decoded from (1 - w) z_a + w z_b for num_steps weights w from 0 to 1, at
        every level: uint8 [B, num_steps, T, H, W, 3] (step 0 is video_a, the last video_b)."""
        if not isinstance(num_steps, int) or num_steps < 2:
            raise ValueError(f"num_steps must be an int >= 2; got {num_steps!r}")
        video_a = self._check_videos(video_a, "video_a", 1)
        video_b = self._check_videos(video_b, "video_b", 1)
        if video_a.shape[:2] != video_b.shape[:2]:
            raise ValueError("video_a and video_b must have the same batch size and number of "
                             f"frames; got shapes {video_a.shape} and {video_b.shape}")
        latents_a, latents_b = self.encode(video_a), self.encode(video_b)
        weights = tf.reshape(tf.linspace(0.0, 1.0, num_steps), [1, num_steps, 1, 1, 1, 1])
        mixed = [(1.0 - weights) * a[:, None] + weights * b[:, None]
                 for a, b in zip(latents_a, latents_b)]
        batch, frames = tf.shape(latents_a[0])[0], tf.shape(latents_a[0])[1]
        frames_out = self.decode([tf.reshape(z, [batch, -1] + z.shape[3:].as_list())
                                  for z in mixed])
        return tf.reshape(frames_out, [batch, num_steps, frames] + list(self.config.image_shape))

    # ----------------------------------------------------------------- sampling

    def sample(self, context, num_frames, temperature=None, seed=None):
        """num_frames new frames after uint8 `context` [B, Tc, H, W, 3] (Tc >=
        num_context_frames): uint8 [B, num_frames, H, W, 3].

        Each frame: z_top from its prior, then the flow runs in reverse level by level, each
        level's latent drawn from its prior given the level's past latents and the coarser
        levels; the new latents join the history. Every prior's sigma is scaled by
        `temperature`, a number or one per video [B] (None: config.temperature; 0: the
        means). A tf.while_loop carries a fixed-size history of num_cond_latents frames, so
        only the output grows with num_frames.

        Random draws are stateless and every video has its own random stream: `seed` is an
        int from which the B streams derive, or one integer per video [B]
        (video b's stream depends on seed[b] alone, so a video sampled alone or in any
        batch, at any position, gives the same frames). None: a fresh random seed. The same
        seed gives the same frames, eager or traced.
        """
        config = self.config
        context = self._check_videos(context, "context", config.num_context_frames)
        static_frames = tf.get_static_value(num_frames)
        if static_frames is not None and not static_frames >= 1:
            raise ValueError(f"num_frames must be >= 1; got {static_frames}")
        temperature = self._check_temperature(
            config.temperature if temperature is None else temperature, context)
        row_seeds = _row_seeds(seed, context)
        num_cond = config.num_cond_latents

        latents, _, _ = self._encode_frames(self._to_flow_input(context, None, False))
        min_history = config.min_history
        histories = [_last_frames(z, num_cond, config.pad_history) for z in latents]
        known = tf.minimum(tf.shape(context)[1], num_cond)
        top = config.num_levels - 1
        decode_weights = self.flow.decode_weights()  # once, not once per frame

        def body(step, known, histories, frames):
            # The prior is conditional once min_history latents of history exist; a
            # Python bool when the context alone guarantees it.
            conditional = (True if _static_at_least(context, min_history)
                           else known >= min_history)

            def draw(level, x1):
                distribution = self.prior.distribution(level, histories[level], x1,
                                                       conditional, temperature)
                noise = _row_normals(row_seeds, config.latent_shapes[level], step, level)
                return distribution.mean() + distribution.stddev() * noise

            x, new_latents = self.flow.decode_sampling(draw(top, None), draw, decode_weights)
            histories = [tf.concat([h[:, 1:], z[:, None]], axis=1)
                         for h, z in zip(histories, new_latents)]
            return (step + 1, tf.minimum(known + 1, num_cond), histories,
                    frames.write(step, x))

        frames = tf.TensorArray(tf.float32, size=num_frames, element_shape=tf.TensorShape(
            [None] + list(config.image_shape)))
        _, _, _, frames = tf.while_loop(
            lambda step, *_: step < num_frames, body,
            (tf.constant(0), known, histories, frames))
        out = _to_uint8(frames.stack(), transpose=[1, 0, 2, 3, 4])
        return tf.ensure_shape(out, [None, static_frames] + list(config.image_shape))

    def _check_temperature(self, temperature, context):
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

    # ----------------------------------------------------------------- inputs

    def _to_flow_input(self, video, seed, dequantize):
        x = tf.cast(video, tf.float32) / 255.0 - 0.5
        if not dequantize:
            return x
        if isinstance(seed, _TrainingNoise):
            noise = distribute.global_batch_uniform(tf.shape(x), seed.seed, 0.0, 1.0 / 256.0)
        elif seed is None:
            noise = tf.random.uniform(tf.shape(x), 0.0, 1.0 / 256.0)
        else:  # one clip of noise for all videos, so that batching changes no result
            noise = tf.random.stateless_uniform(tf.shape(x)[1:], _seed_tensor(seed), 0.0,
                                                1.0 / 256.0)
        return x + noise

    def _check_videos(self, video, name, min_frames):
        height, width, channels = self.config.image_shape
        expected = f"uint8 [batch, frames >= {min_frames}, {height}, {width}, {channels}]"
        video = tf.convert_to_tensor(video)
        if video.dtype != tf.uint8:
            raise ValueError(f"{name} must be {expected} pixels; got dtype {video.dtype.name}")
        shape = video.shape
        if (shape.rank != 5 or any(d is not None and d != e for d, e in
                                   zip(shape[2:], self.config.image_shape))
                or (shape[1] is not None and shape[1] < min_frames)):
            raise ValueError(f"{name} must be {expected}; got shape {shape}")
        if shape[1] is None:
            tf.debugging.assert_greater_equal(tf.shape(video)[1], min_frames,
                                              message=f"{name} must be {expected}")
        return video

    def _check_latents(self, latents):
        shapes = self.config.latent_shapes
        latents = [tf.convert_to_tensor(z) for z in latents]
        ok = len(latents) == len(shapes) and all(
            z.dtype == tf.float32 and z.shape.rank == 5
            and all(d is None or d == e for d, e in zip(z.shape[2:], s))
            for z, s in zip(latents, shapes))
        if not ok:
            raise ValueError(f"latents must be {len(shapes)} float32 tensors [batch, frames, "
                             f"h, w, c] with (h, w, c) = {shapes}; got "
                             f"{[(z.dtype.name, tuple(z.shape)) for z in latents]}")
        return latents


@dataclasses.dataclass(frozen=True)
class _TrainingNoise:
    """A training step's seed: every video of the global batch gets its own dequantisation
    noise, the same under any strategy (`distribute.global_batch_uniform`)."""
    seed: tf.Tensor


def _videos_of(data):
    """The videos of a dataset element: the element itself or its first item."""
    while isinstance(data, (tuple, list)):
        data = data[0]
    return data


def _merge(x):
    """[B, T, ...] -> [B * T, ...], keeping the static trailing shape."""
    return tf.reshape(x, [-1] + x.shape[2:].as_list())


def _split(x, batch, frames):
    """[B * T, ...] -> [B, T, ...]."""
    return tf.reshape(x, tf.concat([[batch, frames], tf.shape(x)[1:]], axis=0))


def _to_uint8(x, transpose=None):
    """Flow output to pixels, the inverse of the input map: pixel k is dequantised to
    [k/255 - 0.5, k/255 - 0.5 + 1/256), so k = round((x + 0.5) * 255 - 255/512), the
    nearest bin centre (the paper's `(x + 0.5) * 256` would send about half of every
    dequantised gray pixel to k + 1). Clipped to [0, 255]; axes permuted by `transpose` if
    given. NaN (a diverged sample) becomes 0: its cast is undefined, and eager and traced
    kernels turn it into different bytes."""
    x = tf.where(tf.math.is_nan(x), -0.5, x)
    if transpose is not None:
        # Between the NaN test and the cast: TensorFlow's oneDNN transpose logs an error
        # line for uint8 (and for a bool it would move) on CPUs without AVX-512.
        x = tf.transpose(x, transpose)
    pixels = tf.round((tf.clip_by_value(x, -0.5, 0.5) + 0.5) * 255.0 - 255.0 / 512.0)
    return tf.cast(tf.clip_by_value(pixels, 0.0, 255.0), tf.uint8)


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


def _seed_tensor(seed):
    """An int32 [2] stateless seed from an int, a pair, or None (a fresh random one)."""
    if seed is None:
        return tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:  # a cast would turn 1.5 into the seed 1 without a word
        raise ValueError(f"seed must be an int or a pair of ints; got {seed.dtype.name}")
    if seed.shape.rank == 0:
        seed = tf.stack([seed, 0])
    return tf.cast(seed, tf.int32)


def _row_seeds(seed, context):
    """int32 [B, 2]: the stateless seed of each video's random stream (see `sample`)."""
    if seed is None or tf.convert_to_tensor(seed).shape.rank == 0:
        return tf.random.experimental.stateless_split(_seed_tensor(seed), tf.shape(context)[0])
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


def _row_normals(row_seeds, shape, *salt):
    """Standard normals [B, *shape]; row b from its own seed row_seeds[b] folded with salt."""
    def draw(seed):
        for value in salt:
            seed = tf.random.experimental.stateless_fold_in(seed, value)
        return tf.random.stateless_normal(shape, seed)

    return tf.map_fn(draw, row_seeds, fn_output_signature=tf.float32)
