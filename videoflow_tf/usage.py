"""Checks of what a user asks for, failing early with one clear line (`UsageError`):
the error itself, output files, argparse types of numbers, the options commands share,
and the config a command asks for (`resolve_config`: --config NAME --set FIELD=VALUE).

The command line prints a `UsageError` as one line on stderr and exits with status 2; the
Python API lets it propagate (it is a `ValueError`).
"""
import dataclasses
import math
import os
from typing import Optional, get_args

from videoflow_tf.config import VideoFlowConfig, get_config


class UsageError(ValueError):
    """Bad input from the user: what was wrong and what was expected, in one line."""


def output_file(path, suffixes):
    """Checks that `path` ends with one of `suffixes` and that its folder exists and is
    writable (so a long run does not fail at its last step); returns the path."""
    if not path.lower().endswith(tuple(suffixes)):
        raise UsageError(f"output file {path!r} must end with {' or '.join(suffixes)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write {path!r}: permission denied")
    return path


def positive(kind):
    """An argparse type: `kind` (int or float) > 0."""
    def parse(text):
        value = kind(text)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(text)
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def non_negative(kind):
    """An argparse type: `kind` (int or float) >= 0."""
    def parse(text):
        value = kind(text)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(text)
        return value
    parse.__name__ = f"non-negative {kind.__name__}"
    return parse


# ------------------------------------------------------ options that commands share
#
# Each is declared here once: the same name, metavar and meaning in every command; the
# commands add only what they write or where their default comes from.

MODEL_KINDS = ("a training run folder (its newest checkpoint that reads), one of its "
               "checkpoints (RUN/checkpoints/ckpt-STEP), an exported SavedModel "
               "(savedmodels/NAME, its highest version, or savedmodels/NAME/VERSION) or "
               "the NAME alone of a model shipped with videoflow-tf, e.g. stochastic_shapes")


def add_model(parser, default=None, alias=False, dest="model", metavar="MODEL", help=None):
    """--model (also --model-dir with `alias`, the name older scripts use), dest `dest`:
    MODEL_KINDS, or `help`; required unless it has a `default` (the shipped model's
    path, which the help then names)."""
    names = ["--model"] + (["--model-dir"] if alias else [])
    text = help or f"the model: {MODEL_KINDS}"
    if default is not None:
        text += " (default: the shipped stochastic-shapes model)"
    parser.add_argument(*names, dest=dest, default=default, required=default is None,
                        metavar=metavar, help=text)


def add_out(parser, metavar, what, default=None, required=None):
    """--out `metavar` (FILE.gif, DIR, ...): `what` goes there; `default` says where it
    goes without --out; required if there is no default, unless `required` says."""
    required = default is None if required is None else required
    parser.add_argument("--out", required=required, metavar=metavar,
                        help=what + (f" (default: {default})" if default else ""))


def add_data_dir(parser, default="a run's own, else TFDS's: ~/tensorflow_datasets or "
                 "$TFDS_DATA_DIR"):
    """--data-dir: the TFDS data folder of the videos."""
    parser.add_argument("--data-dir", metavar="DIR",
                        help=f"TFDS data folder of the videos (default: {default})")


def add_split(parser, what="split of the videos", aliases=()):
    """--split (and `aliases`), default test: a TFDS split, e.g. test, train[:5%]."""
    parser.add_argument("--split", *aliases, dest="split", default="test", metavar="SPLIT",
                        help=f"{what}, e.g. test, train, test[:16] (default: %(default)s)")


def add_seed(parser, what="random seed; the same seed gives the same results"):
    """--seed S, an int, default 0."""
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help=f"{what} (default: %(default)s)")


def default_output(folder, name):
    """`name` in `folder` (a run's folder), or in the working folder if None."""
    return os.path.join(folder, name) if folder else name


def resolve_config(name=None, base=None, assignments=(), **changes):
    """The config `name` (or `base`) with `field=value` strings (the command line's
    `--set`) and keyword `changes` (those not None) applied.

    Unknown names and fields, malformed assignments and invalid values raise UsageError.
    """
    if name is not None:
        try:
            base = get_config(name)
        except ValueError as error:  # an unknown or renamed name
            raise UsageError(str(error)) from None
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
