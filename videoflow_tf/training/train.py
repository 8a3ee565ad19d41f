"""`videoflow-tf train`: train VideoFlow with Keras `fit`, checkpointing as it goes, and
resume after a crash or a kill from the last checkpoint.

From Python: `vf.train.train(config, dataset, model_dir, steps, ...)`.

Resuming. A checkpoint (tf.train.CheckpointManager: of the initialised model, then every
`checkpoint_every` seconds and/or `checkpoint_every_steps` steps, and at the end) holds the
weights and the optimizer, so the step count `optimizer.iterations` and with it the
learning-rate schedule continue. A run resumes from its newest checkpoint that reads: a
newer one whose files are missing or damaged is skipped, saying which and why. The data
order continues too: the training pipeline is a deterministic function of `data_seed`, and a
resumed run rebuilds it and skips the batches the restored step had consumed (one per step).
Skipping replays the input pipeline without running the model (about 300 shapes_32_baseline batches
a second on 2 cores, a minute per 20,000 steps); in exchange every run, killed or not, sees
exactly the same batches in the same order. A run killed between checkpoints loses only the
steps since the last one.

Numerical safety: an update whose loss or gradients are not finite is never applied, and
`StopOnNonFiniteLoss` stops training at that step; the final checkpoint then holds the
weights of the last good step.

TensorBoard (`MODEL_DIR/logs/train`): `bpp` (mean over the last `summary_every` steps),
`learning_rate`, and `samples`, futures sampled from fixed validation contexts (context
frames framed in orange) every `sample_every` steps and at the end; the sample monitor's
numbers in `MODEL_DIR/logs/monitor`.

A mixture top prior with `revive_components_every` N > 0 gets its dead components revived
(`ReviveComponents`) from the frames of the first 256 training videos, when training starts
(also when it resumes) and every N steps; each revival prints a line.

Several devices or machines (`strategy`, see `vf.distribute`): the batch size is the global
one, split over the replicas, and a checkpoint of one strategy resumes under another. With
`multi_worker` every worker runs the same command; all of them restore from MODEL_DIR (so it
must be storage they share, such as GCS or NFS), and only the chief writes there: the
config, the checkpoints and the TensorBoard logs (the others checkpoint into a temporary
folder that they delete).
"""
import contextlib
import dataclasses
import math
import os
import shutil
import signal
import sys
import tempfile
import threading

import keras
import tensorflow as tf

from videoflow_tf.config import CONFIG_NAMES
from videoflow_tf.data import pipelines
from videoflow_tf.data.pipelines import check_dataset
from videoflow_tf.data.videos import dataset_frames, load_videos, shape_labels
from videoflow_tf.model import distribute
from videoflow_tf.model.optim import make_optimizer
from videoflow_tf.model.videoflow import VideoFlow
from videoflow_tf.training import run_dir
from videoflow_tf.training.callbacks import (CpuTime, PeriodicCheckpoint, ReviveComponents,
                                             StepProgress, StopAtStep, StopOnNonFiniteLoss,
                                             TrainingSummaries, WarnAboveUniform,
                                             terminal_verbosity)
from videoflow_tf.training.monitor import MonitorSamples, default_sample_frames, shows_motion
from videoflow_tf.training.open_model import copy_weights, model_config
from videoflow_tf.usage import (UsageError, add_data_dir, add_model, non_negative, positive,
                                resolve_config)

NUM_SUMMARY_VIDEOS = 4
# What training watches (the monitor, TensorBoard's sampled futures) comes from validation:
# choosing runs, steps or temperatures on the test split would bias its numbers.
MONITOR_SPLIT = "validation"
REVIVE_VIDEOS = 256  # the first training videos, whose frames ReviveComponents splits on


