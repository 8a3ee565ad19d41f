"""Every hyper-parameter of a VideoFlow model in one frozen, validated dataclass.

`get_config(name)` returns a named configuration: the paper's three tensor2tensor hparam
sets (`bair_quant`, `bair_qual`, `shapes`: next_frame_glow_bair_quant, _bair_qual and
_shapes; the defaults are bair_quant's), the 32x32 stochastic-shapes recipe for two CPU
cores (`shapes_32`), the baseline its changes were measured against
(`shapes_32_baseline`), the recipe at the dataset's 64x64 (`shapes_64`) and a very small
one for tests (`tiny`). `config.replace(**changes)` returns a validated variant;
`to_dict`/`from_dict` and `to_json`/`from_json` round-trip exactly, so a resolved
configuration can be written next to a trained model (`usage.resolve_config` makes the
config a command asks for).
"""
import dataclasses
import json
import math
from typing import Optional

COUPLINGS = ("affine", "additive")
ACTIVATIONS = ("relu", "gatu")
LATENT_ENCODERS = ("conv3d_net", "conv_net", "pointwise", "conv_lstm")
MEMORY_SAVING = ("auto", "on", "off")
DEQUANTIZATIONS = ("uniform", "variational")


@dataclasses.dataclass(frozen=True)
class VideoFlowConfig:
    """Hyper-parameters of VideoFlow, one line each, in four sections. Defaults are
    tensor2tensor's next_frame_glow_bair_quant; options the paper does not have default
    to the paper's behaviour.

    Model (the architecture and its weights; changing one makes another model):
      image_size: frames are image_size x image_size RGB.
      num_levels, num_steps: the flow's levels (squeeze, steps, split) and steps per level.
      coupling: "affine" or "additive" coupling in every flow step.
      coupling_width, coupling_activation: the coupling network's hidden channels and
        middle activation ("relu" or "gatu", tanh(a) * sigmoid(b)).
      dequantization: pixels become the flow's input by "uniform" noise in each pixel's
        bin (the paper's) or "variational" noise from a learned q(u | x) (Flow++); both
        bound the discrete likelihood (`videoflow_tf.model.dequantization`).
      latent_encoder, latent_encoder_width, latent_encoder_depth, latent_dilations,
        latent_activation: the prior's network (`latent_encoders.EncoderSpec`); every named
        config uses the paper's conv3d_net, the others are tensor2tensor's alternatives.
      latent_encoder_width_level1: the finest level's encoder width (None: as the
        others'). Its latent has the most positions, so at 64x64 this one encoder costs
        a third of a training step (docs/shapes_64.md).
      num_cond_latents: K, the earlier frames' latents each conditional prior reads.
      latent_skip: a conditional prior's mean is the previous latent plus the prediction.
      pad_history: a frame with 1 <= n < K predecessors gets the conditional prior of its
        history padded with the oldest latent (the paper: the unconditional prior).
      top_prior_components: M > 1 makes the top level's conditional prior a mixture of M
        Gaussians (`mixture_prior`); 1: one Gaussian, the paper's.
      mixed_precision: the coupling networks compute in bfloat16; weights, the flow's
        activations, log-determinants and the prior stay float32 (exactly invertible).
      seed: fixes the weight initialisation and training's random draws (None: random).

    Data (which frames are read and scored):
      dataset: the TFDS dataset ("bair_action_free" or "stochastic_shapes").
      num_context_frames, num_target_frames: evaluation scores the targets given the context.
      num_train_frames: frames of a training window; those after the context are scored.
      train_first_frames_only: windows come from a video's first num_context_frames +
        num_target_frames frames (`train_clip_frames`, tensor2tensor's rule), else anywhere.

    Training (how the weights are fitted; none changes what a trained model computes):
      learning_rate, warmup_steps: Adam's rate, reached by a linear warm-up.
      cosine_decay_steps, cosine_decay_floor: after the warm-up, a cosine decay over that
        many steps to that fraction of the rate (0 steps: none).
      train_steps: the updates `videoflow-tf train` makes when not given --steps.
      gradient_clip_norm: caps each update's global gradient norm (None: no clipping).
      video_bpp_cap: a training video scoring more bits per pixel than this pulls on the
        update as hard as one at the cap, in its own direction (`loss.capped_mean`;
        None: no cap, the paper's).
      batch_size, init_batch_size: videos per update; videos the ActNorms and the mixture
        are initialised from.
      prior_beta: > 0 fits the priors with beta-NLL's gradient (`loss`); 0: maximum
        likelihood, the paper's. Every reported likelihood stays exact.
      revive_components_every: N > 0 splits live mixture components into dead ones when
        training starts and every N steps (`callbacks.ReviveComponents`); 0: never.
      memory_saving: "on" recomputes each flow step's activations in the backward pass
        (a third more compute, flat memory in num_steps), "auto" when they would exceed
        1 GiB (`flow_activation_bytes`), "off"; the gradients are the same.

    Sampling:
      temperature: scales every prior standard deviation when sampling.

    `name` names the configuration. `to_dict`/`to_json` write `config_version`, and
    `from_dict`/`from_json` upgrade what older versions wrote (`upgrade`).
    """

    name: str = "custom"
    # Model
    image_size: int = 64
    num_levels: int = 3
    num_steps: int = 24
    coupling: str = "affine"
    coupling_width: int = 512
    coupling_activation: str = "gatu"
    dequantization: str = "uniform"
    latent_encoder: str = "conv3d_net"
    latent_encoder_width: int = 256
    latent_encoder_width_level1: Optional[int] = None
    latent_encoder_depth: int = 5
    latent_dilations: bool = True
    latent_activation: str = "gatu"
    num_cond_latents: int = 3
    latent_skip: bool = True
    pad_history: bool = False
    top_prior_components: int = 1
    mixed_precision: bool = False
    seed: Optional[int] = None
    # Data
    dataset: str = "bair_action_free"
    num_context_frames: int = 3
    num_target_frames: int = 10
    num_train_frames: int = 4
    train_first_frames_only: bool = True
    # Training
    learning_rate: float = 3e-4
    warmup_steps: int = 10000
    cosine_decay_steps: int = 0
    cosine_decay_floor: float = 0.0
    train_steps: int = 10000
    gradient_clip_norm: Optional[float] = None
    video_bpp_cap: Optional[float] = None
    batch_size: int = 5
    init_batch_size: int = 128
    prior_beta: float = 0.0
    revive_components_every: int = 0
    memory_saving: str = "auto"
    # Sampling
    temperature: float = 1.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _check_type(field, getattr(self, field.name))
        # Floats given as ints (learning_rate=1) are stored as floats so that
        # to_dict/from_dict and equality are exact.
        for name in ("learning_rate", "temperature", "gradient_clip_norm", "video_bpp_cap",
                     "prior_beta", "cosine_decay_floor"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        for name, rule, expected in _RULES:
            if not rule(self):
                raise ValueError(
                    f"invalid VideoFlowConfig.{name} = {getattr(self, name)!r}: "
                    f"expected {expected}")

    @property
    def image_shape(self):
        """(height, width, channels) of one frame."""
        return (self.image_size, self.image_size, 3)

    @property
    def latent_shapes(self):
        """(h, w, c) of every level's latent, finest first (see `latent_shapes`)."""
        return latent_shapes(self.image_shape, self.num_levels)

    @property
    def flow_activation_bytes(self):
        """Bytes of the coupling networks' hidden activations that backpropagation through
        the flow stores for a training batch (batch_size windows of num_train_frames
        frames, float32), an estimate of the memory that `memory_saving` avoids."""
        hidden = self.coupling_width * (3 if self.coupling_activation == "gatu" else 2)
        pixels = sum(h * w for h, w, _ in self.latent_shapes)
        return 4 * self.batch_size * self.num_train_frames * self.num_steps * pixels * hidden

    @property
    def train_clip_frames(self):
        """How many of a video's first frames training windows come from with
        `train_first_frames_only` (at least a window's worth); None: the whole video."""
        if not self.train_first_frames_only:
            return None
        return max(self.num_train_frames, self.num_context_frames + self.num_target_frames)

    @property
    def min_history(self):
        """Predecessors a frame needs for the conditional prior: num_cond_latents, or 1
        with `pad_history`; earlier frames get the unconditional prior."""
        return 1 if self.pad_history else self.num_cond_latents

    @property
    def recomputes_activations(self):
        """Whether training recomputes the flow's activations (`memory_saving` resolved)."""
        if self.memory_saving == "auto":
            return self.flow_activation_bytes > 2 ** 30
        return self.memory_saving == "on"

    def replace(self, **changes):
        """Returns a validated copy with `changes` applied."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Every field, and `config_version`."""
        return {**dataclasses.asdict(self), "config_version": CONFIG_VERSION}

    @classmethod
    def from_dict(cls, values):
        """The config of a dict that `to_dict` of this or an older version wrote (one
        without `config_version` is version 1); see `upgrade`."""
        values = upgrade(values)
        _check_names(values)
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


# 2: sections; train_first_frames_only defaults to True; prior_reads_x1 removed.
CONFIG_VERSION = 2


def upgrade(values):
    """A copy of a config dict written by `to_dict` of any version, in this version's
    fields (without `config_version`), meaning what it meant when written:

    version 1 (no `config_version`): a missing train_first_frames_only was False (the
    default until version 2); prior_reads_x1 (the conditional prior read x1 instead of
    the unconditional mean; no named config or shipped model used it, only experiment d
    of docs/experiments.md) is dropped when False and refused when True.
    """
    values = dict(values)
    version = values.pop("config_version", 1)
    if not isinstance(version, int) or not 1 <= version <= CONFIG_VERSION:
        raise ValueError(f"config_version {version!r} is not one this videoflow-tf reads "
                         f"(1 to {CONFIG_VERSION})")
    if version == 1:
        values.setdefault("train_first_frames_only", False)
        if values.pop("prior_reads_x1", False):
            raise ValueError("prior_reads_x1=true is no longer supported: config version 2 "
                             "removed it (only experiment d of docs/experiments.md used it)")
    return values


def _check_names(values):
    valid = [field.name for field in dataclasses.fields(VideoFlowConfig)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(f"unknown VideoFlowConfig field(s) {unknown}; valid fields: {valid}")


_TYPES = {int: "an int", float: "a number", bool: "a bool", str: "a str",
          Optional[int]: "an int or None", Optional[float]: "a number or None"}


def _check_type(field, value):
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = {
        int: is_int,
        float: is_int or isinstance(value, float),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
        Optional[int]: value is None or is_int,
        Optional[float]: value is None or is_int or isinstance(value, float),
    }[field.type]
    if not ok:
        raise ValueError(f"invalid VideoFlowConfig.{field.name} = {value!r}: "
                         f"expected {_TYPES[field.type]}")


# (field, rule, what the rule expects): every value is checked by __post_init__.
_RULES = [
    ("num_levels", lambda c: c.num_levels >= 1, "an int >= 1"),
    ("image_size", lambda c: c.image_size >= 2 ** c.num_levels
     and c.image_size % 2 ** c.num_levels == 0,
     "a multiple of 2**num_levels (each level halves the frame)"),
    ("num_steps", lambda c: c.num_steps >= 1, "an int >= 1"),
    ("coupling", lambda c: c.coupling in COUPLINGS, f"one of {COUPLINGS}"),
    ("coupling_width", lambda c: c.coupling_width >= 1, "an int >= 1"),
    ("coupling_activation", lambda c: c.coupling_activation in ACTIVATIONS,
     f"one of {ACTIVATIONS}"),
    ("dequantization", lambda c: c.dequantization in DEQUANTIZATIONS,
     f"one of {DEQUANTIZATIONS}"),
    ("latent_encoder", lambda c: c.latent_encoder in LATENT_ENCODERS,
     f"one of {LATENT_ENCODERS}"),
    ("latent_encoder_width", lambda c: c.latent_encoder_width >= 1, "an int >= 1"),
    ("latent_encoder_width_level1", lambda c: c.latent_encoder_width_level1 is None
     or c.latent_encoder_width_level1 >= 1, "None (latent_encoder_width) or an int >= 1"),
    ("latent_encoder_depth", lambda c: c.latent_encoder_depth >= 1, "an int >= 1"),
    ("latent_activation", lambda c: c.latent_activation in ACTIVATIONS,
     f"one of {ACTIVATIONS}"),
    ("num_cond_latents", lambda c: c.num_cond_latents >= 1, "an int >= 1"),
    ("num_context_frames", lambda c: c.num_context_frames >= 1, "an int >= 1"),
    ("num_target_frames", lambda c: c.num_target_frames >= 1, "an int >= 1"),
    ("num_train_frames", lambda c: c.num_train_frames > c.num_context_frames,
     "more than num_context_frames (a training window must score a frame)"),
    ("top_prior_components", lambda c: c.top_prior_components >= 1,
     "an int >= 1 (1: a Gaussian top prior, the paper's)"),
    ("prior_beta", lambda c: 0 <= c.prior_beta <= 1,
     "a number from 0 (maximum likelihood, the paper's) to 1"),
    ("revive_components_every", lambda c: c.revive_components_every == 0
     or (c.revive_components_every > 0 and c.top_prior_components > 1),
     "an int >= 0 (0: never), and 0 unless top_prior_components > 1 (a mixture)"),
    ("learning_rate", lambda c: math.isfinite(c.learning_rate) and c.learning_rate > 0,
     "a finite number > 0"),
    ("warmup_steps", lambda c: c.warmup_steps >= 0, "an int >= 0"),
    ("cosine_decay_steps", lambda c: c.cosine_decay_steps >= 0, "an int >= 0 (0: no decay)"),
    ("train_steps", lambda c: c.train_steps >= 1, "an int >= 1"),
    ("cosine_decay_floor", lambda c: 0 <= c.cosine_decay_floor <= 1,
     "a number from 0 to 1 (the final fraction of learning_rate)"),
    ("gradient_clip_norm", lambda c: c.gradient_clip_norm is None
     or (math.isfinite(c.gradient_clip_norm) and c.gradient_clip_norm > 0),
     "None (no clipping) or a finite number > 0"),
    ("video_bpp_cap", lambda c: c.video_bpp_cap is None
     or (math.isfinite(c.video_bpp_cap) and c.video_bpp_cap > 0),
     "None (no cap) or a finite number > 0"),
    ("batch_size", lambda c: c.batch_size >= 1, "an int >= 1"),
    ("init_batch_size", lambda c: c.init_batch_size >= 1, "an int >= 1"),
    ("temperature", lambda c: math.isfinite(c.temperature) and c.temperature >= 0,
     "a finite number >= 0"),
    ("memory_saving", lambda c: c.memory_saving in MEMORY_SAVING, f"one of {MEMORY_SAVING}"),
]

# Changes from the defaults, which are tensor2tensor's next_frame_glow_bair_quant.
_SHAPES_32_BASELINE = dict(
    dataset="stochastic_shapes", image_size=32, num_steps=4, coupling="additive",
    coupling_width=64, coupling_activation="relu", latent_encoder_width=128,
    latent_encoder_depth=3, latent_activation="relu", latent_skip=True, num_cond_latents=2,
    pad_history=True, num_context_frames=1, num_target_frames=4, num_train_frames=5,
    learning_rate=5e-4, warmup_steps=500, gradient_clip_norm=50.0, batch_size=8,
    init_batch_size=64)
_SHAPES_32 = dict(_SHAPES_32_BASELINE, latent_skip=False, num_cond_latents=1,
                  pad_history=False, top_prior_components=8, revive_components_every=1000,
                  prior_beta=0.5, cosine_decay_steps=50000, cosine_decay_floor=0.1,
                  train_steps=50500, temperature=0.5)
_CONFIGS = {
    "bair_quant": dict(),
    "bair_qual": dict(coupling="additive", coupling_width=392, temperature=0.5),
    "shapes": dict(dataset="stochastic_shapes", coupling="additive",
                   coupling_width=512, latent_encoder_depth=10, num_cond_latents=1,
                   latent_skip=False, num_context_frames=1, num_target_frames=2,
                   num_train_frames=2, learning_rate=1e-4, batch_size=10),
    # Stochastic shapes at 32x32 with a narrow flow, trained on whole 5-frame videos
    # (4 scored transitions per video): the baseline that docs/experiments.md's variants
    # change, and the first shipped model (its samples never move). The prior reads the
    # last two frames, padded with the first for the second frame, and the latent skip
    # makes "the shape stays where it was" its starting guess. The top level's latent has
    # 48 channels and a 32-wide encoder (tried first) never learned to move it, hence 128.
    # Gradients are clipped at about twice their late-training norm (~27): two unclipped
    # runs at this learning rate blew up between 10k and 12.4k steps.
    "shapes_32_baseline": _SHAPES_32_BASELINE,
    # The 32x32 stochastic-shapes recipe, trained by one command on two CPU cores
    # (`videoflow-tf train --config shapes_32 --model-dir DIR`); docs/experiments.md
    # measures its changes from the baseline. No latent skip (its sampled noise piles up
    # from frame to frame), and the prior reads one frame: every video starts at the
    # canvas centre, so one frame's offset from it shows the direction to continue. The
    # top prior is a mixture of 8 Gaussians (one draw picks one future) whose dead
    # components are revived every 1,000 steps; the priors are fitted with beta-NLL's
    # gradient, so that the few latent dimensions where the shape is are not drowned by
    # the background's; the learning rate falls along a cosine. Uniform dequantisation:
    # the variational one gained nothing measurable at equal compute and cost 16% more
    # per step (docs/experiments.md).
    "shapes_32": _SHAPES_32,
    # shapes_32 at the dataset's own 64x64 frames (no resize): one more level keeps the
    # top latent 4x4, so the top prior, whose mixture picks the direction, sees the same
    # grid as at 32x32 (4x4x96 instead of 4x4x48). Each training video's pull is capped
    # at that of one scoring 8 bits per pixel, a uniform guess: without the cap the run
    # collapsed at 23,600 steps, after one rare video scored millions (docs/shapes_64.md).
    # The learning rate falls along a cosine of 34,000 steps instead of 50,000: at 50,000
    # the rate near step 26,600 (2.6e-4) threw the level-3 prior over-confident and the
    # run fell apart again, cap or not; at 34,000 (1.0e-4 there) it held. Temperature 0
    # (each level's mean, the top level's component still drawn) had the most faithful
    # futures on validation among 0, 0.1, 0.3, 0.5, 0.7 and 1 (docs/shapes_64.md).
    "shapes_64": dict(_SHAPES_32, image_size=64, num_levels=4, video_bpp_cap=8.0,
                      cosine_decay_steps=34_000, train_steps=34_500, temperature=0.0),
    # About 24,000 parameters on 8x8 frames: for tests.
    "tiny": dict(dataset="stochastic_shapes", image_size=8, num_levels=2,
                 num_steps=2, coupling_width=8, coupling_activation="relu",
                 latent_encoder_width=8, latent_encoder_depth=1, latent_activation="relu",
                 num_cond_latents=2, num_context_frames=2, num_target_frames=2,
                 num_train_frames=3, learning_rate=5e-3, warmup_steps=0, batch_size=4,
                 init_batch_size=4, seed=0),
}
CONFIG_NAMES = tuple(_CONFIGS)
# Names that were given up, with the name of the same config now.
_RENAMED = {"shapes_cpu": "shapes_32_baseline"}


def latent_shapes(frame_shape, num_levels):
    """(h, w, c) of every level's latent of a (H, W, C) frame, finest first: [z^(1), ...,
    z_top]. A level squeezes (h, w, c) to (h/2, w/2, 4c) and, except the last, keeps half:
    z^(l) = (H/2^l, W/2^l, C*2^l) for l < L and z_top = (H/2^L, W/2^L, C*2^(L+1))."""
    (height, width, channels), shapes = frame_shape, []
    for level in range(1, num_levels + 1):
        height, width, channels = height // 2, width // 2, channels * 4
        if level < num_levels:
            channels //= 2
        shapes.append((height, width, channels))
    return shapes


def current_name(name):
    """The name the config once called `name` goes by now (a config.json written before a
    rename still says the old one)."""
    return _RENAMED.get(name, name)


def get_config(name):
    """Returns the named `VideoFlowConfig` (one of `CONFIG_NAMES`)."""
    if name in _RENAMED:
        raise ValueError(f"config {name!r} is now called {_RENAMED[name]!r} (the 32x32 "
                         f"stochastic-shapes recipe is 'shapes_32')")
    if name not in _CONFIGS:
        raise ValueError(f"unknown config {name!r}; expected one of {list(CONFIG_NAMES)}")
    return VideoFlowConfig(name=name, **_CONFIGS[name])
