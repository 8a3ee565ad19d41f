"""`videoflow-tf export`: write a trained model as a SavedModel that TF Serving loads.

    videoflow-tf export --model RUN --out savedmodels/NAME [--num-frames N] [--temperature T]

writes `savedmodels/NAME/<version>/`, the next integer version after those already there
(an existing version is never overwritten), and prints its path. RUN is a training run
folder (its newest checkpoint) or one checkpoint of it; `--model` may also be a
SavedModel (by default the shipped one): its weights and config are exported again with
this version's code (its graphs, such as the sampler, are then today's). TF Serving serves
the highest version of a model's base path and picks up new ones as they appear. Exporting
a run that `train` is writing meanwhile exports its newest whole checkpoint.

From Python: `vf.export.export_saved_model(model, base_dir, num_frames=None,
temperature=None)`. `temperature` becomes the exported config's default sampling
temperature (clients that send none, such as `videoflow-tf sample`, use it).

The SavedModel holds only TensorFlow graphs, the weights and the model's config
(`assets/config.json`): it loads without this package (`tf.saved_model.load`, TF Serving,
or TF1's session loader). Its signatures, each with a dynamic batch dimension B:

  serving_default  context uint8 [B, num_context_frames, H, W, 3], temperature float32 [B],
                   seed int64 [B]  ->  frames uint8 [B, N, H, W, 3],
                                       invalid_values int32 [B]
                   N future frames (N fixed at export, by default the config's
                   num_target_frames); invalid_values counts each video's sampled subpixel
                   values that were NaN or outside the pixel range before clipping.
                   Each video has its own random stream from its seed and its own
                   temperature, so a video gives the same frames whether sent alone or
                   batched with others. A negative or non-finite temperature fails
                   the request with INVALID_ARGUMENT. An empty batch (B = 0) gives empty
                   outputs.
  log_prob         video uint8 [B, num_context_frames + num_target_frames, H, W, 3]
                   ->  bits_per_pixel [B], log_prob [B] (nats),
                       frame_bits_per_pixel [B, num_target_frames]
                   The target frames' likelihood given the context, as `VideoFlow.log_prob`
                   and `bits_per_pixel(per_frame=True)` compute it with seed 0
                   (LOG_PROB_NOISE_SEED): the dequantisation noise is one fixed draw, the
                   same for every video. The scores are then deterministic and batch-independent,
                   yet remain the dequantised likelihood that training and evaluation report
                   (noise-free pixels would score the bins' corners instead, a different and
                   systematically biased number). An empty batch gives empty outputs.
"""
import math
import os
import shutil
import tempfile
import uuid

import tensorflow as tf

from videoflow_tf.model import sampling
from videoflow_tf.training.open_model import (CONFIG_ASSET, LOG_PROB_NOISE_SEED,
                                              LOG_PROB_SIGNATURE, SAMPLE_SIGNATURE, SHIPPED_MODEL,
                                              open_model, python_model, versions)
from videoflow_tf.usage import MODEL_KINDS, UsageError, add_model, add_out, non_negative, positive


def add_arguments(parser):
    add_model(parser, default=SHIPPED_MODEL, alias=True,
              help=f"the model to export: {MODEL_KINDS}; a SavedModel is exported again "
              "with this version's code (same weights and config, new graphs)")
    add_out(parser, "DIR", "the model's base path, e.g. savedmodels/NAME; the export goes "
            "to its next integer version subfolder")
    parser.add_argument("--num-frames", type=positive(int), metavar="N",
                        help="frames the serving_default signature samples (default: a "
                        "run's num_target_frames, a SavedModel's own)")
    parser.add_argument("--temperature", type=non_negative(float), metavar="T",
                        help="the default sampling temperature written into the exported "
                        "config (default: the model's)")


def run(args):
    opened = open_model(args.model)
    # A SavedModel exported again keeps its number of sampled frames unless told otherwise.
    num_frames = args.num_frames or (opened.default_num_frames if opened.model is None
                                     else None)
    model = python_model(opened)
    print(export_saved_model(model, args.out, num_frames=num_frames,
                             temperature=args.temperature))


def export_saved_model(model, base_dir, num_frames=None, temperature=None):
    """Writes `model` (a `VideoFlow`) to `base_dir/<next integer version>/` and returns
    that path. `num_frames`: frames the serving_default signature samples (default: the
    config's num_target_frames); `temperature`: the exported config's default sampling
    temperature (default: the config's)."""
    config = model.config
    if temperature is not None:
        try:
            config = config.replace(temperature=temperature)
        except ValueError as error:
            raise UsageError(str(error)) from None
    num_frames = config.num_target_frames if num_frames is None else num_frames
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise UsageError(f"num_frames must be an int >= 1; got {num_frames!r}")
    if os.path.exists(base_dir) and not os.path.isdir(base_dir):
        raise UsageError(f"cannot export to {base_dir!r}: it is a file, not a folder")
    os.makedirs(base_dir, exist_ok=True)
    # Written under a name TF Serving ignores, then renamed: a server polling base_dir
    # never sees a half-written version.
    staging = os.path.join(base_dir, f".export-{uuid.uuid4().hex}")
    try:
        with tempfile.TemporaryDirectory() as folder:
            config_path = os.path.join(folder, CONFIG_ASSET)
            with open(config_path, "w", encoding="utf-8") as file:
                file.write(config.to_json() + "\n")
            module = _serving_module(model, num_frames, config_path)
            tf.saved_model.save(module, staging, signatures={
                SAMPLE_SIGNATURE: module.sample, LOG_PROB_SIGNATURE: module.log_prob})
        return _publish(staging, base_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging, base_dir):
    """Renames `staging` to the next free version; never replaces an existing one."""
    while True:
        target = os.path.join(base_dir, str(max(versions(base_dir), default=0) + 1))
        try:
            # Fails if another export created this version meanwhile (a folder with
            # files); renaming onto an empty folder is harmless.
            os.rename(staging, target)
            return target
        except OSError:
            if not os.path.isdir(target):
                raise


