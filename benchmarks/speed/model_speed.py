"""Speed, work and memory of whole VideoFlow models against the machine's own ceilings.

For each config (each in a subprocess of its own, so that peak memories do not mix):

  train     one Keras training step (model.train_function: loss, gradients, Adam
            update) on batch x num_train_frames frames
  log_prob  model.log_prob of clips of num_context + num_target frames
  sample    model.sample of num_target frames after num_context frames

with frames per second (all frames the flow sees: the whole window or clip, the new
frames of a sample), frames per CPU-second (steadier on a shared machine), the model's
FLOPs per frame counted twice, from the traced graph (TensorFlow's profiler,
float_ops) and analytically (the convolutions' and matrix products' multiply-adds),
the achieved FLOP/s as a fraction of the machine's 3x3-convolution rate measured in the
same run, and the peak memory of training (the process's maximum RSS after the
training steps, and TensorFlow's peak tensor bytes during one step). The load average
is recorded with every measurement.

The ceilings: float32 matmul (2048^3) and convolutions shaped like the paper's coupling
network at its first level (4 x 32 x 32 x 512 -> 512, 3x3 and 1x1).

    python benchmarks/speed/model_speed.py                              # all four configs
    python benchmarks/speed/model_speed.py --configs tiny,shapes_32_baseline --jit both
    python benchmarks/speed/model_speed.py --configs shapes --batch shapes=1 --repeats 2
    python benchmarks/speed/model_speed.py --configs shapes,bair_quant --precision both
    python benchmarks/speed/model_speed.py \
        --configs shapes_64,shapes_64+latent_encoder_width_level1=64

A config given as NAME+FIELD=VALUE[+FIELD=VALUE...] is the named config with those
fields changed (as `--set` does for `videoflow-tf train`).

`--precision mixed` (or both) also times config.mixed_precision (the coupling
networks in bfloat16; rows "bf16"), against the same float32 ceilings.

Paper configs run with a reduced batch by default (shapes: 2, bair_quant: 1 video), say
so in the table, and keep their memory saving as the config resolves it ("auto").
"""
import argparse
import json
import os
import resource
import time

import measure
from measure import best_of, report, tensor_peak_mib, train_function

