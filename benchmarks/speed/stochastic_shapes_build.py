"""Times a full build of `stochastic_shapes` (10,000 videos) through TFDS.

    python benchmarks/speed/stochastic_shapes_build.py [--config gray] [--json out.json]

Builds into a fresh temporary data dir, prints a table (wall and process CPU
seconds for rendering alone and for the whole TFDS build) and writes it as JSON.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np

import videoflow_tf  # noqa: F401  (registers the builder)
import tensorflow_datasets as tfds

from videoflow_tf.datasets.stochastic_shapes import rendering, stochastic_shapes_dataset_builder


def _timed(function):
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="gray", choices=["gray", "black"])
    parser.add_argument("--json", default="stochastic_shapes_build.json")
    args = parser.parse_args()
    builder_cls = stochastic_shapes_dataset_builder.Builder
    num_videos = sum(builder_cls.SPLIT_SIZES.values())

    def render_only():
        params = rendering.sample_parameters(np.random.default_rng(0), num_videos)
        for start in range(0, num_videos, 250):
            rendering.render_videos({k: v[start:start + 250] for k, v in params.items()},
                                    (128, 128, 128))

    with tempfile.TemporaryDirectory() as data_dir:
        builder = tfds.builder(f"stochastic_shapes/{args.config}", data_dir=data_dir)
        rows = {"render (numpy only)": _timed(render_only),
                "tfds download_and_prepare": _timed(builder.download_and_prepare)}
        splits = {name: info.num_examples for name, info in builder.info.splits.items()}

    print(f"stochastic_shapes/{args.config}: {splits}, {os.cpu_count()} CPUs")
    print(f"{'step':<28}{'wall s':>10}{'cpu s':>10}")
    for step, (wall, cpu) in rows.items():
        print(f"{step:<28}{wall:>10.1f}{cpu:>10.1f}")
    with open(args.json, "w", encoding="utf-8") as file:
        json.dump({"config": args.config, "splits": splits, "cpus": os.cpu_count(),
                   "seconds": {step: {"wall": wall, "cpu": cpu} for step, (wall, cpu) in rows.items()}},
                  file, indent=2)


if __name__ == "__main__":
    main()
