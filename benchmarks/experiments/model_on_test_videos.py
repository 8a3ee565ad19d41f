"""The command line of the benchmarks that study a trained model on the videos of a split
(validation by default: these studies choose what to change next)."""
import argparse
import json

from videoflow_tf.data.videos import load_videos
from videoflow_tf.training.open_model import open_model, python_model


def parse_model_and_videos(description, default_videos, check=None, extra=()):
    """(args, model, videos): parses MODEL, --videos, --split, --data-dir, --out and the
    `extra` (flag, type, default) options, opens MODEL (a training run folder or an
    exported SavedModel), calls `check(model, path)` if given (it raises on a model the
    benchmark cannot study), and loads the first videos of the split,
    num_context_frames + num_target_frames frames each."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", help="training run folder or exported SavedModel")
    parser.add_argument("--videos", type=int, default=default_videos,
                        help=f"videos of --split (default {default_videos})")
    parser.add_argument("--split", default="validation",
                        help="split whose first videos are studied (default: validation)")
    parser.add_argument("--data-dir", help="TFDS data folder (default: TFDS's)")
    parser.add_argument("--out", help="also write the rows as JSON here")
    for flag, kind, default in extra:
        parser.add_argument(flag, type=kind, default=default, help=f"(default {default})")
    args = parser.parse_args()
    model = python_model(open_model(args.model))
    if check is not None:
        check(model, args.model)
    config = model.config
    videos = load_videos(config, args.split, args.videos, args.data_dir,
                         num_frames=config.num_context_frames + config.num_target_frames)
    return args, model, videos


def write_rows(args, videos, key, rows, **more):
    """Writes {"model", "videos", key: rows, **more} as JSON to --out, if given."""
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump({"model": args.model, "videos": len(videos), key: rows, **more}, file,
                      indent=1)
