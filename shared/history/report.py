"""What an import run reports: its counts as it goes, its progress hooks, and the final report. Data only.

The CLI prints these; keeping them apart from the run lets it do so without loading the run's machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.history.plan import Failure, Plan
from shared.model.times import utcnow


@dataclass
class Counts:
    """How many activities ended up where, as the run goes; the report and the progress bar show them."""

    uploaded: int = 0  # GPX uploads Strava has confirmed
    manual: int = 0  # manual activities created
    duplicate: int = 0  # already on Strava (its listing, or its duplicate answer)
    done_before: int = 0  # synced or duplicate in the activity log already: not touched
    elsewhere: int = 0  # queued or uploading on the live path: left to it
    failed: int = 0  # failed in this run
    failed_before: int = 0  # failed in an earlier run and not retried
    unconfirmed: int = 0  # sent, outcome not yet known (next run confirms)
    left: int = 0  # not reached: --limit, or the run stopped at the rate limit
    sending: int = 0  # uploads sent whose outcome the run has yet to learn (for progress lines)
    sent: int = 0  # uploads and creates Strava accepted in this run
    rules: int = 0  # activities the owner's rules (gear, mute) were applied to: one PUT each
    rules_failed: int = 0  # synced, but their rules failed (named on the row; `retry` applies them)

    @property
    def on_strava(self) -> int:
        return self.uploaded + self.manual + self.duplicate + self.done_before

    @property
    def imported(self) -> int:
        return self.uploaded + self.manual


class Progress:
    """What the run tells a person while it works; the CLI shows it as a tqdm bar, tests ignore it."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, counts: Counts, eta: datetime | None, n: int = 1) -> None: ...

    def waiting(self, until: datetime, counts: Counts, eta: datetime | None) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class Report:
    """What one run did, for the CLI to print and tests to check."""

    plan: Plan
    counts: Counts = field(default_factory=Counts)
    failures: list[Failure] = field(default_factory=list)  # this run's, and earlier ones not retried
    unconfirmed: list[str] = field(default_factory=list)
    rule_failures: list[Failure] = field(default_factory=list)  # synced, but a rule (gear, mute) failed
    stopped_until: datetime | None = None
    calls: int = 0
    started: datetime = field(default_factory=utcnow)
    finished: datetime | None = None

    @property
    def calls_per_activity(self) -> float | None:
        """Strava calls per activity sent in this run (listings and checks included)."""
        return self.calls / self.counts.sent if self.counts.sent else None
