"""`videoflow-tf interpolate`: latent interpolation between two test videos.

Every frame of both videos is encoded to its latents at every level; the latents are mixed
as (1 - w) z_a + w z_b for evenly spaced weights w from 0 (video a) to 1 (video b) and
decoded back to frames. Writes an animated GIF (one tile per weight, left to right, playing
the frames) and a PNG next to it (same name, .png) with a row per weight.

With no options it runs on the shipped stochastic-shapes model and writes
interpolation.gif and interpolation.png into the working folder (a run's go into its
folder).
"""

import numpy as np

from videoflow_tf.analysis import visualize
from videoflow_tf.data.videos import load_videos
from videoflow_tf.training.open_model import SHIPPED_MODEL, open_for_results
from videoflow_tf.usage import (UsageError, add_data_dir, add_model, add_out, add_split,
                                non_negative, positive)


def add_arguments(parser):
    add_model(parser, default=SHIPPED_MODEL, alias=True)
    add_out(parser, "FILE.gif", "the GIF to write; the PNG goes next to it as FILE.png",
            default="interpolation.gif in a run's folder, else in the working folder")
    parser.add_argument("--videos", type=non_negative(int), nargs=2, default=[0, 1],
                        metavar=("A", "B"),
                        help="indices of the two videos in the split (default: 0 1)")
    parser.add_argument("--steps", type=positive(int), default=8, metavar="N",
                        help="interpolation weights from 0 to 1, ends included, at least 2 "
                        "(default: %(default)s)")
    parser.add_argument("--num-frames", type=positive(int), metavar="T",
                        help="frames of each video (default: context + target frames)")
    add_split(parser)
    add_data_dir(parser)


def run(args):
    if args.steps < 2:
        raise UsageError(f"--steps must be at least 2 (the two videos); got {args.steps}")
    opened, model, gif, png, data_dir = open_for_results(args, "interpolation.gif")
    config = model.config
    first, second = args.videos
    videos = load_videos(config, args.split, max(first, second) + 1, data_dir,
                         num_frames=args.num_frames)
    if len(videos) <= max(first, second):
        raise UsageError(f"split {args.split!r} has {len(videos)} videos; cannot take "
                         f"video {max(first, second)}")
    frames = model.interpolate(videos[first:first + 1], videos[second:second + 1],
                               args.steps).numpy()[0]  # [steps, T, H, W, 3]
    scale = visualize.default_scale(config.image_size)
    visualize.save_gif(gif, visualize.video_grid(frames[None], 0, scale))
    visualize.save_png(png, visualize.strip(frames, 0, max(1, scale // 2)))
    weights = ", ".join(f"{w:.3g}" for w in np.linspace(0.0, 1.0, args.steps))
    print(f"Interpolated videos {first} and {second} of {args.split} with weights {weights}")
    print(f"Wrote {gif} and {png}")
