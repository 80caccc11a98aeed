"""Where an activity stands on its way to Strava: the activity log's `status` column.

A StrEnum, so a status is its own stored string ("synced" == Status.SYNCED): rows written before
this type existed read back unchanged, and table filters, log lines and JSON answers stay as they were.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"  # accepted, a queue message (or a retry) will carry it
    UPLOADING = "uploading"  # a worker holds the row's lease and is talking to Strava
    SYNCED = "synced"  # on Strava, put there by us
    DUPLICATE = "duplicate"  # Strava already had it (uploaded some other way)
    FAILED = "failed"  # no retry can help without the owner: kept for a replay
    REJECTED = "rejected"  # the payload itself was refused: kept for a corrected replay


STATUSES: tuple[Status, ...] = tuple(Status)  # in the order the owner sees them listed
DONE = frozenset({Status.SYNCED, Status.DUPLICATE})  # on Strava: nothing left to do
RETRYABLE = frozenset({Status.FAILED, Status.REJECTED})  # a replay queues these again
