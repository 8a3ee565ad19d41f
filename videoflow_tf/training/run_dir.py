"""The folder of a training run: its files, and writing and restoring its checkpoints
(`videoflow_tf.training.open_model` opens the trained model of a run).

    MODEL_DIR/config.json      the resolved VideoFlowConfig (`config.to_json()`)
    MODEL_DIR/training.json    data settings of the run: `data_seed` (fixed for the run) and
                               `data_dir` (where the TFDS data was; the other commands'
                               default)
    MODEL_DIR/checkpoints/     tf.train.CheckpointManager checkpoints `ckpt-<step>`
    MODEL_DIR/logs/train/      TensorBoard summaries of training
    MODEL_DIR/logs/monitor/    TensorBoard summaries of the sample monitor
    MODEL_DIR/monitor.jsonl    the sample monitor's measurements, one JSON record a line
    MODEL_DIR/writer.lock      while a `train` writes the run: its lock, holding its pid

One writer. A run folder has one writer at a time: `train` claims the folder (`claim`)
before it writes anything, with an advisory lock (flock) on MODEL_DIR/writer.lock, and a
second `train` on the same folder stops at once with a UsageError naming the folder and
the process that holds it. The operating system drops the lock when its process ends,
however it ends: a writer killed with SIGKILL leaves at most a stale writer.lock, which
blocks nothing (a clean end removes it). Readers (`evaluate`, `sample`, `export`, ...) take
no lock: they read a run that is being trained at its newest whole checkpoint.

A checkpoint holds the model's weights (as a list in `model.weights` order, which the
config fixes), the optimizer, whose `iterations` is the training step, and the CPU
seconds training has used (`cpu_seconds`; 0 when restored from a checkpoint without it).
"""
import fcntl
import functools
import json
import os
import shutil
import sys
import threading

import tensorflow as tf

from videoflow_tf.config import VideoFlowConfig
from videoflow_tf.usage import UsageError

CONFIG_FILE = "config.json"
TRAINING_FILE = "training.json"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = os.path.join("logs", "train")
MONITOR_LOG_DIR = os.path.join("logs", "monitor")
MONITOR_FILE = "monitor.jsonl"
LOCK_FILE = "writer.lock"
FIXED_SETTINGS = ("data_seed",)  # settings a resumed run must share with the first one
SAMPLING_FIELDS = ("temperature",)  # config fields training never reads: free to change


def make_checkpoint(model, optimizer=None):
    """A tf.train.Checkpoint of the model's weights (and, if given, the optimizer and a
    float64 `cpu_seconds` counter of the training's CPU time).

    The weights are tracked as a list because Keras 3 layers kept in Python lists (the
    flow's levels, the prior's levels) are invisible to TensorFlow's object tracking.
    """
    if optimizer is None:
        return tf.train.Checkpoint(weights=list(model.weights))
    return tf.train.Checkpoint(weights=list(model.weights), optimizer=optimizer,
                               cpu_seconds=tf.Variable(0.0, dtype=tf.float64,
                                                       trainable=False))


# A checkpoint's data is split into files of at most this many bytes: a long run's newest
# checkpoint is committed to git as its resume point, and git hosts refuse large files.
MAX_SHARD_BYTES = 16 << 20


class _ShardedCheckpointManager(tf.train.CheckpointManager):
    """Saves with data files of at most MAX_SHARD_BYTES; restores as any checkpoint."""

    def save(self, checkpoint_number=None, check_interval=True, options=None):
        if options is None:
            options = tf.train.CheckpointOptions(experimental_sharding_callback=(
                tf.train.experimental.MaxShardSizePolicy(MAX_SHARD_BYTES)))
        return super().save(checkpoint_number, check_interval, options)


def checkpoint_manager(model_dir, checkpoint, max_to_keep=3):
    return _ShardedCheckpointManager(checkpoint, os.path.join(model_dir, CHECKPOINT_DIR),
                                     max_to_keep=max_to_keep)


def checkpoint_step(path):
    """The training step of checkpoint `path` (`.../ckpt-<step>`)."""
    return int(path.rsplit("-", 1)[1])