CONFIGS = ("tiny", "shapes_32_baseline", "shapes", "bair_quant")
DEFAULT_BATCH = {"shapes": 2, "bair_quant": 1}  # the others train at their config's batch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--batch", default="",
                        help="per-config batch sizes, e.g. shapes=2,bair_quant=1")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (best counts)")
    parser.add_argument("--jit", choices=("off", "on", "both"), default="off",
                        help="XLA (jit_compile) for the measured functions")
    parser.add_argument("--precision", choices=("float32", "mixed", "both"),
                        default="float32", help="config.mixed_precision off, on or both")
    parser.add_argument("--memory-saving", choices=("config", "auto", "on", "off"),
                        default="config", help="override config.memory_saving")
    parser.add_argument("--out", default="docs/benchmarks/model_speed.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-batch", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


# ---------------------------------------------------------------- analytic work

def flow_macs_per_frame(config):
    """Multiply-adds of the flow in one direction for one frame: per step and pixel of
    level l (C channels after the squeeze), the 1x1 conv C*C, the coupling network's
    edge-padded 3x3 conv 9*(C/2 + 1)*width, its hidden 1x1 conv width*hidden and its
    3x3 output conv 9*width*out (out = C affine, C/2 additive)."""
    size, channels, total = config.image_size, 3, 0
    hidden = config.coupling_width * (2 if config.coupling_activation == "gatu" else 1)
    for level in range(config.num_levels):
        size, channels = size // 2, channels * 4
        out = channels if config.coupling == "affine" else channels // 2
        per_pixel = (channels * channels + 9 * (channels // 2 + 1) * config.coupling_width
                     + config.coupling_width * hidden + 9 * config.coupling_width * out)
        total += config.num_steps * size * size * per_pixel
        if level < config.num_levels - 1:
            channels //= 2
    return total


def prior_macs(config, unconditional_frames, conditional_frames):
    """Multiply-adds of the conv3d_net prior over all levels for the given numbers of
    scored frames (None for other encoders). Per level (h, w, c): the context conv
    (3x3, c -> 2c, below the top) for every scored frame; per conditional frame, each
    residual block and dilation runs on the K history steps its 3x3 conv
    (stream -> taps*width), its 1x1 conv (width -> width, 2*width for gatu) and its
    zero-initialised 3x3 conv (width -> taps*stream), then the 1x1 head (stream -> 2c)."""
    if config.latent_encoder != "conv3d_net":
        return None
    from videoflow_tf.model.latent_encoders import fitting_dilations
    from videoflow_tf.model.videoflow import level_encoders
    history = config.num_cond_latents
    taps = min(2, history)
    total = 0
    shapes = config.latent_shapes
    for level, ((h, w, c), encoder) in enumerate(zip(shapes, level_encoders(config))):
        width = encoder.width
        middle = width * (2 if config.latent_activation == "gatu" else 1)
        is_top = level == len(shapes) - 1
        pixels = h * w
        if not is_top:
            total += (unconditional_frames + conditional_frames) * pixels * 9 * c * 2 * c
        stream = c if is_top else 2 * c
        branches = len(fitting_dilations(min(h, w), config.latent_dilations))
        block = branches * history * pixels * (9 * stream * taps * width + width * middle
                                               + 9 * width * taps * stream)
        total += conditional_frames * (config.latent_encoder_depth * block
                                       + pixels * stream * 2 * c)
    return total


def scored_frames(config, frames):
    """(unconditional, conditional) scored frames of a clip of `frames` frames."""
    first, history = config.num_context_frames, config.min_history
    unconditional = max(0, min(history, frames) - first)
    return unconditional, frames - max(first, history) if frames > max(first, history) else 0


def analytic_flops(config, batch, clip_frames, sample_frames, memory_saving):
    """2 x multiply-adds: per frame of train/log_prob and per sampled frame."""
    flow = flow_macs_per_frame(config)

    def clip(frames):
        prior = prior_macs(config, *scored_frames(config, frames))
        return None if prior is None else frames * flow + prior

    train_clip, eval_clip = clip(config.num_train_frames), clip(clip_frames)
    sample_prior = prior_macs(config, 0, 1) if (
        config.num_context_frames >= config.min_history) else prior_macs(config, 1, 0)
    if None in (train_clip, eval_clip, sample_prior):
        return None
    context = config.num_context_frames * flow / sample_frames  # encoding the context once
    # Training: forward, and backward at twice the forward; "with recompute" adds the
    # flow's forward pass again (work done, not model work).
    return {
        "train": 2 * 3 * train_clip / config.num_train_frames,
        "train_with_recompute": 2 * (3 * train_clip + (
            config.num_train_frames * flow if memory_saving else 0)) / config.num_train_frames,
        "log_prob": 2 * eval_clip / clip_frames,
        "sample": 2 * (flow + sample_prior + context),
    }


# ---------------------------------------------------------------- measuring

def graph_flops(graph):
    """float_ops of TensorFlow's profiler over `graph` (ops of known shapes)."""
    import tensorflow as tf
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def loop_body_flops(concrete):
    """float_ops of the body of the (one) while loop in a concrete function's graph."""
    graph = concrete.graph
    loops = [op for op in graph.get_operations() if op.type in ("While", "StatelessWhile")]
    body = graph._functions[loops[0].get_attr("body").name]  # noqa: SLF001 (no public API)
    return graph_flops(body.graph)


def run_ceilings(repeats):
    import videoflow_tf  # noqa: F401  (quiet TensorFlow import)
    import tensorflow as tf

    def rate(function, flops):
        function()
        best = min(_timed(function) for _ in range(max(repeats, 5)))
        return flops / best / 1e9

    def _timed(function):
        start = time.perf_counter()
        function().numpy()
        return time.perf_counter() - start

    a = tf.random.stateless_normal([2048, 2048], [1, 2])
    x = tf.random.stateless_normal([4, 32, 32, 512], [3, 4])
    k3 = tf.random.stateless_normal([3, 3, 512, 512], [5, 6])
    k1 = tf.random.stateless_normal([1, 1, 512, 512], [7, 8])
    load = os.getloadavg()[0]
    result = {
        "matmul_gflops": rate(tf.function(lambda: tf.matmul(a, a)), 2 * 2048 ** 3),
        "conv3x3_gflops": rate(tf.function(lambda: tf.nn.conv2d(x, k3, 1, "SAME")),
                               2 * 4 * 32 * 32 * 512 * 512 * 9),
        "conv1x1_gflops": rate(tf.function(lambda: tf.nn.conv2d(x, k1, 1, "SAME")),
                               2 * 4 * 32 * 32 * 512 * 512),
        # bfloat16, for the mixed-precision question (oneDNN uses AVX512_BF16 where present)
        "conv3x3_bfloat16_gflops": rate(tf.function(lambda: tf.nn.conv2d(
            tf.cast(x, tf.bfloat16), tf.cast(k3, tf.bfloat16), 1, "SAME")),
            2 * 4 * 32 * 32 * 512 * 512 * 9),
        "shapes": {"matmul": [2048, 2048, 2048], "conv": [4, 32, 32, 512, 512]},
    }
    result["load_average"] = [load, os.getloadavg()[0]]
    return result


def resolve(spec):
    """The config of NAME or NAME+FIELD=VALUE+..."""
    from videoflow_tf.usage import resolve_config
    name, *assignments = spec.split("+")
    return resolve_config(name, assignments=assignments)


def _variant(jit, mixed):
    """The key of a measured variant: plain, xla, bf16 or bf16+xla."""
    if mixed:
        return "bf16+xla" if jit else "bf16"
    return "xla" if jit else "plain"


def run_config(name, batch, repeats, jit_modes, memory_saving, precisions):
    import videoflow_tf as vf
    import numpy as np
    import tensorflow as tf

    config = resolve(name)
    changes = dict(batch_size=batch, init_batch_size=batch, seed=0)
    if memory_saving != "config":
        changes["memory_saving"] = memory_saving
    config = config.replace(**changes)
    height, width, channels = config.image_shape
    clip = config.num_context_frames + config.num_target_frames
    new_frames = config.num_target_frames
    rng = np.random.default_rng(0)
    train_videos = rng.integers(0, 256, (batch, config.num_train_frames, height, width,
                                         channels), np.uint8)
    clip_videos = rng.integers(0, 256, (batch, clip, height, width, channels), np.uint8)
    context = clip_videos[:, :config.num_context_frames]

    result = {"config": name, "batch": batch, "memory_saving": config.recomputes_activations,
              "train_frames": config.num_train_frames, "clip_frames": clip,
              "sample_frames": new_frames, "modes": {}}
    for mixed in precisions:
        model = vf.VideoFlow(config.replace(mixed_precision=mixed))
        model.initialize(train_videos)
        result["parameters"] = int(sum(np.prod(v.shape) for v in model.trainable_variables))
        result.setdefault("rss_after_build_mib",
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        for jit in jit_modes:
            modes = result["modes"].setdefault(_variant(jit, mixed), {})
            train, iterator = train_function(model, train_videos, jit)
            try:
                first, wall, cpu, load = best_of(train, iterator, repeats)
                modes["train"] = _rates(first, wall, cpu, load, batch * config.num_train_frames)
                modes["train"]["tensor_peak_mib"] = tensor_peak_mib(train, iterator)
                modes["train"]["peak_rss_mib"] = (
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            except Exception as error:  # noqa: BLE001  (reported in the table)
                modes["train"] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}

            log_prob = tf.function(lambda v: model.log_prob(v, seed=1), jit_compile=jit)
            sample = tf.function(lambda c: model.sample(c, new_frames, seed=1), jit_compile=jit)
            for key, function, argument, frames in (
                    ("log_prob", log_prob, clip_videos, batch * clip),
                    ("sample", sample, context, batch * new_frames)):
                try:
                    modes[key] = _rates(*best_of(function, argument, repeats), frames)
                except Exception as error:  # noqa: BLE001
                    modes[key] = {"error": f"{type(error).__name__}: {str(error)[:200]}"}

    # Work counted from the graphs (static shapes; the plain, non-XLA functions).
    spec = lambda v: tf.TensorSpec(v.shape, tf.uint8)  # noqa: E731
    train_graph = tf.function(model.train_step).get_concrete_function(spec(train_videos)).graph
    log_prob_graph = tf.function(lambda v: model.log_prob(v, seed=1)).get_concrete_function(
        spec(clip_videos)).graph
    sample_concrete = tf.function(lambda c: model.sample(c, new_frames, seed=1)
                                  ).get_concrete_function(spec(context))
    result["graph_flops_per_frame"] = {
        "train": graph_flops(train_graph) / (batch * config.num_train_frames),
        "log_prob": graph_flops(log_prob_graph) / (batch * clip),
        # the loop body makes one frame of every video; the context is encoded once
        "sample": (loop_body_flops(sample_concrete) / batch
                   + graph_flops(sample_concrete.graph) / (batch * new_frames)),
    }
    result["analytic_flops_per_frame"] = analytic_flops(
        config, batch, clip, new_frames, config.recomputes_activations)
    result["load_average_end"] = os.getloadavg()[0]
    return result


def _rates(first, wall, cpu, load, frames):
    return {"first_call_s": first, "step_s": wall, "cpu_s": cpu, "frames": frames,
            "frames_per_s": frames / wall, "frames_per_cpu_s": frames / cpu,
            "load_average": load}


# ---------------------------------------------------------------- driver

def child(args):
    if args.child == "ceilings":
        result = run_ceilings(args.repeats)
    else:
        jit_modes = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
        precisions = {"float32": [False], "mixed": [True], "both": [False, True]}[
            args.precision]
        result = run_config(args.child, args.child_batch, args.repeats, jit_modes,
                            args.memory_saving, precisions)
    report(result)


def run_child(args, name, batch=None):
    arguments = [os.path.abspath(__file__), "--child", name, "--repeats", str(args.repeats),
                 "--jit", args.jit, "--precision", args.precision,
                 "--memory-saving", args.memory_saving]
    if batch is not None:
        arguments += ["--child-batch", str(batch)]
    return {"config": name, **measure.run_child(arguments)}


def main():
    args = parse_args()
    if args.child:
        return child(args)
    batches = dict(DEFAULT_BATCH)
    for item in filter(None, args.batch.split(",")):
        key, value = item.split("=")
        batches[key] = int(value)
    ceilings = run_child(args, "ceilings")
    print(f"ceilings (load {ceilings['load_average'][0]:.1f}): matmul "
          f"{ceilings['matmul_gflops']:.0f} GFLOP/s, conv 3x3 "
          f"{ceilings['conv3x3_gflops']:.0f} GFLOP/s, conv 1x1 "
          f"{ceilings['conv1x1_gflops']:.0f} GFLOP/s (bfloat16 conv 3x3 "
          f"{ceilings['conv3x3_bfloat16_gflops']:.0f})", flush=True)
    results = []
    for name in args.configs.split(","):
        batch = batches.get(name, resolve(name).batch_size)
        print(f"{name}: batch {batch} ...", flush=True)
        results.append(run_child(args, name, batch))
        if "error" in results[-1]:
            print(f"  failed: {results[-1]['error']}", flush=True)
    print_table(ceilings, results)
    with open(args.out, "w") as file:
        json.dump({"ceilings": ceilings, "configs": results, "cpu_count": os.cpu_count(),
                   "args": vars(args)}, file, indent=2)
    print(f"wrote {args.out}")


def print_table(ceilings, results):
    conv = ceilings["conv3x3_gflops"]
    print(f"\nmachine: {os.cpu_count()} CPU cores; matmul {ceilings['matmul_gflops']:.0f}, "
          f"conv 3x3 {conv:.0f}, conv 1x1 {ceilings['conv1x1_gflops']:.0f} GFLOP/s "
          "(float32)")
    print("fraction = analytic model FLOP/s / conv 3x3 ceiling; GFLOP/fr = per frame, "
          "analytic (graph); train excludes memory saving's recompute")
    name_width = max([11] + [len(result["config"]) + 1 for result in results])
    header = (f"{'config':<{name_width}}{'batch':>6}{'variant':>9}{'mode':>9}{'step s':>9}"
              f"{'fr/s':>8}{'fr/CPU-s':>9}{'GFLOP/fr':>22}{'fraction':>9}{'peak RSS':>10}"
              f"{'tensors':>9}{'load':>6}")
    print(header)
    for result in results:
        if "error" in result:
            print(f"{result['config']:<{name_width}} failed: {result['error']}")
            continue
        analytic = result["analytic_flops_per_frame"] or {}
        counted = result["graph_flops_per_frame"]
        for variant, modes in result["modes"].items():
            for mode, row in modes.items():
                prefix = (f"{result['config']:<{name_width}}{result['batch']:>6}"
                          f"{variant:>9}{mode:>9}")
                if "error" in row:
                    print(f"{prefix}  failed: {row['error'][:80]}")
                    continue
                work = analytic.get(mode)
                flops = (f"{work / 1e9:.3g} ({counted[mode] / 1e9:.3g})" if work
                         else f"- ({counted[mode] / 1e9:.3g})")
                fraction = f"{row['frames_per_s'] * work / 1e9 / conv:.2f}" if work else "-"
                memory = (f"{row['peak_rss_mib']:>9.0f}M{row['tensor_peak_mib']:>8.0f}M"
                          if mode == "train" else f"{'':>19}")
                print(f"{prefix}{row['step_s']:>9.3f}{row['frames_per_s']:>8.2f}"
                      f"{row['frames_per_cpu_s']:>9.2f}{flops:>22}{fraction:>9}{memory}"
                      f"{row['load_average']:>6.1f}")
        print(f"{'':<{name_width}}{'':>6} parameters {result['parameters']:,}; memory "
              f"saving {result['memory_saving']}; frames: train {result['train_frames']}/video, "
              f"log_prob {result['clip_frames']}/clip, sample {result['sample_frames']} new")


if __name__ == "__main__":
    main()
