"""Opening a trained model, for every command that reads one.

A model is named the same way in every command (`--model`):

- a training run folder (`videoflow_tf.training.run_dir`: config.json and checkpoints/), opened
  as a Python `VideoFlow` with the weights of its newest checkpoint that reads;
- one checkpoint of a run, `RUN/checkpoints/ckpt-STEP` (the files' common prefix; its
  `.index` file names it too), opened with the config of its run; or
- a SavedModel written by `videoflow-tf export`: a version folder, or the model's base
  path, which stands for its highest integer version holding a SavedModel (the one TF
  Serving serves). It is called through its signatures exactly as TF Serving would, and
  its config comes from its `assets/config.json`. Its weights list and config are also
  enough to rebuild the Python model (`python_model`), for the commands that need more
  than the signatures (`order`, `interpolate`, `temperature-sweep`, `export`).

The SavedModels in the repository's savedmodels/ install with the package, and a bare
name (`stochastic_shapes`) stands for savedmodels/NAME unless a file or folder of that name
is in the working folder (`shipped_model`). SHIPPED_MODEL, the stochastic-shapes model,
is the default of every command that reads a model.

`open_model(path)` opens any of them (`sample`, `evaluate`); `python_model(opened)` the
Python model of an opened one; `open_python_model(path)` both at once;
`copy_weights(model, path)` gives a model the weights of any of them (`train
--init-from`); `model_config(path)` reads the config of any of them.

Every opened model (RunModel, ExportedModel) has a `config`, a `description`, the
`data_dir` its contexts come from by default (a run's; None: TFDS's), the
`default_num_frames` it samples, its `run_dir` (the run folder of a run or checkpoint,
where commands write their results by default; None for a SavedModel), its `source` (what
results files record of it: a run's folder and step, a SavedModel's path), and samples
(`sample`), scores (`frame_bits_per_pixel`) and measures its samples (`sample_quality`)
alike. A RunModel also has the Python `model` and its training `step`; an ExportedModel
has None for both.

Opening only reads: a run that `train` is writing meanwhile opens at its newest whole
checkpoint.
"""
import importlib.resources
import os
import re

import numpy as np
import tensorflow as tf

from videoflow_tf.config import VideoFlowConfig
from videoflow_tf.model.videoflow import VideoFlow
from videoflow_tf.training import run_dir
from videoflow_tf.training.monitor import SampleQuality
from videoflow_tf.usage import MODEL_KINDS, UsageError, default_output, output_file

# What `videoflow-tf export` writes into a SavedModel, and what is read back here.
CONFIG_ASSET = "config.json"  # the model's VideoFlowConfig, in the SavedModel's assets/
SAMPLE_SIGNATURE = "serving_default"
LOG_PROB_SIGNATURE = "log_prob"
LOG_PROB_NOISE_SEED = 0  # the log_prob signature's one fixed draw of dequantisation noise

# The repository's savedmodels/ folder, wherever the install put it: the checkout itself for
# an editable install, site-packages/videoflow_tf/savedmodels/ for a wheel.
SHIPPED_MODELS_DIR = str(importlib.resources.files("videoflow_tf.savedmodels"))
SHIPPED_MODEL = os.path.join(SHIPPED_MODELS_DIR, "stochastic_shapes")


def shipped_model_names():
    """The names of the SavedModels shipped with videoflow-tf (savedmodels/NAME), sorted."""
    return sorted(name for name in os.listdir(SHIPPED_MODELS_DIR)
                  if saved_model_version(os.path.join(SHIPPED_MODELS_DIR, name)))


def shipped_model(path):
    """savedmodels/NAME if `path` is a bare NAME of a shipped model that is no file or
    folder in the working folder (a path there wins); else `path` unchanged."""
    if os.path.exists(path) or os.path.dirname(path) or path not in shipped_model_names():
        return path
    return os.path.join(SHIPPED_MODELS_DIR, path)


def open_model(path):
    """A RunModel for a training run folder or a checkpoint of one, an ExportedModel for a
    SavedModel (a version folder or its base path, or the name of a shipped one); UsageError
    for anything else."""
    path = shipped_model(path)
    if not os.path.isdir(path):
        checkpoint = checkpoint_prefix(path)
        if checkpoint is not None:
            return open_checkpoint(checkpoint)
        problem = "is a file, not a folder" if os.path.exists(path) else "does not exist"
        raise UsageError(f"model {path!r} {problem} (expected {MODEL_KINDS}; shipped: "
                         f"{', '.join(shipped_model_names())})")
    if os.path.isfile(os.path.join(path, run_dir.CONFIG_FILE)):
        model, step = load_model(path)
        return RunModel(model, step, run_dir.read_settings(path).get("data_dir"), path)
    version = saved_model_version(path)
    if version is None:
        raise UsageError(f"{path!r} is neither a training run folder (no "
                         f"{run_dir.CONFIG_FILE}) nor a SavedModel (no saved_model.pb, nor "
                         "integer version folders holding one)")
    return ExportedModel(version)


