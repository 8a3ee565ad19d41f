"""bair_action_free: exact round trips from fake BAIR records, split rules, and bad inputs."""
import tarfile
from unittest import mock

import numpy as np
import pytest

import videoflow_tf  # noqa: F401  (registers the builders)
import tensorflow_datasets as tfds

from helpers import build_bair, write_bair_folder
from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder as bair
from videoflow_tf.datasets.bair_action_free import fake_data

# Sorted order is by name, as strings: traj_10 sorts before traj_2, so the
# last two train files (validation) are traj_2_to_2 and traj_3_to_4.
TRAIN_FILES = {"train/traj_0_to_1.tfrecords": 2, "train/traj_10_to_10.tfrecords": 1,
               "train/traj_2_to_2.tfrecords": 1, "train/traj_3_to_4.tfrecords": 2}
TEST_FILES = {"test/traj_0_to_1.tfrecords": 2}
EXPECTED_SPLITS = {"train": ["train/traj_0_to_1.tfrecords", "train/traj_10_to_10.tfrecords"],
                   "validation": ["train/traj_2_to_2.tfrecords", "train/traj_3_to_4.tfrecords"],
                   "test": ["test/traj_0_to_1.tfrecords"]}


def random_files(seed=0):
    """{relative path: [video dicts]} for TRAIN_FILES and TEST_FILES."""
    rng = np.random.default_rng(seed)
    return {relative: [fake_data.random_video(rng) for _ in range(count)]
            for relative, count in {**TRAIN_FILES, **TEST_FILES}.items()}


@pytest.fixture
def no_network(monkeypatch):
    """Any HTTP request fails at once (a proxy on a closed port), and TFDS downloads are errors."""
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    download = mock.Mock(side_effect=AssertionError("a download was attempted"))
    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
    return download


@pytest.mark.parametrize("layout", ["folder", "tar"])
def test_round_trip_is_pixel_exact_from_manual_dir(tmp_path, no_network, layout):
    videos = random_files()
    folder = write_bair_folder(tmp_path / "extracted",
                          {rel: [fake_data.make_example(v) for v in vs] for rel, vs in videos.items()})
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    if layout == "folder":
        (folder / bair.ROOT_FOLDER).rename(manual_dir / bair.ROOT_FOLDER)
    else:
        with tarfile.open(manual_dir / bair.TAR_NAME, "w") as tar:
            tar.add(folder / bair.ROOT_FOLDER, arcname=bair.ROOT_FOLDER)

    splits = tfds.load("bair_action_free", data_dir=str(tmp_path / "data"),
                       download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                           manual_dir=str(manual_dir))})
    no_network.assert_not_called()
    for split, files in EXPECTED_SPLITS.items():
        written = [v for relative in files for v in videos[relative]]
        loaded = list(tfds.as_numpy(splits[split]))
        assert len(loaded) == len(written), split
        # TFDS reorders examples; every written video is matched by its actions.
        for example in loaded:
            (match,) = [v for v in written if np.array_equal(v["action"], example["action"])]
            assert example["video"].dtype == np.uint8
            np.testing.assert_array_equal(example["video"], match["video"])  # image_aux1, not main
            np.testing.assert_array_equal(example["endeffector_pos"], match["endeffector_pos"])


def test_download_path_reads_the_downloaded_tar(tmp_path, monkeypatch):
    videos = random_files(seed=1)
    folder = write_bair_folder(tmp_path / "extracted",
                          {rel: [fake_data.make_example(v) for v in vs] for rel, vs in videos.items()})
    tar_path = tmp_path / "downloaded.tar"
    with tarfile.open(tar_path, "w") as tar:
        tar.add(folder / bair.ROOT_FOLDER, arcname=f"./{bair.ROOT_FOLDER}")
    monkeypatch.setattr(bair.requests, "head", mock.Mock())  # the network is up
    download = mock.Mock(return_value=tar_path)
    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)

    builder = build_bair(tmp_path / "data", manual_dir=tmp_path / "empty_manual_dir")
    download.assert_called_once_with(bair.URL)
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == {
        "train": 3, "validation": 3, "test": 2}


def test_checksums_tsv_is_found_by_tfds():
    info = bair.Builder.url_infos[bair.URL]
    assert int(info.size) == 32_274_964_480
    assert info.checksum == "c6f8d164ab2be07174ef597e3e070d7466f3142caddc467b6af119b9458cd9cd"


def test_no_manual_data_and_no_network_fails_fast_with_instructions(tmp_path, no_network):
    with pytest.raises(ConnectionError) as error:
        build_bair(tmp_path / "data", manual_dir=tmp_path / "missing")
    message = str(error.value)
    assert "cannot be reached" in message and bair.URL in message
    assert bair.TAR_NAME in message and bair.ROOT_FOLDER in message  # the instructions
    no_network.assert_not_called()  # TFDS's downloader, which retries for minutes, never ran


