"""`stochastic_shapes`: the VideoFlow paper's "stochastic movement" videos, generated locally.

10,000 videos of 5 frames, 64 x 64 RGB (9,091 train, 909 test, as in the
paper), plus 909 validation videos for choosing runs, steps and temperatures
(the paper's data has no validation split): one circle, square or triangle of
one of six colours moving in a straight line from the centre in one of 8
directions (the direction is the only thing a model cannot infer from frame 0).
Nothing is downloaded; `rendering.py` draws every video from a fixed seed, so
every machine builds the same uint8 frames, byte for byte, and the same labels
(the PNG files TFDS stores them in may differ with the encoder's version). Each
split has its own random stream, so version 1.1.0's new validation split left
train and test as they were in 1.0.0, video for video. See `rendering.py` for
the geometry. Building all 10,909 videos takes about 20 s on 2 CPU cores
(`benchmarks/speed/stochastic_shapes_build.py`).

Configs: `gray` (default; background RGB (128, 128, 128), the mid gray of the
paper's text) and `black` (the original tensor2tensor code's background). Both
configs hold the same shapes and motions; only the background differs.
"""
import dataclasses

from etils import epath
import numpy as np

from videoflow_tf import _quiet  # noqa: F401  (quiet TensorFlow import)
import tensorflow_datasets as tfds

from videoflow_tf.datasets.stochastic_shapes import rendering

SEED = 20190304  # arXiv 1903.01434; a split draws from default_rng([SEED, its stream])
_CHUNK = 250  # videos rendered per vectorised call


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    background: tuple[int, int, int] = (128, 128, 128)


class Builder(tfds.core.GeneratorBasedBuilder):
    """Seeded numpy renderer of the stochastic-shapes videos."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Adds a validation split of 909 videos drawn from its own random stream; "
                 "train and test are unchanged, video for video.",
    }
    BUILDER_CONFIGS = [
        ShapesConfig(name="gray", description="Mid-gray (128, 128, 128) background, as in the paper.",
                     background=(128, 128, 128)),
        ShapesConfig(name="black", description="Black background, as in the original code.",
                     background=(0, 0, 0)),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "gray"
    # Videos per split; split index i always holds the same i-th video, so
    # tests may shrink these without changing the videos they keep.
    SPLIT_SIZES = {"train": 9091, "validation": 909, "test": 909}
    # The random stream of each split (see `_generate_examples`): fixed per split, so
    # that adding a split never changes another's videos.
    SPLIT_STREAMS = {"train": 0, "test": 1, "validation": 2}

    # The package installs from `datasets/` as `videoflow_tf.datasets` (a
    # package_dir mapping), so TFDS's guess of this module's folder from its
    # dotted name is wrong in editable installs; give the real one.
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
                "video": tfds.features.Video(
                    (rendering.NUM_FRAMES, rendering.IMAGE_SIZE, rendering.IMAGE_SIZE, 3)),
                "shape": tfds.features.ClassLabel(names=rendering.SHAPES),
                "color": tfds.features.ClassLabel(names=list(rendering.COLORS)),
                "size": tfds.features.Scalar(
                    np.float32, doc="Circle radius or half the side of the square/triangle, pixels."),
                "velocity": tfds.features.Tensor(
                    shape=(2,), dtype=np.float32,
                    doc="(dx, dy) pixels per frame; x to the right, y down the image rows."),
            }),
            homepage="https://arxiv.org/abs/1903.01434",
            citation=_CITATION,
            # The videos each split will have, known before they are made: TFDS's progress
            # bar then shows how far preparing has got (else only a count that goes up).
            # TFDS replaces these with what it wrote once the splits are done.
            split_dict=tfds.core.SplitDict([
                tfds.core.SplitInfo(name=split, shard_lengths=[size], num_bytes=0)
                for split, size in self.SPLIT_SIZES.items()]),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # generated locally
        return {split: self._generate_examples(self.SPLIT_STREAMS[split], size)
                for split, size in self.SPLIT_SIZES.items()}

    def _generate_examples(self, stream, num_videos):
        rng = np.random.default_rng([SEED, stream])
        params = rendering.sample_parameters(rng, num_videos)
        for start in range(0, num_videos, _CHUNK):
            chunk = {key: value[start:start + _CHUNK] for key, value in params.items()}
            videos = rendering.render_videos(chunk, self.builder_config.background)
            for offset, video in enumerate(videos):
                yield start + offset, {
                    "video": video,
                    "shape": chunk["shape"][offset],
                    "color": chunk["color"][offset],
                    "size": np.float32(chunk["size"][offset]),
                    "velocity": chunk["velocity"][offset].astype(np.float32),
                }


_CITATION = """\
@inproceedings{kumar2020videoflow,
  title={VideoFlow: A Conditional Flow-Based Model for Stochastic Video Generation},
  author={Kumar, Manoj and Babaeizadeh, Mohammad and Erhan, Dumitru and Finn, Chelsea
          and Levine, Sergey and Dinh, Laurent and Kingma, Durk},
  booktitle={International Conference on Learning Representations},
  year={2020}
}
"""
