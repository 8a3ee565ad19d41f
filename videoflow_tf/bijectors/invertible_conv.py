"""Invertible 1x1 convolution with an LU-parameterised kernel (Glow)."""
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp


def random_rotation_lu(channels, seed=None):
    """(permutation, sign, lower_upper) of the LU factors of a random rotation.

    The rotation is Q of the QR decomposition of a Gaussian matrix drawn with
    numpy's generator seeded by `seed`. With W = Q,
    W = P (L + I)(U + diag(sign * exp(log_s))) where row i of P M is row
    permutation[i] of M; lower_upper packs L below the diagonal, U above it and
    log_s on it.
    """
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((channels, channels)))
    with tf.init_scope():  # the factors become initial values, never graph tensors
        lu, rows = tf.linalg.lu(tf.constant(rotation, tf.float64))  # rotation[rows] = L U
        lu = lu.numpy()
        permutation = tf.math.invert_permutation(rows).numpy()
    diagonal = np.diag(lu)
    lower_upper = lu - np.diag(diagonal) + np.diag(np.log(np.abs(diagonal)))
    return permutation.astype(np.int32), np.sign(diagonal), lower_upper


@keras.saving.register_keras_serializable(package="videoflow_tf")
class InvertibleConv1x1(keras.layers.Layer):
    """y = x W per pixel, W = P (L + I)(U + diag(sign * exp(log_s))).

    Trainable: one [C, C] variable `lower_upper` holding L (strictly lower part),
    U (strictly upper part) and log_s (diagonal). Fixed: the permutation P and
    `sign`. Initialised from a random rotation (seeded by `seed`), so
    log|det W| = sum(log_s) starts at 0.

    Args:
      seed: seed of the random rotation; None draws a fresh one.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        channels = int(input_shape[-1])
        permutation, sign, lower_upper = random_rotation_lu(channels, self.seed)
        self.permutation = self.add_weight(
            shape=(channels,), dtype="int32", trainable=False, name="permutation",
            initializer=lambda shape, dtype: permutation)
        self.sign = self.add_weight(shape=(channels,), trainable=False, name="sign",
                                    initializer=lambda shape, dtype: sign)
        self.lower_upper = self.add_weight(shape=(channels, channels), name="lower_upper",
                                           initializer=lambda shape, dtype: lower_upper)

    def _factors(self):
        """(P as a one-hot matrix, L + I, U + diag(sign * exp(log_s)))."""
        lu = tf.convert_to_tensor(self.lower_upper)
        channels = lu.shape[-1]
        eye = tf.eye(channels, dtype=lu.dtype)
        lower = tf.linalg.band_part(lu, -1, 0) - tf.linalg.band_part(lu, 0, 0) + eye
        upper = (tf.linalg.band_part(lu, 0, -1) - tf.linalg.band_part(lu, 0, 0)
                 + tf.linalg.diag(self.sign * tf.exp(self.log_s)))
        return tf.one_hot(self.permutation, channels, dtype=lu.dtype), lower, upper

    @property
    def log_s(self):
        return tf.linalg.diag_part(self.lower_upper)

    def kernel(self):
        """W, as a [C_in, C_out] matrix: y = x @ W."""
        permutation, lower, upper = self._factors()
        return permutation @ (lower @ upper)

    def inverse_kernel(self):
        """W^-1 = (U + D)^-1 (L + I)^-1 P^T, by two triangular solves."""
        permutation, lower, upper = self._factors()
        solved = tf.linalg.triangular_solve(lower, tf.transpose(permutation), lower=True)
        return tf.linalg.triangular_solve(upper, solved, lower=False)

    def log_det(self):
        """log|det W| = sum(log_s), per pixel."""
        return tf.reduce_sum(self.log_s)

    def call(self, x):
        return tf.tensordot(x, self.kernel(), axes=1)

    @property
    def bijector(self):
        """A `tfp.bijectors.Bijector` view of this layer (forward = `call`)."""
        return InvertibleConv1x1Bijector(self)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class InvertibleConv1x1Bijector(tfp.bijectors.Bijector):
    """Per-pixel linear bijector built from an `InvertibleConv1x1` layer.

    forward:  y = x W         log|det dy/dx| =  sum(log_s)
    inverse:  x = y W^-1      log|det dx/dy| = -sum(log_s)

    Log-determinants are per pixel (min event ndims 1); TFP multiplies them by
    H*W when called with event_ndims=3 on [H, W, C] frames.
    """

    def __init__(self, layer, validate_args=False, name="invertible_conv_1x1"):
        parameters = dict(locals())
        self._layer = layer
        super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True,
                         validate_args=validate_args, parameters=parameters,
                         dtype=tf.as_dtype(layer.variable_dtype), name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _forward(self, x):
        return tf.tensordot(x, self._layer.kernel(), axes=1)

    def _inverse(self, y):
        return tf.tensordot(y, self._layer.inverse_kernel(), axes=1)

    def _forward_log_det_jacobian(self, x):
        return self._layer.log_det()

    def _inverse_log_det_jacobian(self, y):
        return -self._layer.log_det()
