"""Strict check of sampled stochastic-shapes futures: is each one a future the data could have had?

`videoflow_tf.analysis.motion` judges a video from its pixels alone and forgives a lot. Here a
sampled future is compared with the 8 futures its example could really have had, drawn by
the dataset's own renderer: the example's shape, colour and size starting at the centre
and moving one unit per frame in each of the 8 directions, rendered at 64 x 64 and resized
to the model's frame size S exactly as the input pipeline resizes (`pipelines._resize`).

* A pixel belongs to the shape when some channel differs from the dataset's background by
  more than THRESHOLD (64), in the sample and in the renders alike.
* A sampled frame matches direction d when
  - its mask overlaps the true shape's render for d in that frame with IoU >= MIN_IOU;
  - the colour holds: at least MIN_COLOUR_SHARE of its mask pixels are painted in the
    example's palette colour, a pixel being painted in the palette colour whose mixes
    with the background (the segment from background to colour, where anti-aliased edge
    pixels lie) come nearest to it in RGB. Nearness to the bare colours would fail real
    clips on black: a blue edge pixel at a third coverage, (0, 0, 85), is nearer green
    (0, 128, 0) than blue (0, 0, 255);
  - the shape holds: neither other shape, rendered at the same size, colour and position,
    overlaps the mask with a strictly higher IoU than the true shape (a tie holds: tiny
    shapes can resize to the same pixels).
* A future is faithful when one direction matches every sampled frame; its direction is
  then the matching one with the highest mean IoU. When none does, `failed` names the
  first check in the order "no shape" (a sampled frame without shape pixels), "iou" (no
  direction reaches the IoU bound in every frame), "colour" (some frame's colour share is
  below the bound), "shape" (every direction that passes the IoU bound loses a frame to
  another shape).

Every clip of the test split passes, at S = 64 and 32 on gray and at 32 on black, with
IoU 1 in every frame. What IoU >= 0.5 lets through depends on the shape's size: two copies
of a shape overlap with IoU 0.5 when one is shifted by about a third of its width (exactly
a third for a square moved along an axis, 0.27 of the diameter for a circle). So steps of
0.6, 1.6, 0.6 and 1.0 times the true one (0.4 units off at worst) fail every shape of the
smallest size (half width 0.5 units) in all 8 directions, but a square of half width 1 or
more moving along an axis passes. Circles fail it up to half width 1.25 units through the
shape check: a square at the true place overlaps a displaced circle more than a circle
there does. A step left out and made up later (0, 2, 1, 1; 1 unit off) fails every shape
up to half width 1.25 units; at 1.5 a square moving along an axis sits on the bound and
passes at S = 32. A straight line 15 degrees off a direction drifts by 0.26 units per unit travelled and
fails by the last frame at every size.

Renders are cached per example (`candidate_masks`, the 8 directions x 3 shapes in one
render_videos call), and `strict_report` judges the futures of one context together, so
it renders each context once. 909 contexts x 4 futures at S = 32 take 16 s of CPU time
(about 4 ms a future, nearly all of it rendering; 20 s wall clock on 2 cores shared with
a training run).
"""
import collections.abc
import functools
import math

import numpy as np

from videoflow_tf.analysis.motion import DIRECTIONS
from videoflow_tf.data import pipelines
from videoflow_tf.datasets.stochastic_shapes import rendering

THRESHOLD = 64
MIN_IOU = 0.5
MIN_COLOUR_SHARE = 0.75
Z_95 = 1.959963984540054  # two-sided 95% normal quantile

_PALETTE = np.asarray(list(rendering.COLORS.values()), np.float64)
# Pixels per frame (x, y down) in DIRECTIONS order, as rendering.sample_parameters makes them.
_VELOCITIES = (rendering.PIXELS_PER_UNIT * np.asarray(rendering.DIRECTIONS_Y_UP, np.float64)
               * np.array([1.0, -1.0]))


def shape_masks(frames, background, threshold=THRESHOLD):
    """Boolean [..., H, W]: pixels of uint8 frames [..., H, W, 3] that differ from the
    `background` (r, g, b) by more than `threshold` in some channel."""
    difference = np.abs(np.asarray(frames, np.int16) - np.asarray(background, np.int16))
    return difference.max(axis=-1) > threshold


