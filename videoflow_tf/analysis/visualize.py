"""Pictures of videos and results with Pillow only: GIF grids, PNG strips, line plots.

Videos are uint8 numpy arrays [..., T, H, W, 3]. Real (context) frames get an orange
border and generated frames a dark gray one, so the two can be told apart at a glance
in every picture; frames are enlarged by pixel repetition so that small frames stay sharp.
"""
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CONTEXT_COLOUR = (255, 140, 0)  # orange: a real frame given to the model
GENERATED_COLOUR = (60, 60, 60)  # dark gray: a frame the model produced
PAPER_COLOUR = (255, 255, 255)
SERIES_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
                  (255, 127, 14), (23, 190, 207))


def default_scale(image_size):
    """Enlargement that makes a frame about 128 pixels wide (at least 1)."""
    return max(1, 128 // image_size)


def framed(videos, num_context, scale=1, border=None):
    """videos [..., T, H, W, 3] -> [..., T, H*scale + 2b, W*scale + 2b, 3]: each frame
    enlarged `scale` times and framed in orange (t < num_context) or dark gray."""
    videos = np.asarray(videos, np.uint8)
    border = max(1, scale) if border is None else border
    big = np.repeat(np.repeat(videos, scale, axis=-3), scale, axis=-2)
    padding = [(0, 0)] * (big.ndim - 3) + [(border, border), (border, border), (0, 0)]
    out = np.pad(big, padding)
    is_context = np.arange(videos.shape[-4]) < num_context
    colours = np.where(is_context[:, None], CONTEXT_COLOUR, GENERATED_COLOUR).astype(np.uint8)
    mask = np.ones(out.shape[-3:-1], bool)
    mask[border:-border, border:-border] = False
    out[..., mask, :] = colours.reshape((-1, 1, 3))
    return out


def tile(images, gap=2):
    """images [R, C, h, w, 3] -> one image with R rows and C columns, `gap` white pixels apart."""
    images = np.asarray(images, np.uint8)
    rows, cols, height, width, _ = images.shape
    out = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap, 3), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            out[r * (height + gap):r * (height + gap) + height,
                c * (width + gap):c * (width + gap) + width] = images[r, c]
    return out


def video_grid(videos, num_context, scale=1):
    """videos [R, C, T, H, W, 3] -> frames [T, height, width, 3] of an R x C grid playing all
    videos together, context frames framed in orange."""
    videos = framed(videos, num_context, scale)
    return np.stack([tile(videos[:, :, t]) for t in range(videos.shape[2])])


def strip(videos, num_context, scale=1):
    """videos [N, T, H, W, 3] -> one image: a row per video, its frames left to right."""
    return tile(framed(videos, num_context, scale))


def save_gif(path, frames, frame_ms=300, last_frame_ms=1200):
    """Writes frames [T, H, W, 3] as a looping GIF; the last frame stays longer."""
    images = [Image.fromarray(np.asarray(frame, np.uint8)) for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [last_frame_ms]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0,
                   optimize=False)


def save_png(path, image):
    Image.fromarray(np.asarray(image, np.uint8)).save(path)


# --------------------------------------------------------------------- line plots

def line_plots(path, panels, panel_size=(560, 400)):
    """Writes a PNG of line plots side by side.

    panels: list of dicts with `title`, `xlabel`, `ylabel` and `series`, a dict
    {label: (xs, ys)}; each series is drawn as a line with dots, in its own colour.
    """
    images = [_line_plot(panel, panel_size) for panel in panels]
    out = Image.new("RGB", (sum(image.width for image in images), panel_size[1]), PAPER_COLOUR)
    x = 0
    for image in images:
        out.paste(image, (x, 0))
        x += image.width
    out.save(path)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has a single fixed-size bitmap font
        return ImageFont.load_default()


def nice_ticks(low, high, count=5):
    """About `count` round tick values covering [low, high]."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=10 * magnitude)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _label(value):
    return f"{value:.6g}"


def _line_plot(panel, size):
    width, height = size
    image = Image.new("RGB", size, PAPER_COLOUR)
    draw = ImageDraw.Draw(image)
    font, title_font = _font(13), _font(16)
    left, right, top, bottom = 70, width - 20, 40, height - 55
    series = {label: (np.asarray(xs, float), np.asarray(ys, float))
              for label, (xs, ys) in panel["series"].items()}
    all_x = np.concatenate([xs for xs, _ in series.values()])
    all_y = np.concatenate([ys[np.isfinite(ys)] for _, ys in series.values()])
    x_ticks = (sorted(set(all_x.tolist())) if len(set(all_x.tolist())) <= 12
               else nice_ticks(all_x.min(), all_x.max()))
    y_ticks = nice_ticks(all_y.min(), all_y.max()) if all_y.size else [0.0, 1.0]
    x_low, x_high = min(x_ticks[0], all_x.min()), max(x_ticks[-1], all_x.max())
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    margin = 0.04 * (x_high - x_low)  # keeps the end points off the frame
    x_low, x_high = x_low - margin, x_high + margin
    y_low, y_high = y_ticks[0], y_ticks[-1]

    def to_pixel(x, y):
        return (left + (x - x_low) / (x_high - x_low) * (right - left),
                bottom - (y - y_low) / (y_high - y_low) * (bottom - top))

    for tick in y_ticks:
        _, y = to_pixel(x_low, tick)
        draw.line([left - 4, y, left, y], fill=(0, 0, 0))
        draw.line([left + 1, y, right - 1, y], fill=(230, 230, 230))
        draw.text((left - 6, y), _label(tick), fill=(0, 0, 0), font=font, anchor="rm")
    for tick in x_ticks:
        x, _ = to_pixel(tick, y_low)
        draw.line([x, bottom, x, bottom + 4], fill=(0, 0, 0))
        draw.text((x, bottom + 6), _label(tick), fill=(0, 0, 0), font=font, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text(((left + right) / 2, 10), panel.get("title", ""), fill=(0, 0, 0),
              font=title_font, anchor="mt")
    draw.text(((left + right) / 2, height - 10), panel.get("xlabel", ""), fill=(0, 0, 0),
              font=font, anchor="mb")
    ylabel = Image.new("RGB", (bottom - top, 18), PAPER_COLOUR)
    ImageDraw.Draw(ylabel).text(((bottom - top) / 2, 9), panel.get("ylabel", ""),
                                fill=(0, 0, 0), font=font, anchor="mm")
    image.paste(ylabel.rotate(90, expand=True), (4, top))

    for index, (label, (xs, ys)) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        points = [to_pixel(x, y) for x, y in zip(xs, ys) if np.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        if len(series) > 1:
            y = top + 8 + 16 * index
            draw.line([right - 120, y, right - 100, y], fill=colour, width=2)
            draw.text((right - 95, y), label, fill=(0, 0, 0), font=font, anchor="lm")
    return image