def add_arguments(parser):
    parser.add_argument("--config", metavar="NAME",
                        help=f"named configuration, one of {', '.join(CONFIG_NAMES)} "
                        "(default when resuming: the run's own; with --init-from: that "
                        "model's)")
    parser.add_argument("--dataset", metavar="NAME",
                        help="TFDS dataset: stochastic_shapes, stochastic_shapes/black or "
                        "bair_action_free (default: the config's); prepared if needed")
    add_model(parser, alias=True, dest="model_dir", metavar="RUN",
              help="the run folder to train in: config, checkpoints and TensorBoard logs; "
              "training in an existing run resumes it; one train at a time writes it")
    parser.add_argument("--steps", type=positive(int), metavar="N",
                        help="total number of training steps; a resumed run continues up "
                        "to it (default: the config's train_steps)")
    parser.add_argument("--batch-size", type=positive(int), metavar="B",
                        help="videos per step, split over the replicas of --strategy "
                        "(default: the config's batch_size)")
    add_data_dir(parser, default="TFDS's: ~/tensorflow_datasets or $TFDS_DATA_DIR")
    parser.add_argument("--set", action="extend", nargs="+", default=[],
                        metavar="FIELD=VALUE",
                        help="override config fields, e.g. --set learning_rate=1e-4 "
                        "num_steps=8")
    parser.add_argument("--data-seed", type=int, default=0, metavar="S",
                        help="seed of the training data order (default: %(default)s)")
    parser.add_argument("--checkpoint-every", type=positive(float), default=300.0,
                        metavar="SECONDS",
                        help="write a checkpoint after a step when this many seconds "
                        "passed since the last one (default: %(default)s)")
    parser.add_argument("--checkpoint-every-steps", type=positive(int), metavar="N",
                        help="also write a checkpoint every N steps")
    parser.add_argument("--keep-checkpoints", type=positive(int), default=3, metavar="K",
                        help="checkpoints kept (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=positive(int), default=500, metavar="N",
                        help="steps per Keras epoch: one progress bar or log line each "
                        "(default: %(default)s)")
    parser.add_argument("--summary-every", type=positive(int), default=100, metavar="N",
                        help="TensorBoard bpp and learning rate every N steps "
                        "(default: %(default)s)")
    parser.add_argument("--sample-every", type=non_negative(int), default=1000, metavar="N",
                        help="TensorBoard sampled videos every N steps and at the end; "
                        "0: never (default: %(default)s)")
    parser.add_argument("--monitor-every", type=non_negative(int), default=1000, metavar="N",
                        help="every N steps and at the end, sample futures of the first "
                        "validation videos and log how good they are (bits per pixel of the samples "
                        "against real clips, out-of-range values, and for stochastic "
                        "shapes their motion) to MODEL_DIR/monitor.jsonl and TensorBoard; "
                        "0: never (default: %(default)s)")
    parser.add_argument("--monitor-videos", type=positive(int), default=64, metavar="N",
                        help="validation videos the monitor samples after (default: "
                        "%(default)s)")
    parser.add_argument("--monitor-seeds", type=positive(int), default=2, metavar="K",
                        help="samples per monitored video (default: %(default)s)")
    parser.add_argument("--max-cpu-seconds", type=positive(float), metavar="S",
                        help="stop once training has used S seconds of CPU time in all (all "
                        "threads, counted across resumptions): equal compute for runs "
                        "that share a machine")
    parser.add_argument("--init-from", metavar="MODEL",
                        help="start a new run from the weights of MODEL (a SavedModel "
                        "exported by videoflow-tf export, a run folder or a checkpoint of "
                        "one) instead of initialising them; the optimizer and the step "
                        "count start afresh. MODEL's config must have the same architecture")
    parser.add_argument("--strategy", choices=distribute.STRATEGIES, default="default",
                        help="tf.distribute strategy: default (one device), mirrored (every "
                        "GPU of this machine), multi_worker (the machines listed in "
                        "TF_CONFIG; run the command on each) or tpu (TPU_NAME, else this "
                        "TPU VM's) (default: %(default)s)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2),
                        help="Keras fit verbosity: 1 progress bar, 2 one line per epoch "
                        "(default: 1 on a terminal, else 2)")


