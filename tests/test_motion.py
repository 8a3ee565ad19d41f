"""videoflow_tf.analysis.motion and strict_motion on rendered stochastic-shapes clips and broken variants."""
import json

import numpy as np
import pytest

import videoflow_tf as vf  # noqa: F401  (imports TensorFlow quietly)
import tensorflow as tf

from videoflow_tf.analysis import motion, strict_motion
from videoflow_tf.data import pipelines
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


# The strict measure (videoflow_tf.analysis.strict_motion): sampled futures against the renderer's.

BLACK = (0, 0, 0)
UNIT = rendering.PIXELS_PER_UNIT
CENTRE = np.full(2, rendering.IMAGE_SIZE / 2)
# Pixels per frame (x, y down) in motion.DIRECTIONS order.
VELOCITIES = UNIT * np.asarray(rendering.DIRECTIONS_Y_UP, np.float64) * np.array([1.0, -1.0])
E, NE, SE = 0, 1, 7
CIRCLE, SQUARE, TRIANGLE = range(3)
RED, CYAN = 2, 3
TEST_SPLIT_STREAM = [20190304, 1]  # stochastic_shapes_dataset_builder: SEED, split 1 (test)


def resized(videos, size):
    """uint8 [..., T, 64, 64, 3] frames resized as the input pipeline resizes them."""
    videos = np.asarray(videos)
    frames = np.array(pipelines._resize(videos.reshape((-1, 64, 64, 3)), size))
    return frames.reshape(videos.shape[:-3] + (size, size, 3))


def paint(shape, color, size, centres, background=GRAY):
    """One video [len(centres), 64, 64, 3] of a shape at the given centres (x, y pixels),
    drawn with the renderer's own coverage and colour mixing."""
    centres = np.asarray(centres, np.float64)
    counts = rendering.coverage(np.full(len(centres), shape), np.full(len(centres), size),
                                centres)
    return rendering._mixing_table(background)[color, counts]


def true_video(shape, color, size, direction, background=GRAY):
    return paint(shape, color, size, CENTRE + np.arange(5)[:, None] * VELOCITIES[direction],
                 background)


def judge(video, shape, color, size, image_size, background=GRAY):
    return strict_motion.strict_future(resized(video, image_size), shape, color, size,
                                       background)


def along(direction, steps):
    """Centres [5, 2] of a shape that starts at the centre and moves steps[t] times the
    true step in `direction` from frame t to t + 1."""
    travelled = np.concatenate([[0.0], np.cumsum(steps)])
    return CENTRE + travelled[:, None] * VELOCITIES[direction]


def rotated(velocity, degrees):
    angle = np.deg2rad(degrees)
    return np.array([[np.cos(angle), -np.sin(angle)],
                     [np.sin(angle), np.cos(angle)]]) @ velocity


@pytest.mark.parametrize("image_size, background", [(64, GRAY), (32, GRAY), (32, BLACK)])
def test_test_split_clips_are_faithful_in_their_true_direction(image_size, background):
    params = rendering.sample_parameters(np.random.default_rng(TEST_SPLIT_STREAM), 909)
    videos = resized(rendering.render_videos(params, background), image_size)
    examples = dict(params, size=params["size"].astype(np.float32))  # as TFDS stores it
    report = strict_motion.strict_report(videos, examples, range(909), background)
    assert report["faithful"] == 909
    for record, velocity in zip(report["futures"], params["velocity"]):
        assert record["direction"] == motion.DIRECTIONS[motion.direction_bin(velocity)]
        assert min(record["iou"]) == 1.0 and min(record["colour_share"]) == 1.0


@pytest.mark.parametrize("image_size", [64, 32])
@pytest.mark.parametrize("shape", [CIRCLE, SQUARE, TRIANGLE])
def test_a_line_15_degrees_off_is_rejected_even_for_the_largest_shapes(image_size, shape):
    size = rendering.MAX_SIZE_UNITS * UNIT
    for direction in (E, NE):
        for degrees in (15, -15):
            velocity = rotated(VELOCITIES[direction], degrees)
            video = paint(shape, RED, size, CENTRE + np.arange(5)[:, None] * velocity)
            result = judge(video, shape, RED, size, image_size)
            assert not result["faithful"] and result["failed"] == "iou", (direction, degrees)
            assert result["iou"][-1] < strict_motion.MIN_IOU


