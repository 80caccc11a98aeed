"""`python -m shared.cli`: the owner's command line: the parser, and `main`, which runs one command.

Each command registers itself on the parser (`add_command(s)` in shared.cli.importcmd and
shared.cli.ops) with a `run(args, ctx) -> exit code` function. Settings come from the environment or
local.settings.json, as for the app (shared.config.load_for_cli); storage defaults to the local emulator.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO

from shared.cli import importcmd, ops
from shared.cli.common import EXIT_FAILED, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE, Context

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_TEMPFAIL", "EXIT_USAGE", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Every command, `import` first, then the day-to-day ones."""
    parser = argparse.ArgumentParser(
        prog="python -m shared.cli",
        description="Runkeeper → Strava sync: the owner's commands. Run a command with --help for its options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    importcmd.add_command(commands)
    ops.add_commands(commands)  # status, retry, connect, invite, athletes
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         clock: Callable[[], datetime] | None = None, sleep: Callable[[float], None] | None = None) -> int:
    """Parse `argv` and run its command; the exit code (argparse exits with 2 on bad arguments itself)."""
    args = build_parser().parse_args(argv)
    return int(args.run(args, Context(out or sys.stdout, err or sys.stderr, clock, sleep)))


if __name__ == "__main__":
    sys.exit(main())
