"""`python -m shared.cli import`: a Runkeeper export to Strava, with a plan, a progress bar and a report.

The work is shared.history's; this module turns arguments into a run and prints what it did.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from shared.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TEMPFAIL,
    EXIT_USAGE,
    Context,
    athlete_id_arg,
    date_arg,
    positive_arg,
    user_of,
)
from shared.model.times import utcnow

if TYPE_CHECKING:
    from shared.history.plan import Plan
    from shared.history.report import Counts, Report

DEFAULT_LIMITS = (200, 2000)  # Strava's default overall limits, only for the dry run's estimate

IMPORT_HELP = """\
Import a whole Runkeeper export into Strava.

PATH is the export as Runkeeper sends it (01-runkeeper-data-export-....zip) or its unpacked folder.
Every row of cardioActivities.csv is one activity: a row with a GPX file is uploaded as that file,
a row without one becomes a manual activity. Without a CSV, every GPX file is imported.

Nothing is uploaded twice: activities already in the activity log (synced by an earlier import or
by the live Zapier sync) and activities already on Strava (same start within a minute, compatible
sport) are skipped. Interrupted, it continues where it stopped when run again.

Strava's rate limits are respected: when the budget runs out, the import sleeps until the next
window (15 minutes, or midnight UTC for the daily limit) and goes on by itself.
"""

IMPORT_EPILOG = """\
exit codes:
  0   everything was imported or was already there
  1   some activities failed (listed with their reasons), or the import could not run
  2   bad arguments
  75  stopped at Strava's rate limit (--no-wait): run the same command again after the time shown

