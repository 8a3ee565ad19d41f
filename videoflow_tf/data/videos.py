"""Real videos for the commands: the first videos of a split of a model's dataset, and
for stochastic shapes what each of them shows."""
import numpy as np
import tensorflow_datasets as tfds

from videoflow_tf.data import pipelines
from videoflow_tf.data.pipelines import check_dataset
from videoflow_tf.usage import UsageError


def dataset_frames(dataset, data_dir=None):
    """Number of frames of every video of `dataset`."""
    return tfds.builder(check_dataset(dataset), data_dir=data_dir).info.features["video"].shape[0]


def evaluation_dataset(config, split, batch_size, data_dir=None, num_frames=None):
    """Batches of the first `num_frames` frames (default: context + target) of every video
    of `split` of `config.dataset`, resized to the config's frame size, in order, once."""
    available = dataset_frames(config.dataset, data_dir)
    num_frames = num_frames or config.num_context_frames + config.num_target_frames
    if not config.num_context_frames < num_frames <= available:
        raise UsageError(f"{config.dataset} videos have {available} frames; cannot take "
                         f"{num_frames} (the model needs more than "
                         f"{config.num_context_frames} context frames)")
    frames = config.replace(num_target_frames=num_frames - config.num_context_frames)
    try:
        return pipelines.make_dataset(config.dataset, split, frames, batch_size, training=False,
                                 data_dir=data_dir)
    except ValueError as error:  # e.g. an unknown split
        raise UsageError(f"cannot read split {split!r} of {config.dataset}: {error}") from None


def load_videos(config, split, num_videos, data_dir=None, num_frames=None, first=0):
    """uint8 numpy [N, num_frames, S, S, 3]: videos first .. first + num_videos - 1 of
    `split` (fewer if the split is shorter; UsageError if it has none of them)."""
    dataset = evaluation_dataset(config, split, batch_size=64, data_dir=data_dir,
                                 num_frames=num_frames)
    batches = list(tfds.as_numpy(dataset.unbatch().skip(first).take(num_videos).batch(64)))
    if not batches:
        raise UsageError(f"split {split!r} of {config.dataset} has no video number {first}")
    return np.concatenate(batches)


def shape_labels(config, split, num_videos, data_dir=None, first=0):
    """What stochastic-shapes videos first .. first + num_videos - 1 of `split` show (the
    videos `load_videos` gives, in the same order): {"shape", "color", "size"} arrays [N]
    (indices into the renderer's SHAPES and COLORS, size in pixels at 64x64), "velocity"
    [N, 2] ((dx, dy) pixels per frame at 64x64, y down) and the config's "background"
    RGB."""
    builder = tfds.builder(check_dataset(config.dataset), data_dir=data_dir)
    builder.download_and_prepare()
    examples = builder.as_dataset(split=split, shuffle_files=False, decoders={
        "video": tfds.decode.SkipDecoding()})
    labels = {key: [] for key in ("shape", "color", "size", "velocity")}
    for example in tfds.as_numpy(examples.skip(first).take(num_videos)):
        for key, values in labels.items():
            values.append(example[key])
    return {**{key: np.asarray(values) for key, values in labels.items()},
            "background": tuple(builder.builder_config.background)}
