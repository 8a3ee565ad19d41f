"""`videoflow-tf sample`: sampled futures of test videos as an animated GIF grid and a PNG strip.

The model is a training run folder (config.json and checkpoints) or an exported SavedModel
(`savedmodels/NAME`, using its latest integer version, or `savedmodels/NAME/VERSION`),
called through its `serving_default` signature exactly as TF Serving would. The default is
the shipped stochastic-shapes model, `savedmodels/stochastic_shapes` in the repository,
which installs with the package (`videoflow_tf.savedmodels`).

Contexts are the first frames of test videos of the model's dataset. The GIF has a row per
context and a column per sample (each with its own seed); context frames are framed in
orange, generated ones in gray. The PNG next to it (same name, .png) shows every frame of
every video side by side. A SavedModel produces the number of frames it was exported with
per call; longer futures feed its last frames back in as the next context.
"""
import importlib.resources
import os

import numpy as np
import tensorflow as tf

from videoflow_tf import run_dir, visualize
from videoflow_tf.export import SAMPLE_SIGNATURE, exported_config, saved_model_version
from videoflow_tf.usage import UsageError, non_negative, output_file, positive
from videoflow_tf.videos import load_videos

# The repository's savedmodels/ folder, wherever the install put it: the checkout itself for
# an editable install, site-packages/videoflow_tf/savedmodels/ for a wheel.
DEFAULT_MODEL = str(importlib.resources.files("videoflow_tf.savedmodels") / "stochastic_shapes")


