"""How stochastic-shapes videos move, measured from their pixels alone.

Every stochastic-shapes video shows one shape on a plain background that moves one canvas
unit (a tenth of the frame) per frame in one of 8 directions. For a video, possibly made
of real context frames followed by sampled ones:

* the background is the median colour of the first frame's border (the shape starts in the
  centre, so the border is background);
* a pixel belongs to the shape when one of its channels differs from the background by
  more than `threshold`; the shape's position in a frame is the centroid of those pixels;
* each step (frame t -> t+1) has a displacement d = c(t+1) - c(t) and a direction bin
  round(atan2(-dy, dx) / 45 degrees) mod 8 (image rows grow downwards, so -dy points up):
  0 = E, 1 = NE, 2 = N, ... 7 = SE;
* the video moves consistently (steadily) when the shape is visible in every frame, every
  step lies in the same bin and every step moves between half a unit and two units (a
  true step is 1 unit, or 1.41 along a diagonal);
* the shape keeps its colour when every frame's shape colour (mean over its pixels) stays
  within COLOUR_TOLERANCE of the first frame's in every channel, and its appearance when
  besides its pixel count stays within a factor of 2 of the first frame's. The six colours differ by at least 191
  in some channel, and anti-aliased edges pull the mean of a small shape by up to about 70.

These checks are loose (a line 15 degrees off a direction, uneven steps or a shape shrunk
to one pixel of its colour all pass). `videoflow_tf.analysis.strict_motion` is the strict measure:
it compares each sampled future with the 8 futures the renderer could have drawn for its
example.
"""
import math

import numpy as np

DIRECTIONS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")
CANVAS_UNITS = 10.0  # the frame is 10 x 10 canvas units; a shape moves 1 unit per frame
STEP_RANGE = (0.5, 2.0)  # canvas units a steady step may move
COLOUR_TOLERANCE = 96


def background_colour(frame):
    """Median RGB of the border pixels of one uint8 frame [H, W, 3]."""
    border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
    return np.median(border.astype(np.float64), axis=0)


def shape_masks(video, threshold=64):
    """Boolean [T, H, W]: pixels that differ from the background by more than `threshold`
    in some channel."""
    video = np.asarray(video)
    difference = np.abs(video.astype(np.float64) - background_colour(video[0]))
    return difference.max(axis=-1) > threshold


def track(video, threshold=64):
    """Per frame of a uint8 video [T, H, W, 3]: centroid (x, y) in pixels (NaN where no
    shape pixel is found), mean shape colour [T, 3] and shape pixel count [T]."""
    video = np.asarray(video)
    masks = shape_masks(video, threshold)
    rows, cols = np.mgrid[0:video.shape[1], 0:video.shape[2]]
    counts = masks.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        centroids = np.stack([(masks * cols).sum(axis=(1, 2)) / counts,
                              (masks * rows).sum(axis=(1, 2)) / counts], axis=-1)
        colours = (masks[..., None] * video).sum(axis=(1, 2)) / counts[:, None]
    return centroids, colours, counts


def direction_bin(displacement):
    """The 8-direction bin (index into DIRECTIONS) of a displacement (dx, dy), y down."""
    dx, dy = displacement
    return int(round(math.atan2(-dy, dx) / (math.pi / 4))) % 8


def analyse_video(video, threshold=64):
    """dict(consistent, direction, colour_kept, appearance_kept, steps) for one uint8
    video [T, H, W, 3] (T >= 2); `direction` is a DIRECTIONS name when consistent, else
    None."""
    video = np.asarray(video)
    unit = video.shape[2] / CANVAS_UNITS
    centroids, colours, counts = track(video, threshold)
    visible = bool(np.all(counts > 0))
    steps = np.diff(centroids, axis=0)
    bins = [direction_bin(step) for step in steps] if visible else []
    lengths = np.hypot(steps[:, 0], steps[:, 1]) / unit
    consistent = (visible and len(set(bins)) == 1
                  and bool(np.all((lengths >= STEP_RANGE[0]) & (lengths <= STEP_RANGE[1]))))
    colour_kept = visible and bool(np.all(np.abs(colours - colours[0]) <= COLOUR_TOLERANCE))
    appearance_kept = colour_kept and bool(
        np.all((counts <= 2 * counts[0]) & (2 * counts >= counts[0])))
    return {"consistent": consistent,
            "direction": DIRECTIONS[bins[0]] if consistent else None,
            "colour_kept": colour_kept,
            "appearance_kept": appearance_kept,
            "steps": steps.tolist()}


def motion_report(videos, threshold=64):
    """Summary over uint8 videos [N, T, H, W, 3]: how many move consistently, how they
    spread over the 8 directions (counts and entropy in bits, at most 3), and how many keep
    their colour, and their colour and size."""
    results = [analyse_video(video, threshold) for video in videos]
    counts = {name: 0 for name in DIRECTIONS}
    for result in results:
        if result["consistent"]:
            counts[result["direction"]] += 1
    consistent = sum(counts.values())
    probabilities = np.array([c / consistent for c in counts.values() if c]) if consistent else []
    return {
        "num_videos": len(results),
        "consistent": consistent,
        "consistent_fraction": consistent / max(len(results), 1),
        "direction_counts": counts,
        "directions_used": int(sum(1 for c in counts.values() if c)),
        "direction_entropy_bits": float(-np.sum(probabilities * np.log2(probabilities)))
        if consistent else 0.0,
        "colour_kept": sum(r["colour_kept"] for r in results),
        "colour_kept_fraction": sum(r["colour_kept"] for r in results) / max(len(results), 1),
        "appearance_kept": sum(r["appearance_kept"] for r in results),
        "appearance_kept_fraction": sum(r["appearance_kept"] for r in results)
        / max(len(results), 1),
    }