@pytest.mark.parametrize("image_size", [64, 32])
def test_uneven_speeds_are_rejected_where_the_shape_is_small_enough(image_size):
    small, medium = rendering.MIN_SIZE_UNITS * UNIT, 1.0 * UNIT
    for direction in range(8):
        for shape in (CIRCLE, SQUARE, TRIANGLE):
            for size in (small, medium):  # one step left out, then made up
                result = judge(paint(shape, RED, size, along(direction, [0, 2, 1, 1])),
                               shape, RED, size, image_size)
                assert not result["faithful"], (direction, shape, size)
            # The old measure's steady example; its worst error is 0.4 units.
            result = judge(paint(shape, RED, small, along(direction, [0.6, 1.6, 0.6, 1.0])),
                           shape, RED, small, image_size)
            assert not result["faithful"], (direction, shape)
        # A medium circle fails the same steps: a square at the true place fits it better.
        result = judge(paint(CIRCLE, RED, medium, along(direction, [0.6, 1.6, 0.6, 1.0])),
                       CIRCLE, RED, medium, image_size)
        assert not result["faithful"], direction


@pytest.mark.parametrize("image_size", [64, 32])
def test_the_iou_bound_tolerates_a_third_of_a_large_square(image_size):
    """What the bound lets through: 0.4 units of error on a square 3 units wide."""
    size = rendering.MAX_SIZE_UNITS * UNIT
    result = judge(paint(SQUARE, RED, size, along(E, [0.6, 1.6, 0.6, 1.0])),
                   SQUARE, RED, size, image_size)
    assert result["faithful"] and result["direction"] == "E"
    assert min(result["iou"]) < 0.95


@pytest.mark.parametrize("image_size", [64, 32])
def test_a_shape_shrunk_to_one_pixel_of_its_colour_is_rejected(image_size):
    size = 1.0 * UNIT
    video = resized(true_video(SQUARE, CYAN, size, NE), image_size)
    scale = image_size / rendering.IMAGE_SIZE
    for t in range(2, 5):
        x, y = (CENTRE + t * VELOCITIES[NE]) * scale
        video[t] = GRAY
        video[t, int(y), int(x)] = rendering.COLORS["cyan"]
    result = strict_motion.strict_future(video, SQUARE, CYAN, size, GRAY)
    assert not result["faithful"] and result["failed"] == "iou"
    assert result["colour_share"] == [1.0] * 4  # the colour alone would pass


@pytest.mark.parametrize("image_size", [64, 32])
@pytest.mark.parametrize("background", [GRAY, BLACK])
def test_a_shape_half_or_wholly_repainted_in_another_colour_is_rejected(image_size, background):
    size = 1.0 * UNIT
    for color in range(len(rendering.COLORS)):
        for other in set(range(len(rendering.COLORS))) - {color}:
            video = true_video(CIRCLE, color, size, SE, background)
            repainted = true_video(CIRCLE, other, size, SE, background)
            half = video.copy()
            for t in range(1, 5):  # the left half of the shape in the other colour
                left = int(CENTRE[0] + t * VELOCITIES[SE][0])
                half[t, :, :left] = repainted[t, :, :left]
            for variant in (half, repainted):
                result = judge(variant, CIRCLE, color, size, image_size, background)
                assert not result["faithful"] and result["failed"] == "colour", (color, other)


@pytest.mark.parametrize("image_size", [64, 32])
@pytest.mark.parametrize("true_shape, drawn_shape, failed", [
    (CIRCLE, SQUARE, {"shape"}), (SQUARE, CIRCLE, {"shape"}),
    # A triangle covers 55% of the circle of its size: the overlap may already fail.
    (TRIANGLE, CIRCLE, {"iou", "shape"}), (CIRCLE, TRIANGLE, {"iou", "shape"})])
def test_a_shape_turned_into_another_is_rejected(image_size, true_shape, drawn_shape, failed):
    for size in (1.0 * UNIT, rendering.MAX_SIZE_UNITS * UNIT):
        for direction in (E, NE):
            video = true_video(true_shape, RED, size, direction)
            video[2:] = true_video(drawn_shape, RED, size, direction)[2:]
            result = judge(video, true_shape, RED, size, image_size)
            assert not result["faithful"] and result["failed"] in failed, (size, direction)
            if result["failed"] == "shape":
                assert min(result["iou"]) >= strict_motion.MIN_IOU  # the overlap would pass


@pytest.mark.parametrize("image_size", [64, 32])
def test_a_vanishing_shape_is_rejected(image_size):
    size = 1.0 * UNIT
    video = true_video(TRIANGLE, RED, size, NE)
    assert judge(video, TRIANGLE, RED, size, image_size)["faithful"]
    video[3:] = GRAY
    result = judge(video, TRIANGLE, RED, size, image_size)
    assert not result["faithful"] and result["failed"] == "no shape"