@functools.lru_cache(maxsize=64)
def candidate_masks(shape, color, size, background, image_size):
    """Boolean [3, 8, NUM_FRAMES, S, S] (read-only): the masks of every shape (SHAPES order)
    of `color` and `size` (pixels at 64 x 64) moving from the centre in each of the 8
    directions (DIRECTIONS order), rendered in one call and resized to S = `image_size`.
    `background` is a tuple; all arguments are hashable so the result is cached."""
    num_shapes, num_directions = len(rendering.SHAPES), len(DIRECTIONS)
    count = num_shapes * num_directions
    params = {"shape": np.repeat(np.arange(num_shapes), num_directions),
              "color": np.full(count, color),
              "size": np.full(count, size, np.float64),
              "velocity": np.tile(_VELOCITIES, (num_shapes, 1))}
    videos = rendering.render_videos(params, background)
    frames = videos.reshape((-1,) + videos.shape[2:])
    frames = np.asarray(pipelines._resize(frames, image_size))
    masks = shape_masks(frames, background).reshape(
        (num_shapes, num_directions, rendering.NUM_FRAMES, image_size, image_size))
    masks.setflags(write=False)
    return masks


def _iou(masks, candidates):
    """IoU [..., N] of sample masks [N, S, S] with candidate masks [..., N, S, S]; 0 where
    both are empty."""
    intersection = np.logical_and(masks, candidates).sum(axis=(-2, -1))
    union = np.logical_or(masks, candidates).sum(axis=(-2, -1))
    return intersection / np.maximum(union, 1)


def colour_shares(frames, masks, color, background):
    """Per frame [N]: the share of mask pixels painted in palette colour `color` (0 where the
    mask is empty). A pixel counts as painted in the palette colour whose mix with the
    `background` (the segment from background to colour, which anti-aliased edges lie on)
    is nearest to it in RGB. `frames` uint8 [N, S, S, 3], `masks` boolean [N, S, S]."""
    background = np.asarray(background, np.float64)
    offsets = np.asarray(frames, np.float64)[masks][:, None, :] - background  # [M, 1, 3]
    spans = _PALETTE - background  # [6, 3]
    mix = np.clip((offsets * spans).sum(axis=-1) / (spans * spans).sum(axis=-1), 0.0, 1.0)
    distances = np.linalg.norm(offsets - mix[..., None] * spans, axis=-1)  # [M, 6]
    frame = np.nonzero(masks)[0]
    painted = np.bincount(frame[distances.argmin(axis=-1) == color], minlength=len(masks))
    return painted / np.maximum(masks.sum(axis=(1, 2)), 1)


def strict_future(video, shape, color, size, background, context_frames=1):
    """Judges one sampled future (see the module docstring).

    `video` uint8 [T, S, S, 3]: `context_frames` real frames, then the sampled ones
    (T <= rendering.NUM_FRAMES; frame t of the video is frame t of the data). `shape` and
    `color` index rendering.SHAPES and rendering.COLORS, `size` is the example's size in
    pixels at 64 x 64, `background` the dataset's (r, g, b).

    Returns a JSON-serialisable dict: `faithful` (bool), `direction` (a DIRECTIONS name
    when faithful, else None), `best_direction` (the direction `iou` refers to: the chosen
    one, or when not faithful the one with the highest mean IoU), `iou` and
    `colour_share` (one float per sampled frame), `failed` (None, "no shape", "iou",
    "colour" or "shape").
    """
    video = np.asarray(video)
    if not 1 <= context_frames < len(video) <= rendering.NUM_FRAMES:
        raise ValueError(f"need 1 <= context_frames ({context_frames}) < frames "
                         f"({len(video)}) <= {rendering.NUM_FRAMES}")
    shape, color, background = int(shape), int(color), tuple(int(c) for c in background)
    candidates = candidate_masks(shape, color, float(size), background, video.shape[1])
    sampled = video[context_frames:]
    masks = shape_masks(sampled, background)
    iou = _iou(masks, candidates[:, :, context_frames:len(video)])  # [shape, direction, frame]
    true_iou = iou[shape]
    iou_holds = true_iou >= MIN_IOU
    shape_holds = true_iou >= iou.max(axis=0)
    shares = colour_shares(sampled, masks, color, background)
    colour_holds = shares >= MIN_COLOUR_SHARE
    matches = (iou_holds & shape_holds & colour_holds).all(axis=1)  # per direction
    mean_iou = true_iou.mean(axis=1)
    faithful = bool(matches.any())
    best = int(np.argmax(np.where(matches, mean_iou, -1.0) if faithful else mean_iou))
    if faithful:
        failed = None
    elif not masks.any(axis=(1, 2)).all():
        failed = "no shape"
    elif not iou_holds.all(axis=1).any():
        failed = "iou"
    elif not colour_holds.all():
        failed = "colour"
    else:
        failed = "shape"
    return {"faithful": faithful,
            "direction": DIRECTIONS[best] if faithful else None,
            "best_direction": DIRECTIONS[best],
            "iou": [float(x) for x in true_iou[best]],
            "colour_share": [float(x) for x in shares],
            "failed": failed}


