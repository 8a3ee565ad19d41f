"""FlowChain: flow bijectors applied in sequence, in one pass or through TFP."""
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.model.bijectors import flow_bijector


class FlowChain(tfp.bijectors.Composition):
    """Flow bijectors applied in sequence on frames [..., H, W, C], the last listed first
    (`tfp.bijectors.Chain`'s order):

    forward:  y = b_1(b_2(... b_n(x)))     log|det dy/dx| = sum_i log|det db_i|
    inverse:  x = b_n^-1(... b_1^-1(y))    log|det dx/dy| = -(the above at x)

    TFP's interface walks the parts through TFP's caches; `forward_and_log_det` and
    `inverse_and_log_det` walk the same parts with their one-pass methods. With
    `recompute`, backpropagation through `forward_and_log_det` stores only the chain's
    input and recomputes its activations when it reaches the chain (`tf.recompute_grad`),
    so a flow of such chains keeps one chain's activations at a time, for one more forward
    pass; the gradients are those of plain backpropagation (the same operations on the
    same inputs).

    Args:
      bijectors: `FlowBijector`s or `FlowChain`s (anything with the one-pass methods and
        `frozen`).
      recompute: see above.
    """

    def __init__(self, bijectors, recompute=False, validate_args=False, name="flow_chain"):
        parameters = dict(locals())
        self._recompute = bool(recompute)
        super().__init__(bijectors=list(bijectors), name=name, parameters=parameters,
                         forward_min_event_ndims=flow_bijector.EVENT_NDIMS,
                         inverse_min_event_ndims=flow_bijector.EVENT_NDIMS,
                         validate_args=validate_args)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}  # weights live in Keras layers, which TFP need not batch or slice

    def _walk_forward(self, step_fn, x):
        for bijector in reversed(self.bijectors):
            x = step_fn(bijector, x)
        return x

    def _walk_inverse(self, step_fn, y):
        for bijector in self.bijectors:
            y = step_fn(bijector, y)
        return y

    def forward_and_log_det(self, x):
        """(y, log|det dy/dx|) in one pass through every part."""
        walk = tf.recompute_grad(self._forward_one_pass) if self._recompute else (
            self._forward_one_pass)
        return walk(x)

    def _forward_one_pass(self, x):
        log_dets = []
        y = self._walk_forward(flow_bijector.one_pass_step("forward", log_dets), x)
        return y, flow_bijector.total(log_dets)

    def inverse_and_log_det(self, y):
        """(x, log|det dx/dy|) in one pass through every part."""
        log_dets = []
        x = self._walk_inverse(flow_bijector.one_pass_step("inverse", log_dets), y)
        return x, flow_bijector.total(log_dets)

    def frozen(self):
        """The chain of its parts' `frozen()`."""
        return FlowChain([bijector.frozen() for bijector in self.bijectors],
                         recompute=self._recompute, validate_args=self.validate_args,
                         name=self.name)