def test_strict_future_wants_context_and_at_most_the_data_frames():
    video = np.zeros((5, 32, 32, 3), np.uint8)
    for context_frames in (0, 5):
        with pytest.raises(ValueError):
            strict_motion.strict_future(video, 0, 0, 5.0, GRAY, context_frames)
    with pytest.raises(ValueError):
        strict_motion.strict_future(np.zeros((6, 32, 32, 3), np.uint8), 0, 0, 5.0, GRAY)


@pytest.mark.parametrize("x, dof, p", [
    (14.067, 7, 0.05), (18.475, 7, 0.01), (2.167, 7, 0.95), (12.017, 7, 0.10),
    (3.841, 1, 0.05), (6.635, 1, 0.01), (5.991, 2, 0.05), (7.815, 3, 0.05),
    (9.488, 4, 0.05), (11.070, 5, 0.05), (0.0158, 1, 0.90)])
def test_chi_square_survival_function_matches_the_tables(x, dof, p):
    # Table values have 3 decimals (4 significant digits for small x).
    assert strict_motion.chi_square_sf(x, dof) == pytest.approx(p, rel=2e-3)


def test_chi_square_survival_function_at_the_ends():
    assert strict_motion.chi_square_sf(0.0, 7) == 1.0
    assert strict_motion.chi_square_sf(1000.0, 7) < 1e-200


def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.96: (0.8 + 0.19208 -+ 1.96 * sqrt(0.016 + 0.0096040)) / 1.38416.
    low, high = strict_motion.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert strict_motion.wilson_interval(0, 10)[0] == 0.0
    assert strict_motion.wilson_interval(0, 0) == (0.0, 1.0)


def test_report_of_two_contexts_with_four_futures_each():
    examples = [{"shape": CIRCLE, "color": RED, "size": 1.0 * UNIT},
                {"shape": TRIANGLE, "color": CYAN, "size": 0.7 * UNIT}]
    names = motion.DIRECTIONS
    futures = [(1, "NE"), (0, "E"), (1, "S"), (0, "E"), (1, "SE"), (0, "N"), (1, None),
               (0, "W")]  # (context, direction); None: the shape vanishes
    videos = []
    for context, name in futures:
        example = examples[context]
        video = true_video(example["shape"], example["color"], example["size"],
                           names.index(name or "N"))
        if name is None:
            video[2:] = GRAY
        videos.append(resized(video, 32))
    context_index = np.array([context for context, _ in futures])
    report = strict_motion.strict_report(np.stack(videos), examples, context_index, GRAY)
    assert json.loads(json.dumps(report)) == report
    assert report["num_futures"] == 8 and report["faithful"] == 7
    assert report["faithful_fraction"] == 7 / 8
    assert report["faithful_interval"] == list(strict_motion.wilson_interval(7, 8))
    assert report["direction_counts"] == {
        "E": 2, "NE": 1, "N": 1, "NW": 0, "W": 1, "SW": 0, "S": 1, "SE": 1}
    # Expected 7/8 per direction: (1.125^2 + 5 * 0.125^2 + 2 * 0.875^2) / 0.875 = 23/7.
    assert report["chi_square"] == pytest.approx(23 / 7)
    assert report["chi_square_p_value"] == pytest.approx(strict_motion.chi_square_sf(23 / 7, 7))
    assert report["num_contexts"] == 2
    assert report["distinct_directions"] == 3.0  # {E, N, W} and {NE, S, SE}
    assert report["distinct_directions_uniform"] == pytest.approx(8 * (1 - (7 / 8) ** 4))
    # Context 1 has 3 faithful futures of 4.
    assert report["distinct_directions_uniform_given_faithful"] == pytest.approx(
        4 * (1 - (7 / 8) ** 4) + 4 * (1 - (7 / 8) ** 3))
    for record, (context, name) in zip(report["futures"], futures):
        assert record["context"] == context and record["direction"] == name
        assert record["faithful"] == (name is not None)
        assert record["failed"] == (None if name else "no shape")
        assert len(record["iou"]) == len(record["colour_share"]) == 4
    # The same examples as a mapping of arrays give the same report.
    as_arrays = {key: np.array([example[key] for example in examples]) for key in examples[0]}
    assert strict_motion.strict_report(np.stack(videos), as_arrays, context_index, GRAY) == report
