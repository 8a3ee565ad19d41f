"""Replays a training run's next steps from one of its checkpoints, with fixed seeds, to
see whether they fall apart, and whether a config change keeps them together.

    python benchmarks/experiments/replay_steps.py runs/shapes_64/checkpoints/ckpt-26632 \\
        --steps 70 --seeds 1,2,3 --set cosine_decay_steps=34000 --set train_steps=34500

For each seed: the checkpoint's model and optimizer (weights, Adam's moments, step
count), the run's config with `seed` set to it, so that every step's windows and
dequantisation noise are the same for every variant, and the --set changes; then --steps
updates (`train_on_batch`) on the batches the run would have used next, in its data
order. Nothing is written to the run. Prints, per seed, the first steps whose batch scored
above 2 bits per pixel, the worst batch and the median of the last 20, and writes every
batch's bits per pixel to --out as JSON.
"""
import argparse
import json
import os
import tempfile

import numpy as np

import videoflow_tf  # noqa: F401  (before TensorFlow: imports it quietly)

from videoflow_tf.training import run_dir
from videoflow_tf.training.open_model import checkpoint_prefix, checkpoint_run
from videoflow_tf.training.train import setup_training
from videoflow_tf.usage import resolve_config

ABOVE = 2.0  # bits per pixel: four times what the shapes runs score by 20,000 steps


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="RUN/checkpoints/ckpt-STEP")
    parser.add_argument("--steps", type=int, default=70, help="updates to replay")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated config seeds")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="config changes for the replay (repeatable)")
    parser.add_argument("--out", help="also write the results as JSON here")
    return parser.parse_args()


def replay(prefix, config, steps, settings):
    """Bits per pixel of each of `steps` training batches after checkpoint `prefix`, each
    scored by the model that the updates before it made."""
    with tempfile.TemporaryDirectory() as folder:
        # A run folder of its own whose one checkpoint is `prefix`, so that the run's
        # own folder is only read.
        checkpoints = os.path.join(folder, run_dir.CHECKPOINT_DIR)
        os.makedirs(checkpoints)
        source, name = os.path.split(os.path.abspath(prefix))
        for file in os.listdir(source):
            if file.startswith(name + "."):
                os.symlink(os.path.join(source, file), os.path.join(checkpoints, file))
        with open(os.path.join(checkpoints, "checkpoint"), "w", encoding="utf-8") as file:
            file.write(f'model_checkpoint_path: "{name}"\n'
                       f'all_model_checkpoint_paths: "{name}"\n')
        model, _, data, _ = setup_training(config, folder, settings.get("data_dir"),
                                           settings.get("data_seed", 0), keep_checkpoints=1)
        return [float(model.train_on_batch(batch, return_dict=True)["bpp"])
                for batch in data.take(steps)]


def main():
    args = parse_args()
    prefix = checkpoint_prefix(args.checkpoint)
    if prefix is None:
        raise SystemExit(f"{args.checkpoint!r} is not a checkpoint (RUN/checkpoints/ckpt-STEP)")
    run = checkpoint_run(prefix)
    first = run_dir.checkpoint_step(prefix) + 1
    base = resolve_config(base=run_dir.read_config(run), assignments=args.set)
    results = []
    for seed in (int(text) for text in args.seeds.split(",")):
        bpp = np.array(replay(prefix, base.replace(seed=seed), args.steps,
                              run_dir.read_settings(run)))
        above = (first + np.flatnonzero(bpp > ABOVE)).tolist()
        results.append({"seed": seed, "bpp": bpp.tolist(), "first_steps_above": above[:3],
                        "worst": float(bpp.max()),
                        "median_last_20": float(np.median(bpp[-20:]))})
        print(f"seed {seed}: steps {first}-{first + len(bpp) - 1}; first above {ABOVE:g} bpp: "
              f"{above[:3] or 'none'}; worst {bpp.max():.3g}; median of the last 20 "
              f"{np.median(bpp[-20:]):.3f}", flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump({"checkpoint": args.checkpoint, "set": args.set, "steps": args.steps,
                       "seeds": results}, file, indent=1)
            file.write("\n")


if __name__ == "__main__":
    main()
