"""Every hyper-parameter of a VideoFlow model in one frozen, validated dataclass.

`get_config(name)` returns a named configuration: the paper's three tensor2tensor hparam
sets (`bair_quant`, `bair_qual`, `shapes`: next_frame_glow_bair_quant, _bair_qual and
_shapes; the defaults are bair_quant's), a stochastic-shapes set sized for a CPU
(`shapes_cpu`) and a very small one for tests (`tiny`). `config.replace(**changes)`
returns a validated variant; `to_dict`/`from_dict` and `to_json`/`from_json` round-trip
exactly, so a resolved configuration can be written next to a trained model.
`resolve_config` makes the config a command asks for (`--config NAME --set FIELD=VALUE`).
"""
import dataclasses
import json
import math
from typing import Optional, get_args

from videoflow_tf.usage import UsageError

COUPLINGS = ("affine", "additive")
ACTIVATIONS = ("relu", "gatu")
LATENT_ENCODERS = ("conv3d_net", "conv_net", "pointwise", "conv_lstm")
MEMORY_SAVING = ("auto", "on", "off")
DEQUANTIZATIONS = ("uniform", "variational")


@dataclasses.dataclass(frozen=True)
class VideoFlowConfig:
    """Hyper-parameters of VideoFlow.

    Frames are `image_size` x `image_size` RGB. The flow has `num_levels` levels of
    `num_steps` steps each (ActNorm, invertible 1x1 conv, `coupling` coupling whose network
    has `coupling_width` hidden channels and a `coupling_activation` middle layer). Pixels
    become the flow's continuous input by `dequantization`: "uniform" noise within each
    pixel's bin (the paper's) or "variational", noise from a small network learned with
    the model (Flow++), which lets the flow put its density inside the bins rather than
    spread flat across them; both give a lower bound on the discrete likelihood
    (`videoflow_tf.dequantization`).

    The prior of a frame's level-l latent is a diagonal Gaussian predicted by a
    `latent_encoder` network (`latent_encoder_width` hidden channels,
    `latent_encoder_depth` residual blocks, or stacked ConvLSTM layers for `conv_lstm`;
    spatial dilations 1, 2, 4 when `latent_dilations`; `latent_activation` middle layer)
    from the same level's latents of the previous `num_cond_latents` frames and the
    current frame's coarser levels. With `latent_skip` the predicted mean is added to the
    previous frame's latent. With `prior_reads_x1` the encoder reads the current frame's
    coarser levels as x1 itself (the half of the flow's activations that continues past
    the level) rather than as the unconditional prior's mean, a zero-initialised conv of
    x1 that gives the encoder nothing to learn from until it grows. With
    `top_prior_components` K > 1 the top level's
    conditional prior is a mixture of K such Gaussians over the whole top latent, whose
    weights, means and scales the encoder predicts: one draw picks one of K futures. A
    frame with fewer than `num_cond_latents` predecessors gets the unconditional prior (the
    paper's rule), or with `pad_history` (if it has at least one) the conditional prior of
    its history padded with copies of its oldest latent. `prior_beta` > 0 fits the
    priors with beta-NLL's gradient (Seitzer et al. 2022, "On the pitfalls of
    heteroscedastic uncertainty estimation"): the gradient reaching a prior's (or mixture
    component's) mean and scale is scaled by sigma^(2 beta) per dimension, so that a few
    uncertain dimensions (a moving shape's) are not drowned by many precise ones (the
    background's), and so is the gradient that reaches the flow through the prior's
    inputs (earlier frames' latents, the coarser levels); the loss, its gradient through
    the scored latents and every reported likelihood stay exact. 0 is maximum
    likelihood, the paper's. With
    `revive_components_every` N > 0, training splits live mixture components into dead
    ones when it starts and every N steps (`callbacks.ReviveComponents`); 0: never, the
    paper's (which has no mixture), and the only value without one.

    Evaluation scores `num_target_frames` frames given `num_context_frames`; training scores
    the frames after the context in windows of `num_train_frames` frames, drawn from
    anywhere in a video or, with `train_first_frames_only` (tensor2tensor's rule), only
    from its first `num_context_frames + num_target_frames` frames (`train_clip_frames`).
    `temperature` scales every prior standard deviation when sampling. `seed` fixes the weight
    initialisation (None: random). Adam warms up to `learning_rate` over `warmup_steps`
    updates; `gradient_clip_norm` caps the global norm of each update's gradient (of the
    global batch under tf.distribute; None: no clipping, as in the paper).

    `memory_saving` ("on", "off" or "auto") makes training recompute each flow step's
    activations in the backward pass instead of storing them all, so memory stops growing
    with num_steps, for about a third more compute per step; "auto" turns it on when
    the stored activations (`flow_activation_bytes`) would exceed 1 GiB. It changes no
    result: the gradients are the same.

    `mixed_precision` runs the flow's coupling networks (most of the model's arithmetic)
    in bfloat16; weights, the activations passed between flow steps, log-determinants and
    the prior stay float32, so the flow stays exactly invertible. Off by default: it
    changes the likelihoods slightly (benchmarks/mixed_precision_bpp.py measures how much).
    """

    name: str = "custom"
    dataset: str = "bair_action_free"
    image_size: int = 64
    num_levels: int = 3
    num_steps: int = 24
    coupling: str = "affine"
    coupling_width: int = 512
    coupling_activation: str = "gatu"
    dequantization: str = "uniform"
    latent_encoder: str = "conv3d_net"
    latent_encoder_width: int = 256
    latent_encoder_depth: int = 5
    latent_dilations: bool = True
    latent_activation: str = "gatu"
    latent_skip: bool = True
    prior_reads_x1: bool = False
    top_prior_components: int = 1
    prior_beta: float = 0.0
    revive_components_every: int = 0
    num_cond_latents: int = 3
    pad_history: bool = False
    num_context_frames: int = 3
    num_target_frames: int = 10
    num_train_frames: int = 4
    train_first_frames_only: bool = False  # off, as in config.json files written before it
    learning_rate: float = 3e-4
    warmup_steps: int = 10000
    cosine_decay_steps: int = 0
    cosine_decay_floor: float = 0.0
    train_steps: int = 10000
    gradient_clip_norm: Optional[float] = None
    batch_size: int = 5
    init_batch_size: int = 128
    temperature: float = 1.0
    memory_saving: str = "auto"
    mixed_precision: bool = False
    seed: Optional[int] = None

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _check_type(field, getattr(self, field.name))
        # Floats given as ints (learning_rate=1) are stored as floats so that
        # to_dict/from_dict and equality are exact.
        for name in ("learning_rate", "temperature", "gradient_clip_norm", "prior_beta",
                     "cosine_decay_floor"):
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
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        _check_names(values)
        return cls(**values)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


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
    ("batch_size", lambda c: c.batch_size >= 1, "an int >= 1"),
    ("init_batch_size", lambda c: c.init_batch_size >= 1, "an int >= 1"),
    ("temperature", lambda c: math.isfinite(c.temperature) and c.temperature >= 0,
     "a finite number >= 0"),
    ("memory_saving", lambda c: c.memory_saving in MEMORY_SAVING, f"one of {MEMORY_SAVING}"),
]

