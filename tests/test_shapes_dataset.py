"""stochastic_shapes: geometry and motion of the rendered videos, labels, configs, reproducibility."""
import hashlib
import re
from unittest import mock

import numpy as np
import pytest

import videoflow_tf  # noqa: F401  (registers the builders)
import tensorflow_datasets as tfds

from videoflow_tf.datasets.stochastic_shapes import rendering
from videoflow_tf.datasets.stochastic_shapes import stochastic_shapes_dataset_builder as shapes

GRAY, BLACK = (128, 128, 128), (0, 0, 0)
PALETTE = np.asarray(list(rendering.COLORS.values()), np.float64)
PX = rendering.PIXELS_PER_UNIT
# Supersampling puts edges on a 1/8 px grid (within 1/16 px of the true edge),
# and colours are rounded to integers; these bound what that can move.
CENTROID_TOLERANCE_PX = 1 / 8
AREA_TOLERANCE_PER_PERIMETER_PX = 1 / 8


def load(config, sizes, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(config)
    with mock.patch.object(shapes.Builder, "SPLIT_SIZES", sizes):
        splits = tfds.load(f"stochastic_shapes/{config}", data_dir=str(data_dir))
    return {split: _stack(tfds.as_numpy(dataset)) for split, dataset in splits.items()}


def _stack(examples):
    examples = list(examples)
    return {key: np.stack([example[key] for example in examples]) for key in examples[0]}


@pytest.fixture(scope="module")
def gray_test(tmp_path_factory):
    """The full 909-video test split of the default config (the train split shrunk to 1 video)."""
    return load("gray", {"train": 1, "test": 909}, tmp_path_factory)["test"]


def coverage_and_centroid(videos, colors, background):
    """Per frame: the shape's coverage (sum of alpha, px^2) and its centroid (x, y) in pixels.

    alpha is recovered from each pixel's distance to the background relative to
    the colour's; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
    """
    background = np.asarray(background, np.float64)
    scale = np.abs(PALETTE[colors] - background).sum(-1)[:, None, None, None]
    alpha = np.abs(videos.astype(np.float64) - background).sum(-1) / scale
    rows, cols = np.indices(videos.shape[2:4]) + 0.5
    area = alpha.sum((2, 3))
    centroid = np.stack([(alpha * cols).sum((2, 3)), (alpha * rows).sum((2, 3))], -1) / area[..., None]
    return area, centroid


def expected_geometry(example):
    """Centres [N, T, 2], whether the shape lies inside the image [N, T], area and perimeter [N]."""
    size, shape = example["size"].astype(np.float64), example["shape"]
    centre = 32.0 + np.arange(rendering.NUM_FRAMES)[None, :, None] * example["velocity"][:, None, :]
    height = size * np.sqrt(3.0)
    up = np.where(shape == 2, 2 * height / 3, size)[:, None]  # extent above the centre
    down = np.where(shape == 2, height / 3, size)[:, None]
    half = size[:, None]
    inside = ((centre[..., 0] - half >= 0) & (centre[..., 0] + half <= 64)
              & (centre[..., 1] - up >= 0) & (centre[..., 1] + down <= 64))
    area = np.choose(shape, [np.pi * size**2, 4 * size**2, np.sqrt(3) * size**2])
    perimeter = np.choose(shape, [2 * np.pi * size, 8 * size, 6 * size])
    return centre, inside, area, perimeter


def test_test_split_has_every_shape_colour_and_direction(gray_test):
    assert set(gray_test["shape"]) == {0, 1, 2}
    assert set(gray_test["color"]) == set(range(6))
    directions = {tuple(v) for v in np.round(gray_test["velocity"] / PX).astype(int)}
    assert directions == {(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)} - {(0, 0)}
    np.testing.assert_allclose(np.abs(gray_test["velocity"]) % PX, 0, atol=1e-5)  # 1 unit per frame
    assert gray_test["size"].min() >= 0.5 * PX and gray_test["size"].max() < 1.5 * PX
    assert gray_test["video"].shape == (909, 5, 64, 64, 3)


def test_shape_starts_centred_and_moves_by_velocity_each_frame(gray_test):
    area, centroid = coverage_and_centroid(gray_test["video"], gray_test["color"], GRAY)
    centre, inside, _, _ = expected_geometry(gray_test)
    assert inside[:, 0].all() and inside.mean() > 0.85  # frame 0 always; later frames may leave
    np.testing.assert_allclose(centroid[:, 0], 32.0, atol=CENTROID_TOLERANCE_PX)
    error = np.abs(centroid - centre)[inside]
    assert error.max() <= CENTROID_TOLERANCE_PX, error.max()


def test_coverage_matches_the_labelled_shape_and_size(gray_test):
    area, _ = coverage_and_centroid(gray_test["video"], gray_test["color"], GRAY)
    _, inside, expected_area, perimeter = expected_geometry(gray_test)
    error = np.abs(area[:, 0] - expected_area)  # frame 0 is always whole
    assert (error <= AREA_TOLERANCE_PER_PERIMETER_PX * perimeter).all(), (error / perimeter).max()


def test_background_and_shape_interior_are_exact_colours(gray_test):
    videos = gray_test["video"]
    np.testing.assert_array_equal(videos[:, 0, :8, :8], 128)  # a corner far from frame 0's shape
    # The pixel under frame 0's centre is fully covered for every shape (size >= 3.2 px).
    np.testing.assert_array_equal(videos[:, 0, 32, 32], PALETTE[gray_test["color"]])


def test_black_config_has_the_same_videos_on_black(gray_test, tmp_path_factory):
    black = load("black", {"train": 1, "test": 30}, tmp_path_factory)["test"]
    # The configs share their parameters; TFDS orders examples differently
    # when splits differ in size, so match videos by their labels.
    gray_index = {_params(gray_test, i): i for i in range(len(gray_test["shape"]))}
    matches = np.array([gray_index[_params(black, i)] for i in range(30)])
    np.testing.assert_array_equal(black["video"][:, 0, :8, :8], 0)
    alpha = {}
    for name, split, background in (("black", black, BLACK), ("gray", gray_test, GRAY)):
        videos, colors = split["video"], split["color"]
        if name == "gray":
            videos, colors = videos[matches], colors[matches]
        scale = np.abs(PALETTE[colors] - background).sum(-1)[:, None, None, None]
        alpha[name] = np.abs(videos.astype(np.float64) - background).sum(-1) / scale
        alpha[name + " rounding"] = 1.5 / scale  # half a level in each of 3 channels
    # Same coverage everywhere, up to each config's rounding to integers.
    difference = np.abs(alpha["black"] - alpha["gray"])
    assert (difference <= alpha["black rounding"] + alpha["gray rounding"]).all()


def _params(split, i):
    return (int(split["shape"][i]), int(split["color"][i]), float(split["size"][i]),
            tuple(split["velocity"][i].tolist()))


def test_videos_do_not_depend_on_split_size():
    few = rendering.sample_parameters(np.random.default_rng([shapes.SEED, 1]), 5)
    many = rendering.sample_parameters(np.random.default_rng([shapes.SEED, 1]), 909)
    for key in few:
        np.testing.assert_array_equal(few[key], many[key][:5])


def test_rendering_is_pinned_across_machines():
    """Every machine must build the same pixels: a change here changes the dataset.

    Rendering uses only elementwise IEEE operations and integer counts, so the
    digest below (recorded once, on the machine that wrote this test) must
    match everywhere; it pins the first 16 test videos of both configs.
    """
    params = rendering.sample_parameters(np.random.default_rng([shapes.SEED, 1]), 16)
    digest = hashlib.sha256()
    for background in (GRAY, BLACK):
        digest.update(rendering.render_videos(params, background).tobytes())
    assert digest.hexdigest() == PINNED_DIGEST


PINNED_DIGEST = "5066fb9c33827b2312dbee8d752329bbc87c492ccee3a5b8dfbeceed33b0849c"


def split_digest(examples):
    """One digest of a split's examples, whatever their order: the sha256 of the sorted
    sha256 digests of each example's video bytes and labels."""
    digests = []
    for example in examples:
        digest = hashlib.sha256(np.asarray(example["video"], np.uint8).tobytes())
        digest.update(np.int64([example["shape"], example["color"]]).tobytes())
        digest.update(np.float32([example["size"]]).tobytes())
        digest.update(np.asarray(example["velocity"], np.float32).tobytes())
        digests.append(digest.hexdigest())
    return hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()


# split_digest of the train and test splits as TFDS stored them in version 1.0.0 of the
# gray config (read back with tfds.load), before the validation split existed.
VERSION_1_0_0_DIGESTS = {
    "train": (9091, "c8a1fb4804222689c7495a171c8a220a3105ced80bc3e34a5a8bf95bbff04a68"),
    "test": (909, "ace02c987d6f2cb1ba6c205b2ae1ed1e195ffee54ac60ee177d163f09ed00865"),
}


@pytest.mark.parametrize("split", ["train", "test"])
def test_train_and_test_keep_the_videos_of_version_1_0_0(split):
    builder = shapes.Builder(config="gray", data_dir="unused")
    size, digest = VERSION_1_0_0_DIGESTS[split]
    assert builder.SPLIT_SIZES[split] == size
    examples = (example for _, example in
                builder._generate_examples(builder.SPLIT_STREAMS[split], size))
    assert split_digest(examples) == digest


def test_validation_videos_are_new_and_cover_every_label():
    builder = shapes.Builder(config="gray", data_dir="unused")
    validation = _stack(example for _, example in builder._generate_examples(
        builder.SPLIT_STREAMS["validation"], builder.SPLIT_SIZES["validation"]))
    assert validation["video"].shape == (909, 5, 64, 64, 3)
    assert set(validation["shape"]) == {0, 1, 2} and set(validation["color"]) == set(range(6))
    assert len({tuple(v) for v in validation["velocity"]}) == 8
    test = rendering.sample_parameters(np.random.default_rng([shapes.SEED, 1]), 909)
    train = rendering.sample_parameters(np.random.default_rng([shapes.SEED, 0]), 9091)
    for other in (test, train):  # no validation video repeats another split's parameters
        seen = set(zip(other["shape"], other["color"], other["size"].astype(np.float32)))
        assert not seen & set(zip(validation["shape"], validation["color"],
                                  validation["size"]))


def test_preparing_shows_how_many_videos_of_each_split_are_done(tmp_path, capsys):
    with mock.patch.object(shapes.Builder, "SPLIT_SIZES", {"train": 3, "test": 2}):
        tfds.builder("stochastic_shapes", data_dir=str(tmp_path)).download_and_prepare()
        info = tfds.builder("stochastic_shapes", data_dir=str(tmp_path)).info
    # TFDS's tqdm bars (on stderr): "Generating train examples...: ... 0/3 [00:00<?, ...".
    err = capsys.readouterr().err
    assert re.search(r"Generating train examples\.\.\.:.* \d/3 ", err), err
    assert re.search(r"Generating test examples\.\.\.:.* \d/2 ", err), err
    assert info.splits["train"].num_examples == 3 and info.splits["train"].num_bytes > 0