def open_python_model(path):
    """(opened model, its Python VideoFlow): `open_model(path)` and `python_model` of it."""
    opened = open_model(path)
    return opened, python_model(opened)


def open_for_results(args, default_name):
    """(opened model, its Python VideoFlow, results file, PNG file, TFDS data folder) for a
    command that writes its results and a picture of them beside (same name, .png):
    `args.out` if given (checked before the model loads), else `default_name` in a run's
    folder or in the working folder; its extension is the one the results file must have.
    The data folder is `args.data_dir`, else the one the run trained from."""
    suffix = os.path.splitext(default_name)[1]
    out = args.out and output_file(args.out, (suffix,))
    opened, model = open_python_model(args.model)
    out = out or output_file(default_output(opened.run_dir, default_name), (suffix,))
    png = output_file(os.path.splitext(out)[0] + ".png", (".png",))
    return opened, model, out, png, args.data_dir or opened.data_dir


def checkpoint_prefix(path):
    """The checkpoint prefix `path` names (the prefix itself, or its .index or .data
    file), if it names a checkpoint; else None."""
    prefix = re.sub(r"\.(index|data-\d+-of-\d+)$", "", path)
    return prefix if os.path.isfile(prefix + ".index") else None


def checkpoint_run(prefix):
    """The run folder of checkpoint `prefix` (RUN/checkpoints/ckpt-STEP); UsageError if it
    is not in one."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(prefix)))
    if not os.path.isfile(os.path.join(folder, run_dir.CONFIG_FILE)):
        raise UsageError(f"checkpoint {prefix!r} is not in a training run folder: expected "
                         f"RUN/{run_dir.CHECKPOINT_DIR}/ckpt-STEP with RUN/"
                         f"{run_dir.CONFIG_FILE}")
    return folder


def open_checkpoint(prefix):
    """The RunModel of checkpoint `prefix` of a run (see `checkpoint_run`)."""
    folder = checkpoint_run(prefix)
    model = VideoFlow(run_dir.read_config(folder))
    run_dir.restore(run_dir.make_checkpoint(model), prefix, model, partial=True)
    try:
        step = run_dir.checkpoint_step(prefix)
    except (ValueError, IndexError):  # a checkpoint not named ckpt-STEP
        step = None
    return RunModel(model, step, run_dir.read_settings(folder).get("data_dir"), prefix,
                    folder)


def python_model(opened):
    """The Python VideoFlow of an opened model: a run's own, or for a SavedModel one
    rebuilt from its config and weights, so that today's code runs it."""
    if opened.model is not None:
        return opened.model
    model = VideoFlow(opened.config)
    _assign_saved_weights(model, opened.loaded, opened.path)
    return model


def load_model(model_dir):
    """(model, step): the VideoFlow of the run in `model_dir` with the weights of its
    newest checkpoint that reads (see `run_dir.restore_latest`)."""
    model = VideoFlow(run_dir.read_config(model_dir))
    path = run_dir.restore_latest(model_dir, run_dir.make_checkpoint(model), model,
                                  partial=True)
    if path is None:
        raise UsageError(f"{model_dir!r} has no checkpoint yet (in "
                         f"{os.path.join(model_dir, run_dir.CHECKPOINT_DIR)})")
    return model, run_dir.checkpoint_step(path)


