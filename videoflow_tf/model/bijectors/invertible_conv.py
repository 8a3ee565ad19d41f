"""Invertible 1x1 convolution with an LU-parameterised kernel (Glow)."""
import keras
import numpy as np
import tensorflow as tf

from videoflow_tf.model.bijectors import flow_bijector


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

    def call(self, x):
        return self.bijector.forward_and_log_det(x)[0]

    @property
    def bijector(self):
        """The layer's transformation as a bijector (forward = `call`)."""
        return InvertibleConv1x1Bijector(self)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class InvertibleConv1x1Bijector(flow_bijector.FlowBijector):
    """Per-pixel linear bijector on frames [..., H, W, C], from an `InvertibleConv1x1`
    layer's LU factors: W = P (L + I)(U + diag(sign * exp(log_s))).

    forward:  y = x W         log|det dy/dx| =  H*W*sum(log_s)
    inverse:  x = y W^-1      log|det dx/dy| = -H*W*sum(log_s)

    W^-1 = (U + diag(sign * exp(log_s)))^-1 (L + I)^-1 P^T, by two triangular solves.

    Args:
      layer: the `InvertibleConv1x1` whose variables hold P, sign and the LU factors.
      derived: (W, W^-1, sum(log_s)) computed earlier (`frozen`); None computes them from
        the variables at every call.
    """

    def __init__(self, layer, derived=None, validate_args=False, name="invertible_conv_1x1"):
        parameters = dict(locals())
        self._layer = layer
        self._derived = derived
        super().__init__(validate_args=validate_args, parameters=parameters,
                         dtype=tf.as_dtype(layer.variable_dtype), name=name)

    def _factors(self):
        """(P as a one-hot matrix, L + I, U + diag(sign * exp(log_s)))."""
        lu = tf.convert_to_tensor(self._layer.lower_upper)
        channels = lu.shape[-1]
        eye = tf.eye(channels, dtype=lu.dtype)
        diagonal = tf.linalg.band_part(lu, 0, 0)
        lower = tf.linalg.band_part(lu, -1, 0) - diagonal + eye
        upper = (tf.linalg.band_part(lu, 0, -1) - diagonal
                 + tf.linalg.diag(self._layer.sign * tf.exp(tf.linalg.diag_part(lu))))
        return tf.one_hot(self._layer.permutation, channels, dtype=lu.dtype), lower, upper

    def kernel(self):
        """W, as a [C_in, C_out] matrix: y = x @ W."""
        if self._derived is not None:
            return self._derived[0]
        permutation, lower, upper = self._factors()
        return permutation @ (lower @ upper)

    def inverse_kernel(self):
        """W^-1, by two triangular solves."""
        if self._derived is not None:
            return self._derived[1]
        permutation, lower, upper = self._factors()
        solved = tf.linalg.triangular_solve(lower, tf.transpose(permutation), lower=True)
        return tf.linalg.triangular_solve(upper, solved, lower=False)

    def log_det(self):
        """log|det W| = sum(log_s): per pixel."""
        if self._derived is not None:
            return self._derived[2]
        return tf.reduce_sum(tf.linalg.diag_part(self._layer.lower_upper))

    def frozen(self):
        return InvertibleConv1x1Bijector(
            self._layer, (self.kernel(), self.inverse_kernel(), self.log_det()),
            validate_args=self.validate_args, name=self.name)

    def _forward_and_log_det(self, x):
        return (tf.tensordot(x, self.kernel(), axes=1),
                x.shape[-3] * x.shape[-2] * self.log_det())

    def _inverse_and_log_det(self, y):
        return (tf.tensordot(y, self.inverse_kernel(), axes=1),
                -y.shape[-3] * y.shape[-2] * self.log_det())
