"""`bair_action_free`: BAIR robot pushing (Ebert et al. 2017), 30-frame 64 x 64 videos.

The videos VideoFlow reports bits per pixel on: the `image_aux1` camera of
the original `softmotion30_44k` TFRecords, with the robot's actions and
end-effector positions kept alongside. Splits follow the original code: the
train folder's files minus the last two in sorted order (`train`), those two
(`validation`, about 512 videos) and the test folder (`test`, 256 videos).

Sources, tried in order (the network is only used by the last one):
1. the manual dir holds the extracted `softmotion30_44k/` folder;
2. the manual dir holds `bair_robot_pushing_dataset_v0.tar` (read in place);
3. TFDS downloads the tar (32 GB; size and sha256 in `checksums.tsv`).
The tar is never extracted whole: one `.tfrecords` member at a time (about
190 MB) is copied to a temporary directory and read from there.

Every record must be complete: a corrupt record, a missing feature or an
image of the wrong size stops the build with an error naming the file and
the record's index.
"""
import contextlib
import shutil
import tarfile
import tempfile

from etils import epath
from google.protobuf import message
import numpy as np
import requests

from videoflow_tf import _quiet  # noqa: F401  (quiet TensorFlow import)
import tensorflow as tf
import tensorflow_datasets as tfds

URL = "http://rail.eecs.berkeley.edu/datasets/bair_robot_pushing_dataset_v0.tar"
TAR_NAME = "bair_robot_pushing_dataset_v0.tar"
ROOT_FOLDER = "softmotion30_44k"
NUM_FRAMES = 30
IMAGE_SHAPE = (64, 64, 3)
ACTION_SIZE = 4
ENDEFFECTOR_SIZE = 3
_IMAGE_BYTES = int(np.prod(IMAGE_SHAPE))
_PROBE_TIMEOUT_S = 10


class Builder(tfds.core.GeneratorBasedBuilder):
    """BAIR robot pushing, action-free protocol, from the original TFRecords."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Optional: without manual data the tar is downloaded from {URL} (32 GB).
To build offline, put into the manual dir (`manual_dir` of
`tfds.download.DownloadConfig`; default `<data_dir>/downloads/manual/`) either
  * `{TAR_NAME}` itself (read in place, never extracted whole), or
  * its extracted `{ROOT_FOLDER}/` folder, holding `train/*.tfrecords` and
    `test/*.tfrecords`.
The folder wins if both are there. Either way the network is never used.
"""

    # The package installs from `datasets/` as `videoflow_tf.datasets` (a
    # package_dir mapping), so TFDS's guess of this module's folder from its
    # dotted name is wrong in editable installs; give the real one (it holds
    # checksums.tsv and dummy_data/).
    pkg_dir_path = epath.Path(__file__).parent

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return epath.Path(__file__)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "video": tfds.features.Video((NUM_FRAMES,) + IMAGE_SHAPE),
                "action": tfds.features.Tensor(shape=(NUM_FRAMES, ACTION_SIZE), dtype=np.float32),
                "endeffector_pos": tfds.features.Tensor(
                    shape=(NUM_FRAMES, ENDEFFECTOR_SIZE), dtype=np.float32),
            }),
            homepage="https://sites.google.com/view/sna-visual-mpc",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        source = _manual_source(dl_manager) or _TarSource(_download(dl_manager))
        train = source.list_records("train")
        test = source.list_records("test")
        if len(train) < 3 or not test:
            raise ValueError(
                f"bair_action_free: {source} holds {len(train)} train and {len(test)} test "
                f".tfrecords files; expected at least 3 train files (the last two, in sorted "
                f"order, are the validation split) and at least 1 test file.")
        return {
            "train": self._generate_examples(source, train[:-2]),
            "validation": self._generate_examples(source, train[-2:]),
            "test": self._generate_examples(source, test),
        }

    def _generate_examples(self, source, relative_paths):
        for relative in relative_paths:
            with source.local_records(relative) as path:
                for index, serialized in _read_records(path, relative):
                    yield f"{relative}/{index}", _parse_video(serialized, f"{relative}, record {index}")


def _manual_source(dl_manager):
    """The manual dir's extracted folder or tar, or None when it has neither."""
    try:
        manual_dir = dl_manager.manual_dir
    except AssertionError:  # TFDS's signal for a manual dir that is missing or empty
        return None
    if (manual_dir / ROOT_FOLDER).is_dir():
        return _FolderSource(manual_dir / ROOT_FOLDER)
    if (manual_dir / TAR_NAME).is_file():
        return _TarSource(manual_dir / TAR_NAME)
    return None


