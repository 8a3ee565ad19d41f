"""Base class for bijectors that compute their output and log-determinant together.

A coupling layer's log-determinant needs the same network evaluation as its
output. TFP computes `forward` and `forward_log_det_jacobian` separately, so
by default the network would run twice. TFP's greedy-attribute cache (the one
its FFJORD bijector uses) stores the log-determinant next to the cached
output, so `forward(x)` followed by `forward_log_det_jacobian(x)` (as in
`TransformedDistribution.log_prob`) costs one pass; a log-determinant asked
for alone runs the pass once and caches both.

As for every TFP bijector, the cache is keyed by the input tensor: after
changing the weights, call the bijector on new tensors (as training does).
"""
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import cache_util


class OnePassBijector(tfp.bijectors.Bijector):
    """Subclasses implement `_forward_and_log_det(x) -> (y, log|det dy/dx|)` and
    `_inverse_and_log_det(y) -> (x, log|det dx/dy|)`."""

    _cache = cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse")

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _augmented_forward(self, x):
        y, fldj = self._forward_and_log_det(x)
        return y, {"ildj": -fldj}

    def _augmented_inverse(self, y):
        x, ildj = self._inverse_and_log_det(y)
        return x, {"ildj": ildj}

    def _forward(self, x):
        return self._forward_and_log_det(x)[0]

    def _inverse(self, y):
        return self._inverse_and_log_det(y)[0]

    def _forward_log_det_jacobian(self, x):
        self.forward(x)  # fills the cache's attributes for x
        return -self._cache.forward_attributes(x)["ildj"]

    def _inverse_log_det_jacobian(self, y):
        self.inverse(y)
        return self._cache.inverse_attributes(y)["ildj"]
