"""How much of each frame's latents the prior predicts, level by level, where things move.

    python benchmarks/experiments/prior_fit.py MODEL [--videos 64] [--out prior_fit.json]

MODEL is a training run folder or an exported SavedModel. For every frame t >=
num_cond_latents among the first num_context_frames + num_target_frames of the first
`--videos` videos of `--split` (validation by default), each level's latent z_t is
compared with the mean mu of its conditional prior given the real past. A latent dimension is "moving" where z_t differs from the
median over the videos of the same dimension (the static background's value) by more
than 0.5; there, per level, the table prints:

- deviation: rms of z_t - median, what the prior has to predict;
- error: rms of z_t - mu (at most the deviation for a prior that predicts anything);
- explained: 1 - error^2 / deviation^2;
- sigma: rms of the prior's standard deviation;
- history effect: rms change of mu when each video's history is swapped for another's
  (about 0 for a prior that ignores the past);
- smallest sigma and worst miss: over every dimension, moving or not, the prior's
  smallest standard deviation and the largest |z_t - mu| / sigma, the signs of an
  over-confident prior (a miss of k sigmas costs about k^2 / 2 nats).

It also counts the videos that score above 8 bits per pixel, worse than a uniform guess.

The top level's mixture is compared through its most probable component.
"""
import numpy as np
import tensorflow as tf

from model_on_test_videos import parse_model_and_videos, write_rows
from videoflow_tf.model import pixels
from videoflow_tf.model.loss import UNIFORM_BPP
from videoflow_tf.model.mixture_prior import MixtureTopPrior

COLUMNS = ("level", "latent shape", "moving", "deviation", "error", "explained", "sigma",
           "history effect", "smallest sigma", "worst miss")


def prior_moments(prior, history, x1):
    """(mean, standard deviation) [N, h, w, c] of a level's conditional prior; for a
    mixture, of each video's most probable component."""
    distribution = prior.conditional(history, x1)
    if not isinstance(prior, MixtureTopPrior):
        return distribution.mean(), distribution.stddev()
    chosen = tf.argmax(distribution.mixture_distribution.logits, axis=-1)
    components = distribution.components_distribution
    return (tf.gather(components.mean(), chosen, batch_dims=1),
            tf.gather(components.stddev(), chosen, batch_dims=1))


def level_rows(model, videos):
    config = model.config
    latents, conditions, _ = model.encode_values(pixels.bin_centres(tf.constant(videos)))
    shift = np.roll(np.arange(len(videos)), 1)  # each video gets its neighbour's history
    rows = []
    for level, (prior, z) in enumerate(zip(model.prior.levels, latents)):
        collected = {name: [] for name in ("deviation", "error", "sigma", "history")}
        smallest_sigma, worst_miss = np.inf, 0.0
        for t in range(config.num_cond_latents, videos.shape[1]):
            history = z[:, t - config.num_cond_latents:t]
            x1 = conditions[level][:, t] if level < len(conditions) else None
            mean, sigma = prior_moments(prior, history, x1)
            swapped, _ = prior_moments(prior, tf.gather(history, shift), x1)
            target = z[:, t].numpy()
            deviation = target - np.median(target, axis=0)
            moving = np.abs(deviation) > 0.5
            smallest_sigma = min(smallest_sigma, float(np.min(sigma)))
            worst_miss = max(worst_miss, float(np.max(np.abs(target - mean) / sigma)))
            for name, value in (("deviation", deviation), ("error", target - mean),
                                ("sigma", sigma), ("history", mean - swapped)):
                collected[name].append(np.asarray(value)[moving])
        values = {name: np.concatenate(parts) for name, parts in collected.items()}
        rms = {name: float(np.sqrt(np.mean(v ** 2))) if v.size else float("nan")
               for name, v in values.items()}
        rows.append({"level": level + 1, "latent shape": list(config.latent_shapes[level]),
                     "moving": values["deviation"].size,
                     "deviation": rms["deviation"], "error": rms["error"],
                     "explained": 1 - rms["error"] ** 2 / rms["deviation"] ** 2,
                     "sigma": rms["sigma"], "history effect": rms["history"],
                     "smallest sigma": smallest_sigma, "worst miss": worst_miss})
    return rows


def main():
    args, model, videos = parse_model_and_videos(__doc__.split("\n")[0], default_videos=64)
    rows = level_rows(model, videos)
    print(" | ".join(COLUMNS))
    for row in rows:
        print(" | ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c])
                         for c in COLUMNS))
    bpp = np.concatenate([model.bits_per_pixel(videos[i:i + 16], seed=0).numpy()
                          for i in range(0, len(videos), 16)])
    above = np.flatnonzero(bpp > UNIFORM_BPP)
    print(f"videos above {UNIFORM_BPP:g} bits per pixel: {len(above)} of {len(bpp)} "
          f"{above.tolist()}; median {np.median(bpp):.3f}, worst {bpp.max():.4g}")
    write_rows(args, videos, "levels", rows, bits_per_pixel=bpp.tolist())


if __name__ == "__main__":
    main()
