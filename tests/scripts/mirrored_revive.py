"""ReviveComponents on a collapsed mixture, on one device and under MirroredStrategy on two
CPUs, for tests/test_distribute.py. Prints one JSON line: the components revived on each,
whether the two replicas' top-prior weights agree, and how far they are from one device's.

    python tests/scripts/mirrored_revive.py
"""
import json

from two_cpus import mirrored_strategy
import videoflow_tf as vf
import keras
import numpy as np
import tensorflow as tf

from videoflow_tf.training.callbacks import ReviveComponents


def collapsed(model):
    """Components 1-3 of the top mixture get no weight and means far from every frame."""
    top = model.prior.levels[-1]
    bias = top.encoder.head.bias.numpy()
    bias[-3:] = -30.0
    top.encoder.head.bias.assign(bias)
    offsets = top.component_offsets.numpy()
    offsets[1:] = 100.0
    top.component_offsets.assign(offsets)
    return top


def revive(model, videos):
    callback = ReviveComponents(every=10, clips=videos, batch_size=4)
    callback.set_model(model)
    callback.on_train_begin()


def main():
    mirrored = mirrored_strategy()
    keras.utils.set_random_seed(0)
    config = vf.get_config("tiny").replace(top_prior_components=4)
    videos = np.random.default_rng(0).integers(
        0, 256, (8, config.num_train_frames) + config.image_shape, np.uint8)
    single = vf.VideoFlow(config)
    single.compile(optimizer=keras.optimizers.SGD())
    single.initialize(videos)
    collapsed(single)
    weights = single.get_weights()
    with mirrored.scope():
        replicated = vf.VideoFlow(config)
        replicated.compile(optimizer=keras.optimizers.SGD())
        replicated.set_weights(weights)
    top = collapsed(replicated)
    revive(single, videos)
    revive(replicated, videos)
    per_replica = [[v.numpy() for v in mirrored.experimental_local_results(variable.value)]
                   for variable in top.variables]
    ours = [variable.numpy() for variable in single.prior.levels[-1].variables]
    return dict(
        single_logits=single.prior.levels[-1].encoder.head.bias.numpy()[-4:].tolist(),
        replicated_logits=top.encoder.head.bias.numpy()[-4:].tolist(),
        replicas_equal=all(np.array_equal(a, b) for a, b in per_replica),
        difference_from_single=max(float(np.max(np.abs(values[0] - mine)))
                                   for values, mine in zip(per_replica, ours)
                                   if mine.dtype.kind == "f"))


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    print(json.dumps(main()))
