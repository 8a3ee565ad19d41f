"""Checks of what a user asks for, failing early with one clear line (`UsageError`).

The command line prints a `UsageError` as one line on stderr and exits with status 2; the
Python API lets it propagate (it is a `ValueError`).
"""
import dataclasses
import math
import os
import typing

import tensorflow_datasets as tfds

from videoflow_tf.config import CONFIG_NAMES, VideoFlowConfig, get_config
from videoflow_tf.data import DATASETS


class UsageError(ValueError):
    """Bad input from the user: what was wrong and what was expected, in one line."""


def resolve_config(name=None, base=None, assignments=(), **changes):
    """The config `name` (or `base`) with `field=value` strings and keyword `changes` applied.

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
        if kind in (typing.Optional[int], typing.Optional[float]):
            number = typing.get_args(kind)[0]
            return None if value.lower() in ("none", "null") else number(value)
        return kind(value)
    except (KeyError, ValueError):
        expected = {bool: "true or false", int: "an integer", float: "a number",
                    typing.Optional[int]: "an integer or none",
                    typing.Optional[float]: "a number or none"}.get(kind, "a string")
        raise UsageError(f"--set {name}={value}: expected {expected}") from None


def check_dataset(name):
    """`name` if it is one of the datasets, optionally with one of its builder configs
    ('stochastic_shapes/black'), else UsageError."""
    base, slash, variant = name.partition("/")
    if base not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; expected one of {list(DATASETS)} "
                         "(optionally with a builder config, e.g. 'stochastic_shapes/black')")
    if slash:
        variants = list(tfds.builder_cls(base).builder_configs)
        if variant not in variants:
            expected = (f"one of {variants}" if variants
                        else f"none: {base} has no builder configs")
            raise UsageError(f"unknown builder config {variant!r} of {base}; expected "
                             f"{expected}")
    return name


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
