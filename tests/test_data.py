"""vf.data.make_dataset / distribute_dataset on small prepared datasets."""
import types

import numpy as np
import pytest

import videoflow_tf as vf
import tensorflow_datasets as tfds

from helpers import SHAPES_SPLIT_SIZES, build_bair, run_script, write_bair_folder
from videoflow_tf.datasets.bair_action_free import fake_data

TEST_VIDEOS = SHAPES_SPLIT_SIZES["test"]  # of shapes_data_dir
# bair: train = the first two files (3 videos), validation = the last two (2), test 2.
BAIR_FILES = {"train/traj_0_to_1.tfrecords": 2, "train/traj_2_to_2.tfrecords": 1,
              "train/traj_3_to_3.tfrecords": 1, "train/traj_4_to_4.tfrecords": 1,
              "test/traj_0_to_1.tfrecords": 2}


def frames(train=4, context=3, target=10, size=64, clip=None):
    return types.SimpleNamespace(num_train_frames=train, num_context_frames=context,
                                 num_target_frames=target, image_size=size,
                                 train_clip_frames=clip)


@pytest.fixture(scope="module")
def bair_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bair")
    rng = np.random.default_rng(0)
    write_bair_folder(root / "manual", {
        relative: [fake_data.make_example(fake_data.random_video(rng)) for _ in range(count)]
        for relative, count in BAIR_FILES.items()})
    build_bair(root / "data", root / "manual")
    return str(root / "data")


def videos_of(name, split, data_dir):
    return [example["video"] for example in
            tfds.as_numpy(tfds.builder(name, data_dir=data_dir).as_dataset(split=split))]


def test_training_gives_random_contiguous_windows_shuffled_and_repeated(bair_dir):
    dataset = vf.data.make_dataset("bair_action_free", "train", frames(train=4), batch_size=3,
                                   training=True, data_dir=bair_dir, seed=0)
    assert dataset.element_spec.shape.as_list() == [3, 4, 64, 64, 3]
    assert dataset.element_spec.dtype.name == "uint8"
    sources = videos_of("bair_action_free", "train", bair_dir)
    seen = []
    for batch in tfds.as_numpy(dataset.take(8)):  # 24 windows from 3 videos: repeated
        for window in batch:
            (match,) = [(v, start) for v, video in enumerate(sources)
                        for start in range(30 - 4 + 1) if np.array_equal(window, video[start:start + 4])]
            seen.append(match)
    assert {v for v, _ in seen} == {0, 1, 2}
    assert len({start for _, start in seen}) > 5  # windows start anywhere, not at a fixed frame
    assert [v for v, _ in seen[:6]] != [0, 1, 2, 0, 1, 2]  # not in file order


def test_training_windows_come_from_the_first_frames_only_if_asked(bair_dir):
    """tensor2tensor's rule: windows of 4 frames from the first 3 + 10 of each video."""
    dataset = vf.data.make_dataset("bair_action_free", "train", frames(train=4, clip=13),
                                   batch_size=3, training=True, data_dir=bair_dir, seed=0)
    sources = videos_of("bair_action_free", "train", bair_dir)
    starts = set()
    for batch in tfds.as_numpy(dataset.take(30)):
        for window in batch:
            starts |= {start for video in sources for start in range(30 - 4 + 1)
                       if np.array_equal(window, video[start:start + 4])}
    assert starts == set(range(13 - 4 + 1))  # every start from 0 to 9, none later


def test_training_is_reproducible_with_a_seed(shapes_data_dir):
    def first_batches(seed):
        dataset = vf.data.make_dataset("stochastic_shapes", "train", frames(train=2), batch_size=4,
                                       training=True, data_dir=shapes_data_dir, seed=seed)
        return np.stack(list(tfds.as_numpy(dataset.take(5))))

    np.testing.assert_array_equal(first_batches(3), first_batches(3))
    assert not np.array_equal(first_batches(3), first_batches(4))


@pytest.mark.parametrize("split", ["validation", "test"])
def test_evaluation_gives_first_frames_in_order_once(bair_dir, split):
    dataset = vf.data.make_dataset("bair_action_free", split, frames(context=3, target=10),
                                   batch_size=3, training=False, data_dir=bair_dir)
    batches = list(tfds.as_numpy(dataset))
    assert [batch.shape for batch in batches] == [(2, 13, 64, 64, 3)]  # one partial batch, no repeat
    expected = [video[:13] for video in videos_of("bair_action_free", split, bair_dir)]
    np.testing.assert_array_equal(batches[0], np.stack(expected))


def test_frames_are_area_resized_and_rounded(shapes_data_dir):
    config = vf.get_config("tiny")  # 8x8 frames, 2 context + 2 target
    (batch,) = tfds.as_numpy(vf.data.make_dataset(
        "stochastic_shapes", "test", config, batch_size=TEST_VIDEOS, training=False,
        data_dir=shapes_data_dir))
    assert batch.shape == (TEST_VIDEOS, 4, 8, 8, 3) and batch.dtype == np.uint8
    full = np.stack(videos_of("stochastic_shapes", "test", shapes_data_dir))[:, :4]
    block_means = full.reshape(TEST_VIDEOS, 4, 8, 8, 8, 8, 3).astype(np.float64).mean(axis=(3, 5))
    np.testing.assert_array_equal(batch, np.round(block_means))


def test_frames_are_enlarged_bilinearly(shapes_data_dir):
    (batch,) = tfds.as_numpy(vf.data.make_dataset(
        "stochastic_shapes/black", "test", frames(context=1, target=1, size=96),
        batch_size=TEST_VIDEOS, training=False, data_dir=shapes_data_dir))
    assert batch.shape == (TEST_VIDEOS, 2, 96, 96, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[:, :, :8, :8], 0)  # the black config's background


def test_works_with_the_package_config(shapes_data_dir):
    dataset = vf.data.make_dataset("stochastic_shapes", "train", vf.get_config("shapes"),
                                   batch_size=2, training=True, data_dir=shapes_data_dir, seed=0)
    assert dataset.element_spec.shape.as_list() == [2, 2, 64, 64, 3]


@pytest.mark.parametrize("config, training, what", [
    (frames(train=6), True, "num_train_frames is 6"),
    (frames(context=3, target=3), False, r"num_context_frames \+ num_target_frames is 6"),
    (frames(train=0), True, "num_train_frames is 0"),
])
def test_too_many_frames_is_a_clear_error(shapes_data_dir, config, training, what):
    with pytest.raises(ValueError, match=f"stochastic_shapes videos have 5 frames, but the config's {what}"):
        vf.data.make_dataset("stochastic_shapes", "train", config, batch_size=2, training=training,
                             data_dir=shapes_data_dir)


def test_unknown_dataset_and_bad_batch_size_are_errors(shapes_data_dir):
    with pytest.raises(ValueError, match="unknown dataset 'bair_robot_pushing_small'"):
        vf.data.make_dataset("bair_robot_pushing_small", "train", frames(), 2, True)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        vf.data.make_dataset("stochastic_shapes", "train", frames(train=2), 0, True,
                             data_dir=shapes_data_dir)


def test_mirrored_strategy_on_two_cpus_gets_per_replica_batches(shapes_data_dir):
    # Logical devices must be set before TensorFlow starts, so in a fresh process.
    lines = run_script("mirrored_batches.py", shapes_data_dir, timeout=120).strip().splitlines()
    assert lines[-2] == "[(2, 2, 64, 64, 3), (2, 2, 64, 64, 3)]"
    assert lines[-1] == "global_batch_size 3 does not divide over 2 replicas."
