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


# ------------------------------------------------------ options that commands share
#
# Each is declared here once: the same name, metavar and meaning in every command; the
# commands add only what they write or where their default comes from.

MODEL_KINDS = ("a training run folder (its newest checkpoint that reads), one of its "
               "checkpoints (RUN/checkpoints/ckpt-STEP) or an exported SavedModel "
               "(savedmodels/NAME, its highest version, or savedmodels/NAME/VERSION)")


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