def _download(dl_manager):
    """The tar through TFDS's download manager (checksummed), failing fast when offline.

    Offline, TFDS's downloader retries with exponential back-off for minutes
    before giving up, so one quick request without retries comes first, unless
    a download of the right size is already in TFDS's cache.
    """
    size = Builder.url_infos[URL].size
    # TFDS keeps downloads in download_dir/ or download_dir/<dataset name>/.
    candidates = [*dl_manager.download_dir.glob("*.tar"), *dl_manager.download_dir.glob("*/*.tar")]
    cached = any(path.stat().length == size for path in candidates)
    if not cached:
        try:
            requests.head(URL, timeout=_PROBE_TIMEOUT_S, allow_redirects=True)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ConnectionError(
                f"bair_action_free: no BAIR data in the manual dir and {URL} cannot be "
                f"reached ({error}).\n{Builder.MANUAL_DOWNLOAD_INSTRUCTIONS}") from error
    return dl_manager.download(URL)


class _FolderSource:
    """The extracted `softmotion30_44k/` folder."""

    def __init__(self, root):
        self._root = root

    def __str__(self):
        return f"folder {self._root}"

    def list_records(self, split_folder):
        return sorted(f"{split_folder}/{path.name}"
                      for path in (self._root / split_folder).glob("*.tfrecords"))

    @contextlib.contextmanager
    def local_records(self, relative):
        yield self._root / relative


class _TarSource:
    """`bair_robot_pushing_dataset_v0.tar`, read member by member without extracting it."""

    def __init__(self, path):
        self._path = epath.Path(path)
        # Listing an uncompressed tar only reads its headers (it seeks past the data).
        with self._path.open("rb") as file, tarfile.open(fileobj=file, mode="r:") as tar:
            prefix = ROOT_FOLDER + "/"
            self._members = {name[len(prefix):]: member for member in tar.getmembers()
                             if member.isfile()
                             and (name := member.name.removeprefix("./")).startswith(prefix)}

    def __str__(self):
        return f"tar {self._path}"

    def list_records(self, split_folder):
        return sorted(name for name in self._members
                      if name.startswith(split_folder + "/") and name.endswith(".tfrecords"))

    @contextlib.contextmanager
    def local_records(self, relative):
        # TFRecordDataset reads files, and checks every record's CRC, so each
        # member is copied out on its own and deleted once read.
        with tempfile.TemporaryDirectory(prefix="bair_action_free_") as tmp:
            local = epath.Path(tmp) / "records.tfrecords"
            with self._path.open("rb") as file, tarfile.open(fileobj=file, mode="r:") as tar:
                with tar.extractfile(self._members[relative]) as src, local.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
            yield local


def _read_records(path, name):
    """Yields (index, serialized record), turning TFRecord corruption into a named error."""
    records = tf.data.TFRecordDataset(str(path)).as_numpy_iterator()
    index = 0
    while True:
        try:
            serialized = next(records)
        except StopIteration:
            return
        except tf.errors.DataLossError as error:
            raise ValueError(f"bair_action_free: {name}, record {index} is corrupt: "
                             f"{error.message}") from error
        yield index, serialized
        index += 1


def _parse_video(serialized, where):
    """One record -> the example dict; every frame's three features must be present and sized."""
    try:
        features = tf.train.Example.FromString(serialized).features.feature
    except message.DecodeError as error:
        raise ValueError(f"bair_action_free: {where} is not a tf.train.Example: {error}") from error

    def values(key, kind, count):
        if key not in features:
            raise ValueError(f"bair_action_free: {where} has no feature {key!r}.")
        found = getattr(features[key], kind).value
        if len(found) != count:
            raise ValueError(f"bair_action_free: {where}: feature {key!r} holds {len(found)} "
                             f"{kind} values, expected {count}.")
        return found

    video = np.empty((NUM_FRAMES,) + IMAGE_SHAPE, np.uint8)
    action = np.empty((NUM_FRAMES, ACTION_SIZE), np.float32)
    endeffector = np.empty((NUM_FRAMES, ENDEFFECTOR_SIZE), np.float32)
    for t in range(NUM_FRAMES):
        key = f"{t}/image_aux1/encoded"
        (image,) = values(key, "bytes_list", 1)
        if len(image) != _IMAGE_BYTES:
            raise ValueError(f"bair_action_free: {where}: {key!r} has {len(image)} bytes, expected "
                             f"{_IMAGE_BYTES} (raw 64x64x3 uint8 RGB).")
        video[t] = np.frombuffer(image, np.uint8).reshape(IMAGE_SHAPE)
        action[t] = values(f"{t}/action", "float_list", ACTION_SIZE)
        endeffector[t] = values(f"{t}/endeffector_pos", "float_list", ENDEFFECTOR_SIZE)
    return {"video": video, "action": action, "endeffector_pos": endeffector}


_CITATION = """\
@inproceedings{ebert2017self,
  title={Self-Supervised Visual Planning with Temporal Skip Connections},
  author={Ebert, Frederik and Finn, Chelsea and Lee, Alex X. and Levine, Sergey},
  booktitle={Conference on Robot Learning (CoRL)},
  year={2017}
}
"""
