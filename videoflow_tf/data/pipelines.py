"""Input pipelines: batches of uint8 videos from the TFDS builders, for `model.fit` and evaluation.

`make_dataset` reads `bair_action_free` or `stochastic_shapes` (optionally
`stochastic_shapes/black`) with TFDS, preparing it first if needed, and returns
a `tf.data.Dataset` of uint8 videos [B, T, S, S, 3]:

* training (`training=True`): a random window of `config.num_train_frames`
  consecutive frames from each video (from its first `config.train_clip_frames`
  frames only, if that is not None), shuffled, repeated forever, batches of
  exactly `batch_size`;
* evaluation: the first `config.num_context_frames + config.num_target_frames`
  frames of every video, in the split's order, once; the last batch may be
  smaller so that every video is scored.

S is `config.image_size`. Frames of another size than the dataset's 64 are
resized as floats (area averaging when shrinking, bilinear when enlarging),
then rounded back to uint8.

Only those five attributes of `config` are read, so any object that has them
works. With `seed`, the file order, the windows and the shuffle are
reproducible; without it they differ from run to run.

Under a `tf.distribute` strategy, `distribute_dataset` builds one pipeline per
input worker with the per-replica batch size, and TFDS shards the files
between workers (a split needs at least as many files as there are workers).
"""
from videoflow_tf import _quiet  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf
import tensorflow_datasets as tfds

# Importing the builder modules registers them with TFDS.
from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder  # noqa: F401
from videoflow_tf.datasets.stochastic_shapes import stochastic_shapes_dataset_builder  # noqa: F401
from videoflow_tf.usage import UsageError

DATASETS = ("bair_action_free", "stochastic_shapes")
_SHUFFLE_BUFFER = 1024  # windows, not whole videos: 1024 x 4 BAIR frames is about 50 MB