def add_arguments(parser):
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="DIR|SAVEDMODEL",
                        help="a training run folder or an exported SavedModel "
                        "(savedmodels/NAME or savedmodels/NAME/VERSION); default: the "
                        "shipped savedmodels/stochastic_shapes")
    parser.add_argument("--out", required=True, metavar="FILE.gif",
                        help="the GIF to write; the PNG strip goes next to it as FILE.png")
    parser.add_argument("--context-split", default="test", metavar="SPLIT",
                        help="split whose videos give the context frames "
                        "(default: %(default)s)")
    parser.add_argument("--first-video", type=non_negative(int), default=0, metavar="I",
                        help="index of the first context video in the split "
                        "(default: %(default)s)")
    parser.add_argument("--num-contexts", type=positive(int), default=4, metavar="C",
                        help="context videos, one GIF row each (default: %(default)s)")
    parser.add_argument("--samples-per-context", type=positive(int), default=4, metavar="K",
                        help="samples of each context, one GIF column each "
                        "(default: %(default)s)")
    parser.add_argument("--num-frames", type=positive(int), metavar="N",
                        help="frames to generate after the context (default: the model's "
                        "number of target frames)")
    parser.add_argument("--temperature", type=non_negative(float), metavar="T",
                        help="scales the prior's standard deviations; 0 gives the means "
                        "(default: the model config's)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed; the same seed gives the same samples "
                        "(default: %(default)s)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="TFDS data directory of the contexts (default: the run's, or "
                        "TFDS's for a SavedModel)")
    parser.add_argument("--frame-ms", type=positive(int), default=300, metavar="MS",
                        help="GIF frame duration in milliseconds (default: %(default)s)")


def run(args):
    gif = output_file(args.out, (".gif",))
    png = os.path.splitext(gif)[0] + ".png"
    output_file(png, (".png",))
    sampler = open_model(args.model)
    config = sampler.config
    temperature = config.temperature if args.temperature is None else args.temperature
    num_frames = args.num_frames or sampler.default_num_frames
    data_dir = args.data_dir or sampler.data_dir
    contexts = load_videos(config, args.context_split, args.num_contexts, data_dir,
                           num_frames=config.num_context_frames + 1,
                           first=args.first_video)[:, :config.num_context_frames]
    samples = args.samples_per_context
    batch = np.repeat(contexts, samples, axis=0)  # context c, sample k at row c * K + k
    seeds = args.seed + np.arange(len(batch))
    print(f"Sampling {num_frames} frames after {len(contexts)} contexts x {samples} samples "
          f"at temperature {temperature} with {sampler.description}")
    future, invalid = sampler.sample(batch, num_frames, temperature, seeds)
    if invalid.sum():
        print(f"{int(invalid.sum())} of {future.size} sampled subpixel values were NaN or "
              "outside the pixel range and were clipped to it (in "
              f"{int(np.count_nonzero(invalid))} of {len(batch)} videos)")
    videos = np.concatenate([batch, future], axis=1)
    scale = visualize.default_scale(config.image_size)
    grid = videos.reshape((len(contexts), samples) + videos.shape[1:])
    visualize.save_gif(gif, visualize.video_grid(grid, config.num_context_frames, scale),
                       frame_ms=args.frame_ms)
    visualize.save_png(png, visualize.strip(videos, config.num_context_frames,
                                            max(1, scale // 2)))
    print(f"Wrote {gif} and {png}")


def open_model(path):
    """A sampler for a training run folder or a SavedModel (base folder or version)."""
    if not os.path.isdir(path):
        problem = "is a file, not a folder" if os.path.exists(path) else "does not exist"
        raise UsageError(f"model {path!r} {problem} (expected a training run folder or an "
                         "exported SavedModel)")
    if os.path.isfile(os.path.join(path, run_dir.CONFIG_FILE)):
        return RunSampler(path)
    version = saved_model_version(path)
    if version is not None:
        return SavedModelSampler(version)
    raise UsageError(f"{path!r} is neither a training run folder (no {run_dir.CONFIG_FILE}) "
                     "nor a SavedModel (no saved_model.pb, nor integer version folders "
                     "holding one)")


class RunSampler:
    """Samples with the latest checkpoint of a training run."""

    def __init__(self, path):
        self.model, step = run_dir.load_model(path)
        self.config = self.model.config
        self.default_num_frames = self.config.num_target_frames
        self.data_dir = run_dir.read_settings(path).get("data_dir")
        self.description = f"{path} (step {step})"

    def sample(self, context, num_frames, temperature, seeds):
        """(uint8 frames [N, num_frames, H, W, 3], invalid values per video [N])."""
        samples = self.model.sample_details(context, num_frames, temperature=temperature,
                                            seed=np.asarray(seeds, np.int64))
        return samples.frames.numpy(), samples.invalid.numpy()


class SavedModelSampler:
    """Samples through an exported SavedModel's `serving_default` signature."""

    def __init__(self, path):
        self.signature = tf.saved_model.load(path).signatures.get(SAMPLE_SIGNATURE)
        if self.signature is None:
            raise UsageError(f"SavedModel {path!r} has no {SAMPLE_SIGNATURE} signature")
        context_spec = self.signature.structured_input_signature[1]["context"]
        (frames,) = self.signature.structured_outputs["frames"].shape[1:2]
        self.default_num_frames = frames
        self.config = exported_config(path)
        if context_spec.shape[1] != self.config.num_context_frames:
            raise UsageError(f"SavedModel {path!r} takes {context_spec.shape[1]} context frames "
                             f"but its config says {self.config.num_context_frames}")
        self.data_dir = None
        self.description = f"SavedModel {path}"

    def sample(self, context, num_frames, temperature, seeds):
        """(uint8 frames [N, num_frames, H, W, 3], invalid values per video [N]; the
        count covers every frame generated, also beyond num_frames)."""
        num_context = self.config.num_context_frames
        videos = np.asarray(context, np.uint8)
        seeds = np.asarray(seeds, np.int64)
        invalid = np.zeros(len(videos), np.int64)
        produced = 0
        while produced < num_frames:
            out = self.signature(
                context=tf.constant(videos[:, -num_context:]),
                temperature=tf.fill([len(videos)], tf.constant(temperature, tf.float32)),
                seed=tf.constant(seeds + produced * len(seeds)))
            if "invalid_values" in out:  # SavedModels exported before it have none
                invalid += out["invalid_values"].numpy()
            videos = np.concatenate([videos, out["frames"].numpy()], axis=1)
            produced += out["frames"].shape[1]
        return videos[:, context.shape[1]:context.shape[1] + num_frames], invalid
