"""Latency of the exported SavedModel's signatures, loaded from disk as TF Serving loads it.

For each config, a randomly initialised VideoFlow (ActNorms initialised on 4 random videos;
latency does not depend on trained weights) is exported with `vf.export.export_saved_model`
to a temporary folder, then loaded with TF1's session loader (`serve` tag) in a fresh graph
and called through the SignatureDefs' tensor names, as the model server does:

  serving_default  sample num_target_frames frames after num_context_frames (temperature 1)
  log_prob         score a clip of context + target frames

at each batch size. Each signature first runs once at the first batch size, not counted:
the session optimises and builds its graph on the first call and reuses it for every batch
size. Then each (signature, batch) runs `--repeats` times, or fewer (at least once) when
they add up to `--cell-seconds`. The table shows the median and
the fastest run, the median CPU time of the process (all of TensorFlow's threads) and the
1-minute load average, which tell how busy a shared machine was. The model sizes are the
configs' (bair_quant: 64x64 frames, 3 levels of 24 steps, 512-wide couplings; sampling 10
frames at batch 8 takes minutes on a 2-core CPU, hence --configs and --cell-seconds).

    python benchmarks/speed/serving_latency.py                          # shapes_32_baseline and bair_quant
    python benchmarks/speed/serving_latency.py --configs shapes_32_baseline --repeats 5
"""
import argparse
import json
import os
import platform
import statistics
import tempfile
import time

import videoflow_tf as vf  # quiet TensorFlow import
import numpy as np
import tensorflow as tf

from videoflow_tf.commands import export


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="shapes_32_baseline,bair_quant",
                        help="comma-separated config names (default: %(default)s)")
    parser.add_argument("--batches", default="1,8", help="batch sizes (default: %(default)s)")
    parser.add_argument("--signatures", default="serving_default,log_prob")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell, at most")
    parser.add_argument("--cell-seconds", type=float, default=30.0,
                        help="no further timed run once a cell's runs took this long "
                        "(default: %(default)s)")
    parser.add_argument("--out", default="docs/benchmarks/serving_latency.json")
    return parser.parse_args()


def exported_model(config, folder):
    """Path of a SavedModel of a random VideoFlow for `config`."""
    model = vf.VideoFlow(config.replace(seed=0))
    frames = config.num_context_frames + config.num_target_frames
    model.initialize(random_videos(4, frames, config, seed=0))
    return export.export_saved_model(model, folder)


def random_videos(batch, frames, config, seed):
    shape = (batch, frames) + config.image_shape
    return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def signature_inputs(name, batch, config):
    if name == "log_prob":
        frames = config.num_context_frames + config.num_target_frames
        return {"video": random_videos(batch, frames, config, seed=1)}
    return {"context": random_videos(batch, config.num_context_frames, config, seed=1),
            "temperature": np.ones([batch], np.float32),
            "seed": np.arange(batch, dtype=np.int64)}


def time_signatures(path, config, args):
    rows, batches = [], [int(b) for b in args.batches.split(",")]
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        started = time.perf_counter()
        signatures = tf.compat.v1.saved_model.loader.load(session, ["serve"],
                                                          path).signature_def
        load_s = time.perf_counter() - started
        for name in args.signatures.split(","):
            signature = signatures[name]
            fetches = {key: info.name for key, info in signature.outputs.items()}
            for batch in batches:
                feeds = {signature.inputs[key].name: value
                         for key, value in signature_inputs(name, batch, config).items()}
                if batch == batches[0]:
                    session.run(fetches, feeds)  # warm-up: graph optimisation, allocation
                times, cpu_times = [], []
                while len(times) < args.repeats and sum(times) < args.cell_seconds:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    session.run(fetches, feeds)
                    times.append(time.perf_counter() - started)
                    cpu_times.append(time.process_time() - cpu_started)
                frames = (config.num_target_frames if name == "serving_default"
                          else config.num_context_frames + config.num_target_frames)
                rows.append({"config": config.name, "signature": name, "batch": batch,
                             "frames": frames, "runs": len(times), "median_s": statistics.median(times),
                             "min_s": min(times), "times_s": times,
                             "median_cpu_s": statistics.median(cpu_times),
                             "load_average": os.getloadavg()[0]})
                print_row(rows[-1], flush=True)
    return rows, load_s


HEADER = (f"{'config':<12} {'signature':<16} {'batch':>5} {'frames':>6} {'runs':>4} "
          f"{'median s':>9} "
          f"{'min s':>8} {'ms/video/frame':>15} {'CPU s':>8} {'load':>5}")


def print_row(row, flush=False):
    per_frame_ms = 1000 * row["median_s"] / (row["batch"] * row["frames"])
    print(f"{row['config']:<12} {row['signature']:<16} {row['batch']:>5} {row['frames']:>6} "
          f"{row['runs']:>4} "
          f"{row['median_s']:>9.3f} {row['min_s']:>8.3f} {per_frame_ms:>15.1f} "
          f"{row['median_cpu_s']:>8.3f} {row['load_average']:>5.1f}", flush=flush)


def main():
    args = parse_args()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs ({platform.processor() or '?'}),"
          f" median of up to {args.repeats} timed runs (at most ~{args.cell_seconds:g} s a "
          "cell) after a warm-up; random weights")
    print(HEADER)
    result = {"tensorflow": tf.__version__, "cpus": os.cpu_count(), "repeats": args.repeats,
              "cell_seconds": args.cell_seconds,
              "weights": "random (ActNorm initialised on random videos)", "rows": [],
              "export_s": {}, "load_s": {}}
    for name in args.configs.split(","):
        config = vf.get_config(name)
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            path = exported_model(config, folder)
            result["export_s"][name] = time.perf_counter() - started
            rows, result["load_s"][name] = time_signatures(path, config, args)
        result["rows"] += rows
    for name in args.configs.split(","):
        print(f"{name}: export {result['export_s'][name]:.1f} s, session load "
              f"{result['load_s'][name]:.1f} s")
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(result, file, indent=2)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
