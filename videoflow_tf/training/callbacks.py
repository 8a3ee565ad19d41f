"""Keras callbacks for training VideoFlow, the progress bars of the commands, and
TensorBoard record writers."""
import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from videoflow_tf.analysis import visualize
from videoflow_tf.model import distribute, optim, pixels
from videoflow_tf.model.loss import UNIFORM_BPP


def terminal_verbosity():
    """Keras' verbose for a progress bar on stdout: 1 (a live bar) on a terminal, else 2
    (one plain line when done): Keras draws its live bar with colour codes and
    backspaces whatever stdout is, which fill pipes and log files with them."""
    return 1 if sys.stdout.isatty() else 2


def progress_bar(target, unit_name):
    """A keras.utils.Progbar of `target` units at `terminal_verbosity`."""
    return keras.utils.Progbar(target, verbose=terminal_verbosity(), unit_name=unit_name)


class StepProgress(keras.callbacks.Callback):
    """A progress bar per epoch (verbose 1; verbose 2: one line when it ends), headed by the
    global steps it covers and counting the steps it will actually run.

    Training stops at step `total_steps` (StopAtStep), whatever fit's `steps_per_epoch`,
    and a resumed run starts mid-way: an epoch may run fewer steps than Keras' own bar
    counts to (it counted to 500 for --steps 50, then jumped to the end).
    """

    def __init__(self, total_steps, steps_per_epoch, verbose=1):
        super().__init__()
        self.total_steps, self.steps_per_epoch, self.verbose = (total_steps, steps_per_epoch,
                                                                verbose)

    def on_epoch_begin(self, epoch, logs=None):
        first = int(self.model.optimizer.iterations.numpy())
        count = min(self.steps_per_epoch, self.total_steps - first)
        print(f"Steps {first + 1}-{first + count} of {self.total_steps}")
        # Every metric in the logs is already a running mean: shown as it is.
        self._bar = keras.utils.Progbar(count, verbose=self.verbose, unit_name="step",
                                        stateless_metrics=set())
        self._done = 0

    def on_train_batch_end(self, batch, logs=None):
        self._done = batch + 1
        self._bar.update(self._done, list((logs or {}).items()), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        self._bar.update(self._done, list((logs or {}).items()), finalize=True)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at the first step whose loss is NaN or infinite and reports the step.

    `VideoFlow.train_step` never applies an update whose loss or gradients are not finite,
    so after the stop the weights (and any checkpoint written from them) are those of the
    last good step. `bad_step` holds the 1-based global step that failed (None if none);
    steps are counted from the optimiser's update count when `fit` starts, one per batch
    (use steps_per_execution=1).
    """

    def __init__(self):
        super().__init__()
        self.bad_step = None
        self._step = 0

    def on_train_begin(self, logs=None):
        self.bad_step = None
        self._step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = self._step
            self.model.stop_training = True
            print(f"StopOnNonFiniteLoss: loss {float(loss)} at step {self._step}; training "
                  f"stopped with the weights of step {self._step - 1} (the bad update was "
                  "not applied).")


class BatchValues:
    """Each batch's value of the metric `key`, recovered from the logs of
    `on_train_batch_end`, where Keras gives the running mean over the epoch's batches so
    far."""

    def __init__(self, key):
        self.key, self._mean = key, 0.0

    def update(self, batch, logs):
        mean = float((logs or {}).get(self.key, math.nan))
        value = (batch + 1) * mean - batch * (self._mean if batch else 0.0)
        self._mean = mean
        return value


class WarnAboveUniform(keras.callbacks.Callback):
    """At the end of an epoch, prints a warning if a training step scored more bits per
    pixel than a uniform guess (`UNIFORM_BPP`) after the run had scored less: a run
    falling apart there (one over-confident prior scoring a rare video at millions of bits
    per pixel) can look fine in its sampled futures for thousands of steps."""

    def on_train_begin(self, logs=None):
        self._bpp, self._learnt = BatchValues("bpp"), False

    def on_epoch_begin(self, epoch, logs=None):
        self._first = self._worst = None

    def on_train_batch_end(self, batch, logs=None):
        bpp = self._bpp.update(batch, logs)
        if bpp < UNIFORM_BPP:
            self._learnt = True
        elif self._learnt and (bpp > UNIFORM_BPP or not math.isfinite(bpp)):
            step = int(self.model.optimizer.iterations.numpy())
            self._first = self._first or step
            if self._worst is None or not bpp <= self._worst[1]:
                self._worst = step, bpp

    def on_epoch_end(self, epoch, logs=None):
        if self._first is not None:
            print(f"WarnAboveUniform: from step {self._first} training batches scored above "
                  f"{UNIFORM_BPP:g} bits per pixel, worse than a uniform guess (worst: "
                  f"{self._worst[1]:.3g} at step {self._worst[0]}); the model may be "
                  "falling apart. See 'When one video scores millions of bits per pixel' "
                  "in docs/training.md (config field video_bpp_cap).")


class CpuTime(keras.callbacks.Callback):
    """Adds the CPU time this process spends (all its threads, from the start to the end
    of each step) to `variable`, float64 seconds; keep the variable in the checkpoints
    and the count survives resumption. Stops `fit` once it reaches `budget` seconds (None:
    never), so variants trained with the same budget got the same compute, whatever
    else shared the machine."""

    def __init__(self, variable, budget=None):
        super().__init__()
        self.variable, self.budget = variable, budget

    def on_train_begin(self, logs=None):
        self._last = time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        now = time.process_time()
        self.variable.assign_add(now - self._last)
        self._last = now
        if self.budget is not None and float(self.variable.numpy()) >= self.budget:
            self.model.stop_training = True


class StopAtStep(keras.callbacks.Callback):
    """Stops `fit` once the optimizer has made `steps` updates in total."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.steps:
            self.model.stop_training = True


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves `manager`'s checkpoint, numbered by step, after any step that ends
    `every_seconds` or more after the last save, and after every `every_steps`-th step."""

    def __init__(self, manager, every_seconds=None, every_steps=None):
        super().__init__()
        self.manager, self.every_seconds, self.every_steps = manager, every_seconds, every_steps

    def on_train_begin(self, logs=None):
        self._last_save = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        due_by_time = (self.every_seconds is not None
                       and time.monotonic() - self._last_save >= self.every_seconds)
        due_by_step = self.every_steps is not None and step % self.every_steps == 0
        if due_by_time or due_by_step:
            self.manager.save(checkpoint_number=step)
            self._last_save = time.monotonic()


class ReviveComponents(keras.callbacks.Callback):
    """When training starts and every `every` steps, revives the top prior's dead mixture
    components (`MixtureTopPrior.split_components`) on the conditional frames of `clips`
    (uint8 [N, T, H, W, 3] training videos, encoded `batch_size` at a time), and prints
    what it split. Components that collapse early, while their gradients are alike, never
    come back by themselves, and a collapsed mixture samples only a few of the futures."""

    def __init__(self, every, clips, batch_size=32):
        super().__init__()
        self.every, self.clips, self.batch_size = every, clips, batch_size

    def on_train_begin(self, logs=None):
        self._revive()

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) % self.every == 0:
            self._revive()

    def _revive(self):
        model = self.model
        tops = [model.encode_values(pixels.bin_centres(clips))[0][-1]
                for clips in np.array_split(self.clips, max(1, len(self.clips) // self.batch_size))]
        history, _, z = model.prior.conditional_frames(tf.concat(tops, axis=0), None,
                                                       model.config.min_history)
        top = model.prior.levels[-1]
        pairs = top.split_components(history, None, z, optimizer=model.optimizer)
        # Every worker splits on the same videos, but rounding may differ between them.
        distribute.copy_first_replica(model.distribute_strategy, top.variables + [
            slot for variable in top.variables
            for slot in optim.slot_variables(model.optimizer, variable)])
        if pairs:
            step = int(model.optimizer.iterations.numpy())
            print(f"ReviveComponents: step {step}: top-prior components "
                  f"{[dead for _, dead in pairs]} were dead; each now takes part of "
                  f"{[live for live, _ in pairs]}'s frames.")


class TrainingSummaries(keras.callbacks.Callback):
    """TensorBoard summaries, by global step (so a resumed run continues its curves).

    Every `summary_every` steps: `bpp`, the mean training bits per pixel of those steps,
    and `learning_rate`. Every `sample_every` steps (0: never) and at the end: `samples`,
    one image per context of `contexts` (uint8 [N, context frames, H, W, 3]) with
    `num_target_frames` sampled frames after it (temperature from the config, fixed seed).
    """

    def __init__(self, log_dir, summary_every, sample_every=0, contexts=None):
        super().__init__()
        self.log_dir, self.summary_every, self.sample_every = log_dir, summary_every, sample_every
        self.contexts = contexts

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)
        self._bpp, self._bpp_sum, self._bpp_count = BatchValues("bpp"), 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self._bpp_sum += self._bpp.update(batch, logs)
        self._bpp_count += 1
        if self.summary_every and step % self.summary_every == 0:
            with self._writer.as_default(step=step):
                write_scalar("bpp", self._bpp_sum / self._bpp_count)
                write_scalar("learning_rate", float(self.model.optimizer.learning_rate))
            self._bpp_sum, self._bpp_count = 0.0, 0
        if self.sample_every and step % self.sample_every == 0:
            self._write_samples(step)

    def on_train_end(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.sample_every and step % self.sample_every:
            self._write_samples(step)
        self._writer.flush()

    def _write_samples(self, step):
        config = self.model.config
        samples = self.model.sample(self.contexts, config.num_target_frames, seed=0).numpy()
        videos = np.concatenate([self.contexts, samples], axis=1)
        strips = [visualize.strip(video[None], config.num_context_frames,
                                  visualize.default_scale(config.image_size) // 2 or 1)
                  for video in videos]
        with self._writer.as_default(step=step):
            write_images("samples", strips)
        self._writer.flush()


# tf.summary.scalar and tf.summary.image live in the tensorboard package, which only
# viewing the logs needs; these write the same records with TensorFlow alone.

def _metadata(plugin_name):
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name))


def write_scalar(tag, value):
    """A TensorBoard scalar at the default writer's step."""
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=_metadata("scalars"))


def write_images(tag, images):
    """TensorBoard images (uint8 [H, W, 3] each, all the same size) at the default
    writer's step: the images plugin's [width, height, PNG, ...] string tensor."""
    height, width = images[0].shape[:2]
    pngs = [tf.io.encode_png(image) for image in images]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height)] + pngs)
    tf.summary.write(tag, tensor, metadata=_metadata("images"))
