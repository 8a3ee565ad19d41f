"""How good a model's samples are: cheap enough to watch during training, and what
`evaluate` reports.

`SampleQuality(model).measure(videos, num_frames)` samples `num_frames` frames after the
context of real `videos`, several seeds per video, and returns a flat dict:

- self-consistency, for any dataset: `sample_bpp`, the bits per pixel that the model's
  `log_prob` gives its own sampled clips (rounded to pixels, as a user gets them), against
  `real_bpp` of the real clips with the same context, their ratio `sample_to_real_bpp`
  (about 1 for a model that believes its samples), `nonfinite_sample_scores`, and
  `invalid_fraction`, the share of sampled subpixel values that were NaN or outside the
  pixel range before clipping;
- for stochastic shapes (`motion=True`), from the pixels (`videoflow_tf.analysis.motion`): the
  fraction of sampled futures that move steadily in one of the 8 directions
  (`consistent_fraction`), how many directions occur and their entropy, the fractions
  that keep the shape's colour, and its colour and size; and `continued_fraction`, the
  fraction that go on in the direction of one given real step (each video's next real
  frame added to the context).

`MonitorSamples` is the Keras callback that logs these every N training steps to
TensorBoard and to a JSON-lines file, one record per measurement. It and `evaluate` sample
`default_sample_frames` frames, and check motion where `shows_motion`.
"""
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from videoflow_tf.analysis import motion as motion_lib
from videoflow_tf.analysis import strict_motion
from videoflow_tf.data.videos import dataset_frames
from videoflow_tf.training.callbacks import write_scalar


def shows_motion(config):
    """True for stochastic shapes, whose samples are also judged by how they move."""
    return config.dataset.startswith("stochastic_shapes")


def default_sample_frames(config, data_dir=None):
    """Frames to sample after the context when judging samples: for stochastic shapes
    every frame its videos have after it (to see the motion), else the target frames."""
    if shows_motion(config):
        return dataset_frames(config.dataset, data_dir) - config.num_context_frames
    return config.num_target_frames


