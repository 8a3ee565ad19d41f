"""`videoflow-tf evaluate`: bits per pixel of a trained model on a split, and how good its
samples are.

Bits per pixel follow the paper: each video's first num_context_frames frames are given,
the next num_target_frames are scored (teacher-forced), with seeded dequantisation noise;
reported per target frame and as their mean. The command then samples futures of the
same split's contexts and reports what the training monitor logs (`videoflow_tf.training.monitor`):
the bits per pixel the model gives its own samples against real clips (and at
temperature 1, where a model that believes its samples scores them like real clips, the
median ratio per future and the share above 2), the share of sampled values outside the
pixel range, and for stochastic shapes how many futures are faithful, each compared with
the 8 futures its example could have had (`videoflow_tf.analysis.strict_motion`), with a 95%
interval, how they spread over the directions (a chi-square test against uniform) and
per context; then the looser pixel-only numbers of `videoflow_tf.analysis.motion`. Choose runs,
steps and temperatures on `--split validation`; read test once, for the report. Writes
a JSON file, with a record per sampled future.

The model is a training run folder or a SavedModel written by `videoflow-tf export`, which
is scored through its `log_prob` signature and sampled through `serving_default`, as TF
Serving would run them: its dequantisation noise is the signature's fixed draw (the
same as --seed 0 gives a run; --seed then seeds only the samples), and its sample checks
score the clips its log_prob takes, num_target_frames after the context.
"""
import json
import os

import numpy as np

from videoflow_tf.data.videos import evaluation_dataset, load_videos, shape_labels
from videoflow_tf.training.callbacks import progress_bar
from videoflow_tf.training.monitor import default_sample_frames, shows_motion
from videoflow_tf.training.open_model import (LOG_PROB_NOISE_SEED, SHIPPED_MODEL, ExportedModel,
                                              open_model)
from videoflow_tf.usage import (UsageError, add_data_dir, add_model, add_out, add_seed, add_split,
                                non_negative, output_file, positive)


def add_arguments(parser):
    add_model(parser, default=SHIPPED_MODEL, alias=True)
    add_split(parser, "split to score")
    parser.add_argument("--batch-size", type=positive(int), default=32, metavar="B",
                        help="videos per batch (default: %(default)s)")
    add_data_dir(parser)
    add_out(parser, "FILE.json", "where to write the results", default=(
        "MODEL_DIR/evaluation-SPLIT.json for a run, with every character of SPLIT but "
        "letters, digits, - and _ replaced by _: test[:16] writes "
        "evaluation-test__16_.json; needed for a SavedModel"))
    add_seed(parser, "seed of the dequantisation noise and the samples")
    parser.add_argument("--sample-videos", type=non_negative(int), metavar="N",
                        help="videos of --split whose context frames the sample checks "
                        "sample futures after; 0 skips them (default: every one)")
    parser.add_argument("--samples-per-video", type=positive(int), default=1, metavar="K",
                        help="futures sampled per video, each with its own seed "
                        "(default: %(default)s)")
    parser.add_argument("--sample-frames", type=positive(int), metavar="N",
                        help="frames sampled after each context (default: for a run of "
                        "stochastic shapes as many as its videos have after it, else the "
                        "config's target frames)")
    parser.add_argument("--temperature", type=non_negative(float), metavar="T",
                        help="sampling temperature of the sample checks (default: the "
                        "config's)")


def run(args):
    model = open_model(args.model)
    exported = isinstance(model, ExportedModel)
    if args.out is None and exported:
        raise UsageError("--out is needed to evaluate a SavedModel (its folder holds the "
                         "export only)")
    out = output_file(args.out or os.path.join(
        model.run_dir, f"evaluation-{_file_name(args.split)}.json"), (".json",))
    config = model.config
    data_dir = args.data_dir or model.data_dir
    if exported:
        results = {"saved_model": os.path.abspath(model.path)}
        seed = LOG_PROB_NOISE_SEED
    else:
        results = dict(model.source)
        seed = args.seed
    results.update(dataset=config.dataset, split=args.split)
    results.update(bits_per_pixel(model, args.split, args.batch_size, data_dir, seed))
    print(f"{args.split}: {results['bpp']:.4f} bits per pixel over {results['num_videos']} "
          f"videos; per target frame: "
          f"{', '.join(f'{b:.4f}' for b in results['bpp_per_frame'])}")
    if args.sample_videos != 0:
        results["samples"] = sample_quality(
            model, args.split, data_dir, args.sample_videos, args.sample_frames,
            args.samples_per_video, args.temperature, args.seed, args.batch_size)
    with open(out, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2)
    print(f"Wrote {out}")