def run(args):
    if args.config is None:
        if os.path.isfile(os.path.join(args.model_dir, run_dir.CONFIG_FILE)):
            base = run_dir.read_config(args.model_dir)
        elif args.init_from is not None:
            base = model_config(args.init_from)
        else:
            raise UsageError("--config (or --init-from) is required to start a new run in "
                             f"{args.model_dir!r}")
        config = resolve_config(base=base, assignments=args.set, batch_size=args.batch_size)
    else:
        config = resolve_config(args.config, assignments=args.set, batch_size=args.batch_size)
    steps = config.train_steps if args.steps is None else args.steps
    result = train(config, args.dataset, args.model_dir, steps, data_dir=args.data_dir,
                   data_seed=args.data_seed, checkpoint_every=args.checkpoint_every,
                   checkpoint_every_steps=args.checkpoint_every_steps,
                   keep_checkpoints=args.keep_checkpoints,
                   steps_per_epoch=args.steps_per_epoch, summary_every=args.summary_every,
                   sample_every=args.sample_every, verbose=args.verbose,
                   strategy=args.strategy, monitor_every=args.monitor_every,
                   monitor_videos=args.monitor_videos, monitor_seeds=args.monitor_seeds,
                   max_cpu_seconds=args.max_cpu_seconds, init_from=args.init_from)
    if result.bad_step is not None:
        print(f"videoflow-tf train: the loss was not finite at step {result.bad_step}; "
              f"{result.checkpoint} holds the last good weights (step {result.step})",
              file=sys.stderr)
        return 1
    if result.checkpoint is None:
        print(f"Trained to step {result.step} (the chief writes the checkpoints)")
    else:
        print(f"Trained to step {result.step}: {result.checkpoint}")
    return 0


@dataclasses.dataclass
class TrainResult:
    """What `train` did: the trained model, its step, the step whose loss was not finite
    (None if none), the last checkpoint's path (None on a worker other than the chief) and
    Keras's History."""
    model: VideoFlow
    step: int
    bad_step: int | None
    checkpoint: str | None
    history: keras.callbacks.History | None