def check_run(model_dir, config, settings):
    """Checks, writing nothing, that a run of `config` and `settings` can start or resume
    in `model_dir`: UsageError if it holds a run of another config or FIXED_SETTINGS
    (naming the differences; only SAMPLING_FIELDS may differ), is a SavedModel or a
    checkpoint rather than a run folder, or cannot be written."""
    if os.path.isfile(model_dir + ".index") or (
            _is_saved_model(model_dir)
            and not os.path.exists(os.path.join(model_dir, CONFIG_FILE))):
        kind = "a checkpoint" if os.path.isfile(model_dir + ".index") else "a SavedModel"
        raise UsageError(f"{model_dir} is {kind}, not a run folder: train writes a run "
                         "folder (train --model NEW_RUN --init-from MODEL starts one from "
                         "its weights)")
    if os.path.exists(os.path.join(model_dir, CONFIG_FILE)):
        stored = read_config(model_dir)
        stored_settings = read_settings(model_dir)
        current = config.to_dict()
        differences = [f"{name}: {value!r} in the run, {current[name]!r} now"
                       for name, value in stored.to_dict().items()
                       if current[name] != value and name not in SAMPLING_FIELDS]
        differences += [f"{name}: {stored_settings.get(name)!r} in the run, "
                        f"{settings[name]!r} now" for name in FIXED_SETTINGS
                        if stored_settings.get(name) != settings[name]]
        if differences:
            raise UsageError(f"{model_dir} holds a run with another configuration ("
                             f"{'; '.join(differences)}); resume it with the same settings "
                             "or train in a new --model-dir")
    # The folder, or the nearest one above it that exists, must be a writable folder.
    existing = os.path.abspath(model_dir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot write the model directory {model_dir!r}: {existing!r} is "
                         "a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write the model directory {model_dir!r}: no permission to "
                         f"write in {existing!r}")


def _is_saved_model(path):
    """Whether folder `path` holds a SavedModel, or integer version folders holding one."""
    if not os.path.isdir(path):
        return False
    return any(os.path.isfile(os.path.join(folder, "saved_model.pb")) for folder in
               [path] + [os.path.join(path, name) for name in os.listdir(path)
                         if name.isdigit()])


def start_run(model_dir, config, settings):
    """Creates `model_dir` with the run's config and settings, or updates an existing
    run's, after `check_run`. A changed SAMPLING_FIELDS value replaces the run's.
    Removes checkpoints left half-written by a killed run."""
    check_run(model_dir, config, settings)
    _remove_unfinished_checkpoints(model_dir)
    config_path = os.path.join(model_dir, CONFIG_FILE)
    try:
        if os.path.exists(config_path):
            if config != read_config(model_dir):
                _write_text(config_path, config.to_json())
            settings = {**read_settings(model_dir), **settings}
        else:
            os.makedirs(model_dir, exist_ok=True)
            _write_text(config_path, config.to_json())
        _write_json(os.path.join(model_dir, TRAINING_FILE), settings)
    except OSError as error:
        raise UsageError(f"cannot write the model directory {model_dir!r}: "
                         f"{error.strerror}") from None


def read_config(model_dir):
    """The VideoFlowConfig of the run in `model_dir` (UsageError if there is none)."""
    if not os.path.isdir(model_dir):
        problem = "is a file, not a folder" if os.path.exists(model_dir) else "does not exist"
        raise UsageError(f"model directory {model_dir!r} {problem}")
    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise UsageError(f"{model_dir!r} is not a training model directory: it has no "
                         f"{CONFIG_FILE} (train one with `videoflow-tf train`)")
    try:
        with open(path, encoding="utf-8") as file:
            return VideoFlowConfig.from_json(file.read())
    except ValueError as error:
        raise UsageError(f"{path} is not a valid VideoFlow config: {error}") from None


def read_settings(model_dir):
    """The run's settings dict ({} when the run has none recorded)."""
    path = os.path.join(model_dir, TRAINING_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as file:
        return json.load(file)


class UnreadableCheckpoint(UsageError):
    """A checkpoint whose files are missing, truncated or otherwise damaged."""

    def __init__(self, path, reason):
        super().__init__(f"checkpoint {path} does not read ({reason})")
        self.path, self.reason = path, reason


def restore_latest(model_dir, checkpoint, model, partial=False):
    """Restores `checkpoint` (of `model`) from the newest checkpoint of `model_dir` that
    reads and returns its path; None if the run has none.

    A newer checkpoint that does not read (a file deleted, truncated or damaged, say by a
    full disk) is skipped with a line on stderr saying which and why: the older ones the
    CheckpointManager kept are whole, and losing the steps since one of them beats losing
    the run. UnreadableCheckpoint (a UsageError) naming the newest if none reads;
    UsageError if one reads but does not fit the model (see `restore`).
    """
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, CHECKPOINT_DIR))
    newest_first = list(reversed(state.all_model_checkpoint_paths)) if state else []
    skipped = []
    for path in newest_first:
        try:
            restore(checkpoint, path, model, partial)
        except UnreadableCheckpoint as error:
            skipped.append(error)
            continue
        for error in skipped:
            print(f"videoflow-tf: skipping a checkpoint: {error}; using {path}",
                  file=sys.stderr)
        return path
    if skipped:
        newest, older = skipped[0], len(skipped) - 1
        raise UnreadableCheckpoint(newest.path, f"{newest.reason}"
                                   f"{f'; nor do the {older} older ones' if older else ''}; "
                                   "restore the files, or move "
                                   f"{os.path.join(model_dir, CHECKPOINT_DIR)!r} away to "
                                   "train from the start")
    return None


