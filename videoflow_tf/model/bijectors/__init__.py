"""Invertible layers of the per-frame flow, and the bijectors that are their math.

Each Keras layer owns its weights (Keras 3 does not track variables created inside TFP
bijectors) and exposes `.bijector`, a `tfp.bijectors.Bijector` that reads them: the only
implementation of the layer's transformation, which the layer's `call` runs too. Their
forward direction maps data towards the latent (the direction of the formulas in each
docstring). `FlowChain` chains them (a flow step, a level), and `MultiScale` composes the
levels, the splits and the latents' flattening into the multi-scale Glow;
`videoflow_tf.model.flow.MultiScaleGlow.bijector` is that composition inverted, with
`tfp.bijectors.Glow`'s convention (forward = latent -> frame).
"""
from videoflow_tf.model.bijectors import actnorm, chain, coupling, coupling_network, flow_bijector
from videoflow_tf.model.bijectors import invertible_conv, multiscale, split, squeeze
from videoflow_tf.model.bijectors.actnorm import ActNorm, ActNormBijector
from videoflow_tf.model.bijectors.chain import FlowChain
from videoflow_tf.model.bijectors.coupling import Coupling, CouplingBijector
from videoflow_tf.model.bijectors.coupling_network import CouplingNetwork, EdgePaddedConv2D
from videoflow_tf.model.bijectors.flow_bijector import FlowBijector
from videoflow_tf.model.bijectors.invertible_conv import (InvertibleConv1x1,
                                                          InvertibleConv1x1Bijector)
from videoflow_tf.model.bijectors.multiscale import MultiScale
from videoflow_tf.model.bijectors.split import LevelSplit
from videoflow_tf.model.bijectors.squeeze import Squeeze
