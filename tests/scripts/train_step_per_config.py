"""Trains one step of every named config's architecture on random videos; exit status 0
if all of them trained, else 1 with the failures on stderr.

Each config keeps its frame size, levels, dilations, conditioning frames and training
clip length (what decides which kernels a step runs) and is shrunk in width and depth
(one flow step, one encoder block, 4 channels, one video), so that the paper's 64x64
configs take seconds. tests/test_prior.py runs this in a subprocess with
TF_ENABLE_ONEDNN_OPTS=0: TensorFlow's own CPU kernels, which it uses on the CPUs where
it does not turn on oneDNN's.

    python tests/scripts/train_step_per_config.py [NAME ...]   (default: every config)
"""
import sys

import numpy as np

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import tensorflow as tf

from videoflow_tf.config import CONFIG_NAMES


def train_one_step(name):
    config = vf.get_config(name).replace(
        num_steps=1, coupling_width=4, latent_encoder_width=4, latent_encoder_depth=1,
        batch_size=1, init_batch_size=1, seed=0)
    videos = np.random.default_rng(0).integers(
        0, 256, (1, config.num_train_frames) + config.image_shape, np.uint8)
    model = vf.VideoFlow(config)
    model.compile(optimizer=vf.make_optimizer(config))
    model.initialize(videos)
    before = [w.numpy() for w in model.trainable_weights]
    model.fit(tf.data.Dataset.from_tensors(videos).repeat(), steps_per_epoch=1, verbose=0)
    changed = any(not np.array_equal(a, w.numpy())
                  for a, w in zip(before, model.trainable_weights))
    if not changed:
        raise RuntimeError("the step changed no weight")


def main(names):
    failed = 0
    for name in names or CONFIG_NAMES:
        try:
            train_one_step(name)
            print(f"{name}: trained a step")
        except Exception as error:  # report every config, not just the first failure
            failed += 1
            print(f"{name}: {type(error).__name__}: {' '.join(str(error).split())}",
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