class RunModel:
    """A Python VideoFlow, usually a run's: `model`, its `config`, training `step`, the
    `data_dir` the run trained from (None: TFDS's default), a `description` and the
    `run_dir` of the run (None: none)."""

    def __init__(self, model, step=None, data_dir=None, path=None, folder=None):
        self.model, self.config, self.step, self.data_dir = model, model.config, step, data_dir
        self.default_num_frames = self.config.num_target_frames
        self.description = f"{path} (step {step})" if path else "the model"
        self.run_dir = folder or path
        # What the results files of the commands say the model was.
        self.source = {"model_dir": os.path.abspath(self.run_dir) if self.run_dir else None,
                       "step": step}
        if folder is not None:
            self.source["checkpoint"] = os.path.abspath(path)
        self._scorers = {}

    def sample(self, context, num_frames, temperature, seeds):
        """(uint8 frames [N, num_frames, H, W, 3], invalid values per video [N])."""
        samples = self.model.sample_details(context, num_frames, temperature=temperature,
                                            seed=np.asarray(seeds, np.int64))
        return samples.frames.numpy(), samples.invalid.numpy()

    def frame_bits_per_pixel(self, videos, seed=0):
        """Bits per pixel [N, target frames] of uint8 `videos` [N, context + target, H, W,
        3] (dequantisation noise from `seed`), traced once per seed."""
        if seed not in self._scorers:
            config = self.config
            frames = config.num_context_frames + config.num_target_frames
            spec = tf.TensorSpec([None, frames] + list(config.image_shape), tf.uint8)
            self._scorers[seed] = tf.function(
                lambda clips: self.model.bits_per_pixel(clips, seed=seed, per_frame=True),
                input_signature=[spec])
        return self._scorers[seed](videos).numpy()

    def sample_quality(self, batch_size):
        return SampleQuality(self.model, batch_size)


class ExportedModel:
    """A SavedModel version folder, called through its signatures."""

    def __init__(self, path):
        self.path, self.loaded = path, tf.saved_model.load(path)
        self.signatures = self.loaded.signatures
        sample = self._signature(SAMPLE_SIGNATURE)
        context_spec = sample.structured_input_signature[1]["context"]
        (self.default_num_frames,) = sample.structured_outputs["frames"].shape[1:2]
        self.config = exported_config(path)
        if context_spec.shape[1] != self.config.num_context_frames:
            raise UsageError(f"SavedModel {path!r} takes {context_spec.shape[1]} context frames "
                             f"but its config says {self.config.num_context_frames}")
        self.model, self.step, self.data_dir, self.run_dir = None, None, None, None
        self.description = f"SavedModel {path}"
        self.source = {"saved_model": os.path.abspath(path)}

    def sample(self, context, num_frames, temperature, seeds):
        """(uint8 frames [N, num_frames, H, W, 3], invalid values per video [N]; the
        count covers every frame generated, also beyond num_frames). The signature
        samples a fixed number of frames after num_context_frames: longer futures feed
        its last frames back in as the next context, and a longer context gives only
        its last num_context_frames frames."""
        num_context = self.config.num_context_frames
        videos = np.asarray(context, np.uint8)
        seeds = np.asarray(seeds, np.int64)
        invalid = np.zeros(len(videos), np.int64)
        produced = 0
        while produced < num_frames:
            out = self.signatures[SAMPLE_SIGNATURE](
                context=tf.constant(videos[:, -num_context:]),
                temperature=tf.fill([len(videos)], tf.constant(temperature, tf.float32)),
                seed=tf.constant(seeds + produced * len(seeds)))
            if "invalid_values" in out:  # SavedModels exported before it have none
                invalid += out["invalid_values"].numpy()
            videos = np.concatenate([videos, out["frames"].numpy()], axis=1)
            produced += out["frames"].shape[1]
        return videos[:, context.shape[1]:context.shape[1] + num_frames], invalid

    def frame_bits_per_pixel(self, videos, seed=LOG_PROB_NOISE_SEED):
        """Bits per pixel [N, target frames] of uint8 `videos` [N, context + target, H, W,
        3] from the log_prob signature, whose dequantisation noise is fixed: `seed` must
        be LOG_PROB_NOISE_SEED (UsageError otherwise)."""
        config = self.config
        frames = config.num_context_frames + config.num_target_frames
        if seed != LOG_PROB_NOISE_SEED:
            raise UsageError(f"a SavedModel scores with its own fixed noise (seed "
                             f"{LOG_PROB_NOISE_SEED}), not seed {seed}")
        if videos.shape[1] != frames:
            raise UsageError(f"a SavedModel scores clips of exactly {frames} frames (its "
                             f"{LOG_PROB_SIGNATURE} signature), not {videos.shape[1]}")
        scores = self._signature(LOG_PROB_SIGNATURE)(video=tf.constant(videos, tf.uint8))
        return scores["frame_bits_per_pixel"].numpy()

    def _signature(self, name):
        if name not in self.signatures:
            raise UsageError(f"SavedModel {self.path!r} has no {name} signature")
        return self.signatures[name]

    def sample_quality(self, batch_size):
        return _SignatureQuality(self, batch_size)


