"""Does mixed precision change a trained model's bits per pixel?

Loads a training directory's latest checkpoint twice, as trained (float32) and with
`mixed_precision` on (the coupling networks in bfloat16), scores the same split's
videos with the same dequantisation noise under both (`videoflow_tf.commands.evaluate.bits_per_pixel`,
teacher-forced, num_context_frames given, num_target_frames scored) and prints the
mean bpp of each, their difference, and each one's time. Writes JSON.

    python benchmarks/speed/mixed_precision_bpp.py --model-dir runs/stochastic_shapes
"""
import argparse
import json
import os
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True, help="a `videoflow-tf train` directory")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--out", default="docs/benchmarks/mixed_precision_bpp.json")
    return parser.parse_args()


def main():
    args = parse_args()
    import videoflow_tf as vf
    from videoflow_tf.commands.evaluate import bits_per_pixel
    from videoflow_tf.training.open_model import RunModel, load_model

    model, step = load_model(args.model_dir)
    mixed = vf.VideoFlow(model.config.replace(mixed_precision=True))
    mixed.set_weights(model.get_weights())
    rows = {}
    for name, candidate in (("float32", model), ("mixed", mixed)):
        start = time.perf_counter()
        rows[name] = bits_per_pixel(RunModel(candidate), args.split, args.batch_size,
                                    args.data_dir)
        rows[name]["seconds"] = time.perf_counter() - start
    difference = rows["mixed"]["bpp"] - rows["float32"]["bpp"]
    print(f"\n{args.model_dir} (step {step}), {args.split}: "
          f"{rows['float32']['num_videos']} videos, load {os.getloadavg()[0]:.1f}")
    print(f"{'precision':<10}{'bpp':>10}{'per target frame':>40}{'seconds':>9}")
    for name, row in rows.items():
        frames = " ".join(f"{b:.4f}" for b in row["bpp_per_frame"])
        print(f"{name:<10}{row['bpp']:>10.5f}{frames:>40}{row['seconds']:>9.1f}")
    print(f"difference (mixed - float32): {difference:+.5f} bpp "
          f"({difference / rows['float32']['bpp']:+.3%})")
    with open(args.out, "w") as file:
        json.dump({"model_dir": args.model_dir, "step": step, "split": args.split,
                   "results": rows, "difference_bpp": difference}, file, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
