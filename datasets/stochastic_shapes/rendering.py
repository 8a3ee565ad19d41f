"""Seeded, anti-aliased numpy rendering of the stochastic-shapes videos.

Geometry (the paper's "stochastic movement" data): a 10 x 10 unit canvas drawn
at 64 x 64 pixels (6.4 px per unit). One shape per video, centred on the canvas
at frame 0, moving 1 unit per frame in one of 8 directions (diagonals are not
normalised). The shape is a circle of radius s, a square of side 2s or an
upward equilateral triangle of side 2s (positioned by its centroid), with
s ~ U(0.5, 1.5) units. Positions here are in pixels with x to the right and y
down the image rows; pixel (row i, column j) covers [j, j+1) x [i, i+1).

Anti-aliasing is supersampling: each pixel's coverage is the fraction of an
8 x 8 grid of sample points (at sub-pixel centres) that falls inside the shape,
and the pixel is the coverage-weighted mix of shape and background colours.
All three shapes are symmetric about the vertical line through their centre,
so "inside" is |x - cx| <= w(y) with a per-shape half width w at the sample's
row. Coverage is an integer count and the colour mix is integer arithmetic, so
the bytes do not depend on the machine's floating-point reductions.

Random parameters come from numpy's PCG64 `Generator.random`, one row of four
uniforms per video, so the i-th video of a split does not depend on how many
videos the split has.
"""
import numpy as np

IMAGE_SIZE = 64
NUM_FRAMES = 5
CANVAS_UNITS = 10.0
PIXELS_PER_UNIT = IMAGE_SIZE / CANVAS_UNITS  # 6.4
MIN_SIZE_UNITS, MAX_SIZE_UNITS = 0.5, 1.5

SHAPES = ("circle", "square", "triangle")
# matplotlib's letter colours b g r c m y as 8-bit RGB.
COLORS = {
    "blue": (0, 0, 255),
    "green": (0, 128, 0),
    "red": (255, 0, 0),
    "cyan": (0, 191, 191),
    "magenta": (191, 0, 191),
    "yellow": (191, 191, 0),
}
# The 8 directions in canvas units per frame with y UP (the paper's convention),
# counter-clockwise from "right".
DIRECTIONS_Y_UP = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))

SUPERSAMPLING = 8  # sample points per pixel along each axis
# Every shape fits in a 21 x 21 pixel window around floor(centre): its extent
# from the centre is at most 1.5 units = 9.6 px in each direction.
_WINDOW = 21
_WINDOW_HALF = _WINDOW // 2
_SQRT3 = np.sqrt(3.0)


def sample_parameters(rng, num_videos):
    """Draws each video's shape, colour, size and direction.

    Returns a dict of arrays of length `num_videos`: `shape` (index into
    SHAPES), `color` (index into COLORS), `size` (radius or half side, pixels)
    and `velocity` ((dx, dy) pixels per frame, y down), float64.
    """
    uniforms = rng.random((num_videos, 4))
    direction = np.minimum((uniforms[:, 3] * len(DIRECTIONS_Y_UP)).astype(np.int64), 7)
    dx_dy_up = np.asarray(DIRECTIONS_Y_UP, dtype=np.float64)[direction]
    return {
        "shape": np.minimum((uniforms[:, 0] * len(SHAPES)).astype(np.int64), len(SHAPES) - 1),
        "color": np.minimum((uniforms[:, 1] * len(COLORS)).astype(np.int64), len(COLORS) - 1),
        "size": (MIN_SIZE_UNITS + (MAX_SIZE_UNITS - MIN_SIZE_UNITS) * uniforms[:, 2])
        * PIXELS_PER_UNIT,
        # Image rows grow downwards, so the y-up direction flips sign.
        "velocity": PIXELS_PER_UNIT * dx_dy_up * np.array([1.0, -1.0]),
    }


