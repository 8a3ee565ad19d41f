"""Writes small BAIR-format TFRecords for tests and `dummy_data/`.

The layout is the original's: one `tf.train.Example` per 30-frame video with,
per frame t, raw RGB bytes in `"{t}/image_aux1/encoded"` and
`"{t}/image_main/encoded"`, 4 floats in `"{t}/action"` and 3 floats in
`"{t}/endeffector_pos"`.
"""
import numpy as np

from videoflow_tf import _quiet  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf

from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder as bair


def random_video(rng):
    """A dict of random 'video' (aux1), 'main', 'action' and 'endeffector_pos' arrays."""
    frames = (bair.NUM_FRAMES,) + bair.IMAGE_SHAPE
    return {
        "video": rng.integers(0, 256, frames, dtype=np.uint8),
        "main": rng.integers(0, 256, frames, dtype=np.uint8),
        "action": rng.normal(size=(bair.NUM_FRAMES, bair.ACTION_SIZE)).astype(np.float32),
        "endeffector_pos": rng.normal(size=(bair.NUM_FRAMES, bair.ENDEFFECTOR_SIZE)).astype(np.float32),
    }


def make_example(video):
    """A `tf.train.Example` in BAIR's layout from a `random_video`-style dict."""
    feature = {}
    for t in range(bair.NUM_FRAMES):
        feature[f"{t}/image_aux1/encoded"] = _bytes(video["video"][t].tobytes())
        feature[f"{t}/image_main/encoded"] = _bytes(video["main"][t].tobytes())
        feature[f"{t}/action"] = _floats(video["action"][t])
        feature[f"{t}/endeffector_pos"] = _floats(video["endeffector_pos"][t])
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_records(path, examples):
    """Writes `tf.train.Example`s (or raw bytes) to a TFRecord file at `path`."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example if isinstance(example, bytes) else example.SerializeToString())


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))
