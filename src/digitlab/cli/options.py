"""What several subcommands share: the exit code of a refusal, option types, ``--param``, ``--profile``."""

from __future__ import annotations

import argparse
import json

from ..errors import DigitlabError

EXIT_USAGE = 2


def data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the MNIST IDX files (default: $DIGITLAB_DATA, then the cache)")


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def param_values(pairs: list[str] | None) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise DigitlabError(f"--param expects NAME=VALUE, got {pair!r}")
        k, v = pair.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}")
    return value


def share(text: str) -> float:
    value = non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, not {text!r}")
    return value


def profile_of(args):
    """The handwriting profile named by ``--profile``, or None."""
    if not getattr(args, "profile", None):
        return None
    from ..profiles import get_profile

    return get_profile(args.profile)
