"""`vf.data.distribute_dataset` under a MirroredStrategy on two CPUs: prints the shapes of
the per-replica parts of a global batch of 4, then the error for a global batch of 3.

    python tests/scripts/mirrored_batches.py DATA_DIR
"""
import sys
import types

from two_cpus import mirrored_strategy
import videoflow_tf as vf

if __name__ == "__main__":
    data_dir = sys.argv[1]
    strategy = mirrored_strategy()
    config = types.SimpleNamespace(num_train_frames=2, num_context_frames=1,
                                   num_target_frames=2, image_size=64, train_clip_frames=None)
    dataset = vf.data.distribute_dataset(strategy, "stochastic_shapes", "train", config, 4,
                                         training=True, data_dir=data_dir, seed=0)
    batch = next(iter(dataset))
    print([tuple(x.shape) for x in strategy.experimental_local_results(batch)])
    try:
        vf.data.distribute_dataset(strategy, "stochastic_shapes", "train", config, 3, True,
                                   data_dir=data_dir)
    except ValueError as error:
        print(error)
