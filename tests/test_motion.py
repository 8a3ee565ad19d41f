"""videoflow_tf.motion on rendered stochastic-shapes videos and on broken variants of them."""
import numpy as np
import pytest

import videoflow_tf as vf  # noqa: F401  (imports TensorFlow quietly)
import tensorflow as tf

from videoflow_tf import motion
from videoflow_tf.datasets.stochastic_shapes import rendering

GRAY = (128, 128, 128)


def rendered(num_videos, seed=0, background=GRAY):
    params = rendering.sample_parameters(np.random.default_rng(seed), num_videos)
    return rendering.render_videos(params, background), params["velocity"]


def shrink(videos, size):
    frames = tf.image.resize(tf.cast(videos.reshape((-1, 64, 64, 3)), tf.float32),
                             [size, size], method="area")
    return np.round(frames.numpy()).astype(np.uint8).reshape(videos.shape[:2] + (size, size, 3))


@pytest.mark.parametrize("size, background", [(64, GRAY), (32, GRAY), (32, (0, 0, 0))])
def test_real_videos_move_consistently_in_their_true_direction(size, background):
    videos, velocities = rendered(200, background=background)
    videos = shrink(videos, size) if size != 64 else videos
    for video, velocity in zip(videos, velocities):
        result = motion.analyse_video(video)
        assert result["consistent"] and result["appearance_kept"]
        assert result["direction"] == motion.DIRECTIONS[motion.direction_bin(velocity)]


def test_direction_bins_follow_the_compass_with_y_down():
    assert [motion.direction_bin(step) for step in
            [(1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1)]] == list(range(8))
    assert motion.DIRECTIONS[motion.direction_bin((0.2, -3.0))] == "N"


def test_static_reversing_vanishing_and_recoloured_shapes_are_told_apart():
    videos, _ = rendered(1, seed=3)
    video = videos[0]
    static = np.repeat(video[:1], 5, axis=0)
    assert not motion.analyse_video(static)["consistent"]
    reversing = video[[0, 1, 2, 1, 0]]
    assert not motion.analyse_video(reversing)["consistent"]
    vanishing = video.copy()
    vanishing[3:] = GRAY
    result = motion.analyse_video(vanishing)
    assert not result["consistent"] and not result["appearance_kept"]
    recoloured = video.copy()
    shape = motion.shape_masks(video)
    recoloured[2:][shape[2:]] = 255 - recoloured[2:][shape[2:]]
    result = motion.analyse_video(recoloured)
    assert result["consistent"] and not result["colour_kept"]
    assert not result["appearance_kept"]
    leaping = video[[0, 3, 4]]  # three units in one frame, then one
    assert not motion.analyse_video(leaping)["consistent"]
    assert motion.analyse_video(video[[0, 1, 2]])["consistent"]


def test_report_counts_directions_and_their_entropy():
    videos, velocities = rendered(400, seed=1)
    bins = np.array([motion.direction_bin(v) for v in velocities])
    one_per_direction = videos[[np.flatnonzero(bins == b)[0] for b in range(8)]]
    report = motion.motion_report(one_per_direction)
    assert report["consistent"] == 8 and report["directions_used"] == 8
    assert report["direction_counts"] == {name: 1 for name in motion.DIRECTIONS}
    np.testing.assert_allclose(report["direction_entropy_bits"], 3.0)
    same_direction = videos[np.flatnonzero(bins == 2)[:3]]
    static = np.repeat(videos[:2, :1], 5, axis=1)
    report = motion.motion_report(np.concatenate([same_direction, static]))
    assert report["consistent"] == 3 and report["direction_counts"]["N"] == 3
    assert report["direction_entropy_bits"] == 0.0 and report["consistent_fraction"] == 0.6