settings (environment or local.settings.json): AzureWebJobsStorage (default: the local emulator),
STRAVA_CLIENT_ID, STRAVA_CLIENT_SECRET, STRAVA_BASE_URL, ACTIVITY_TIMEZONE (for CSV times whose
offset no GPX file gives, e.g. manual activities).
"""


def add_command(commands: Any) -> None:
    """Register `import` on the top parser's subcommands."""
    imp = commands.add_parser(
        "import", help="import a Runkeeper export (.zip or folder) into Strava", description=IMPORT_HELP,
        epilog=IMPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("path", metavar="PATH", help="the Runkeeper export: the .zip file or its unpacked folder")
    imp.add_argument("--dry-run", action="store_true",
                     help="read and check the export and show what would be imported; call nothing, write nothing")
    imp.add_argument("--since", type=date_arg, metavar="DATE",
                     help="only activities on or after this local date (YYYY-MM-DD)")
    imp.add_argument("--until", type=date_arg, metavar="DATE",
                     help="only activities on or before this local date (YYYY-MM-DD)")
    imp.add_argument("--limit", type=positive_arg, metavar="N",
                     help="send at most N activities in this run (oldest first); try a few before the lot")
    imp.add_argument("--no-wait", action="store_true",
                     help="stop at Strava's rate limit instead of sleeping (exit code 75) and print when to resume")
    imp.add_argument("--retry-failed", action="store_true",
                     help="also send again the activities that failed in an earlier run")
    imp.add_argument("--no-gear", action="store_true",
                     help="do not set gear (STRAVA_GEAR) on the imported activities")
    imp.add_argument("--mute", action="store_true",
                     help="mute every imported activity (kept out of followers' home feeds): one more call each")
    imp.add_argument("--verbose", action="store_true",
                     help="one line per activity and per state change, and every problem in full")
    imp.add_argument("--athlete", type=athlete_id_arg, metavar="ID",
                     help="import for an invited athlete (their Strava id) instead of the owner")
    imp.set_defaults(run=run_import)


def _setup_logging(verbose: bool, err: TextIO) -> None:
    """Our loggers only (the storage SDK's request logs are noise); lines go around the progress bar."""
    from tqdm import tqdm

    class TqdmHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tqdm.write(self.format(record), file=err)

    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("shared")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def run_import(args: argparse.Namespace, ctx: Context) -> int:
    """Plan the export, then (unless --dry-run) run it and print the report; the exit code says how it went."""
    from shared.config import SettingsError, load_for_cli
    from shared.history.plan import CannotImport, build_plan
    from shared.history.run import Importer
    from shared.runkeeper.export import ExportError, open_export

    out, err = ctx.out, ctx.err
    if args.since and args.until and args.since > args.until:
        print(f"error: --since {args.since} is after --until {args.until}", file=err)
        return EXIT_USAGE
    _setup_logging(args.verbose, err)
    try:
        settings = load_for_cli()
    except SettingsError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    try:
        with open_export(args.path) as export:
            plan = build_plan(export, timezone=settings.timezone, since=args.since, until=args.until)
            if args.dry_run:
                print_plan(plan, args, out, rule_body(settings, args))
                return EXIT_OK
            from shared.strava.errors import StravaError
            from shared.strava.tokens import client_from_settings

            client = client_from_settings(settings, args.athlete)
            options: dict[str, Any] = {"user": user_of(args)}
            if ctx.clock is not None:
                client.clock = options["clock"] = ctx.clock
            if ctx.sleep is not None:
                options["sleep"] = ctx.sleep
            importer = Importer(client, settings.storage, export=export, wait=not args.no_wait,
                                retry_failed=args.retry_failed, progress=TqdmProgress(err),
                                rules=rule_body(settings, args), **options)
            try:
                report = importer.run(plan, limit=args.limit)
            except StravaError as exc:
                print(f"error: {exc}", file=err)
                return EXIT_FAILED
    except (ExportError, CannotImport, SettingsError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    print_report(report, args, out)
    if report.stopped_until is not None:
        return EXIT_TEMPFAIL
    return EXIT_FAILED if report.failures else EXIT_OK


class TqdmProgress:
    """The bar: activities handled out of the export's total, the counts, and an ETA that includes waits."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None

    def start(self, total: int, done: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="act", file=self.stream, dynamic_ncols=True,
                        desc="importing", bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                                     "[{elapsed}]{postfix}")

    def _postfix(self, counts: Counts, eta: datetime | None) -> str:
        text = (f"uploaded={counts.uploaded + counts.sending} manual={counts.manual} "
                f"duplicate={counts.duplicate + counts.done_before} failed={counts.failed + counts.failed_before}")
        return text + (f" eta={_clock(eta)}" if eta else "")

    def advance(self, counts: Counts, eta: datetime | None, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.set_description("importing", refresh=False)
            self.bar.set_postfix_str(self._postfix(counts, eta), refresh=False)
            self.bar.update(n)

    def waiting(self, until: datetime, counts: Counts, eta: datetime | None) -> None:
        if self.bar is not None:
            self.bar.set_description(f"rate limit: waiting until {_clock(until)}", refresh=False)
            self.bar.set_postfix_str(self._postfix(counts, eta))

    def note(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(shown(text), file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(moment: datetime) -> str:
    """A time the reader can act on: UTC, and how far away it is."""
    moment = moment.astimezone(UTC)
    now = utcnow()
    delta = moment - now
    day = "" if moment.date() == now.date() else f"{moment:%Y-%m-%d} "
    return f"{day}{moment:%H:%M} UTC (in {_duration(delta)})" if delta.total_seconds() > 0 else f"{moment:%H:%M} UTC"


def _duration(delta: timedelta) -> str:
    """A duration as a person says it, to the minute: "1 d 2 h 5 min"."""
    minutes = max(0, round(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * (bool(minutes) or
                                                                                            not (days or hours))
    return " ".join(parts)


def _table(rows: list[tuple[str, object]], out: TextIO) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>6}", file=out)


def _source(plan: Plan) -> str:
    if plan.csv_rows is None:
        return "no cardioActivities.csv: every GPX file is an activity, its type taken from its <name>"
    return f"cardioActivities.csv with {plan.csv_rows} rows"


def rule_body(settings: Any, args: argparse.Namespace) -> Callable[[str | None], dict[str, Any]]:
    """The owner's rules for this import: STRAVA_GEAR unless --no-gear, STRAVA_MUTE, or every activity with --mute."""
    from shared.model import rules

    def body(sport_type: str | None) -> dict[str, Any]:
        return rules.changes(sport_type, gear=settings.gear, mute=settings.mute,
                             use_gear=not getattr(args, "no_gear", False), mute_all=getattr(args, "mute", False))

    return body


def print_plan(plan: Plan, args: argparse.Namespace, out: TextIO,
               rules: Callable[[str | None], dict[str, Any]] | None = None) -> None:
    """The dry run: what would be imported, skipped and refused, and the calls and time it would take."""
    from shared.history.estimate import expected_calls, least_time

    ok = [i for i in plan.items if not i.problem]
    print(f"Dry run of {args.path}: nothing was sent to Strava and nothing was written.", file=out)
    print(f"Index: {_source(plan)}.", file=out)
    print(f"Would import {len(ok)} activities: {sum(not i.is_manual for i in ok)} from GPX files, "
          f"{sum(i.is_manual for i in ok)} as manual activities.", file=out)
    types = Counter((i.runkeeper_type, i.sport_type) for i in ok)
    _table([(f"{rk} → {sport}", n) for (rk, sport), n in types.most_common()], out)
    if plan.filtered:
        print(f"Outside --since/--until: {plan.filtered}.", file=out)
    if args.verbose:
        for i in plan.items:
            kind = "manual" if i.is_manual else f"GPX, {i.points} points"
            state = f"  FAILS: {i.problem}" if i.problem else ""
            print(shown(f"  {i.start_local:%Y-%m-%d %H:%M}  {i.sport_type:<10} {i.name} ({kind}){state}"
                        + (f"  [{i.note}]" if i.note else "")), file=out)
    _print_skipped(plan, out)
    problems = [(i.origin, i.problem) for i in plan.items if i.problem] + [(f.origin, f.reason) for f in plan.failures]
    if problems:
        print(f"Would fail ({len(problems)}):", file=out)
        for origin, reason in problems:
            print(shown(f"  {origin}: {reason}"), file=out)
    calls = expected_calls(plan, rules)
    floor = least_time(calls, *DEFAULT_LIMITS)
    print(f"Strava calls expected: about {calls}; at Strava's default limits ({DEFAULT_LIMITS[0]} per 15 min, "
          f"{DEFAULT_LIMITS[1]:,} a day) that takes at least {_duration(floor)}, fewer if some are already there.",
          file=out)


def shown(line: str) -> str:
    """One printed line with control characters escaped: a file name in an export must not start a new
    line or drive the terminal (ESC sequences)."""
    return "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in line)


def _print_skipped(plan: Plan, out: TextIO) -> None:
    if plan.unlisted:
        print(shown(f"GPX files not listed in cardioActivities.csv, skipped ({len(plan.unlisted)}): "
                    + ", ".join(plan.unlisted)), file=out)
    for repeat in plan.repeated:
        print(shown(f"Skipped {repeat.origin}: {repeat.reason}."), file=out)


def print_report(report: Report, args: argparse.Namespace, out: TextIO) -> None:
    """What the run did, what failed and why, and when to run it again if it stopped at the rate limit."""
    c = report.counts
    print(f"Import of {args.path} ({_source(report.plan)})", file=out)
    _table([
        ("uploaded from GPX files", c.uploaded),
        ("created as manual activities", c.manual),
        ("already on Strava (skipped)", c.duplicate),
        ("done in an earlier run or by the live sync", c.done_before),
        ("in progress on the live sync (left to it)", c.elsewhere),
        ("sent, Strava still processing", c.unconfirmed),
        ("failed", c.failed + c.failed_before),
        ("not reached in this run", c.left),
    ], out)
    if report.plan.filtered:
        print(f"Outside --since/--until: {report.plan.filtered}.", file=out)
    _print_skipped(report.plan, out)
    total = len(report.plan.items)
    print(f"On Strava: {c.on_strava} of the {total} activities in this export"
          + (" (all of them)." if c.on_strava == total else "."), file=out)
    per = report.calls_per_activity
    print(f"Strava calls: {report.calls}" + (f" ({per:.2f} per activity sent)" if per is not None else ""),
          file=out)
    if report.failures:
        print(f"Failed ({len(report.failures)}):", file=out)
        for failure in report.failures:
            print(shown(f"  {failure.origin}: {failure.reason}"), file=out)
        print("Fix what the reasons say and run the same command again with --retry-failed.", file=out)
    if c.rules or c.rules_failed:
        print(f"Rules (gear, mute) applied to {c.rules} activities" + (f"; failed for {c.rules_failed} (still on "
              "Strava; `python -m shared.cli retry ID` applies them):" if c.rules_failed else "."), file=out)
        for failure in report.rule_failures:
            print(shown(f"  {failure.origin}: {failure.reason}"), file=out)
    if report.unconfirmed:
        print(f"{len(report.unconfirmed)} upload(s) are still being processed by Strava; the next run confirms them.",
              file=out)
    if report.stopped_until is not None:
        print(f"Stopped at Strava's rate limit with {c.left} activities still to send. Run the same command again "
              f"after {_clock(report.stopped_until)} to continue.", file=out)

