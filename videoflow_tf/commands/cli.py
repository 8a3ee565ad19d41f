"""The `videoflow-tf` command line.

Each subcommand lives in the module named in COMMANDS, which provides
`add_arguments(parser)` and `run(args)` (returning the exit status, None meaning 0); the
module's docstring is the subcommand's `--help` text, its first paragraph the summary.
Bad input raises `UsageError`: one line on stderr and exit status 2.
"""
import argparse
import sys

from videoflow_tf.commands import (evaluate, export, interpolate, order, rest_client, sample,
                                   temperature_sweep)
from videoflow_tf.training import train
from videoflow_tf.usage import UsageError
from videoflow_tf.version import __version__

COMMANDS = {
    "train": train,
    "evaluate": evaluate,
    "sample": sample,
    "order": order,
    "interpolate": interpolate,
    "temperature-sweep": temperature_sweep,
    "export": export,
    "rest-client": rest_client,
}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one-line UsageErrors."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _summary(module):
    """The docstring's first paragraph as one line, without its `videoflow-tf NAME`: prefix
    (docstrings wrap their first sentence across lines; argparse rewraps the summary)."""
    first_paragraph = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
    return (first_paragraph.split(": ", 1)[-1] if first_paragraph.startswith("`")
            else first_paragraph)


def build_parser():
    parser = _Parser(prog="videoflow-tf",
                     description="VideoFlow: train, evaluate and sample flow-based video "
                     "prediction models, and run the paper's experiments.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        command = commands.add_parser(name, help=_summary(module), description=module.__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(command_module=module)
    return parser


def main(argv=None):
    """Runs `videoflow-tf` with `argv` (default: sys.argv[1:]); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if arg in COMMANDS), None)
    prog = f"videoflow-tf {command}" if command else "videoflow-tf"
    try:
        args = build_parser().parse_args(argv)
        status = args.command_module.run(args)
    except UsageError as error:
        message = str(error).replace("\n", " ")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what it leaves (train saves a checkpoint) is said
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
