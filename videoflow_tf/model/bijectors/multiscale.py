"""MultiScale: Glow's multi-scale architecture as one composition of bijectors."""
import numpy as np
import tensorflow_probability as tfp

from videoflow_tf.model.bijectors import flow_bijector, split

tfb = tfp.bijectors


def flattening(latent_shapes):
    """A bijector [z_1, ..., z_L] -> one flat vector [sum of their sizes]: each latent
    flattened, then concatenated in order (TFP's Reshape, and Split inverted)."""
    sizes = [int(np.prod(shape)) for shape in latent_shapes]
    return tfb.Chain([
        tfb.Invert(tfb.Split(sizes, axis=-1)),
        tfb.JointMap([tfb.Reshape([size], event_shape_in=shape)
                      for size, shape in zip(sizes, latent_shapes)])], name="flattening")


class MultiScale(tfp.bijectors.Composition):
    """Frames [..., H, W, C] -> flat latents [..., H*W*C] through L levels (data -> latent).

    forward:  h = x
              level l < L:  [h, z_l] = split(level_l(h))   (split: `LevelSplit`, channel halves;
                                                          h continues, z_l leaves the flow)
              level L:      z_L = level_L(h)
              z = flattening([z_1, ..., z_L])
              log|det dz/dx| = sum_l log|det d level_l|   (split and flattening: 0)
    inverse:  [z_1, ..., z_L] = flattening^-1(z)
              h = level_L^-1(z_L)
              level l < L, from L-1 down:  h = level_l^-1(split^-1([h, z_l]))
              x = h                        log|det dx/dz| = -(the above at x)

    Each level is a bijector with the one-pass methods of `FlowBijector` (in the flow: a
    `FlowChain` of a squeeze and the level's steps). TFP's interface walks the levels
    through TFP's caches; `forward_levels` and `inverse_levels` walk the same parts with
    their one-pass methods and return what the flow's prior needs besides: the latents
    unflattened, and the half that continues at each split.

    Args:
      levels: the L level bijectors, finest first.
      frame_shape: (H, W, C) of the frames.
      latent_shapes: (h, w, c) of [z_1, ..., z_L].
    """

    def __init__(self, levels, frame_shape, latent_shapes, validate_args=False,
                 name="multi_scale"):
        parameters = dict(locals())
        self._levels = list(levels)
        self._frame_shape = tuple(frame_shape)
        self._latent_shapes = [tuple(shape) for shape in latent_shapes]
        self._split = split.LevelSplit()
        self._flattening = flattening(self._latent_shapes)
        super().__init__(bijectors=self._levels + [self._split, self._flattening], name=name,
                         parameters=parameters,
                         forward_min_event_ndims=flow_bijector.EVENT_NDIMS,
                         inverse_min_event_ndims=1, validate_args=validate_args)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}  # weights live in Keras layers, which TFP need not batch or slice

    @property
    def levels(self):
        return list(self._levels)

    def _route_forward(self, step_fn, x):
        """x through the levels and splits by `step_fn(part, input) -> output`:
        (latents [z_1, ..., z_L], the continuing halves [h_1, ..., h_{L-1}])."""
        latents, continuing = [], []
        for level in self._levels[:-1]:
            x, z = step_fn(self._split, step_fn(level, x))
            latents.append(z)
            continuing.append(x)
        latents.append(step_fn(self._levels[-1], x))
        return latents, continuing

    def _route_inverse(self, step_fn, top, next_latent):
        """From z_L = `top` back to x by `step_fn`; `next_latent(i, h)` supplies latents[i]
        given the continuing half h at that split. Returns (x, latents)."""
        h = step_fn(self._levels[-1], top)
        latents = [top]
        for index in reversed(range(len(self._levels) - 1)):
            z = next_latent(index, h)
            latents.insert(0, z)
            h = step_fn(self._levels[index], step_fn(self._split, [h, z]))
        return h, latents

    # TFP's interface: the events' shapes checked, then TFP's traversal hooks.
    def _checked(self, value, frames):
        shape = self._frame_shape if frames else (int(np.prod(self._frame_shape)),)
        if tuple(value.shape[-len(shape):]) != shape:
            raise ValueError(f"expected {'frames' if frames else 'flat latents'} of shape "
                             f"[..., {', '.join(map(str, shape))}], got {value.shape}")
        return value

    def _forward(self, x):
        return super()._forward(self._checked(x, frames=True))

    def _inverse(self, z):
        return super()._inverse(self._checked(z, frames=False))

    def _forward_log_det_jacobian(self, x, event_ndims):
        return super()._forward_log_det_jacobian(self._checked(x, frames=True), event_ndims)

    def _inverse_log_det_jacobian(self, z, event_ndims):
        return super()._inverse_log_det_jacobian(self._checked(z, frames=False), event_ndims)

    def _walk_forward(self, step_fn, x):
        latents, _ = self._route_forward(step_fn, x)
        return step_fn(self._flattening, latents)

    def _walk_inverse(self, step_fn, z):
        latents = step_fn(self._flattening, z)
        return self._route_inverse(step_fn, latents[-1], lambda index, _: latents[index])[0]

    def forward_levels(self, x):
        """One pass, data -> latent, without the flattening: (latents [z_1, ..., z_L],
        the continuing halves [h_1, ..., h_{L-1}] (h_l: the half that continues at the
        split that makes z_l), log|det dz/dx|)."""
        log_dets = []
        latents, continuing = self._route_forward(
            flow_bijector.one_pass_step("forward", log_dets), x)
        return latents, continuing, flow_bijector.total(log_dets)

    def inverse_levels(self, top, next_latent):
        """One pass, latent -> data, from z_L = `top`: for i = L-2, ..., 0 (the index into
        latents) `next_latent(i, h)` supplies latents[i] given h, the half that continues
        at that split (what `forward_levels` returns as continuing[i]). Returns (x,
        latents [z_1, ..., z_L], log|det dx/dz|)."""
        log_dets = []
        x, latents = self._route_inverse(flow_bijector.one_pass_step("inverse", log_dets), top,
                                         next_latent)
        return x, latents, flow_bijector.total(log_dets)

    def frozen(self):
        """The same composition of its levels' `frozen()`."""
        return MultiScale([level.frozen() for level in self._levels], self._frame_shape,
                          self._latent_shapes, validate_args=self.validate_args,
                          name=self.name)
