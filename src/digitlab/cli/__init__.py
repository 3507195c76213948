"""The ``digitlab`` command line. Every subcommand has ``--help``; errors are one line, exit code 2.

The parser is built here; each group of subcommands lives in its own module, with its parser lines:

- ``digits``: predict, evaluate, models, visualize, export, quantize (one digit at a time);
- ``train``: train (digit models, the line reader, the reject model, the slice CNN);
- ``reading``: read, calc, check (numbers and arithmetic in images);
- ``study``: benchmark, tune (the comparative study);
- ``serve``: the web app;
- ``options``: what several of them share (``--param``, ``--profile``, option types);

and ``worksheet`` and ``adapt``/``profiles`` are registered by ``digitlab.worksheets.cli`` and
``digitlab.profiles.cli``.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import DigitlabError
from . import digits, reading, serve, study, train
from .options import EXIT_USAGE

__all__ = ["EXIT_USAGE", "build_parser", "main"]

# The subcommands in the order `digitlab --help` lists them.
COMMANDS = (digits.add_predict, digits.add_evaluate, train.add_train, digits.add_models, serve.add_serve,
            reading.add_read, reading.add_calc, digits.add_visualize, digits.add_export, digits.add_quantize,
            study.add_benchmark, study.add_tune, reading.add_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitlab", description="Read handwritten digits, numbers and arithmetic.")
    parser.add_argument("--version", action="version", version=f"digitlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """Subcommands whose modules register themselves here (kept in their own packages)."""
    from ..worksheets.cli import register as register_worksheet  # worksheets

    register_worksheet(sub)
    from ..profiles.cli import register as register_profiles  # profiles: adapt, profiles

    register_profiles(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
    except (DigitlabError, ValueError, OSError) as exc:
        if args.debug or os.environ.get("DIGITLAB_DEBUG"):
            raise
        print(f"digitlab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
