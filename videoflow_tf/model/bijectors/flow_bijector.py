"""Base class of the flow's bijectors: output and log-determinant from one pass.

Every bijector of the per-frame flow acts on frames [..., H, W, C] (min event ndims 3) and
its forward direction maps data towards the latent (the direction of the formulas in each
docstring). A subclass implements

    _forward_and_log_det(x) -> (y, log|det dy/dx|)
    _inverse_and_log_det(y) -> (x, log|det dx/dy|)

with log-determinants per frame, of shape [...] (or a scalar when the same for every
frame). A coupling layer's log-determinant needs the same network evaluation as its
output, so both come from one pass:

* `forward_and_log_det` and `inverse_and_log_det` call that pass directly. The flow's own
  walks use them: they need both results, and under `tf.recompute_grad` TFP's cache
  (below) would hand back outputs computed outside the recomputation, which carry no
  gradient.
* TFP's interface (`forward`, then `forward_log_det_jacobian` on the same tensor, as
  `tfd.TransformedDistribution.log_prob` asks) runs the pass once and takes the
  log-determinant from TFP's cache.

`frozen()` returns the bijector with the weights it derives from its layers' variables
(W^-1, folded kernels) computed once, now: for a loop that applies it many times with the
same weights (sampling). Unfrozen bijectors read the variables at every call, as training
needs.
"""
import tensorflow_probability as tfp
# Private: TFP's default cache keeps outputs only, so TFP would compute the
# log-determinant in a second pass. The cache that keeps a log-determinant computed with
# the output (TFP's own FFJORD bijector uses it) is internal, and no public API keeps one.
# tests/test_bijectors.py::test_tfp_interface_runs_one_pass_per_direction fails if TFP
# changes under it.
from tensorflow_probability.python.internal import cache_util

EVENT_NDIMS = 3


class FlowBijector(tfp.bijectors.Bijector):
    """A bijector on frames [..., H, W, C] computing output and log-determinant together.

    Subclasses call `super().__init__(dtype=..., name=..., parameters=...)` and implement
    `_forward_and_log_det`, `_inverse_and_log_det`, and `frozen` if they derive weights.
    """

    _cache = cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse")

    def __init__(self, forward_min_event_ndims=EVENT_NDIMS, **kwargs):
        super().__init__(forward_min_event_ndims=forward_min_event_ndims, **kwargs)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}  # weights live in Keras layers, which TFP need not batch or slice

    def forward_and_log_det(self, x):
        """(y, log|det dy/dx|) in one pass, bypassing TFP's cache."""
        return self._forward_and_log_det(x)

    def inverse_and_log_det(self, y):
        """(x, log|det dx/dy|) in one pass, bypassing TFP's cache."""
        return self._inverse_and_log_det(y)

    def frozen(self):
        """This bijector with its derived weights computed now (itself if it has none)."""
        return self

    # TFP's interface: the greedy cache stores what `_augmented_*` return next to the output.
    def _augmented_forward(self, x):
        y, log_det = self._forward_and_log_det(x)
        return y, {"ildj": -log_det}

    def _augmented_inverse(self, y):
        x, log_det = self._inverse_and_log_det(y)
        return x, {"ildj": log_det}

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


def one_pass_step(direction, log_dets):
    """A step function for a composition's walk ("forward" or "inverse"): applies a part
    with its one-pass method, appends the part's log-determinant to `log_dets`, returns
    the part's output."""
    def step(bijector, value):
        value, log_det = getattr(bijector, f"{direction}_and_log_det")(value)
        log_dets.append(log_det)
        return value

    return step


def total(log_dets):
    """The sum of per-frame log-determinants, in order (scalars broadcast to every frame)."""
    result = log_dets[0]
    for log_det in log_dets[1:]:
        result = result + log_det
    return result
