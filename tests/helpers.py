"""Test data and models shared by the test modules (pytest.ini puts tests/ on sys.path)."""
import numpy as np

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras

TINY = vf.get_config("tiny")  # 8x8 frames, 2 levels, 2 context + 2 target frames, skip


def moving_squares(num_videos=4, frames=4, seed=0):
    """Videos of a bright 3x3 square moving one pixel per frame on a dark background."""
    rng = np.random.default_rng(seed)
    videos = np.full((num_videos, frames, 8, 8, 3), 20, np.uint8)
    for v in range(num_videos):
        y, x = rng.integers(0, 3, size=2)
        colour = rng.integers(120, 256, size=3)
        for t in range(frames):
            videos[v, t, y + t:y + t + 3, x + t:x + t + 3] = colour
    return videos


def noise_videos(num_videos=3, frames=4, seed=0, size=8):
    """uint8 [num_videos, frames, size, size, 3] of uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (num_videos, frames, size, size, 3),
                                                np.uint8)


def perturb(layer, seed=0, scale=0.05):
    """Moves every trainable weight of `layer` off its initialisation, so that no test
    passes because of zero-initialised outputs or identity steps."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        variable.assign(variable.numpy() + scale * rng.standard_normal(variable.shape))
    return layer


def perturbed_model(config=TINY, seed=1, scale=0.05):
    """A model initialised on moving squares, every trainable weight then perturbed (the
    same weights for every config with the same sizes)."""
    keras.utils.set_random_seed(0)  # the prior's Keras initialisers
    model = vf.VideoFlow(config)
    model.initialize(moving_squares())
    return perturb(model, seed, scale)
