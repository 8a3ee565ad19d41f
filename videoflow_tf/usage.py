"""Checks of what a user asks for, failing early with one clear line (`UsageError`):
the error itself, output files and argparse types of numbers.

The command line prints a `UsageError` as one line on stderr and exits with status 2; the
Python API lets it propagate (it is a `ValueError`).
"""
import math
import os


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
