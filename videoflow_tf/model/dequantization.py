"""Where a pixel's continuous value lies within its bin: the flow models continuous
values, the data are uint8 pixels, and the dequantisation distribution q(u | x) bridges
them. Pixel k stands for the bin [k/255 - 0.5, k/255 - 0.5 + 1/256) (`pixels`), and a
frame's continuous values are lower_edges(x) + u / 256 with u in (0, 1) per subpixel. For
any q, Jensen's inequality gives a lower bound on the discrete log-likelihood:

    log P(x) >= E_{u ~ q(u | x)} [ log p(lower_edges(x) + u / 256) - log q(u | x) ]
                - H*W*C * ln(256)

- `uniform` (the paper's and tensor2tensor's): q = U(0, 1), log q = 0. The bound is
  tight only where the flow's density is flat across each bin, so on a flat background
  the flow must learn box-shaped densities, whose soft edges leak mass into the next bins.
- `variational` (Ho et al. 2019, "Flow++", section 3.1): q is learned with the model.
  The bound is tight when q(u | x) is the flow's density within the bin, normalised, so
  it rewards the flow for the mass it puts inside each pixel's bin, whatever its shape
  there. Here q is per subpixel a logistic squashed into (0, 1):

      u = sigmoid(mu + s * logit(n)),   n ~ U(0, 1),   (mu, log s) = NN(x)
      log q(u | x) = log Logistic(z; mu, s) - log sigmoid'(z),   z = mu + s * logit(n)

  NN reads the whole frame (three 3x3 convolutions); its last one starts at zero, so
  q starts as U(0, 1) exactly and training starts from uniform dequantisation.

Both take the same uniform base noise n, so every random stream of the model (training
steps, seeded scoring, sampling) serves either.
"""
import keras
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.config import DEQUANTIZATIONS
from videoflow_tf.model import pixels
from videoflow_tf.model.bijectors import seeds

tfb, tfd = tfp.bijectors, tfp.distributions

WIDTH = 32  # hidden channels of the variational q's network
# exp(-7) ~ 1e-3 of a bin: q stays a density, never a spike; no trained q comes near.
LOG_SCALE_LIMIT = 7.0
# Base noise is kept this far inside (0, 1), where logit(n) is finite (|logit| < 16.2).
_NOISE_MARGIN = 1e-7


def make_dequantizer(kind, seed=None, name="dequantizer"):
    """The dequantizer of config field `dequantization`."""
    if kind == "uniform":
        return UniformDequantizer()
    if kind == "variational":
        return VariationalDequantizer(seed=seed, name=name)
    raise ValueError(f"unknown dequantization {kind!r}; expected one of {DEQUANTIZATIONS}")


class UniformDequantizer:
    """q = U(0, 1): the paper's dequantisation; it has no weights."""

    def __call__(self, video, noise):
        """(values [B, T, H, W, 3], log q per frame [B, T]) of uint8 `video` [B, T, H, W,
        3] given base noise U(0, 1) that broadcasts to it."""
        values = pixels.lower_edges(video) + pixels.BIN_WIDTH * noise
        return values, tf.zeros(tf.shape(values)[:2])

    def sample_values(self, video, noise, shrink):
        """Values of `video` for conditioning samples on: as `__call__`, pulled towards the
        bin centres by `shrink` in [0, 1] (a scalar or per video [B]; 0: the centres)."""
        return pixels.bin_centres(video) + _per_video(shrink) * (
            pixels.BIN_WIDTH * noise - pixels.BIN_WIDTH / 2)


class VariationalDequantizer(keras.layers.Layer):
    """q(u | x) learned with the model (see the module docstring)."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden = [keras.layers.Conv2D(
            WIDTH, 3, padding="same", activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.derived(seed, i)),
            name=f"hidden_{i + 1}") for i in range(2)]
        self.head = keras.layers.Conv2D(6, 3, padding="same", kernel_initializer="zeros",
                                        name="head")

    def build(self, input_shape=None):
        shape = (None,) + tuple(input_shape[-3:])
        for layer in self.hidden + [self.head]:
            layer.build(shape)
            shape = shape[:-1] + (layer.filters,)

    def logistic(self, video):
        """(mu, s) [B, T, H, W, 3] of q's logistic for uint8 `video` [B, T, H, W, 3]."""
        video = tf.convert_to_tensor(video)
        h = tf.reshape(2.0 * pixels.bin_centres(video), [-1] + list(video.shape[2:]))
        for layer in self.hidden:
            h = layer(h)
        loc, log_scale = tf.split(tf.reshape(self.head(h), tf.concat(
            [tf.shape(video), [2]], axis=0)), 2, axis=-1)
        log_scale = tf.clip_by_value(log_scale[..., 0], -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
        return loc[..., 0], tf.exp(log_scale)

    def __call__(self, video, noise):
        """As `UniformDequantizer.__call__`."""
        loc, scale = self.logistic(video)
        z = loc + scale * _logit(noise)
        log_q = (tfd.Logistic(loc, scale).log_prob(z)
                 - tfb.Sigmoid().forward_log_det_jacobian(z, event_ndims=0))
        return self._values(video, z), tf.reduce_sum(log_q, axis=[2, 3, 4])

    def sample_values(self, video, noise, shrink):
        """As `UniformDequantizer.sample_values`: `shrink` scales the logistic's spread, so
        0 puts every u at sigmoid(mu)."""
        loc, scale = self.logistic(video)
        return self._values(video, loc + _per_video(shrink) * scale * _logit(noise))

    @staticmethod
    def _values(video, z):
        return pixels.lower_edges(video) + pixels.BIN_WIDTH * tf.sigmoid(z)


def _logit(noise):
    """logit of base noise U(0, 1), kept finite at 0 and 1."""
    noise = tf.clip_by_value(noise, _NOISE_MARGIN, 1.0 - _NOISE_MARGIN)
    return tf.math.log(noise) - tf.math.log1p(-noise)


def _per_video(value):
    """A scalar, or one value per video [B] as [B, 1, 1, 1, 1]."""
    value = tf.convert_to_tensor(value, tf.float32)
    return value if value.shape.rank == 0 else tf.reshape(value, [-1, 1, 1, 1, 1])
