"""SampleQuality (videoflow_tf/training/monitor.py), what the monitor logs and `evaluate` reports,
on stand-in models whose futures are known: one that samples every clip's real future,
and one whose shape stands still."""
import types

from make_shipped_pins import BACKGROUND, make_clips

import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import tensorflow as tf

from videoflow_tf.training.monitor import SampleQuality


class StandIn:
    """A model whose samples after a context are the real video's next frames (the video
    found by its first frames) or, `still`, the last context frame repeated; a clip's bits
    per pixel are its mean pixel value / 100."""

    def __init__(self, videos, still=False):
        self.config = vf.get_config("shapes_32_baseline")  # 32x32 frames, 1 context frame
        self.videos, self.still = tf.constant(videos), still

    def sample_details(self, context, num_frames, temperature, seeds):
        given = context.shape[1]
        if self.still:
            frames = tf.repeat(context[:, -1:], num_frames, axis=1)
        else:
            distance = tf.reduce_sum(tf.abs(
                tf.cast(context[:, None], tf.float32)
                - tf.cast(self.videos[None, :, :given], tf.float32)), axis=[2, 3, 4, 5])
            frames = tf.gather(self.videos, tf.argmin(distance, axis=1))[
                :, given:given + num_frames]
        return types.SimpleNamespace(frames=frames,
                                     invalid=tf.zeros(tf.shape(context)[:1], tf.int32))

    def bits_per_pixel(self, videos, seed=0):
        return tf.reduce_mean(tf.cast(videos, tf.float32), axis=[1, 2, 3, 4]) / 100.0


@pytest.fixture(scope="module")
def clips():
    clips = make_clips(num_clips=6, seed=11)
    return clips["videos"], {**clips, "background": BACKGROUND}


def test_futures_that_are_the_real_ones_score_perfectly(clips):
    videos, labels = clips
    report = SampleQuality(StandIn(videos)).measure(videos, 4, labels=labels)
    assert (report["samples"], report["num_frames"], report["num_futures"]) == (12, 4, 12)
    assert report["sample_bpp"] == pytest.approx(report["real_bpp"])
    assert report["sample_to_real_bpp"] == pytest.approx(1.0)
    assert report["t1_bpp_ratio_median"] == pytest.approx(1.0)
    assert report["t1_bpp_ratio_above_2x"] == 0.0 and report["invalid_fraction"] == 0.0
    assert report["faithful_fraction"] == 1.0 and report["distinct_directions"] == 1.0
    assert [record["context"] for record in report["futures"]] == list(np.repeat(range(6), 2))
    assert report["consistent_fraction"] == 1.0 and report["continued_fraction"] == 1.0
    assert report["colour_kept_fraction"] == 1.0


def test_futures_that_stand_still_are_neither_faithful_nor_moving(clips):
    videos, labels = clips
    report = SampleQuality(StandIn(videos, still=True)).measure(videos, 4, labels=labels)
    assert report["faithful_fraction"] == 0.0 and report["distinct_directions"] == 0.0
    assert report["consistent_fraction"] == 0.0 and report["continued_fraction"] == 0.0
    assert report["sample_to_real_bpp"] != pytest.approx(1.0)
