"""VideoFlow as a Keras model: a per-frame multi-scale Glow and a conditional latent prior.

    log p(x_t | x_<t) = log p(z_t | z_<t) + log|det dz_t/dx_t| - H*W*C*ln(256)

for the dequantised frame x_t = u8/255 - 0.5 + U(0, 1/256) and its latents z_t = flow(x_t).
Bits per pixel of a clip = -(sum over scored frames) / (ln 2 * H*W*C * #scored frames), the
convention of the paper and tensor2tensor, so numbers compare with the paper's. With
`dequantization="variational"` the noise within each bin comes from a learned q(u | x)
instead, and log q is subtracted too (`videoflow_tf.model.dequantization`): the result is
still a lower bound on the discrete log-likelihood, so bits per pixel an upper bound.

Videos are uint8 [batch, frames, H, W, 3]. A clip's first `num_context_frames` frames are
context; every later frame is scored given all frames before it.
"""
import dataclasses
import functools
import math
import random
import warnings

import keras
import tensorflow as tf

from videoflow_tf.config import VideoFlowConfig
from videoflow_tf.data.pipelines import initialization_videos, videos_of
from videoflow_tf.model import distribute, loss, optim, pixels, sampling
from videoflow_tf.model.bijectors import seeds
from videoflow_tf.model.checks import check_latents, check_videos
from videoflow_tf.model.dequantization import make_dequantizer
from videoflow_tf.model.flow import MultiScaleGlow
from videoflow_tf.model.latent_encoders import EncoderSpec
from videoflow_tf.model.mixture_prior import MixtureTopPrior
from videoflow_tf.model.prior import LatentPrior, LevelPrior


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
        self.prior = LatentPrior(
            config.latent_shapes, config.num_cond_latents, pad_history=config.pad_history,
            latent_skip=config.latent_skip,
            encoder=level_encoders(config),
            top_prior=(LevelPrior if config.top_prior_components == 1 else functools.partial(
                MixtureTopPrior, components=config.top_prior_components)),
            seed=config.seed, name="prior")
        self.prior.build()
        self.dequantizer = make_dequantizer(
            config.dequantization, seed=seeds.derived(config.seed, _DEQUANTIZER_SEED))
        if isinstance(self.dequantizer, keras.layers.Layer):
            self.dequantizer.build((None,) + config.image_shape)
        self.is_initialized = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                              trainable=False, name="is_initialized")
        # float64: after a batch of 1e12 bits per pixel, a float32 running mean no longer
        # moves by a batch of 0.5, and callbacks recover each batch's value from it.
        self._bpp = keras.metrics.Mean(name="bpp", dtype="float64")
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
                self.compile(optimizer=optim.make_optimizer(self.config))
            if not int(self.is_initialized.numpy()):
                self.initialize(initialization_videos(
                    x, self.config.init_batch_size, self.config.num_train_frames,
                    self.distribute_strategy))
            if not self.optimizer.built:
                # Built outside train_step: its update runs inside a tf.cond (see train_step).
                self.optimizer.build(self.trainable_variables)
        if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset)):
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself; Keras would warn
        return super().fit(x, y, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds nothing: every weight exists after construction and `fit` builds the
        optimizer. Overrides a private Keras method, as no public API serves: for a model
        made under a strategy, Keras 3.15's `fit` draws a batch from the training iterator
        here (never trained on, keras-team/keras#20394) and averages it over the replicas,
        which MultiWorkerMirroredStrategy cannot do for uint8 videos; a built model and
        optimizer do not prevent the draw. tests/test_model.py::
        test_fit_under_a_strategy_calls_the_override_of_keras_symbolic_build fails if
        Keras stops calling it."""

    def initialize(self, videos):
        """Data-dependent initialisation (eager) from uint8 `videos` [N, T, H, W, 3]: every
        ActNorm of the flow (`MultiScaleGlow.initialize`), then of the prior on the latents
        of these frames (`LatentPrior.initialize`, which also starts a mixture's components
        apart), gets mean 0 and std 1 per channel on this batch. Already initialised layers
        are kept.

        Under a strategy, call it in `strategy.scope()` on every worker: all replicas of
        all workers then take the weights that replica 0 (the chief's first) computed from
        its videos, so workers given different videos still start identical.
        """
        videos = check_videos(self.config.image_shape, videos, "videos", 1)
        noise_seed = tf.constant([self._training_seed, 1])  # training steps fold in [seed, 0]
        x, _ = self._dequantize(videos, _TrainingNoise(noise_seed))
        self.flow.initialize(_merge(x))
        self.prior.initialize(*self.encode_values(x)[:2])
        distribute.copy_first_replica(self.distribute_strategy, self.variables)
        self.is_initialized.assign(1)

    # ----------------------------------------------------------------- training

    def train_step(self, data):
        """One update on uint8 videos [B, T, H, W, 3] (or a tuple starting with them).

        If T > num_train_frames, each video is cut to its own random window of
        num_train_frames frames (the data pipeline normally does this already), within its
        first config.train_clip_frames frames if that is not None. The loss is the bits
        per pixel of the window's frames after the first num_context_frames; with
        `config.video_bpp_cap`, a video scoring above it pulls as hard as one at the cap
        (`loss.capped_mean`), while the reported bpp stays exact. An update whose loss or
        gradients are not finite is skipped, and `config.gradient_clip_norm` clips the
        gradient (`optim.apply_finite_gradients`).

        The windows and the dequantisation noise are stateless draws from the step number
        and `config.seed` (a random one if None), per video of the global batch. Under a
        strategy each replica's loss is its mean over its B / N videos scaled by 1 / N, so
        the summed gradients are those of the global batch's mean: one device with batch
        B or N replicas with B / N each make the same update.
        """
        seed = self._step_seed()
        videos = self._random_windows(check_videos(self.config.image_shape,
            videos_of(data), "videos", self.config.num_train_frames), seed)
        with tf.GradientTape() as tape:
            bpp = self._bits_per_pixel(videos, self.config.num_context_frames,
                                       seed=_TrainingNoise(seed), training=True)
            mean_bpp = tf.reduce_mean(bpp)
            training_loss = mean_bpp if self.config.video_bpp_cap is None else (
                loss.capped_mean(tf.reduce_mean(bpp, axis=-1), self.config.video_bpp_cap))
            replica_share = training_loss / tf.distribute.get_strategy().num_replicas_in_sync
        gradients = tape.gradient(replica_share, self.trainable_variables)
        optim.apply_finite_gradients(self.optimizer, mean_bpp, gradients, self.trainable_variables,
                                     self.config.gradient_clip_norm)
        self._bpp.update_state(tf.reduce_mean(bpp, axis=-1))
        return distribute.keras_logs({"loss": self._bpp.result(), "bpp": self._bpp.result()})

    def test_step(self, data):
        """Bits per pixel of the num_target_frames frames after the num_context_frames
        context frames (later frames of longer videos are ignored)."""
        scored = self.config.num_context_frames + self.config.num_target_frames
        videos = check_videos(self.config.image_shape, videos_of(data), "videos", scored)
        videos = videos[:, :scored]
        bpp = self._bits_per_pixel(videos, self.config.num_context_frames, seed=None)
        self._bpp.update_state(tf.reduce_mean(bpp, axis=-1))
        return distribute.keras_logs({"loss": self._bpp.result(), "bpp": self._bpp.result()})

    def _step_seed(self):
        """int32 [2]: the stateless seed of this training step's random draws."""
        return tf.random.experimental.stateless_fold_in(
            tf.constant([self._training_seed, 0]),
            tf.cast(self.optimizer.iterations, tf.int32), alg="philox")

    def _random_windows(self, videos, seed):
        config = self.config
        frames = config.num_train_frames
        if videos.shape[1] == frames:
            return videos
        available = tf.shape(videos)[1]
        if config.train_clip_frames is not None:
            available = tf.minimum(available, config.train_clip_frames)
        choices = available - frames + 1
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
        video = check_videos(self.config.image_shape, video, "video", first + 1)
        return tf.reduce_sum(self._frame_log_likelihoods(video, first, seed), axis=-1)

    def bits_per_pixel(self, video, seed=None, per_frame=False):
        """-log_prob / (ln 2 * H*W*C * scored frames): [B], or [B, T - num_context_frames]
        per scored frame with `per_frame` (these average to the total)."""
        first = self.config.num_context_frames
        video = check_videos(self.config.image_shape, video, "video", first + 1)
        bpp = self._bits_per_pixel(video, first, seed)
        return bpp if per_frame else tf.reduce_mean(bpp, axis=-1)

    def _bits_per_pixel(self, video, first, seed, training=False):
        return loss.bits_per_pixel(self._frame_log_likelihoods(video, first, seed, training),
                                   self.config.image_shape)

    def _frame_log_likelihoods(self, video, first, seed, training=False):
        """[B, T - first] log p(x_t | x_<t) of the discrete frames t >= first (nats);
        `training` gives them the gradient that config.prior_beta asks for."""
        discretisation = math.prod(self.config.image_shape) * math.log(256.0)
        values, log_q = self._dequantize(video, seed)
        return (self.log_density(values, first, training) - log_q[:, first:]
                - discretisation)

    def log_density(self, values, first=None, training=False):
        """[B, T - first] continuous log-density (nats) of every frame t >= first of float
        `values` [B, T, H, W, 3] given the frames before it; values are in the flow's
        input space (pixels.lower_edges plus dequantisation noise, or `sample_details`'
        values). `first` defaults to num_context_frames. log_prob is this at the
        dequantised video minus H*W*C*ln(256) per scored frame. `training`: the same
        values, with the prior's gradient that config.prior_beta asks for."""
        first = self.config.num_context_frames if first is None else first
        latents, conditions, log_det = self.encode_values(values)
        score = loss.beta_nll(self.config.prior_beta) if training else None
        return self.prior.log_prob(latents, conditions, first, score) + log_det[:, first:]

    def encode_values(self, values):
        """Every frame of float `values` [B, T, H, W, 3] through the flow in one call:
        (latents per level [B, T, h, w, c], the continuing halves x1 at every split
        [B, T, h, w, c], log|det dz/dx| [B, T])."""
        batch, frames = tf.shape(values)[0], tf.shape(values)[1]
        latents, conditions, log_det = self.flow.encode(_merge(values))
        return ([_split(z, batch, frames) for z in latents],
                [_split(c, batch, frames) for c in conditions],
                tf.reshape(log_det, [batch, frames]))

    # ----------------------------------------------------------------- latents

    def encode(self, video):
        """Latents of every frame: per level, finest first, [B, T, h, w, c], of the pixels'
        bin centres (no dequantisation noise), so `decode` returns `video` exactly."""
        video = check_videos(self.config.image_shape, video, "video", 1)
        latents, _, _ = self.encode_values(pixels.bin_centres(video))
        return latents

    def decode(self, latents):
        """uint8 frames [B, T, H, W, 3] from per-level latents [B, T, h, w, c]."""
        latents = check_latents(self.config.latent_shapes, latents)
        batch, frames = tf.shape(latents[0])[0], tf.shape(latents[0])[1]
        x = self.flow.decode([_merge(z) for z in latents])
        return _split(pixels.to_uint8(x), batch, frames)

    def interpolate(self, video_a, video_b, num_steps):
        """Frames decoded from (1 - w) z_a + w z_b for num_steps weights w from 0 to 1, at
        every level: uint8 [B, num_steps, T, H, W, 3] (step 0 is video_a, the last video_b)."""
        if not isinstance(num_steps, int) or num_steps < 2:
            raise ValueError(f"num_steps must be an int >= 2; got {num_steps!r}")
        video_a = check_videos(self.config.image_shape, video_a, "video_a", 1)
        video_b = check_videos(self.config.image_shape, video_b, "video_b", 1)
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
        num_context_frames): uint8 [B, num_frames, H, W, 3]. `sample_details` gives what
        was drawn; called eagerly, this warns when a sampled value was NaN (shown as 0).

        Each frame: z_top from its prior, then the flow runs in reverse level by level, each
        level's latent drawn from its prior given the level's past latents and the coarser
        levels; the new latents join the history. The context is dequantised as in
        training, with noise from the video's random stream. Every prior's sigma is scaled
        by `temperature`, a number or one per video [B] (None: config.temperature; 0: the
        means, of a randomly picked component for a mixture prior).

        Random draws are stateless and every video has its own random stream: `seed` is an
        int from which the B streams derive, or one integer per video [B]
        (video b's stream depends on seed[b] alone, so a video sampled alone or in any
        batch, at any position, gives the same frames). None: a fresh random seed. The same
        seed gives the same frames, eager or traced.
        """
        samples = self.sample_details(context, num_frames, temperature, seed)
        if tf.executing_eagerly():
            not_a_number = int(tf.reduce_sum(tf.cast(tf.math.is_nan(samples.values),
                                                     tf.int32)))
            if not_a_number:
                warnings.warn(f"{not_a_number} sampled subpixel values were NaN (the flow's "
                              "decoding overflowed); they are shown as 0", RuntimeWarning,
                              stacklevel=2)
        return samples.frames

    def sample_details(self, context, num_frames, temperature=None, seed=None):
        """`sample`, returning a `sampling.Samples` record: the frames, the values before
        rounding, the drawn latents, each frame's log-density under the priors that drew
        it and the flow's log-determinant, and the count of invalid (NaN or out-of-range)
        values per video."""
        config = self.config
        context = check_videos(config.image_shape, context, "context",
                               config.num_context_frames)
        static_frames = tf.get_static_value(num_frames)
        if static_frames is not None and not static_frames >= 1:
            raise ValueError(f"num_frames must be >= 1; got {static_frames}")
        temperature = sampling.check_temperature(
            config.temperature if temperature is None else temperature, context)
        return sampling.sample(self, context, num_frames, temperature, seed)

    # ----------------------------------------------------------------- inputs

    def _dequantize(self, video, seed):
        """(values, log q per frame [B, T]) of `video`: its pixels dequantised by
        `self.dequantizer` from base noise U(0, 1) drawn per video from a training step's
        seed (_TrainingNoise), once for all videos (an int or int32 [2] `seed`), or
        unseeded (None)."""
        shape = tf.shape(video)
        if isinstance(seed, _TrainingNoise):
            noise = distribute.global_batch_uniform(shape, seed.seed)
        elif seed is None:
            noise = tf.random.uniform(shape)
        else:  # one clip of noise for all videos, so that batching changes no result
            noise = tf.random.stateless_uniform(shape[1:], sampling.seed_tensor(seed))
        return self.dequantizer(video, noise)


_DEQUANTIZER_SEED = 2 ** 17  # apart from the flow's (level, step) and the prior's seeds


def level_encoders(config):
    """The `EncoderSpec` of every level's prior, finest first."""
    spec = EncoderSpec(config.latent_encoder, config.latent_encoder_width,
                       config.latent_encoder_depth, config.latent_dilations,
                       config.latent_activation)
    finest = spec if config.latent_encoder_width_level1 is None else dataclasses.replace(
        spec, width=config.latent_encoder_width_level1)
    return [finest] + [spec] * (config.num_levels - 1)


@dataclasses.dataclass(frozen=True)
class _TrainingNoise:
    """A training step's seed: every video of the global batch gets its own dequantisation
    noise, the same under any strategy (`distribute.global_batch_uniform`)."""
    seed: tf.Tensor


def _merge(x):
    """[B, T, ...] -> [B * T, ...], keeping the static trailing shape."""
    return tf.reshape(x, [-1] + x.shape[2:].as_list())


def _split(x, batch, frames):
    """[B * T, ...] -> [B, T, ...]."""
    return tf.reshape(x, tf.concat([[batch, frames], tf.shape(x)[1:]], axis=0))