# Changes from the defaults, which are tensor2tensor's next_frame_glow_bair_quant but for
# options added later, which default to off so that older config.json files load unchanged.
_FIRST_FRAMES = dict(train_first_frames_only=True)
_SHAPES_32_BASELINE = dict(
    _FIRST_FRAMES, dataset="stochastic_shapes", image_size=32, num_steps=4, coupling="additive",
    coupling_width=64, coupling_activation="relu", latent_encoder_width=128,
    latent_encoder_depth=3, latent_activation="relu", latent_skip=True, num_cond_latents=2,
    pad_history=True, num_context_frames=1, num_target_frames=4, num_train_frames=5,
    learning_rate=5e-4, warmup_steps=500, gradient_clip_norm=50.0, batch_size=8,
    init_batch_size=64)
_CONFIGS = {
    "bair_quant": dict(_FIRST_FRAMES),
    "bair_qual": dict(_FIRST_FRAMES, coupling="additive", coupling_width=392, temperature=0.5),
    "shapes": dict(_FIRST_FRAMES, dataset="stochastic_shapes", coupling="additive",
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
    "shapes_cpu": _SHAPES_32_BASELINE,
    # The 32x32 stochastic-shapes recipe, trained by one command on two CPU cores
    # (`videoflow-tf train --config shapes_32 --model-dir DIR`); docs/experiments.md
    # measures its changes from the baseline. No latent skip (its sampled noise piles up
    # from frame to frame), and the prior reads one frame: every video starts at the
    # canvas centre, so one frame's offset from it shows the direction to continue. The
    # top prior is a mixture of 8 Gaussians (one draw picks one future) whose dead
    # components are revived every 1,000 steps; the priors are fitted with beta-NLL's
    # gradient, so that the few latent dimensions where the shape is are not drowned by
    # the background's; q(u | x) is learned, so that the flow need not spread its density
    # flat across each pixel's bin; the learning rate falls along a cosine.
    "shapes_32": dict(_SHAPES_32_BASELINE, latent_skip=False, num_cond_latents=1,
                      pad_history=False, top_prior_components=8, revive_components_every=1000,
                      prior_beta=0.5, dequantization="variational", cosine_decay_steps=50000,
                      cosine_decay_floor=0.1, train_steps=50500, temperature=0.5),
    # About 24,000 parameters on 8x8 frames: for tests.
    "tiny": dict(_FIRST_FRAMES, dataset="stochastic_shapes", image_size=8, num_levels=2,
                 num_steps=2, coupling_width=8, coupling_activation="relu",
                 latent_encoder_width=8, latent_encoder_depth=1, latent_activation="relu",
                 num_cond_latents=2, num_context_frames=2, num_target_frames=2,
                 num_train_frames=3, learning_rate=5e-3, warmup_steps=0, batch_size=4,
                 init_batch_size=4, seed=0),
}
CONFIG_NAMES = tuple(_CONFIGS)


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


def get_config(name):
    """Returns the named `VideoFlowConfig` (one of `CONFIG_NAMES`)."""
    if name not in _CONFIGS:
        raise ValueError(f"unknown config name {name!r}; expected one of {list(CONFIG_NAMES)}")
    return VideoFlowConfig(name=name, **_CONFIGS[name])


def resolve_config(name=None, base=None, assignments=(), **changes):
    """The config `name` (or `base`) with `field=value` strings (the command line's
    `--set`) and keyword `changes` (those not None) applied.

    Unknown names and fields, malformed assignments and invalid values raise UsageError.
    """
    if name is not None:
        if name not in CONFIG_NAMES:
            raise UsageError(f"unknown config {name!r}; expected one of {list(CONFIG_NAMES)}")
        base = get_config(name)
    parsed = parse_assignments(assignments)
    try:
        return base.replace(**parsed, **{k: v for k, v in changes.items() if v is not None})
    except ValueError as error:
        raise UsageError(str(error)) from None


def parse_assignments(assignments):
    """{"field": value} from ["field=value", ...], each value parsed as the field's type."""
    fields = {field.name: field.type for field in dataclasses.fields(VideoFlowConfig)}
    parsed = {}
    for text in assignments:
        name, equals, value = text.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(f"--set expects field=value (e.g. learning_rate=1e-4); got {text!r}")
        if name not in fields:
            raise UsageError(f"--set {text!r}: unknown config field {name!r}; valid fields: "
                             f"{sorted(fields)}")
        parsed[name] = _parse_value(name, fields[name], value.strip())
    return parsed


def _parse_value(name, kind, value):
    try:
        if kind is bool:
            words = {"true": True, "1": True, "yes": True,
                     "false": False, "0": False, "no": False}
            return words[value.lower()]
        if kind in (Optional[int], Optional[float]):
            number = get_args(kind)[0]
            return None if value.lower() in ("none", "null") else number(value)
        return kind(value)
    except (KeyError, ValueError):
        expected = {bool: "true or false", int: "an integer", float: "a number",
                    Optional[int]: "an integer or none",
                    Optional[float]: "a number or none"}.get(kind, "a string")
        raise UsageError(f"--set {name}={value}: expected {expected}") from None