class SampleQuality:
    """Samples and scores with `model`, each traced once per clip length."""

    def __init__(self, model, batch_size=32):
        self.model, self.batch_size = model, batch_size
        self._samplers, self._scorer = {}, None

    def _sampler(self, context_frames, num_frames):
        key = (context_frames, num_frames)
        if key not in self._samplers:
            spec = tf.TensorSpec([None, context_frames] + list(self.model.config.image_shape),
                                 tf.uint8)

            @tf.function(input_signature=[spec, tf.TensorSpec([], tf.float32),
                                          tf.TensorSpec([None], tf.int64)])
            def sample(context, temperature, seeds):
                samples = self.model.sample_details(context, num_frames, temperature, seeds)
                return samples.frames, samples.invalid

            self._samplers[key] = sample
        return self._samplers[key]

    def sample(self, context, num_frames, temperature, seeds):
        """(uint8 frames [N, num_frames, H, W, 3], invalid values per video [N])."""
        sample = self._sampler(context.shape[1], num_frames)
        frames, invalid = [], []
        for start in range(0, len(context), self.batch_size):
            end = start + self.batch_size
            f, i = sample(context[start:end], tf.constant(temperature, tf.float32),
                          tf.constant(seeds[start:end], tf.int64))
            frames.append(f.numpy())
            invalid.append(i.numpy())
        return np.concatenate(frames), np.concatenate(invalid)

    def bits_per_pixel(self, videos):
        """Bits per pixel of each video's frames after the context (log_prob, seed 0)."""
        if self._scorer is None:
            spec = tf.TensorSpec([None, None] + list(self.model.config.image_shape), tf.uint8)
            self._scorer = tf.function(lambda v: self.model.bits_per_pixel(v, seed=0),
                                       input_signature=[spec])
        return np.concatenate([self._scorer(videos[start:start + self.batch_size]).numpy()
                               for start in range(0, len(videos), self.batch_size)])

    def measure(self, videos, num_frames, temperature=None, seeds_per_video=2, seed=0,
                motion=True, labels=None):
        """The metrics of the module docstring for uint8 real `videos` [N, T, H, W, 3]
        (T >= num_context_frames + num_frames; the continued-motion check, with motion,
        samples num_frames - 1 frames after one more real frame). `labels`: what the
        stochastic-shapes videos show (`videos.shape_labels`), for the strict motion
        check; its per-future records are under "futures"."""
        config = self.model.config
        temperature = config.temperature if temperature is None else float(temperature)
        given = config.num_context_frames
        if videos.shape[1] < given + num_frames:
            raise ValueError(f"videos of {videos.shape[1]} frames cannot give {given} context "
                             f"frames and {num_frames} real frames to compare with")
        contexts = np.repeat(videos[:, :given], seeds_per_video, axis=0)
        seeds = seed + np.arange(len(contexts))
        real_bpp = self.bits_per_pixel(videos[:, :given + num_frames])
        futures = self._scored_futures(contexts, num_frames, temperature, seeds)
        sampled, sample_bpp, invalid = futures
        finite = np.isfinite(sample_bpp)
        results = {
            "temperature": temperature, "num_videos": len(videos),
            "samples": len(sampled), "num_frames": num_frames,
            "sample_bpp": float(np.mean(sample_bpp[finite])) if finite.any() else math.inf,
            "real_bpp": float(np.mean(real_bpp)),
            "nonfinite_sample_scores": int(np.sum(~finite)),
            "invalid_fraction": float(invalid.sum() / (len(sampled) * num_frames
                                                       * np.prod(videos.shape[2:]))),
        }
        results["sample_to_real_bpp"] = results["sample_bpp"] / results["real_bpp"]
        # Self-consistency where it has a reference value: at temperature 1 a model that
        # believes its samples scores them like real clips.
        if temperature != 1.0:
            futures = self._scored_futures(contexts, num_frames, 1.0, seeds)
        ratios = futures[1] / np.repeat(real_bpp, seeds_per_video)
        results.update(t1_bpp_ratio_median=float(np.median(ratios)),
                       t1_bpp_ratio_above_2x=float(np.mean(~(ratios <= 2.0))))
        if labels is not None:
            report = strict_motion.strict_report(
                sampled, labels, np.repeat(np.arange(len(videos)), seeds_per_video),
                labels["background"], context_frames=given)
            ratio_at_t = sample_bpp / np.repeat(real_bpp, seeds_per_video)
            for record, bpp, ratio in zip(report["futures"], sample_bpp, ratio_at_t):
                record.update(bpp=float(bpp), bpp_ratio=float(ratio))
            results.update(report)
        if motion:
            report = motion_lib.motion_report(sampled[:, given - 1:])
            results.update(
                consistent_fraction=report["consistent_fraction"],
                directions_used=report["directions_used"],
                direction_entropy_bits=report["direction_entropy_bits"],
                colour_kept_fraction=report["colour_kept_fraction"],
                appearance_kept_fraction=report["appearance_kept_fraction"],
                loose_direction_counts=report["direction_counts"])
            if num_frames > 1 and self.sees_a_real_step():
                results["continued_fraction"] = self.continued_fraction(
                    videos, num_frames - 1, temperature, seeds_per_video, seed)
        return results

    def _scored_futures(self, contexts, num_frames, temperature, seeds):
        """(clips: contexts + sampled frames, their bits per pixel [N], invalid values per
        clip [N]) of futures sampled at `temperature`."""
        frames, invalid = self.sample(contexts, num_frames, temperature, seeds)
        clips = np.concatenate([contexts, frames], axis=1)
        return clips, self.bits_per_pixel(clips), invalid

    def sees_a_real_step(self):
        """Whether the sampler can be given the context and one more real frame."""
        return True

    def continued_fraction(self, videos, num_frames, temperature, seeds_per_video, seed):
        """Fraction of futures sampled after the context and one more real frame that
        go on steadily in the direction of that real step."""
        given = self.model.config.num_context_frames + 1
        contexts = np.repeat(videos[:, :given], seeds_per_video, axis=0)
        frames, _ = self.sample(contexts, num_frames, temperature,
                                seed + np.arange(len(contexts)))
        videos = np.concatenate([contexts, frames], axis=1)[:, given - 2:]
        return motion_lib.motion_report(videos)["consistent_fraction"]


class MonitorSamples(keras.callbacks.Callback):
    """Every `every` training steps (and at the end of training), measures
    `SampleQuality` on the fixed real `videos` (with their `labels`, for stochastic
    shapes) and appends a JSON line to `path` (with the step, the training CPU seconds so
    far if `cpu_seconds` is given, and the wall time; without the per-future records) and
    the numeric metrics to TensorBoard under `samples/` in `log_dir` (if given)."""

    def __init__(self, path, every, videos, num_frames, seeds_per_video=2, motion=True,
                 log_dir=None, cpu_seconds=None, labels=None):
        super().__init__()
        self.path, self.every, self.videos = path, every, videos
        self.num_frames, self.seeds_per_video, self.motion = num_frames, seeds_per_video, motion
        self.log_dir, self.cpu_seconds, self.labels = log_dir, cpu_seconds, labels
        self._last_step = None

    def on_train_begin(self, logs=None):
        self._quality = SampleQuality(self.model)
        self._writer = tf.summary.create_file_writer(self.log_dir) if self.log_dir else None

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            self.measure(step)

    def on_train_end(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step != self._last_step:
            self.measure(step)

    def measure(self, step):
        results = self._quality.measure(self.videos, self.num_frames,
                                        seeds_per_video=self.seeds_per_video,
                                        motion=self.motion, labels=self.labels)
        results.pop("futures", None)
        record = {"step": step, "time": time.time()}
        if self.cpu_seconds is not None:
            record["cpu_seconds"] = float(self.cpu_seconds.numpy())
        record.update(results)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        if self._writer is not None:
            with self._writer.as_default(step=step):
                for name, value in results.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        write_scalar(f"samples/{name}", value)
            self._writer.flush()
        self._last_step = step


def read_records(path):
    """The records of a JSON-lines monitor file, in order."""
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]
