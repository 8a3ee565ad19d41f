"""uint8 pixels and the flow's input space.

Pixel k stands for the bin [k/255 - 0.5, k/255 - 0.5 + 1/256): training and scoring add
uniform noise U(0, 1/256) to k/255 - 0.5 (tensor2tensor's dequantisation, which the
paper's bits per pixel assume). `to_uint8` maps any value back to the pixel whose bin
centre is nearest, so every value of a bin, and in particular its centre
(`bin_centres`, what `encode` uses), returns the pixel exactly.
"""
import tensorflow as tf

BIN_WIDTH = 1.0 / 256.0


def lower_edges(pixels):
    """float32 k/255 - 0.5 of uint8 `pixels` (any shape)."""
    return tf.cast(pixels, tf.float32) / 255.0 - 0.5


def bin_centres(pixels):
    """float32 centres of the bins of uint8 `pixels`."""
    return lower_edges(pixels) + BIN_WIDTH / 2


def _levels(x):
    """The pixel level of value x before rounding and clipping (NaN stays NaN)."""
    return (x + 0.5) * 255.0 - 255.0 * BIN_WIDTH / 2


def to_uint8(x, transpose=None):
    """Values of the flow's input space to pixels: the nearest bin centre's pixel,
    clipped to [0, 255]; axes permuted by `transpose` if given. NaN (a diverged sample)
    becomes 0, since its cast is undefined and eager and traced kernels turn it into
    different bytes; `invalid_count` counts such values."""
    x = tf.where(tf.math.is_nan(x), -0.5, x)
    if transpose is not None:
        # Between the NaN test and the cast: TensorFlow's oneDNN transpose logs an error
        # line for uint8 (and for a bool it would move) on CPUs without AVX-512.
        x = tf.transpose(x, transpose)
    return tf.cast(tf.clip_by_value(tf.round(_levels(x)), 0.0, 255.0), tf.uint8)


def invalid_count(x, axis=None):
    """How many values of x `to_uint8` cannot represent: NaN, or rounding to a level
    outside [0, 255] (so that clipping changes them). int32, summed over `axis`."""
    levels = tf.round(_levels(x))
    invalid = ~((levels >= 0.0) & (levels <= 255.0))  # NaN fails both comparisons
    return tf.reduce_sum(tf.cast(invalid, tf.int32), axis=axis)