def make_dataset(name, split, config, batch_size, training, data_dir=None, seed=None,
                 input_context=None):
    """A `tf.data.Dataset` of uint8 videos [batch, frames, size, size, 3].

    Args:
      name: 'bair_action_free', 'stochastic_shapes' or 'stochastic_shapes/<config>'
        ('gray', the default, or 'black').
      split: a TFDS split, e.g. 'train', 'validation', 'test' or 'train[:10%]'.
      config: reads `num_train_frames`, `num_context_frames`, `num_target_frames`,
        `train_clip_frames` and `image_size`.
      batch_size: videos per batch.
      training: random shuffled windows forever if True, else the first frames once.
      data_dir: TFDS data directory (None: TFDS's default).
      seed: integer seed for file order, windows and shuffle (None: random).
      input_context: a `tf.distribute.InputContext` to shard by (see `distribute_dataset`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    builder = tfds.builder(check_dataset(name), data_dir=data_dir)
    video_shape = builder.info.features["video"].shape
    num_frames = _num_frames(name, config, training, available=video_shape[0])
    builder.download_and_prepare()
    if input_context is not None and seed is not None:
        seed += input_context.input_pipeline_id  # different windows on every worker
    dataset = builder.as_dataset(
        split=split, shuffle_files=training,
        read_config=tfds.ReadConfig(shuffle_seed=seed, input_context=input_context))
    dataset = dataset.map(lambda example: example["video"], num_parallel_calls=tf.data.AUTOTUNE)

    def resize(video):
        return _resize(video, config.image_size)

    if training:
        available = min(video_shape[0], config.train_clip_frames or video_shape[0])

        def random_window(video, seed_pair):
            start = tf.random.stateless_uniform(
                [], seed=seed_pair, maxval=available - num_frames + 1, dtype=tf.int32)
            return resize(tf.slice(video, [start, 0, 0, 0], (num_frames,) + video_shape[1:]))

        # One stateless seed pair per video keeps the windows reproducible under
        # parallel map; `Dataset.random` is itself seeded by `seed`.
        seed_pairs = tf.data.Dataset.random(seed=seed).batch(2)
        dataset = tf.data.Dataset.zip(dataset.repeat(), seed_pairs)
        dataset = dataset.map(random_window, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.shuffle(_SHUFFLE_BUFFER, seed=seed).batch(batch_size, drop_remainder=True)
    else:
        dataset = dataset.map(lambda video: resize(video[:num_frames]),
                              num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def distribute_dataset(strategy, name, split, config, global_batch_size, training,
                       data_dir=None, seed=None, skip_steps=0):
    """`make_dataset` under `strategy`: a distributed dataset of per-replica batches.

    `global_batch_size` videos per step, split evenly over the replicas (it must
    divide by their number). The batches of the first `skip_steps` steps are skipped
    (to resume training): each pipeline skips one batch per replica it feeds per step.
    """
    if global_batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"global_batch_size {global_batch_size} does not divide over "
                         f"{strategy.num_replicas_in_sync} replicas.")
    tfds.builder(check_dataset(name), data_dir=data_dir).download_and_prepare()  # once, up front

    def dataset_fn(input_context):
        dataset = make_dataset(name, split, config,
                               input_context.get_per_replica_batch_size(global_batch_size),
                               training, data_dir=data_dir, seed=seed,
                               input_context=input_context)
        replicas_fed = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        return dataset.skip(skip_steps * replicas_fed)

    return strategy.distribute_datasets_from_function(dataset_fn)


def videos_of(element):
    """The videos of a dataset element: the element itself or its first item."""
    while isinstance(element, (tuple, list)):
        element = element[0]
    return element


def initialization_videos(x, size, frames, strategy):
    """The first `size` videos of `fit`'s `x` (a batched dataset, a distributed one, an
    array, or a tuple starting with one), cut to their first `frames` frames: the batch
    of the data-dependent initialisation. Of a distributed dataset, the first batches of
    this worker's replicas under `strategy`."""
    if isinstance(x, tf.data.Dataset):
        videos = x.map(lambda *element: videos_of(element))
        x = next(iter(videos.unbatch().take(size).batch(size)))
    elif isinstance(x, tf.distribute.DistributedDataset):
        x = _first_local_videos(x, size, strategy)
    elif isinstance(x, (tuple, list)):
        x = x[0]
    elif not hasattr(x, "shape"):
        raise ValueError(f"fit cannot take the initialisation videos from a {type(x)}; "
                         "call model.initialize(videos) before fit")
    return x[:size, :frames]


def _first_local_videos(dataset, size, strategy):
    """At least `size` videos (or all) of this worker's replicas' first batches."""
    videos, count = [], 0
    for element in dataset:
        for batch in strategy.experimental_local_results(element):
            batch = videos_of(batch)
            videos.append(batch)
            count += int(batch.shape[0])
        if count >= size:
            break
    return tf.concat(videos, axis=0)


def check_dataset(name):
    """`name` if it is one of the datasets, optionally with one of its builder configs
    ('stochastic_shapes/black'), else UsageError."""
    base, slash, variant = name.partition("/")
    if base not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; expected one of {list(DATASETS)} "
                         "(optionally with a builder config, e.g. 'stochastic_shapes/black')")
    if slash:
        variants = list(tfds.builder_cls(base).builder_configs)
        if variant not in variants:
            expected = (f"one of {variants}" if variants
                        else f"none: {base} has no builder configs")
            raise UsageError(f"unknown builder config {variant!r} of {base}; expected "
                             f"{expected}")
    return name


def _num_frames(name, config, training, available):
    if training:
        needed, what = config.num_train_frames, "num_train_frames"
    else:
        needed = config.num_context_frames + config.num_target_frames
        what = "num_context_frames + num_target_frames"
    if not 1 <= needed <= available:
        raise ValueError(f"{name} videos have {available} frames, but the config's {what} "
                         f"is {needed}: expected between 1 and {available}.")
    return needed


def _resize(video, size):
    """Resizes [T, H, W, 3] uint8 frames to size x size, rounding back to uint8."""
    if size == video.shape[1] and size == video.shape[2]:
        return video
    method = "area" if size < video.shape[1] else "bilinear"
    resized = tf.image.resize(tf.cast(video, tf.float32), [size, size], method=method)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
