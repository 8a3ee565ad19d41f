"""One device against MirroredStrategy on two CPUs, for tests/test_distribute.py: trains
the tiny config both ways with SGD, poisons one replica's loss, resumes a distributed
pipeline, copies replica 0's values and moves checkpoints between the strategies. Prints
one JSON line of what the test checks.

    python tests/scripts/mirrored_training.py DATA_DIR CHECKPOINT_DIR STEPS LEARNING_RATE
"""
import json
import os
import sys

from two_cpus import mirrored_strategy
import videoflow_tf as vf
import keras
import numpy as np
import tensorflow as tf

from videoflow_tf.training.run_dir import make_checkpoint


def main(data_dir, checkpoint_dir, steps, learning_rate):
    mirrored = mirrored_strategy()
    keras.utils.set_random_seed(0)  # the prior's initial kernels

    config = vf.get_config("tiny")
    data = dict(name="stochastic_shapes", split="train", config=config, training=True,
                data_dir=data_dir, seed=0)
    poison = tf.Variable(False, trainable=False)  # NaN loss on replica 1 when set

    class Poisonable(vf.VideoFlow):
        def _bits_per_pixel(self, video, first, seed, training=False):
            bpp = super()._bits_per_pixel(video, first, seed, training)
            context = tf.distribute.get_replica_context()
            on_replica_1 = poison & tf.equal(context.replica_id_in_sync_group, 1)
            return tf.where(on_replica_1, float("nan"), bpp)

    def sgd():
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)

    def float_weights(model):
        return [w.numpy() for w in model.weights if w.dtype.startswith("float")]

    def train(model, make_data):
        # fit initialises the model from its data; then fresh pipelines, whose first
        # iterators see the same order (a second iterator of one reshuffles).
        model.fit(make_data(), epochs=0, verbose=0)
        initialised = float_weights(model)
        history = model.fit(make_data(), epochs=steps, steps_per_epoch=1, verbose=0)
        return history.history["loss"], initialised, float_weights(model)

    single = vf.VideoFlow(config)
    single.compile(optimizer=sgd())
    initial = single.get_weights()  # the prior's kernels are not seeded: share them
    single_losses, single_initialised, single_weights = train(
        single, lambda: vf.data.make_dataset(batch_size=4, **data))
    with mirrored.scope():
        replicated = Poisonable(config)
        replicated.compile(optimizer=sgd())
        replicated.set_weights(initial)
    replicated_losses, replicated_initialised, replicated_weights = train(
        replicated,
        lambda: vf.data.distribute_dataset(mirrored, global_batch_size=4, **data))

    def replicas_agree(model):
        return all(np.array_equal(*[a.numpy() for a in
                                    mirrored.experimental_local_results(w.value)])
                   for w in model.weights)

    before = float_weights(replicated)
    poison.assign(True)
    stop = vf.callbacks.StopOnNonFiniteLoss()
    replicated.fit(vf.data.distribute_dataset(mirrored, global_batch_size=4, **data),
                   epochs=1, steps_per_epoch=1, verbose=0, callbacks=[stop])
    poison.assign(False)
    poisoned = dict(
        bad_step=stop.bad_step, iterations=int(replicated.optimizer.iterations.numpy()),
        unchanged=all(np.array_equal(a, b)
                      for a, b in zip(before, float_weights(replicated))),
        replicas_agree=replicas_agree(replicated))

    # Resuming skips the global batches of the steps done, on every replica.
    resumed = vf.data.distribute_dataset(mirrored, global_batch_size=4, skip_steps=2,
                                         **data)
    resumed_batch = np.concatenate([
        x.numpy() for x in mirrored.experimental_local_results(next(iter(resumed)))])
    skips_steps = np.array_equal(
        resumed_batch, next(iter(vf.data.make_dataset(batch_size=4, **data).skip(2))))

    # Replicas (workers) that initialised differently take replica 0's values.
    with mirrored.scope():
        diverged = tf.Variable([1.0, 2.0])
    for offset, component in enumerate(mirrored.experimental_local_results(diverged)):
        component.assign_add([10.0 * offset, 0.0])
    vf.distribute.copy_first_replica(mirrored, [diverged])
    copied = [x.numpy().tolist() for x in mirrored.experimental_local_results(diverged)]

    video = np.random.default_rng(0).integers(0, 256, (3, 4, 8, 8, 3), np.uint8)
    restored = {}
    for name, trained, strategy in (("mirrored_to_default", replicated,
                                     tf.distribute.get_strategy()),
                                    ("default_to_mirrored", single, mirrored)):
        path = make_checkpoint(trained, trained.optimizer).save(os.path.join(checkpoint_dir, name))
        with strategy.scope():
            fresh = vf.VideoFlow(config)
            fresh.compile(optimizer=sgd())
            fresh.optimizer.build(fresh.trainable_variables)
        make_checkpoint(fresh, fresh.optimizer).restore(path).assert_consumed()
        restored[name] = dict(
            same_weights=all(np.array_equal(a.numpy(), b.numpy())
                             for a, b in zip(trained.weights, fresh.weights)),
            replicas_agree=replicas_agree(fresh) if strategy is mirrored else True,
            iterations=int(fresh.optimizer.iterations.numpy()),
            same_log_prob=np.array_equal(trained.log_prob(video, seed=1),
                                         fresh.log_prob(video, seed=1)))

    return dict(
        single_losses=single_losses, replicated_losses=replicated_losses,
        same_initialisation=all(np.array_equal(a, b) for a, b in
                                zip(single_initialised, replicated_initialised)),
        weight_difference=max(float(np.max(np.abs(a - b)))
                              for a, b in zip(single_weights, replicated_weights)),
        poisoned=poisoned, restored=restored, skips_steps=skips_steps, copied=copied)


if __name__ == "__main__":
    data_dir, checkpoint_dir, steps, learning_rate = sys.argv[1:]
    print(json.dumps(main(data_dir, checkpoint_dir, int(steps), float(learning_rate))))