def sample_quality(model, split, data_dir=None, num_videos=None, num_frames=None,
                   samples_per_video=1, temperature=None, seed=0, batch_size=32):
    """`SampleQuality.measure` of an opened `model` (see
    `videoflow_tf.training.open_model`) on the first `num_videos` videos of `split` (None:
    all), `samples_per_video` futures of `num_frames` frames each (None: the command's
    default), printed. temperature None: the config's."""
    config = model.config
    shapes = shows_motion(config)
    # A SavedModel's log_prob scores only clips of the target frames' length.
    frames = num_frames or (config.num_target_frames if isinstance(model, ExportedModel)
                            else default_sample_frames(config, data_dir))
    count = num_videos or 10 ** 9
    videos = load_videos(config, split, count, data_dir,
                         num_frames=config.num_context_frames + frames)
    labels = shape_labels(config, split, len(videos), data_dir) if shapes else None
    quality = model.sample_quality(batch_size)
    report = quality.measure(videos, frames, temperature, samples_per_video, seed,
                             motion=shapes, labels=labels)
    print(f"{report['samples']} futures of {frames} frames sampled at temperature "
          f"{report['temperature']}: {report['sample_bpp']:.4f} bits per pixel under the "
          f"model (real clips {report['real_bpp']:.4f}; {report['nonfinite_sample_scores']} "
          f"not finite); {100 * report['invalid_fraction']:.2f}% of the sampled values "
          "outside the pixel range")
    print(f"  at temperature 1, own futures score a median {report['t1_bpp_ratio_median']:.3g}"
          f" times the real clips' bits per pixel; "
          f"{100 * report['t1_bpp_ratio_above_2x']:.1f}% score more than twice")
    if shapes:
        low, high = report["faithful_interval"]
        p_value = report["chi_square_p_value"]
        print(f"  {100 * report['faithful_fraction']:.1f}% faithful (95% interval "
              f"{100 * low:.1f}-{100 * high:.1f}%): a future the data could have had, in "
              f"every frame; directions {report['direction_counts']}, chi-square "
              f"{report['chi_square'] or 0:.1f} against uniform (p = "
              f"{'n/a' if p_value is None else f'{p_value:.3g}'}); "
              f"{report['distinct_directions']:.2f} distinct directions per context "
              f"({report['distinct_directions_uniform']:.2f} if uniform, "
              f"{report['distinct_directions_uniform_given_faithful']:.2f} if uniform among "
              "the faithful ones)")
        print(f"  looser, from the pixels alone: {100 * report['consistent_fraction']:.1f}% "
              f"move steadily, {100 * report['colour_kept_fraction']:.1f}% keep the colour, "
              f"{100 * report['appearance_kept_fraction']:.1f}% colour and size")
        if "continued_fraction" in report:
            print(f"  given one real step, {100 * report['continued_fraction']:.1f}% go on "
                  "in its direction")
        elif frames > 1:
            print("  going on after a real step: not measured (the SavedModel samples after "
                  "one context frame)")
    return report


def bits_per_pixel(model, split, batch_size, data_dir=None, seed=0):
    """{"num_videos", "bpp", "bpp_per_frame"} on `split` of its dataset of an opened
    `model` (see `videoflow_tf.training.open_model`; `RunModel(model)` for a VideoFlow), with the
    same dequantisation noise for every batch: no result depends on the batching."""
    config = model.config
    dataset = evaluation_dataset(config, split, batch_size, data_dir)
    cardinality = int(dataset.cardinality())
    progress = progress_bar(cardinality if cardinality >= 0 else None, unit_name="batch")
    total, count = np.zeros(config.num_target_frames), 0
    for index, videos in enumerate(dataset):
        bpp = model.frame_bits_per_pixel(videos, seed)
        total += bpp.sum(axis=0)
        count += len(bpp)
        progress.update(index + 1, [("bpp", float(bpp.mean()))])
    per_frame_mean = total / max(count, 1)
    return {"num_videos": count, "bpp": float(per_frame_mean.mean()),
            "bpp_per_frame": per_frame_mean.tolist()}


def _file_name(split):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in split)