@run_dir.releases_claims
def train(config, dataset, model_dir, steps, *, data_dir=None, data_seed=0,
          checkpoint_every=300.0, checkpoint_every_steps=None, keep_checkpoints=3,
          steps_per_epoch=500, summary_every=100, sample_every=1000, verbose=None,
          callbacks=(), strategy="default", monitor_every=1000, monitor_videos=64,
          monitor_seeds=2, max_cpu_seconds=None, init_from=None):
    """Trains `config` on `dataset` (a TFDS name; None: config.dataset) in `model_dir` up to
    `steps` steps in total, resuming the run found there. Returns a TrainResult.

    `strategy` is a `tf.distribute.Strategy` or the name of one (`vf.distribute.STRATEGIES`);
    `config.batch_size` is the global batch. A `model_dir` holding a run of another config
    or data_seed raises UsageError (a ValueError). `callbacks` are extra Keras callbacks for
    `fit`. See the module docstring for checkpoints, resuming, TensorBoard, the sample
    monitor (`monitor_*`), the CPU budget, `init_from` and strategies.
    """
    if dataset is not None:
        config = resolve_config(base=config, dataset=check_dataset(dataset))
    check_dataset(config.dataset)
    strategy = _strategy(strategy, config.batch_size)
    chief = distribute.is_chief(strategy)
    data_dir = os.path.abspath(data_dir) if data_dir else None
    settings = {"data_seed": data_seed, "data_dir": data_dir}
    # Everything is checked and read (the run, its checkpoint, the data) before the run's
    # folder is written, so that a start that fails leaves it as it was.
    if chief:
        if init_from is not None:
            settings["init_from"] = os.path.abspath(init_from)
        run_dir.check_run(model_dir, config, settings)
        run_dir.claim(model_dir)  # the run's one writer until train returns, else RunInUse
    _check_frames(config, data_dir)
    model, manager, train_data, step = setup_training(config, model_dir, data_dir, data_seed,
                                                      keep_checkpoints, strategy, init_from)
    cpu_seconds = manager.checkpoint.cpu_seconds
    contexts = None
    if chief and sample_every:
        contexts = load_videos(config, MONITOR_SPLIT, NUM_SUMMARY_VIDEOS, data_dir)[
            :, :config.num_context_frames]
    monitor = None
    if chief and monitor_every:
        monitor = _sample_monitor(config, model_dir, data_dir, monitor_every, monitor_videos,
                                  monitor_seeds, cpu_seconds)
    if chief:
        run_dir.start_run(model_dir, config, settings)
    resumed = manager.latest_checkpoint is not None

    scratch = None
    if not chief:  # it checkpoints too (as tf.distribute asks), where nobody reads
        scratch = tempfile.mkdtemp(prefix="videoflow-tf-worker-")
        manager = run_dir.checkpoint_manager(scratch, manager.checkpoint, 1)
    stop_on_nan = StopOnNonFiniteLoss()
    all_callbacks = [stop_on_nan, StopAtStep(steps), CpuTime(cpu_seconds, max_cpu_seconds),
                     PeriodicCheckpoint(manager, checkpoint_every, checkpoint_every_steps)]
    if chief:
        all_callbacks.append(WarnAboveUniform())
    if chief and (summary_every or sample_every):
        all_callbacks.append(TrainingSummaries(
            os.path.join(model_dir, run_dir.LOG_DIR), summary_every, sample_every, contexts))
    if monitor is not None:
        all_callbacks.append(monitor)
    if config.revive_components_every:
        clips = load_videos(config, "train", REVIVE_VIDEOS, data_dir,
                            num_frames=config.num_train_frames)
        all_callbacks.append(ReviveComponents(config.revive_components_every, clips))
    if verbose is None:
        verbose = terminal_verbosity()
    if verbose:
        all_callbacks.append(StepProgress(steps, steps_per_epoch, verbose))
    try:
        # A checkpoint of the starting point: a fresh run's initialised weights, so that a
        # run killed before its first periodic checkpoint resumes with them; after
        # skipping a damaged newest checkpoint, the one restored, saved again to become
        # the manager's latest, so that the run's last save never takes the damaged one
        # for its own step (it is overwritten or rotated out later).
        _save(manager, model)
        used = float(cpu_seconds.numpy())
        if step >= steps or (max_cpu_seconds is not None and used >= max_cpu_seconds):
            print(f"{model_dir} is already trained to step {step} (asked: {steps}), with "
                  f"{used:.0f} CPU seconds (budget: {max_cpu_seconds or 'none'}).")
            return TrainResult(model, step, None, manager.latest_checkpoint if chief else None,
                               None)
        if resumed:
            print(f"Resuming {model_dir} at step {step} of {steps}; skipping the {step} "
                  "batches already used.")
        elif init_from is None:
            print(f"No checkpoint in {model_dir}: starting fresh at step 0 of {steps}.")
        else:
            print(f"No checkpoint in {model_dir}: starting at step 0 of {steps} from the "
                  f"weights of {init_from}.")
        with _stop_signals_interrupt():
            history = model.fit(train_data, epochs=math.ceil(steps / steps_per_epoch),
                                initial_epoch=step // steps_per_epoch,
                                steps_per_epoch=steps_per_epoch, verbose=0,
                                callbacks=all_callbacks + list(callbacks))
        checkpoint = _save(manager, model)
    except KeyboardInterrupt:
        saved = _save(manager, model)
        if chief:
            print(f"Interrupted at step {run_dir.checkpoint_step(saved)}: saved {saved}; "
                  "the same command resumes from it.", file=sys.stderr)
        raise
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return TrainResult(model, int(model.optimizer.iterations.numpy()), stop_on_nan.bad_step,
                       checkpoint if chief else None, history)


