"""`videoflow-tf evaluate`: bits per pixel of a trained model on a split, and for
stochastic shapes how its sampled futures move.

Bits per pixel follow the paper: each video's first num_context_frames frames are given,
the next num_target_frames are scored (teacher-forced), with seeded uniform dequantisation;
reported per target frame and as their mean. For stochastic_shapes the command also samples
futures of test contexts and measures their motion from the pixels (`videoflow_tf.motion`):
how many move consistently (one of the 8 directions, every step, at least half a unit per
frame), how the consistent ones spread over the 8 directions, and how many keep the
shape's colour and size. A second check gives each test video one more real frame, in
which the shape has begun to move, and counts the sampled futures that go on in that
direction: it tells a model that cannot choose a direction from one that cannot keep one.
Writes a JSON file.
"""
import json
import os

import numpy as np
import tensorflow as tf

from videoflow_tf import model_dir as run_dir, motion
from videoflow_tf.callbacks import progress_bar
from videoflow_tf.usage import non_negative, output_file, positive
from videoflow_tf.videos import dataset_frames, evaluation_dataset, load_videos


def add_arguments(parser):
    parser.add_argument("--model-dir", required=True, metavar="DIR",
                        help="a training run folder (config.json and checkpoints)")
    parser.add_argument("--split", default="test",
                        help="split to score, e.g. test, validation, train[:5%%] "
                        "(default: %(default)s)")
    parser.add_argument("--batch-size", type=positive(int), default=32, metavar="B",
                        help="videos per batch (default: %(default)s)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="TFDS data directory (default: the one the run trained from)")
    parser.add_argument("--out", metavar="FILE.json",
                        help="where to write the results (default: "
                        "MODEL_DIR/evaluation-SPLIT.json)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the dequantisation noise and the samples "
                        "(default: %(default)s)")
    parser.add_argument("--motion-videos", type=non_negative(int), default=100, metavar="N",
                        help="stochastic_shapes: test contexts to sample a future for; "
                        "0 skips the motion check (default: %(default)s)")
    parser.add_argument("--motion-frames", type=positive(int), metavar="N",
                        help="stochastic_shapes: frames sampled after each context "
                        "(default: as many as the dataset's videos have after it)")
    parser.add_argument("--temperature", type=non_negative(float), metavar="T",
                        help="sampling temperature of the motion check (default: the "
                        "config's)")


def run(args):
    config = run_dir.read_config(args.model_dir)
    data_dir = args.data_dir or run_dir.read_settings(args.model_dir).get("data_dir")
    out = output_file(args.out or os.path.join(
        args.model_dir, f"evaluation-{_file_name(args.split)}.json"), (".json",))
    model, step = run_dir.load_model(args.model_dir)
    results = {"model_dir": os.path.abspath(args.model_dir), "step": step,
               "dataset": config.dataset, "split": args.split}
    results.update(bits_per_pixel(model, args.split, args.batch_size, data_dir, args.seed))
    print(f"{args.split}: {results['bpp']:.4f} bits per pixel over {results['num_videos']} "
          f"videos; per target frame: "
          f"{', '.join(f'{b:.4f}' for b in results['bpp_per_frame'])}")
    if config.dataset.startswith("stochastic_shapes") and args.motion_videos:
        frames = args.motion_frames or (dataset_frames(config.dataset, data_dir)
                                        - config.num_context_frames)
        temperature = config.temperature if args.temperature is None else args.temperature
        # The context and the real frame after it: the first check samples after the
        # context, the second after that real frame (the shape's first step).
        given = load_videos(config, "test", args.motion_videos, data_dir,
                            num_frames=config.num_context_frames + 1)
        results["motion"] = sampled_motion(model, given[:, :-1], frames, temperature,
                                           args.batch_size, args.seed)
        report = results["motion"]
        print(f"motion of {report['num_videos']} sampled futures ({frames} frames, "
              f"temperature {temperature}): {report['consistent']} consistent, "
              f"{report['appearance_kept']} keep colour and size; directions "
              f"{report['direction_counts']} "
              f"(entropy {report['direction_entropy_bits']:.2f} of 3 bits)")
        if frames > 1:
            results["motion_continued"] = sampled_motion(
                model, given, frames - 1, temperature, args.batch_size, args.seed)
            report = results["motion_continued"]
            print(f"given one real step, {report['consistent']} of {report['num_videos']} "
                  f"sampled futures go on in its direction, {report['appearance_kept']} keep "
                  "colour and size")
    with open(out, "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2)
    print(f"Wrote {out}")


def bits_per_pixel(model, split, batch_size, data_dir=None, seed=0):
    """{"num_videos", "bpp", "bpp_per_frame"} of `model` on `split` of its dataset."""
    config = model.config
    dataset = evaluation_dataset(config, split, batch_size, data_dir)
    frames = config.num_context_frames + config.num_target_frames
    spec = tf.TensorSpec([None, frames] + list(config.image_shape), tf.uint8)

    @tf.function(input_signature=[spec])
    def per_frame(videos):
        # The same dequantisation noise for every batch: no result depends on the batching.
        return model.bits_per_pixel(videos, seed=seed, per_frame=True)

    cardinality = int(dataset.cardinality())
    progress = progress_bar(cardinality if cardinality >= 0 else None, unit_name="batch")
    total, count = np.zeros(config.num_target_frames), 0
    for index, videos in enumerate(dataset):
        bpp = per_frame(videos).numpy()
        total += bpp.sum(axis=0)
        count += len(bpp)
        progress.update(index + 1, [("bpp", float(bpp.mean()))])
    per_frame_mean = total / max(count, 1)
    return {"num_videos": count, "bpp": float(per_frame_mean.mean()),
            "bpp_per_frame": per_frame_mean.tolist()}


def sampled_motion(model, given, num_frames, temperature, batch_size, seed=0):
    """`motion.motion_report` of uint8 real frames `given` [N, T, H, W, 3] (T >=
    num_context_frames) followed by `num_frames` sampled frames (video i sampled with
    seed `seed` + i), plus the settings used.

    The motion is measured from the last context frame on, so with k = T -
    num_context_frames real steps given a video moves consistently only if its samples go
    on in the direction of those steps.
    """
    config = model.config
    progress = progress_bar(len(given), unit_name="video")
    videos = []
    for start in range(0, len(given), batch_size):
        context = given[start:start + batch_size]
        future = model.sample(context, num_frames, temperature=temperature,
                              seed=seed + np.arange(start, start + len(context))).numpy()
        videos.append(np.concatenate([context, future], axis=1))
        progress.update(start + len(context))
    videos = np.concatenate(videos)[:, config.num_context_frames - 1:]
    return {"temperature": temperature, "num_frames": num_frames,
            "real_steps": given.shape[1] - config.num_context_frames,
            **motion.motion_report(videos)}


def _file_name(split):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in split)
