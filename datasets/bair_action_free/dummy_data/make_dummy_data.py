"""Regenerates the dummy BAIR data: `python datasets/bair_action_free/dummy_data/make_dummy_data.py`.

Four one-video files in the original layout (3 train files, so that the last
two in sorted order make the validation split, and 1 test file). Frames are
smooth ramps rather than noise so the files compress well in git.
"""
import pathlib

import numpy as np

from videoflow_tf.datasets.bair_action_free import bair_action_free_dataset_builder as bair
from videoflow_tf.datasets.bair_action_free import fake_data

FILES = ("train/traj_0_to_0.tfrecords", "train/traj_1_to_1.tfrecords",
         "train/traj_2_to_2.tfrecords", "test/traj_0_to_0.tfrecords")


def ramp_video(video_index):
    t, i, j, c = np.indices((bair.NUM_FRAMES,) + bair.IMAGE_SHAPE)
    aux1 = (2 * i + 3 * j + 5 * t + 60 * c + 40 * video_index) % 256
    steps = np.arange(bair.NUM_FRAMES, dtype=np.float32)[:, None]
    return {
        "video": aux1.astype(np.uint8),
        "main": (255 - aux1).astype(np.uint8),
        "action": (steps * 0.01 + video_index) * np.ones(bair.ACTION_SIZE, np.float32),
        "endeffector_pos": (steps * 0.02 - video_index) * np.ones(bair.ENDEFFECTOR_SIZE, np.float32),
    }


def main():
    root = pathlib.Path(__file__).parent / bair.ROOT_FOLDER
    for index, relative in enumerate(FILES):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        fake_data.write_records(root / relative, [fake_data.make_example(ramp_video(index))])


if __name__ == "__main__":
    main()
