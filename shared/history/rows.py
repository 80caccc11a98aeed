"""The import's rows in the activity log: claimed under a lease, updated and settled by compare-and-swap only.

The live path shares these rows (one per sync id), so every write here is conditional on the row's
ETag or an insert-if-absent. After a lost race the row is read again and the decision made afresh:
a row someone else has taken since (on Strava already, in the live path's hands, or under another
lease) stays exactly as they left it, for the rest of the run; otherwise our change goes on top of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.history.plan import Item
from shared.model.status import DONE, Status
from shared.storage import activitylog, cas
from shared.storage.activitylog import Entry
from shared.storage.clients import Storage

log = logging.getLogger("shared.history.rows")

SOURCE = "import"  # the activity log's `source` for rows the importer made or took over
LEASE = timedelta(hours=1)  # the live worker steps aside while an import holds the row


@dataclass
class Work:
    """One item on its way through a run: the row as last read or written, and the tries spent on it."""

    item: Item
    entry: Entry | None
    tries: int = 0
    ceded: bool = False  # someone else took the row during the run: it is theirs now, never written again


class ImportRows:
    """The run's reads and writes of the activity log, for one user, under one run id."""

    def __init__(self, storage: Storage, user: str, run_id: str, clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.user = user
        self.run_id = run_id
        self.now = clock

    def new_entry(self, item: Item, status: Status, **extra: Any) -> Entry:
        """A fresh row for `item` with everything the plan knows about it."""
        return Entry(
            user=self.user, sync_id=item.sync_id, status=status, source=SOURCE, attempts=1,
            runkeeper_type=item.runkeeper_type, runkeeper_id=item.runkeeper_id, sport_type=item.sport_type,
            name=item.name, start=item.start, points=item.points, distance=item.distance,
            duration=item.duration, **extra,
        )

    def claim(self, work: Work) -> bool:
        """Mark the row `uploading` under our lease; False when someone else got there first."""
        if work.ceded:
            return False
        lease = {"lease_until": self.now() + LEASE, "lease_owner": self.run_id}
        if work.entry is None:
            created = activitylog.create(self.storage, self.new_entry(work.item, Status.UPLOADING, **lease))
            if created is not None:
                work.entry = created
                return True
            work.entry = self._read(work)
            if work.entry is None or work.entry.status in DONE or work.entry.source != SOURCE:
                return False
        try:
            work.entry = activitylog.save(self.storage, work.entry, status=Status.UPLOADING, error=None,
                                          attempts=work.entry.attempts + 1, source=SOURCE, **lease)
            return True
        except activitylog.Conflict:
            return False

    def save(self, work: Work, **changes: Any) -> None:
        """Write what the run learnt (an upload id, an ambiguous send, a release) on the row it holds."""
        assert work.entry is not None
        self._write(work, changes, absent=replace(work.entry, **changes))

    def record(self, work: Work, status: Status, **changes: Any) -> None:
        """Write a final status whether or not the row exists yet."""
        reason = f": {changes['error']}" if changes.get("error") else ""
        log.info("%-9s %s  %s (%s)%s", status, work.item.start_local.strftime("%Y-%m-%d %H:%M"), work.item.name,
                 work.item.origin, reason)
        absent = self.new_entry(work.item, status, **changes)
        self._write(work, {"status": status, "lease_until": None, "lease_owner": None, **changes}, absent=absent)

    def release(self, work: Work) -> None:
        """Nothing reached Strava: hand the row back as queued, for the next run."""
        if work.entry is not None and work.entry.status == Status.UPLOADING:
            self.save(work, status=Status.QUEUED, lease_until=None, lease_owner=None)

    def theirs(self, entry: Entry | None) -> bool:
        """Whether a row someone changed under us is now theirs to keep: on Strava, the live path's, or leased."""
        if entry is None:
            return False
        if entry.status in DONE:  # on Strava already: never step back from that
            return True
        if entry.leased(self.now()) and entry.lease_owner != self.run_id:  # someone is sending it right now
            return True
        return entry.status in (Status.QUEUED, Status.UPLOADING) and entry.source != SOURCE  # the live path's

    def _read(self, work: Work) -> Entry | None:
        return activitylog.get(self.storage, self.user, work.item.sync_id)

    def _write(self, work: Work, changes: dict[str, Any], *, absent: Entry) -> None:
        """`changes` on the row by compare-and-swap (`absent` inserted if there is none); a lost race decides again."""
        if work.ceded:
            return

        def attempt(current: Entry | None) -> Entry:
            if current is None:
                created = activitylog.create(self.storage, absent)
                if created is None:
                    raise cas.Conflict(f"activity {work.item.sync_id} was created concurrently")
                return created
            return activitylog.save(self.storage, current, **changes)

        def cede(fresh: Entry | None) -> bool:
            work.ceded = self.theirs(fresh)
            return work.ceded

        try:
            work.entry = cas.update(lambda: self._read(work), attempt, current=work.entry, stop=cede)
        except cas.Exhausted:
            work.entry, work.ceded = self._read(work), True
            log.warning("activity %s keeps changing under the import: left as it is", work.item.sync_id)
        if work.ceded and work.entry is not None:
            log.info("activity %s is %s by %s now: left to it", work.item.sync_id, work.entry.status,
                     work.entry.lease_owner or work.entry.source)
