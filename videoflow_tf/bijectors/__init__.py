"""Invertible layers of the per-frame flow.

Each Keras layer owns its weights (Keras 3 does not track variables created by
TFP) and exposes `.bijector`, a `tfp.bijectors.Bijector` built from them whose
forward direction maps data towards the latent (the direction of the formulas
in each docstring). `videoflow_tf.flow.MultiScaleGlow.bijector` composes them
with `tfp.bijectors.Glow`'s convention instead (forward = latent -> frame).
"""
from videoflow_tf.bijectors import actnorm, coupling, coupling_network, invertible_conv, one_pass
from videoflow_tf.bijectors import split, squeeze
from videoflow_tf.bijectors.actnorm import ActNorm, ActNormBijector, data_dependent_init
from videoflow_tf.bijectors.coupling import Coupling, CouplingBijector
from videoflow_tf.bijectors.coupling_network import CouplingNetwork, EdgePaddedConv2D
from videoflow_tf.bijectors.invertible_conv import InvertibleConv1x1, InvertibleConv1x1Bijector
from videoflow_tf.bijectors.split import level_split
from videoflow_tf.bijectors.squeeze import Squeeze