def wilson_interval(successes, trials, z=Z_95):
    """Wilson score interval (low, high) of a binomial proportion; (0, 1) for no trials."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    scale = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def chi_square_sf(x, dof):
    """P(X >= x) for X chi-square with a positive integer `dof`: the regularised upper
    incomplete gamma Q(dof / 2, x / 2), summed in closed form. For integer k = dof / 2,
    Q(k, y) = exp(-y) sum_{i<k} y^i / i!; for half-integer k, Q(1/2, y) = erfc(sqrt(y))
    and Q(a + 1, y) = Q(a, y) + y^a exp(-y) / Gamma(a + 1)."""
    if x <= 0:
        return 1.0
    y = x / 2.0
    if dof % 2 == 0:
        total, powers = 0.0, range(dof // 2)  # a = 0, 1, ..., k - 1
    else:
        total, powers = math.erfc(math.sqrt(y)), [i + 0.5 for i in range(dof // 2)]
    for a in powers:
        total += math.exp(a * math.log(y) - y - math.lgamma(a + 1))
    return min(1.0, total)


def _feature(examples, index, key):
    if isinstance(examples, collections.abc.Mapping):
        return examples[key][index]
    return examples[index][key]


def strict_report(videos, examples, context_index, background, context_frames=1):
    """Judges many sampled futures and summarises them.

    `videos` uint8 [F, T, S, S, 3] (or a sequence of such videos): the futures, each with
    its `context_frames` real frames first. `context_index[i]` (F ints) is the example
    future i continues; `examples` holds the examples' `shape`, `color` and `size`, either
    as a mapping of arrays (`examples["shape"][c]`, like a batch of TFDS features or
    rendering.sample_parameters) or as a sequence of per-example mappings
    (`examples[c]["shape"]`). `background` is the dataset's (r, g, b).

    Returns a JSON-serialisable dict: `num_futures`, `faithful` (count),
    `faithful_fraction` and its 95% Wilson interval `faithful_interval` [low, high];
    `direction_counts` of the faithful futures ({name: count} in DIRECTIONS order),
    `chi_square` against uniform over the 8 directions and its `chi_square_p_value`
    (7 degrees of freedom; None for no faithful future); `num_contexts`,
    `distinct_directions` (mean over contexts of the number of distinct directions among
    its faithful futures, 0 for a context with none) and `distinct_directions_uniform`
    (its expectation when every future is faithful with a uniform direction, given each
    context's number of futures: 8 * (1 - (7/8)**n), 3.31 for n = 4) and
    `distinct_directions_uniform_given_faithful` (the same expectation with n each
    context's number of faithful futures: what uniform choices would give at the model's
    faithful share, so that the two shortfalls can be told apart); and `futures`, one
    `strict_future` record per future with its `context` added, in input order.
    """
    context_index = [int(c) for c in context_index]
    if len(context_index) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(context_index)} context indices")
    records = [None] * len(videos)
    # Futures of one context one after another, so that its renders come from the cache.
    for i in sorted(range(len(videos)), key=context_index.__getitem__):
        c = context_index[i]
        record = strict_future(videos[i], _feature(examples, c, "shape"),
                               _feature(examples, c, "color"), _feature(examples, c, "size"),
                               background, context_frames)
        records[i] = {"context": c, **record}
    counts = {name: 0 for name in DIRECTIONS}
    directions = collections.defaultdict(set)
    futures_per_context = collections.Counter(context_index)
    faithful_per_context = collections.Counter()
    for record in records:
        if record["faithful"]:
            counts[record["direction"]] += 1
            directions[record["context"]].add(record["direction"])
            faithful_per_context[record["context"]] += 1
    faithful = sum(counts.values())
    if faithful:
        expected = faithful / len(DIRECTIONS)
        chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
        p_value = chi_square_sf(chi_square, len(DIRECTIONS) - 1)
    else:
        chi_square = p_value = None
    num_contexts = len(futures_per_context)
    return {
        "num_futures": len(records),
        "faithful": faithful,
        "faithful_fraction": faithful / max(len(records), 1),
        "faithful_interval": list(wilson_interval(faithful, len(records))),
        "direction_counts": counts,
        "chi_square": chi_square,
        "chi_square_p_value": p_value,
        "num_contexts": num_contexts,
        "distinct_directions": sum(len(d) for d in directions.values()) / max(num_contexts, 1),
        "distinct_directions_uniform": _uniform_distinct(futures_per_context, num_contexts),
        "distinct_directions_uniform_given_faithful": _uniform_distinct(
            faithful_per_context, num_contexts),
        "futures": records,
    }


def _uniform_distinct(futures_per_context, num_contexts):
    """Mean over `num_contexts` contexts of the distinct directions that n uniform choices
    among the 8 give, 8 * (1 - (7/8)**n), with n each context's count (absent: 0)."""
    per_direction = (len(DIRECTIONS) - 1) / len(DIRECTIONS)
    return sum(len(DIRECTIONS) * (1 - per_direction ** n)
               for n in futures_per_context.values()) / max(num_contexts, 1)