def _remove_unfinished_checkpoints(model_dir):
    """TensorFlow writes checkpoint ckpt-N into the folder ckpt-N_temp and deletes that
    once ckpt-N is whole; a run killed meanwhile leaves the folder behind, never read."""
    folder = os.path.join(model_dir, CHECKPOINT_DIR)
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith("_temp") and os.path.isdir(os.path.join(folder, name)):
            shutil.rmtree(os.path.join(folder, name))
            print(f"Removed {os.path.join(folder, name)}, a checkpoint a killed run left "
                  "half-written")


def restore(checkpoint, path, model, partial=False):
    """Restores `checkpoint` (of `model`) from `path`. UnreadableCheckpoint if its files
    are missing or damaged; UsageError if it does not match the model (a checkpoint
    written by another version of the model code, say). With `partial`, objects the
    checkpoint has beyond `checkpoint`'s (the optimizer) are ignored."""
    try:
        saved = [name for name, _ in tf.train.list_variables(path)
                 if name.startswith("weights/")]
        problem = None
        if len(saved) != len(model.weights):
            problem = f"it has {len(saved)} weights, the model {len(model.weights)}"
        else:
            try:
                status = checkpoint.restore(path)
                if partial:
                    status.expect_partial()
                status.assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
                problem = str(error).strip().splitlines()[-1]
    except (tf.errors.OpError, IndexError) as error:
        # What TensorFlow's readers raise for a missing, truncated or garbled .index or
        # .data file: mostly a bare OpError, an IndexError ("Read less bytes than
        # requested") for a short .data file.
        raise UnreadableCheckpoint(path, _first_line(error)) from None
    if problem:
        raise UsageError(f"checkpoint {path} does not fit the model of its config.json "
                         f"({problem}); was it written by another version of videoflow-tf?")


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _write_json(path, values):
    _write_text(path, json.dumps(values, indent=2, sort_keys=True))


def _write_text(path, text):
    """Writes whole or not at all (a run killed mid-write leaves the old file)."""
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text + "\n")
    os.replace(temporary, path)


# ------------------------------------------------------------------------ one writer

class RunInUse(UsageError):
    """The run folder is claimed by another writer."""


class Claim:
    """This process's claim on a run folder: an exclusive flock on its LOCK_FILE, which
    holds this process's pid. `release()` gives it up (at the latest the process's end
    does)."""

    def __init__(self, model_dir):
        self.model_dir, self.path = model_dir, os.path.join(model_dir, LOCK_FILE)
        self._created = _missing_folders(model_dir)
        self._file = None
        while self._file is None:  # until the locked file is the one at self.path
            try:
                os.makedirs(model_dir, exist_ok=True)
                file = open(self.path, "a+", encoding="utf-8")
            except FileNotFoundError:  # a releasing writer removed the folder meanwhile
                continue
            except OSError as error:
                raise UsageError(f"cannot write the model directory {model_dir!r}: "
                                 f"{error.strerror}") from None
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip()
                file.close()
                self._created = []
                raise RunInUse(
                    f"{model_dir} is in use: process "
                    f"{holder if holder.isdigit() else '(pid unknown)'} is training in it, "
                    "and a run folder has one writer; wait for it to end, or train in "
                    "another --model") from None
            # A writer that released meanwhile removed the file this one locked: retry.
            if _same_file(file, self.path):
                self._file = file
            else:
                file.close()
        self._file.truncate(0)
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()

    def release(self):
        """Removes the lock file (and the folders the claim created, if left empty), then
        drops the lock; a second call does nothing."""
        if self._file is None:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        for folder in self._created:  # innermost first
            try:
                os.rmdir(folder)
            except OSError:  # not empty: the run wrote there
                break
        self._file.close()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()


_scopes = threading.local()


def claim(model_dir):
    """Claims run folder `model_dir` for this process as its one writer (see the module
    docstring), creating it if need be; RunInUse (a UsageError: one line naming the
    folder and the holder's pid) if another process holds it. Within a call of a
    function decorated with `releases_claims` the claim ends when that call ends;
    otherwise with the process. Returns the Claim."""
    held = Claim(model_dir)
    stack = getattr(_scopes, "stack", None)
    (stack[-1] if stack else _process_claims).append(held)
    return held


_process_claims = []


def releases_claims(function):
    """Decorates `function` so that the run folders it claims (`claim`) are released when
    it returns or raises."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        stack = _scopes.__dict__.setdefault("stack", [])
        stack.append([])
        try:
            return function(*args, **kwargs)
        finally:
            for held in reversed(stack.pop()):
                held.release()
    return wrapper


def _missing_folders(path):
    """The folders of `path` that do not exist yet, innermost first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def _same_file(file, path):
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(file.fileno())
    return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)