@contextlib.contextmanager
def _stop_signals_interrupt():
    """While training, SIGTERM (what `kill` and cluster schedulers send before killing) and
    SIGINT stop it as Ctrl-C does: the step is saved. SIGINT needs it too when the process
    started with it ignored, as a shell's background job (`nohup ... &`) does. Signal
    handlers can only be set from the main thread; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, interrupt)
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _sample_monitor(config, model_dir, data_dir, every, num_videos, seeds, cpu_seconds):
    """The MonitorSamples callback of a run: the first validation videos, sampled for
    `default_sample_frames` frames."""
    num_frames = default_sample_frames(config, data_dir)
    videos = load_videos(config, MONITOR_SPLIT, num_videos, data_dir,
                         num_frames=config.num_context_frames + num_frames)
    motion = shows_motion(config)
    labels = shape_labels(config, MONITOR_SPLIT, num_videos, data_dir) if motion else None
    return MonitorSamples(
        os.path.join(model_dir, run_dir.MONITOR_FILE), every, videos, num_frames, seeds,
        motion=motion, log_dir=os.path.join(model_dir, run_dir.MONITOR_LOG_DIR),
        cpu_seconds=cpu_seconds, labels=labels)


def _strategy(strategy, batch_size):
    """The strategy (made from its name if a str), checked against the global batch size."""
    if isinstance(strategy, str):
        try:
            strategy = distribute.make_strategy(strategy)
        except (ValueError, RuntimeError) as error:
            raise UsageError(str(error)) from None
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise UsageError(f"the batch size {batch_size} does not divide over the strategy's "
                         f"{replicas} replicas; use a multiple of {replicas} (--batch-size)")
    return strategy


def _check_frames(config, data_dir):
    """UsageError unless the dataset's videos are long enough for a training window."""
    available = dataset_frames(config.dataset, data_dir)
    if config.num_train_frames > available:
        raise UsageError(f"{config.dataset} videos have {available} frames, fewer than the "
                         f"config's num_train_frames {config.num_train_frames}; expected at "
                         f"most {available} (--set num_train_frames=N)")


def setup_training(config, model_dir, data_dir, data_seed, keep_checkpoints, strategy=None,
                   init_from=None):
    """(model, checkpoint manager, training dataset, step): the model and its optimizer
    (made in `strategy`'s scope; None: the default strategy), restored from the newest
    checkpoint of `model_dir` that reads, if any (the same step on every worker, else
    UsageError), else given the weights of `init_from` (see `open_model.copy_weights`) if
    given, else initialised from the first training videos, and the training batches
    continuing after the `step` batches that the restored run had used (a distributed
    dataset under a strategy other than the default)."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = VideoFlow(config)
        model.compile(optimizer=make_optimizer(config))
        model.optimizer.build(model.trainable_variables)
    manager = run_dir.checkpoint_manager(
        model_dir, run_dir.make_checkpoint(model, model.optimizer), keep_checkpoints)
    run_dir.restore_latest(model_dir, manager.checkpoint, model)
    step = int(model.optimizer.iterations.numpy())
    if manager.latest_checkpoint is None and init_from is not None:
        copy_weights(model, init_from)
    if not distribute.same_on_all_workers(strategy, step):
        raise UsageError(f"the workers restored different steps from {model_dir} (this one "
                         f"step {step}); every worker must read the same --model-dir, on "
                         "storage they share")
    if not int(model.is_initialized.numpy()):
        # From a pipeline of their own (every worker the same videos), so that `fit`
        # iterates the training pipeline from its start, as after a resume: a second
        # iterator of a shuffled dataset would see another order.
        first = pipelines.make_dataset(config.dataset, "train", config, config.init_batch_size,
                                  training=True, data_dir=data_dir, seed=data_seed)
        with strategy.scope():
            model.initialize(next(iter(first)))
    if strategy is tf.distribute.get_strategy():  # the default strategy
        train_data = pipelines.make_dataset(config.dataset, "train", config, config.batch_size,
                                       training=True, data_dir=data_dir, seed=data_seed)
        return model, manager, train_data.skip(step), step
    train_data = pipelines.distribute_dataset(strategy, config.dataset, "train", config,
                                         config.batch_size, training=True, data_dir=data_dir,
                                         seed=data_seed, skip_steps=step)
    return model, manager, train_data, step


def _save(manager, model):
    """Checkpoints the current step unless its checkpoint exists; returns the latest path."""
    step = int(model.optimizer.iterations.numpy())
    latest = manager.latest_checkpoint
    if latest is None or run_dir.checkpoint_step(latest) != step:
        latest = manager.save(checkpoint_number=step)
    return latest
