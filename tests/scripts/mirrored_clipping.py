"""One update of the tiny config with gradient clipping, on one device and under
MirroredStrategy on two CPUs, for tests/test_distribute.py. Prints one JSON line: the
step length lr * CAP that clipping allows, how far each update moved the weights, and how
far apart they ended.

    python tests/scripts/mirrored_clipping.py DATA_DIR LEARNING_RATE
"""
import json
import sys

from two_cpus import mirrored_strategy
import videoflow_tf as vf
import keras
import numpy as np

CAP = 0.1  # below the gradient's norm


def main(data_dir, learning_rate):
    mirrored = mirrored_strategy()
    keras.utils.set_random_seed(0)
    config = vf.get_config("tiny").replace(gradient_clip_norm=CAP)
    data = dict(name="stochastic_shapes", split="train", config=config, training=True,
                data_dir=data_dir, seed=0)

    def sgd():
        return keras.optimizers.SGD(learning_rate=learning_rate)

    def one_update(model, make_data):
        model.fit(make_data(), epochs=0, verbose=0)  # initialise from the data
        before = [w.numpy() for w in model.trainable_weights]
        model.fit(make_data(), epochs=1, steps_per_epoch=1, verbose=0)
        after = [w.numpy() for w in model.trainable_weights]
        moved = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before))))
        return moved, after

    single = vf.VideoFlow(config)
    single.compile(optimizer=sgd())
    initial = single.get_weights()
    single_moved, single_after = one_update(
        single, lambda: vf.data.make_dataset(batch_size=4, **data))
    with mirrored.scope():
        replicated = vf.VideoFlow(config)
        replicated.compile(optimizer=sgd())
        replicated.set_weights(initial)
    replicated_moved, replicated_after = one_update(
        replicated, lambda: vf.data.distribute_dataset(mirrored, global_batch_size=4,
                                                       **data))
    return dict(
        step=learning_rate * CAP, single_moved=single_moved,
        replicated_moved=replicated_moved,
        weight_difference=max(float(np.max(np.abs(a - b)))
                              for a, b in zip(single_after, replicated_after)))


if __name__ == "__main__":
    data_dir, learning_rate = sys.argv[1:]
    print(json.dumps(main(data_dir, float(learning_rate))))
