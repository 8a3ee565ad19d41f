"""`videoflow-tf order`: the paper's out-of-order experiment: bits per pixel of frame k
placed right after the context frames, for every later frame k of test videos.

A model that learned how videos unfold finds the true next frame (k = the number of context
frames) the most likely continuation and frames from further ahead less and less likely:
in the paper, the bits per pixel of frame k placed at t = 4 of BAIR videos grow with k.
Writes the numbers as JSON and a PNG plot of them, bits per pixel against k, next to it
(same name, .png).

With no options it runs on the shipped stochastic-shapes model and writes order.png and
order.json into the working folder (a run's results go into its folder).
"""
import json

import numpy as np
import tensorflow as tf

from videoflow_tf.analysis import visualize
from videoflow_tf.data.videos import dataset_frames, load_videos
from videoflow_tf.training.callbacks import progress_bar
from videoflow_tf.training.open_model import SHIPPED_MODEL, open_for_results
from videoflow_tf.usage import (add_data_dir, add_model, add_out, add_seed, add_split,
                                positive)


def add_arguments(parser):
    add_model(parser, default=SHIPPED_MODEL, alias=True)
    add_out(parser, "FILE.json", "the results; the plot goes next to it as FILE.png",
            default="order.json in a run's folder, else in the working folder")
    add_split(parser)
    parser.add_argument("--num-videos", type=positive(int), default=64, metavar="N",
                        help="videos to average over (default: %(default)s)")
    parser.add_argument("--batch-size", type=positive(int), default=32, metavar="B",
                        help="videos per batch (default: %(default)s)")
    add_seed(parser, "seed of the dequantisation noise")
    add_data_dir(parser)


def run(args):
    opened, model, out, png, data_dir = open_for_results(args, "order.json")
    config = model.config
    videos = load_videos(config, args.split, args.num_videos, data_dir,
                         num_frames=dataset_frames(config.dataset, data_dir))
    results = {**opened.source, "dataset": config.dataset, "split": args.split,
               **out_of_order_bpp(model, videos, args.batch_size, args.seed)}
    with open(out, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2)
    context = config.num_context_frames
    visualize.line_plots(png, [{
        "title": f"Frame k placed after the {context} context frame(s)",
        "xlabel": "k (index of the frame in its video)", "ylabel": "bits per pixel",
        "series": {"mean": (results["frames"], results["bpp"])}}])
    for frame, bpp, std in zip(results["frames"], results["bpp"], results["bpp_std"]):
        print(f"frame {frame}: {bpp:.4f} +- {std:.4f} bits per pixel")
    print(f"Wrote {png} (the plot) and {out}")


def out_of_order_bpp(model, videos, batch_size, seed=0):
    """For every k from num_context_frames to T - 1: the mean and std over `videos`
    (uint8 [N, T, H, W, 3]) of the bits per pixel of frame k scored right after the
    context frames 0 .. num_context_frames - 1."""
    context = model.config.num_context_frames
    spec = tf.TensorSpec([None, context + 1] + list(model.config.image_shape), tf.uint8)

    @tf.function(input_signature=[spec])
    def bpp_of(clips):
        return model.bits_per_pixel(clips, seed=seed)

    frames = list(range(context, videos.shape[1]))
    starts = range(0, len(videos), batch_size)
    progress = progress_bar(len(frames) * len(starts), unit_name="batch")
    means, stds = [], []
    for frame in frames:
        values = []
        for start in starts:
            batch = videos[start:start + batch_size]
            clips = np.concatenate([batch[:, :context], batch[:, frame:frame + 1]], axis=1)
            values.append(bpp_of(clips).numpy())
            progress.add(1)
        values = np.concatenate(values)
        means.append(float(values.mean()))
        stds.append(float(values.std()))
    return {"num_videos": len(videos), "frames": frames, "bpp": means, "bpp_std": stds}