def _serving_module(model, num_frames, config_path):
    """A tf.Module with the two signature functions, the weights and the config file as an
    asset, and nothing of Keras or this package.

    The functions capture the model by closure, so the Keras model object itself is not
    saved. The weights are tracked as a list of the tf.Variables inside the Keras
    variables: a Keras variable would export as a second, copied tf.Variable that TF1's
    session loader (TF Serving's) restores while the functions read the uninitialised
    original.
    """
    config = model.config
    frame = list(config.image_shape)
    scored = config.num_context_frames + config.num_target_frames
    context_spec = tf.TensorSpec([None, config.num_context_frames] + frame, tf.uint8,
                                 name="context")
    video_spec = tf.TensorSpec([None, scored] + frame, tf.uint8, name="video")
    temperature_spec = tf.TensorSpec([None], tf.float32, name="temperature")
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")

    @tf.function(input_signature=[context_spec, temperature_spec, seed_spec])
    def sample(context, temperature, seed):
        context, temperature, seed = (_check_shape(tensor, spec) for tensor, spec in [
            (context, context_spec), (temperature, temperature_spec), (seed, seed_spec)])

        def draw():
            samples = model.sample_details(context, num_frames, temperature=temperature,
                                           seed=seed)
            return {"frames": samples.frames, "invalid_values": samples.invalid}

        def nothing():
            # The checks the sampler makes of temperature and seed, so that an empty
            # batch with, say, a temperature for one video still fails.
            checked = [sampling.check_temperature(temperature, context),
                       sampling.row_seeds(seed, context)]
            with tf.control_dependencies(checked):
                return {"frames": tf.zeros([0, num_frames] + frame, tf.uint8),
                        "invalid_values": tf.zeros([0], tf.int32)}

        return _unless_empty(context, draw, nothing)

    @tf.function(input_signature=[video_spec])
    def log_prob(video):
        video = _check_shape(video, video_spec)

        def score():
            bpp = model.bits_per_pixel(video, seed=LOG_PROB_NOISE_SEED, per_frame=True)
            frame_nats_per_bpp = math.log(2.0) * math.prod(config.image_shape)
            return {"bits_per_pixel": tf.reduce_mean(bpp, axis=-1),
                    "log_prob": -tf.reduce_sum(bpp, axis=-1) * frame_nats_per_bpp,
                    "frame_bits_per_pixel": bpp}

        def nothing():
            return {"bits_per_pixel": tf.zeros([0], tf.float32),
                    "log_prob": tf.zeros([0], tf.float32),
                    "frame_bits_per_pixel": tf.zeros([0, config.num_target_frames],
                                                     tf.float32)}

        return _unless_empty(video, score, nothing)

    module = tf.Module()
    module.config_file = tf.saved_model.Asset(config_path)
    module.weights = [weight.value for weight in model.weights]
    module.sample = sample
    module.log_prob = log_prob
    return module


def _unless_empty(batch, compute, nothing):
    """`compute()`, or `nothing()` (the same outputs with batch size 0) for an empty
    `batch`: the model's convolutions cannot take a batch of no videos."""
    return tf.cond(tf.shape(batch)[0] > 0, compute, nothing)


def _check_shape(tensor, spec):
    """`tensor` once a run-time check found its shape to be `spec`'s (else
    InvalidArgumentError). TF Serving checks the dtypes of a request but not the shapes,
    and graph code traced for `spec`'s shape must never see another."""
    shape = tf.shape(tensor, out_type=tf.int64)
    expected = tf.constant([-1 if size is None else size for size in spec.shape], tf.int64)
    # The rank counted from the shape's values: Grappler would fold tf.rank or tf.size to
    # the rank of the signature, which a request of another rank does not have.
    rank = tf.math.count_nonzero(shape >= 0)
    matches = tf.cond(tf.equal(rank, len(spec.shape)),
                      lambda: tf.reduce_all((shape == expected) | (expected < 0)),
                      lambda: tf.constant(False))
    wanted = ", ".join("batch" if size is None else str(size) for size in spec.shape)
    check = tf.debugging.Assert(matches, [
        f"{spec.name} must be {spec.dtype.name} [{wanted}]; got shape", shape])
    with tf.control_dependencies([check]):
        return tf.identity(tensor)
