"""One worker of a two-worker `vf.train.train(strategy="multi_worker")` run of the tiny
config (the cluster and this worker's index in TF_CONFIG), for tests/test_distribute.py.
Saves the trained weights to OUT/worker<index>.npz and prints one JSON line of the result.

    TF_CONFIG=... python tests/scripts/multi_worker_train.py DATA_DIR MODEL_DIR OUT
"""
import json
import os
import sys

import numpy as np
import videoflow_tf as vf
from videoflow_tf.training import train

if __name__ == "__main__":
    data_dir, model_dir, out = sys.argv[1:]
    result = train.train(vf.get_config("tiny"), None, model_dir, 3, data_dir=data_dir,
                         strategy="multi_worker", checkpoint_every_steps=2, steps_per_epoch=3,
                         summary_every=1, sample_every=0, verbose=0)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(os.path.join(out, f"worker{index}.npz"),
             *[w.numpy() for w in result.model.weights])
    strategy = result.model.distribute_strategy
    print(json.dumps(dict(chief=vf.distribute.is_chief(strategy), step=result.step,
                          replicas=strategy.num_replicas_in_sync,
                          checkpoint=result.checkpoint,
                          losses=result.history.history["loss"])))
