"""Peak training memory against the number of flow steps, with and without memory saving.

For each depth (flow steps per level) and memory_saving "off"/"on", a subprocess builds a
VideoFlow model of the config at that depth (same width and batch), runs Keras's train
function (fit's path) once to trace it and `--steps` more times, and reports:

  peak RSS        the process's maximum resident memory (ru_maxrss), tracing included
  RSS at build    resident memory after building and initialising the model
  tensor peak     TensorFlow's peak bytes of tensors during one more step (the CPU
                  allocator's statistics, which count large allocations only: the
                  activations, weights, gradients and Adam's slots)
  step s          the fastest step, wall time (and CPU time)

and the ratio of each to the shallowest depth's, the issue's target being peak
memory at depth 24 at most 1.5x that at depth 6.

    python benchmarks/speed/memory.py                                   # shapes, batch 2
    python benchmarks/speed/memory.py --config bair_quant --batch 1 --depths 6,24
"""
import argparse
import json
import os
import resource

from measure import best_of, report, run_child, tensor_peak_mib, train_function


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="shapes")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--depths", default="6,12,24")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", default="docs/benchmarks/memory.json")
    parser.add_argument("--child", nargs=2, metavar=("DEPTH", "MEMORY_SAVING"),
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def measure(args, depth, memory_saving):
    import videoflow_tf as vf
    import numpy as np

    config = vf.get_config(args.config).replace(
        num_steps=depth, memory_saving=memory_saving, batch_size=args.batch,
        init_batch_size=args.batch, seed=0)
    videos = np.random.default_rng(0).integers(
        0, 256, (args.batch, config.num_train_frames, *config.image_shape), np.uint8)
    model = vf.VideoFlow(config)
    model.initialize(videos)
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    train, iterator = train_function(model, videos)
    _, wall, cpu, load = best_of(train, iterator, args.steps)
    return {"depth": depth, "memory_saving": memory_saving,
            "parameters": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
            "tensor_peak_mib": tensor_peak_mib(train, iterator),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_at_build_mib": rss_build, "step_s": wall, "step_cpu_s": cpu,
            "load_average": load}


def main():
    args = parse_args()
    if args.child:
        return report(measure(args, int(args.child[0]), args.child[1]))
    results = []
    for memory_saving in ("off", "on"):
        for depth in map(int, args.depths.split(",")):
            result = run_child([os.path.abspath(__file__), "--config", args.config,
                                "--batch", str(args.batch), "--steps", str(args.steps),
                                "--child", str(depth), memory_saving])
            if "error" in result:
                print(f"depth {depth}, memory saving {memory_saving}: failed\n"
                      + "\n".join(result["error"]))
                continue
            results.append(result)
            print(json.dumps(result), flush=True)
    print(f"\n{args.config}, batch {args.batch} videos x its training window; "
          f"{os.cpu_count()} CPU cores, float32")
    print(f"{'saving':<8}{'depth':>6}{'params':>12}{'peak RSS':>10}{'x':>6}"
          f"{'RSS build':>11}{'tensor peak':>13}{'x':>6}{'step s':>8}{'CPU s':>8}{'load':>6}")
    for memory_saving in ("off", "on"):
        rows = [r for r in results if r["memory_saving"] == memory_saving]
        for row in rows:
            base = rows[0]
            print(f"{memory_saving:<8}{row['depth']:>6}{row['parameters']:>12,}"
                  f"{row['peak_rss_mib']:>9.0f}M{row['peak_rss_mib'] / base['peak_rss_mib']:>6.2f}"
                  f"{row['rss_at_build_mib']:>10.0f}M{row['tensor_peak_mib']:>12.0f}M"
                  f"{row['tensor_peak_mib'] / max(base['tensor_peak_mib'], 1e-9):>6.2f}"
                  f"{row['step_s']:>8.2f}{row['step_cpu_s']:>8.2f}{row['load_average']:>6.1f}")
    with open(args.out, "w") as file:
        json.dump({"args": vars(args), "results": results, "cpu_count": os.cpu_count()},
                  file, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