def centres(velocity):
    """Shape centres [N, NUM_FRAMES, 2] (x, y pixels): the canvas centre plus t * velocity."""
    t = np.arange(NUM_FRAMES, dtype=np.float64)[None, :, None]
    return IMAGE_SIZE / 2 + t * velocity[:, None, :]


def half_widths(shape, size, dy):
    """Half width of each shape at vertical offset `dy` below its centre (pixels).

    Negative where the row misses the shape. `shape` and `size` broadcast
    against `dy`. Circle: sqrt(s^2 - dy^2) for |dy| <= s. Square: s for
    |dy| <= s. Triangle of side 2s and height h = s*sqrt(3), centroid at the
    centre: apex at dy = -2h/3, base at dy = h/3, half width (dy + 2h/3)/sqrt(3).
    """
    circle = np.where(dy * dy <= size * size, np.sqrt(np.maximum(size * size - dy * dy, 0.0)), -1.0)
    square = np.where(np.abs(dy) <= size, size, -1.0)
    height = size * _SQRT3
    apex, base = -2.0 * height / 3.0, height / 3.0
    triangle = np.where((dy >= apex) & (dy <= base), (dy - apex) / _SQRT3, -1.0)
    return np.choose(shape, [circle, square, triangle])


def coverage(shape, size, centre):
    """Supersampled coverage counts [N, 64, 64] in 0..SUPERSAMPLING**2.

    `shape` [N] int, `size` [N] pixels, `centre` [N, 2] (x, y) pixels. Parts of
    the shape outside the image are clipped.
    """
    n = len(shape)
    origin = np.floor(centre).astype(np.int64) - _WINDOW_HALF  # window's top-left pixel (x, y)
    offsets = (np.arange(_WINDOW * SUPERSAMPLING) + 0.5) / SUPERSAMPLING
    sample_x = origin[:, 0, None] + offsets  # [N, S*W]
    sample_y = origin[:, 1, None] + offsets
    width = half_widths(shape[:, None], size[:, None], sample_y - centre[:, 1, None])
    inside = np.abs(sample_x - centre[:, 0, None])[:, None, :] <= width[:, :, None]
    counts = inside.reshape(n, _WINDOW, SUPERSAMPLING, _WINDOW, SUPERSAMPLING).sum(
        axis=(2, 4), dtype=np.int32)
    # Paste each window into a canvas padded by one window on every side,
    # then crop: pixels of the window outside the image fall in the padding.
    padded = np.zeros((n, IMAGE_SIZE + 2 * _WINDOW, IMAGE_SIZE + 2 * _WINDOW), np.int32)
    rows = origin[:, 1, None] + _WINDOW + np.arange(_WINDOW)
    cols = origin[:, 0, None] + _WINDOW + np.arange(_WINDOW)
    padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = counts
    return padded[:, _WINDOW:_WINDOW + IMAGE_SIZE, _WINDOW:_WINDOW + IMAGE_SIZE]


def render_videos(params, background):
    """Renders videos [N, NUM_FRAMES, 64, 64, 3] uint8 from `sample_parameters` output.

    `background` is an (r, g, b) triple of 0..255 integers.
    """
    n = len(params["shape"])
    centre = centres(params["velocity"]).reshape(n * NUM_FRAMES, 2)
    counts = coverage(np.repeat(params["shape"], NUM_FRAMES),
                      np.repeat(params["size"], NUM_FRAMES), centre)
    counts = counts.reshape(n, NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE)
    return _mixing_table(background)[params["color"][:, None, None, None], counts]


def _mixing_table(background):
    """uint8 [colour, coverage count, channel]: background and colour mixed by coverage."""
    total = SUPERSAMPLING ** 2
    count = np.arange(total + 1)[:, None]
    palette = np.asarray(list(COLORS.values()))[:, None, :]
    mixed = np.asarray(background) * (total - count) + palette * count
    # Round half up, floor(mixed / total + 1/2), exactly in integers.
    return ((2 * mixed + total) // (2 * total)).astype(np.uint8)
