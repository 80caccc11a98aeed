"""What every command shares: exit codes, the context a command runs in, argument types. A leaf module.

The parser (shared.cli.app) and the commands (shared.cli.importcmd, shared.cli.ops) all import from
here and never from each other's modules, so the command line has no import cycle.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1  # some activities failed, or the command could not run
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: stopped at Strava's rate limit (--no-wait); run again later to continue


@dataclass
class Context:
    """A command's output streams and, for simulations and tests, the clock and sleep the import uses."""

    out: TextIO
    err: TextIO
    clock: Callable[[], datetime] | None = None  # None: the real clock
    sleep: Callable[[float], None] | None = None  # None: time.sleep


def athlete_id_arg(text: str) -> str:
    """argparse type: a Strava athlete id."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a Strava athlete id (digits)")
    return text


def date_arg(text: str) -> date:
    """argparse type: a calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2016-01-31") from None


def positive_arg(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def user_of(args: argparse.Namespace) -> str:
    """The activity log's user a command acts for: the invited athlete of `--athlete`, else the owner."""
    from shared.model.users import OWNER
    from shared.storage.users import user_for_athlete

    return user_for_athlete(args.athlete) if getattr(args, "athlete", None) else OWNER