def test_a_cached_download_skips_the_network_probe(tmp_path, no_network):
    cached = tmp_path / "data" / "downloads" / "cached.tar"
    cached.parent.mkdir(parents=True)
    with open(cached, "wb") as file:  # sparse: the expected size without the bytes
        file.truncate(int(bair.Builder.url_infos[bair.URL].size))
    no_network.side_effect = RuntimeError("handed over to TFDS")
    with pytest.raises(RuntimeError, match="handed over to TFDS"):
        build_bair(tmp_path / "data", manual_dir=tmp_path / "missing")


def _good_files():
    rng = np.random.default_rng(2)
    return {relative: [fake_data.make_example(fake_data.random_video(rng)) for _ in range(count)]
            for relative, count in {**TRAIN_FILES, **TEST_FILES}.items()}


def _build_with(tmp_path, relative, records):
    files = _good_files()
    files[relative] = records
    build_bair(tmp_path / "data", manual_dir=write_bair_folder(tmp_path / "manual", files))


def _example(mutate):
    video = fake_data.random_video(np.random.default_rng(3))
    example = fake_data.make_example(video)
    mutate(example.features.feature)
    return example


def _build_with_file_bytes(tmp_path, relative, edit):
    """Builds from good files after replacing the bytes of one file by edit(bytes)."""
    manual_dir = write_bair_folder(tmp_path / "manual", _good_files())
    path = manual_dir / bair.ROOT_FOLDER / relative
    path.write_bytes(edit(path.read_bytes()))
    build_bair(tmp_path / "data", manual_dir=manual_dir)


def test_corrupt_record_names_file_and_index(tmp_path):
    def flip_a_byte_of_the_last_record(data):
        data = bytearray(data)
        data[-100] ^= 0xFF  # inside the last record's payload: its CRC no longer matches
        return bytes(data)

    with pytest.raises(ValueError, match=r"test/traj_0_to_1.tfrecords, record 1 is corrupt"):
        _build_with_file_bytes(tmp_path, "test/traj_0_to_1.tfrecords", flip_a_byte_of_the_last_record)


def test_truncated_file_names_file_and_index(tmp_path):
    with pytest.raises(ValueError, match=r"train/traj_3_to_4.tfrecords, record 1 is corrupt"):
        _build_with_file_bytes(tmp_path, "train/traj_3_to_4.tfrecords", lambda data: data[:-5000])


def test_record_that_is_not_an_example_names_file_and_index(tmp_path):
    records = _good_files()["train/traj_0_to_1.tfrecords"][:1] + [b"\x0f not a protobuf"]
    with pytest.raises(ValueError, match=r"traj_0_to_1.tfrecords, record 1 is not a tf.train.Example"):
        _build_with(tmp_path, "train/traj_0_to_1.tfrecords", records)


def test_missing_feature_names_file_index_and_key(tmp_path):
    example = _example(lambda feature: feature.pop("7/endeffector_pos"))
    with pytest.raises(ValueError, match=r"traj_10_to_10.tfrecords, record 0 has no feature "
                                         r"'7/endeffector_pos'"):
        _build_with(tmp_path, "train/traj_10_to_10.tfrecords", [example])


def test_image_of_wrong_byte_size_names_file_index_and_size(tmp_path):
    def shorten(feature):
        image = feature["29/image_aux1/encoded"].bytes_list
        image.value[0] = image.value[0][:-1]

    with pytest.raises(ValueError, match=r"traj_2_to_2.tfrecords, record 0: '29/image_aux1/encoded' "
                                         r"has 12287 bytes, expected 12288"):
        _build_with(tmp_path, "train/traj_2_to_2.tfrecords", [_example(shorten)])


def test_action_of_wrong_length_is_an_error(tmp_path):
    def lengthen(feature):
        feature["0/action"].float_list.value.append(1.0)

    with pytest.raises(ValueError, match=r"record 0: feature '0/action' holds 5 float_list values, "
                                         r"expected 4"):
        _build_with(tmp_path, "test/traj_0_to_1.tfrecords", [_example(lengthen)])


def test_too_few_train_files_is_an_error(tmp_path):
    files = {relative: records for relative, records in _good_files().items()
             if relative in ("train/traj_0_to_1.tfrecords", "train/traj_2_to_2.tfrecords",
                             "test/traj_0_to_1.tfrecords")}
    with pytest.raises(ValueError, match="holds 2 train and 1 test .tfrecords files; expected at "
                                         "least 3 train files"):
        build_bair(tmp_path / "data", manual_dir=write_bair_folder(tmp_path / "manual", files))


def test_registered_under_own_names_next_to_tfds_builtins():
    assert tfds.builder_cls("bair_action_free") is bair.Builder
    # TFDS's own BAIR dataset is still TFDS's, not replaced by ours.
    assert tfds.builder_cls("bair_robot_pushing_small").__module__.startswith("tensorflow_datasets.")