class _SignatureQuality(SampleQuality):
    """SampleQuality measured through an ExportedModel's signatures."""

    def sample(self, context, num_frames, temperature, seeds):
        parts = [self.model.sample(context[start:start + self.batch_size], num_frames,
                                   temperature, seeds[start:start + self.batch_size])
                 for start in range(0, len(context), self.batch_size)]
        return (np.concatenate([frames for frames, _ in parts]),
                np.concatenate([invalid for _, invalid in parts]))

    def sees_a_real_step(self):
        # serving_default takes num_context_frames frames: with one, a real step given
        # after it is cut off again.
        return self.model.config.num_context_frames > 1

    def bits_per_pixel(self, videos):
        return np.concatenate([
            self.model.frame_bits_per_pixel(videos[start:start + self.batch_size]).mean(axis=1)
            for start in range(0, len(videos), self.batch_size)])


def versions(base_dir):
    """The integer versions present in `base_dir`, sorted."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(name) for name in os.listdir(base_dir)
                  if re.fullmatch(r"\d+", name) and os.path.isdir(os.path.join(base_dir, name)))


def saved_model_version(path):
    """`path` if it holds a SavedModel, else its highest integer version folder holding one
    (the version TF Serving serves); None if neither."""
    if tf.saved_model.contains_saved_model(path):
        return path
    found = [version for version in versions(path)
             if tf.saved_model.contains_saved_model(os.path.join(path, str(version)))]
    return os.path.join(path, str(found[-1])) if found else None


def model_config(path):
    """The VideoFlowConfig of a training run, a checkpoint of one or a SavedModel (or the
    name of a shipped one), without loading any."""
    path = shipped_model(path)
    checkpoint = None if os.path.isdir(path) else checkpoint_prefix(path)
    if checkpoint is not None:
        return run_dir.read_config(checkpoint_run(checkpoint))
    if os.path.isfile(os.path.join(path, run_dir.CONFIG_FILE)):
        return run_dir.read_config(path)
    return saved_model_config(path)


def saved_model_config(path):
    """The VideoFlowConfig of SavedModel `path`, a version folder or a base folder (its
    latest version), without loading the SavedModel."""
    version = saved_model_version(path)
    if version is None:
        raise UsageError(f"{path!r} is not a SavedModel (no saved_model.pb, nor integer "
                         "version folders holding one)")
    return exported_config(version)


def exported_config(path):
    """The VideoFlowConfig in the assets/ of SavedModel version folder `path`."""
    config_path = os.path.join(path, "assets", CONFIG_ASSET)
    if not os.path.isfile(config_path):
        raise UsageError(f"SavedModel {path!r} has no assets/{CONFIG_ASSET}: export it with "
                         "`videoflow-tf export`")
    with open(config_path, encoding="utf-8") as file:
        return VideoFlowConfig.from_json(file.read())


def copy_weights(model, source):
    """Sets `model`'s weights to those of `source`: a SavedModel written by `videoflow-tf
    export` (a version folder or its base path: the latest version), a training run
    folder (its newest checkpoint that reads) or a checkpoint of one (or the name of a
    shipped SavedModel). Returns the version or checkpoint read. UsageError if the
    architectures differ."""
    source = shipped_model(source)
    checkpoint = None if os.path.isdir(source) else checkpoint_prefix(source)
    if checkpoint is not None:
        run_dir.restore(run_dir.make_checkpoint(model), checkpoint, model, partial=True)
        return checkpoint
    version = saved_model_version(source) if os.path.isdir(source) else None
    if version is None:
        restored = run_dir.restore_latest(source, run_dir.make_checkpoint(model), model,
                                          partial=True)
        if restored is None:
            raise UsageError(f"{source!r} is neither a SavedModel nor a run folder with a "
                             "checkpoint")
        return restored
    _assign_saved_weights(model, tf.saved_model.load(version), version)
    return version


def _assign_saved_weights(model, loaded, version):
    """Assigns the `weights` list of the loaded SavedModel `version` to `model`'s."""
    weights = getattr(loaded, "weights", None)
    if weights is None:
        raise UsageError(f"SavedModel {version!r} holds no weights list: export it with "
                         "`videoflow-tf export`")
    # Keras numbers the names of unnamed layers per process, so only the variables' own
    # names (kernel, bias, ...) and shapes must agree, in order.
    theirs = [(v.name.split(":")[0].split("/")[-1], tuple(v.shape)) for v in weights]
    ours = [(w.path.split("/")[-1], tuple(w.shape)) for w in model.weights]
    if theirs != ours:
        mismatch = next((pair for pair in zip(ours, theirs) if pair[0] != pair[1]),
                        (f"{len(ours)} weights", f"{len(theirs)}"))
        raise UsageError(f"the weights of {version!r} do not fit this model's config "
                         f"(first difference: ours {mismatch[0]}, theirs {mismatch[1]})")
    for weight, value in zip(model.weights, weights):
        weight.assign(value)
