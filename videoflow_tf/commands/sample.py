"""`videoflow-tf sample`: sampled futures of test videos as an animated GIF grid and a PNG strip.

The model is a training run folder (its newest checkpoint), a checkpoint of one or an
exported SavedModel (`savedmodels/NAME`, using its latest integer version, or
`savedmodels/NAME/VERSION`), called through its `serving_default` signature exactly as TF
Serving would. The default is the shipped stochastic-shapes model,
`savedmodels/stochastic_shapes` in the repository, which installs with the package
(`videoflow_tf.savedmodels`).

Contexts are the first frames of test videos of the model's dataset. The GIF has a row per
context and a column per sample (each with its own seed); context frames are framed in
orange, generated ones in gray. The PNG next to it (same name, .png) shows every frame of
every video side by side. A SavedModel produces the number of frames it was exported with
per call; longer futures feed its last frames back in as the next context.
"""
import os

import numpy as np

from videoflow_tf.analysis import visualize
from videoflow_tf.data.videos import load_videos
from videoflow_tf.training.open_model import SHIPPED_MODEL, open_model
from videoflow_tf.usage import (add_data_dir, add_model, add_out, add_seed, add_split,
                                non_negative, output_file, positive)


def add_arguments(parser):
    add_model(parser, default=SHIPPED_MODEL)
    add_out(parser, "FILE.gif", "the GIF to write; the PNG strip goes next to it as FILE.png")
    add_split(parser, "split whose videos give the context frames",
              aliases=("--context-split",))
    parser.add_argument("--first-video", type=non_negative(int), default=0, metavar="I",
                        help="index of the first context video in the split "
                        "(default: %(default)s)")
    parser.add_argument("--num-contexts", type=positive(int), default=4, metavar="C",
                        help="context videos, one GIF row each (default: %(default)s)")
    parser.add_argument("--samples-per-context", type=positive(int), default=4, metavar="K",
                        help="samples of each context, one GIF column each "
                        "(default: %(default)s)")
    parser.add_argument("--num-frames", type=positive(int), metavar="N",
                        help="frames to generate after the context (default: the model's "
                        "number of target frames)")
    parser.add_argument("--temperature", type=non_negative(float), metavar="T",
                        help="scales the prior's standard deviations; 0 gives the means "
                        "(default: the model config's)")
    add_seed(parser, "random seed; the same seed gives the same samples")
    add_data_dir(parser)
    parser.add_argument("--frame-ms", type=positive(int), default=300, metavar="MS",
                        help="GIF frame duration in milliseconds (default: %(default)s)")


def run(args):
    gif = output_file(args.out, (".gif",))
    png = os.path.splitext(gif)[0] + ".png"
    output_file(png, (".png",))
    model = open_model(args.model)
    config = model.config
    temperature = config.temperature if args.temperature is None else args.temperature
    num_frames = args.num_frames or model.default_num_frames
    data_dir = args.data_dir or model.data_dir
    contexts = load_videos(config, args.split, args.num_contexts, data_dir,
                           num_frames=config.num_context_frames + 1,
                           first=args.first_video)[:, :config.num_context_frames]
    samples = args.samples_per_context
    batch = np.repeat(contexts, samples, axis=0)  # context c, sample k at row c * K + k
    seeds = args.seed + np.arange(len(batch))
    print(f"Sampling {num_frames} frames after {len(contexts)} contexts x {samples} samples "
          f"at temperature {temperature} with {model.description}")
    future, invalid = model.sample(batch, num_frames, temperature, seeds)
    if invalid.sum():
        print(f"{int(invalid.sum())} of {future.size} sampled subpixel values were NaN or "
              "outside the pixel range and were clipped to it (in "
              f"{int(np.count_nonzero(invalid))} of {len(batch)} videos)")
    videos = np.concatenate([batch, future], axis=1)
    scale = visualize.default_scale(config.image_size)
    grid = videos.reshape((len(contexts), samples) + videos.shape[1:])
    visualize.save_gif(gif, visualize.video_grid(grid, config.num_context_frames, scale),
                       frame_ms=args.frame_ms)
    visualize.save_png(png, visualize.strip(videos, config.num_context_frames,
                                            max(1, scale // 2)))
    print(f"Wrote {gif} and {png}")
