"""Checks of what VideoFlow's methods are given, failing with a ValueError that says what
was expected: uint8 videos [batch, frames, H, W, 3] and float32 latents per level."""
import tensorflow as tf


def check_videos(image_shape, video, name, min_frames):
    """`video` as a tensor, checked to be uint8 [batch, frames >= min_frames, *image_shape]
    (a frame count unknown until run time is checked then)."""
    height, width, channels = image_shape
    expected = f"uint8 [batch, frames >= {min_frames}, {height}, {width}, {channels}]"
    video = tf.convert_to_tensor(video)
    if video.dtype != tf.uint8:
        raise ValueError(f"{name} must be {expected} pixels; got dtype {video.dtype.name}")
    shape = video.shape
    if (shape.rank != 5 or any(d is not None and d != e for d, e in
                               zip(shape[2:], image_shape))
            or (shape[1] is not None and shape[1] < min_frames)):
        raise ValueError(f"{name} must be {expected}; got shape {shape}")
    if shape[1] is None:
        tf.debugging.assert_greater_equal(tf.shape(video)[1], min_frames,
                                          message=f"{name} must be {expected}")
    return video


def check_latents(shapes, latents):
    """`latents` as tensors, checked to be float32 [batch, frames, h, w, c], one per level
    with (h, w, c) = shapes[level]."""
    latents = [tf.convert_to_tensor(z) for z in latents]
    ok = len(latents) == len(shapes) and all(
        z.dtype == tf.float32 and z.shape.rank == 5
        and all(d is None or d == e for d, e in zip(z.shape[2:], s))
        for z, s in zip(latents, shapes))
    if not ok:
        raise ValueError(f"latents must be {len(shapes)} float32 tensors [batch, frames, "
                         f"h, w, c] with (h, w, c) = {shapes}; got "
                         f"{[(z.dtype.name, tuple(z.shape)) for z in latents]}")
    return latents
