"""How many of its components a mixture top prior uses, frame by frame.

    python benchmarks/experiments/mixture_use.py MODEL [--videos 256] [--out mixture_use.json]

MODEL is a training run folder or an exported SavedModel whose config has
top_prior_components M > 1. For every conditional frame among the first
num_context_frames + num_target_frames of the first `--videos` videos of `--split`
(validation by default), given the real past, each component's share of the frames it
is the most responsible for (p(component | z_t) largest) and its mean mixture weight are
printed per frame index. `used` counts the components most responsible for at least
1/(16M) of a frame index's videos: a collapsed mixture uses one or two however many it
has, and samples only their futures. On stochastic shapes, also the directions of the
first step's futures that each component is most responsible for: a mixture that keeps
the 8 futures apart gives each component one or two directions.
"""
import numpy as np
import tensorflow as tf

from model_on_test_videos import parse_model_and_videos, write_rows
from videoflow_tf.analysis.motion import DIRECTIONS
from videoflow_tf.data.videos import shape_labels
from videoflow_tf.model import pixels
from videoflow_tf.model.mixture_prior import responsibilities


def frame_rows(model, videos, directions=None):
    """One row per conditional frame index; with `directions` (each video's, an index into
    DIRECTIONS), per component the directions of the videos it is most responsible for."""
    config = model.config
    count = config.top_prior_components
    start = config.min_history
    latents, _, _ = model.encode_values(pixels.bin_centres(tf.constant(videos)))
    history, _, z = model.prior.conditional_frames(latents[-1], None, start)
    mixture = model.prior.levels[-1].conditional(history, None)
    frames = videos.shape[1] - start
    weights = np.reshape(mixture.mixture_distribution.probs_parameter().numpy(),
                         (len(videos), frames, count))
    winners = np.reshape(np.argmax(responsibilities(mixture, z), axis=1), (len(videos), frames))
    rows = []
    for t in range(frames):
        share = np.bincount(winners[:, t], minlength=count) / len(videos)
        rows.append({"frame": start + t, "used": int(np.sum(share >= 1 / (16 * count))),
                     "most responsible": share.round(3).tolist(),
                     "mean weight": weights[:, t].mean(axis=0).round(3).tolist()})
        if directions is not None:
            rows[-1]["directions per component"] = [
                np.bincount(directions[winners[:, t] == k], minlength=8).tolist()
                for k in range(count)]
    return rows


def video_directions(model, args, count):
    """Each of the first `count` videos' direction, an index into DIRECTIONS (which go
    anticlockwise from east in 45-degree steps), from its velocity (y down)."""
    velocity = shape_labels(model.config, args.split, count, args.data_dir)["velocity"]
    return np.round(np.arctan2(-velocity[:, 1], velocity[:, 0]) / (np.pi / 4)).astype(int) % 8


def check_mixture(model, path):
    if model.config.top_prior_components == 1:
        raise SystemExit(f"{path!r} has a Gaussian top prior (top_prior_components 1), not "
                         "a mixture")


def main():
    args, model, videos = parse_model_and_videos(__doc__.split("\n")[0], default_videos=256,
                                                 check=check_mixture)
    shapes = model.config.dataset == "stochastic_shapes"
    rows = frame_rows(model, videos, video_directions(model, args, len(videos)) if shapes else None)
    print(f"{'frame':>5} | {'used':>4} | share most responsible, per component")
    for row in rows:
        print(f"{row['frame']:>5} | {row['used']:>4} | "
              + " ".join(f"{s:.3f}" for s in row["most responsible"]))
    if shapes:
        print(f"\nFirst step (frame {rows[0]['frame']}): directions of the futures each "
              f"component is most responsible for\ncomponent | {' '.join(f'{d:>3}' for d in DIRECTIONS)}")
        for k, counts in enumerate(rows[0]["directions per component"]):
            print(f"{k:>9} | {' '.join(f'{c:>3}' for c in counts)}")
    write_rows(args, videos, "frames", rows)


if __name__ == "__main__":
    main()
