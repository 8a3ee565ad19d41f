"""Where a VideoFlow model's time goes: TensorFlow's profiler, per op type or per part.

Traces `repeats` calls of one function of a config's model (log_prob, train or sample)
with tf.profiler, reads the trace (XSpace protobuf) and sums the time of each op type on
TensorFlow's executor threads; the FLOPs of each op type come from the traced graph
(tf.compat.v1.profiler float_ops), so each line also shows the op's achieved GFLOP/s.
With 2 executor threads the op times can add up to more than the wall time: shares are
of the summed op time.

`--by part` groups the same times by what an op belongs to: the coupling networks, the
prior's encoders, or the rest (ActNorm, 1x1 convolutions, likelihoods, the optimizer),
and by level, told apart by the latent's height x width (gradients count with their
forward op's part). It shows no FLOPs: the graph's FLOP count per op name misses ops
that run inside nested functions.

    python benchmarks/speed/profile_ops.py --config shapes --batch 2 --mode log_prob
    python benchmarks/speed/profile_ops.py --config bair_quant --batch 1 --mode train --top 25
    python benchmarks/speed/profile_ops.py --config shapes_64 --batch 8 --mode train --by part
"""
import argparse
import collections
import glob
import json
import os
import re
import tempfile
import time

import videoflow_tf as vf  # noqa: F401  (quiet TensorFlow import)
import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from videoflow_tf.model.optim import make_optimizer


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="shapes")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--mode", choices=("log_prob", "train", "sample"), default="log_prob")
    parser.add_argument("--memory-saving", choices=("config", "auto", "on", "off"),
                        default="config")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--by", choices=("type", "part"), default="type",
                        help="group by op type, or by part of the model and level")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--out", default=None, help="JSON file (default: none)")
    return parser.parse_args()


def build(args):
    config = vf.get_config(args.config)
    changes = dict(batch_size=args.batch, init_batch_size=args.batch, seed=0)
    if args.memory_saving != "config":
        changes["memory_saving"] = args.memory_saving
    config = config.replace(**changes)
    rng = np.random.default_rng(0)
    frames = {"train": config.num_train_frames,
              "log_prob": config.num_context_frames + config.num_target_frames,
              "sample": config.num_context_frames}[args.mode]
    videos = rng.integers(0, 256, (args.batch, frames, *config.image_shape), np.uint8)
    model = vf.VideoFlow(config)
    model.initialize(rng.integers(0, 256, (args.batch, config.num_train_frames,
                                           *config.image_shape), np.uint8))
    if args.mode == "train":
        model.compile(optimizer=make_optimizer(config))
        model.optimizer.build(model.trainable_variables)
        function = tf.function(model.train_step)
    elif args.mode == "log_prob":
        function = tf.function(lambda v: model.log_prob(v, seed=1))
    else:
        function = tf.function(lambda c: model.sample(c, config.num_target_frames, seed=1))
    return function, videos


def flops_by_type(graph):
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph, cmd="op", options=options)
    return {child.name: child.total_float_ops for child in profile.children}


def part_of(op, level_sizes):
    """'coupling networks 32x32' and the like: the op's part of the model (from its
    Keras name: coupling networks are `network_*`, the prior's encoders `encoder_*` with
    their output conv `conv2d_*`) and its level, the largest of `level_sizes` (the
    levels' latent heights) that is the height and width of a 4-D [N, h, w, c] or 5-D
    [N, T, h, w, c] tensor the op reads or writes."""
    top = re.sub(r"^gradient_tape/", "", op.name).split("/")[0]
    if top.startswith("network"):
        part = "coupling networks"
    elif top.startswith(("encoder", "conv2d")):
        part = "prior encoders"
    else:
        part = "rest"
    sizes = [shape[-3] for tensor in list(op.inputs) + list(op.outputs)
             for shape in [tensor.shape] if shape.rank in (4, 5)
             and shape[-3] == shape[-2] and shape[-3] in level_sizes]
    return f"{part} {max(sizes)}x{max(sizes)}" if sizes else f"{part}, no level"


def graph_type(runtime_type):
    """The graph's op type of a run-time kernel: oneDNN and grappler rename fused
    kernels (_MklNativeFusedConv2D runs a Conv2D with its BiasAdd and activation, whose
    FLOPs then count under their own types)."""
    return re.sub(r"^_(MklNative|Mkl)?(Fused)?", "", runtime_type)


def op_times(logdir, key):
    """{key(op name, op type): (total seconds, count)} over the executor threads of
    the trace."""
    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    totals = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                if ":" not in meta.name or not meta.display_name:
                    continue  # executor bookkeeping, not an op
                group = key(meta.name.split(":")[0], graph_type(meta.display_name))
                totals[group][0] += event.duration_ps * 1e-12
                totals[group][1] += 1
    return totals


def main():
    args = parse_args()
    function, videos = build(args)
    concrete = function.get_concrete_function(tf.TensorSpec(videos.shape, tf.uint8))
    if args.by == "type":
        flops = flops_by_type(concrete.graph)
        key = lambda name, op_type: op_type  # noqa: E731
    else:
        level_sizes = {shape[0] for shape in vf.get_config(args.config).latent_shapes}
        parts = {op.name: part_of(op, level_sizes)
                 for op in concrete.graph.get_operations()}
        key = lambda name, op_type: parts.get(name, "rest, no level")  # noqa: E731
    function(videos)  # trace and warm up outside the profile
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        for _ in range(args.repeats):
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t,
                                  function(videos))
        wall = (time.perf_counter() - start) / args.repeats
        tf.profiler.experimental.stop()
        times = op_times(logdir, key)
    total = sum(seconds for seconds, _ in times.values())
    rows = sorted(times.items(), key=lambda item: -item[1][0])
    print(f"{args.config} {args.mode}, batch {args.batch}: wall {wall:.3f} s per call, "
          f"op time {total / args.repeats:.3f} s per call, load average "
          f"{os.getloadavg()[0]:.1f}")
    label, flop_columns = ("op type", True) if args.by == "type" else ("part", False)
    print(f"{label:<28}{'s/call':>9}{'share':>8}{'ops/call':>10}"
          + (f"{'GFLOP/call':>12}{'GFLOP/s':>9}" if flop_columns else ""))
    result = []
    for name, (seconds, count) in rows[:args.top]:
        per_call = seconds / args.repeats
        line = f"{name:<28}{per_call:>9.4f}{seconds / total:>8.1%}{count / args.repeats:>10.0f}"
        row = {label.split()[0]: name, "s_per_call": per_call, "share": seconds / total,
               "ops_per_call": count / args.repeats}
        if flop_columns:
            work = flops.get(name, 0) / 1e9
            rate = f"{work / per_call:.0f}" if work and per_call else "-"
            line += f"{work:>12.3f}{rate:>9}"
            row["gflop_per_call"] = work
        print(line)
        result.append(row)
    rest = sum(seconds for _, (seconds, _) in rows[args.top:])
    print(f"{'(the rest)':<28}{rest / args.repeats:>9.4f}{rest / total:>8.1%}")
    if args.out:
        with open(args.out, "w") as file:
            json.dump({"args": vars(args), "wall_s": wall, "rows": result,
                       "load_average": os.getloadavg()}, file, indent=2)


if __name__ == "__main__":
    main()
