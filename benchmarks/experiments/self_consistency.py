"""Why a model scores its own temperature-1 futures worse than real clips.

    python benchmarks/experiments/self_consistency.py MODEL [--videos 32] [--draws 16]

At temperature 1 a model's futures are draws from the density it scores, so their bits
per pixel should be about the real clips'. For the first `--videos` videos of `--split`,
one future each is sampled at temperature 1 after the context, and futures and real clips
are scored twice: with one draw of dequantisation noise (what `log_prob` and `evaluate`
report, a lower bound on the discrete log-likelihood) and with `--draws` draws averaged
inside the logarithm (log of the mean likelihood: a tighter bound). If the ratio of
their median bits per pixel falls with the tighter bound, the single draw's slack (the
uniform noise landing where the flow has little density) makes the gap; if it stays, the
model really gives its futures little probability. Also printed: the share of the
futures' background pixels (those of the frames' most common colour in the real clip)
that are 1 to 3 levels off it.
"""
import math

import numpy as np
import tensorflow as tf

from model_on_test_videos import parse_model_and_videos, write_rows
from videoflow_tf.model.loss import bits_per_pixel as bits_per_subpixel


def bits_per_pixel(model, videos, draws):
    """Bits per pixel of the frames after the context, the likelihood averaged over
    `draws` seeded dequantisation noises."""
    log_probs = tf.stack([model.log_prob(videos, seed=seed) for seed in range(draws)])
    log_prob = tf.reduce_logsumexp(log_probs, axis=0) - math.log(draws)
    frames = videos.shape[1] - model.config.num_context_frames
    return bits_per_subpixel(log_prob / frames, model.config.image_shape).numpy()


def off_background_share(real, futures, context):
    """Share of the futures' background pixels 1 to 3 levels away from the background
    colour, the most common pixel of the real clips' first frames."""
    colours, counts = np.unique(real[:, 0].reshape(-1, 3), axis=0, return_counts=True)
    background = colours[np.argmax(counts)].astype(np.int64)
    offset = np.abs(futures[:, context:].astype(np.int64) - background).max(axis=-1)
    near = offset <= 3
    return float(np.sum(near & (offset >= 1)) / np.sum(near))


def main():
    args, model, videos = parse_model_and_videos(__doc__.split("\n")[0], default_videos=32,
                                                 extra=[("--draws", int, 16)])
    context = model.config.num_context_frames
    frames = model.sample(videos[:, :context], videos.shape[1] - context, temperature=1.0,
                          seed=np.arange(len(videos), dtype=np.int64)).numpy()
    futures = np.concatenate([videos[:, :context], frames], axis=1)
    rows = []
    for draws in sorted({1, args.draws}):
        ratio = bits_per_pixel(model, futures, draws) / bits_per_pixel(model, videos, draws)
        rows.append({"draws": draws, "median_ratio": float(np.median(ratio)),
                     "above_2x": float(np.mean(ratio > 2.0))})
        print(f"{draws:>3} noise draw(s): own futures score a median {rows[-1]['median_ratio']:.2f} "
              f"times the real clips' bits per pixel, {100 * rows[-1]['above_2x']:.0f}% above 2x")
    share = off_background_share(videos, futures, context)
    print(f"{100 * share:.1f}% of the futures' background pixels are 1 to 3 levels off it")
    write_rows(args, videos, "rows", {"bounds": rows, "off_background_share": share})


if __name__ == "__main__":
    main()
