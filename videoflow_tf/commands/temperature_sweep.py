"""`videoflow-tf temperature-sweep`: best-of-N PSNR and SSIM of sampled futures against
the real ones, for several sampling temperatures.

For each test video the context frames are given and N futures are sampled per
temperature, with the same N seeds at every temperature: the futures of one seed differ
only by the temperature that scales their draws, so the curves show the temperature's
effect rather than the luck of independent draws (on stochastic shapes a video's best of
10 scores about 45 dB when one draw moves the shape the real way and 20 to 35 dB when
none does, which would swamp it). Each sample is compared with the real future frame by
frame (tf.image.psnr and tf.image.ssim on 0..255 pixels, SSIM's Gaussian window at most
the frame size; identical frames count as 100 dB) and the scores averaged over its frames;
a video scores the best of its N samples, and the sweep reports the mean over videos, as
in the best-of-100 comparisons of the paper (SVG 18.95 / 0.806, SAVP 18.44 / 0.789 on
BAIR). Writes a JSON file and a PNG plot next to it (same name, .png).

With no options it runs on the shipped stochastic-shapes model and writes
temperature-sweep.png and temperature-sweep.json into the working folder (a run's go into
its folder).
"""
import json

import numpy as np
import tensorflow as tf

from videoflow_tf.analysis import visualize
from videoflow_tf.data.videos import load_videos
from videoflow_tf.training.callbacks import progress_bar
from videoflow_tf.training.open_model import SHIPPED_MODEL, open_for_results
from videoflow_tf.usage import (add_data_dir, add_model, add_out, add_seed, add_split,
                                non_negative, positive)

MAX_PSNR = 100.0  # dB given to identical frames, whose PSNR is infinite


def add_arguments(parser):
    add_model(parser, default=SHIPPED_MODEL, alias=True)
    add_out(parser, "FILE.json", "the results; the plot goes next to it as FILE.png",
            default="temperature-sweep.json in a run's folder, else in the working folder")
    parser.add_argument("--temperatures", type=non_negative(float), nargs="+",
                        default=[0.0, 0.25, 0.5, 0.75, 1.0], metavar="T",
                        help="temperatures to try (default: 0 0.25 0.5 0.75 1)")
    parser.add_argument("--num-samples", type=positive(int), default=10, metavar="N",
                        help="samples per video; each video scores its best "
                        "(default: %(default)s; the paper uses 100)")
    parser.add_argument("--num-videos", type=positive(int), default=16, metavar="V",
                        help="test videos to average over (default: %(default)s)")
    parser.add_argument("--num-frames", type=positive(int), metavar="T",
                        help="future frames to compare (default: the config's target "
                        "frames)")
    parser.add_argument("--batch-size", type=positive(int), default=64, metavar="B",
                        help="samples drawn per call (default: %(default)s)")
    add_split(parser)
    add_seed(parser, "seed of the samples")
    add_data_dir(parser)


def run(args):
    opened, model, out, png, data_dir = open_for_results(args, "temperature-sweep.json")
    config = model.config
    num_frames = args.num_frames or config.num_target_frames
    videos = load_videos(config, args.split, args.num_videos, data_dir,
                         num_frames=config.num_context_frames + num_frames)
    results = {**opened.source, "dataset": config.dataset, "split": args.split,
               "num_videos": len(videos), "num_samples": args.num_samples,
               "num_frames": num_frames,
               **best_of_n(model, videos, args.temperatures, args.num_samples,
                           args.batch_size, args.seed)}
    with open(out, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2)
    temperatures = results["temperatures"]
    name = f"best of {args.num_samples}"
    visualize.line_plots(png, [
        {"title": f"PSNR, {name}", "xlabel": "temperature", "ylabel": "PSNR (dB)",
         "series": {name: (temperatures, results["psnr"])}},
        {"title": f"SSIM, {name}", "xlabel": "temperature", "ylabel": "SSIM",
         "series": {name: (temperatures, results["ssim"])}}])
    for temperature, psnr, ssim in zip(temperatures, results["psnr"], results["ssim"]):
        print(f"temperature {temperature:g}: PSNR {psnr:.2f} dB, SSIM {ssim:.4f}")
    print(f"Wrote {png} (the plot) and {out}")


def frame_scores(real, sampled):
    """(PSNR, SSIM) [B] of uint8 videos [B, T, H, W, 3] against each other, each the mean
    over the T frames."""
    real, sampled = tf.convert_to_tensor(real), tf.convert_to_tensor(sampled)
    filter_size = min(11, real.shape[2], real.shape[3])
    psnr = tf.minimum(tf.image.psnr(real, sampled, max_val=255), MAX_PSNR)
    ssim = tf.image.ssim(real, sampled, max_val=255, filter_size=filter_size)
    return tf.reduce_mean(psnr, axis=1).numpy(), tf.reduce_mean(ssim, axis=1).numpy()


def best_of_n(model, videos, temperatures, num_samples, batch_size, seed=0):
    """{"temperatures", "psnr", "ssim"}: per temperature, the mean over `videos` (uint8
    [V, context + T, H, W, 3]) of the best PSNR and the best SSIM of `num_samples` futures
    of T frames sampled after each video's context, with the same seeds (`seed`,
    `seed` + 1, ...) at every temperature."""
    context = model.config.num_context_frames
    num_frames = videos.shape[1] - context
    spec = tf.TensorSpec([None, context] + list(model.config.image_shape), tf.uint8)

    @tf.function(input_signature=[spec, tf.TensorSpec([], tf.float32),
                                  tf.TensorSpec([None], tf.int64)])
    def sample(clips, temperature, seeds):  # traced once: eager sampling is much slower
        return model.sample(clips, num_frames, temperature=temperature, seed=seeds)

    rows = np.repeat(np.arange(len(videos)), num_samples)  # video v, sample n: v * N + n
    starts = range(0, len(rows), batch_size)
    progress = progress_bar(len(temperatures) * len(starts), unit_name="batch")
    psnrs, ssims = [], []
    for index, temperature in enumerate(temperatures):
        psnr, ssim = [], []
        for start in starts:
            batch = videos[rows[start:start + batch_size]]
            row_seeds = seed + np.arange(start, start + len(batch))  # at every temperature
            future = sample(batch[:, :context], tf.constant(temperature, tf.float32),
                            tf.constant(row_seeds, tf.int64)).numpy()
            scores = frame_scores(batch[:, context:], future)
            psnr.append(scores[0])
            ssim.append(scores[1])
            progress.add(1)
        psnrs.append(float(np.concatenate(psnr).reshape(-1, num_samples).max(axis=1).mean()))
        ssims.append(float(np.concatenate(ssim).reshape(-1, num_samples).max(axis=1).mean()))
    return {"temperatures": [float(t) for t in temperatures], "psnr": psnrs, "ssim": ssims}
