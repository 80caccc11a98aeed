"""shared.storage.cas against Azurite: ETag writes, lost races re-read and decided again, bounded attempts."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.storage import cas, clients
from shared.storage.clients import Storage


@dataclass(frozen=True)
class Counter:
    count: int
    etag: str


class Row:
    """One counter row, with the read and the conditional write a caller of cas.update would write."""

    def __init__(self, table: TableClient) -> None:
        self.table = table
        self.reads = 0
        self.writes = 0

    def read(self) -> Counter | None:
        self.reads += 1
        try:
            entity = self.table.get_entity("p", "r")
        except ResourceNotFoundError:
            return None
        return Counter(entity["count"], entity.metadata["etag"])

    def increment(self, current: Counter | None) -> Counter:
        self.writes += 1
        try:
            if current is None:
                meta = self.table.create_entity({"PartitionKey": "p", "RowKey": "r", "count": 1})
                return Counter(1, meta["etag"])
            meta = self.table.update_entity({"PartitionKey": "p", "RowKey": "r", "count": current.count + 1},
                                            mode=UpdateMode.MERGE, etag=current.etag,
                                            match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceExistsError):
            raise cas.Conflict("the counter moved") from None
        return Counter(current.count + 1, meta["etag"])

    def rival_bumps(self) -> None:
        """Another worker's unconditional write: whatever we read before it is now stale."""
        entity = self.table.get_entity("p", "r")
        self.table.update_entity({"PartitionKey": "p", "RowKey": "r", "count": entity["count"] + 1},
                                 mode=UpdateMode.MERGE)

    def count(self) -> int:
        return self.table.get_entity("p", "r")["count"]


@pytest.fixture
def row(storage: Storage, unique: str) -> Row:
    return Row(clients.table(storage, f"cas{unique}"))


def raced(row: Row, times: int) -> Callable[[Counter | None], Counter]:
    """`row.increment`, with a rival writing just before each of our first `times` writes."""
    left = [times]

    def attempt(current: Counter | None) -> Counter:
        if left[0] > 0:
            left[0] -= 1
            row.rival_bumps()
        return row.increment(current)

    return attempt


def test_an_uncontended_update_reads_once_and_writes_once(row: Row) -> None:
    assert cas.update(row.read, row.increment).count == 1  # absent: the attempt inserts it
    assert cas.update(row.read, row.increment).count == 2
    assert (row.reads, row.writes, row.count()) == (2, 2, 2)


def test_a_lost_race_rereads_and_applies_the_change_on_the_winners_row(row: Row) -> None:
    cas.update(row.read, row.increment)
    row.reads = row.writes = 0
    result = cas.update(row.read, raced(row, 1))
    assert (result.count, row.count()) == (3, 3)  # the rival's bump kept, ours on top: no lost update
    assert (row.reads, row.writes) == (2, 2)


def test_a_row_in_hand_needs_no_first_read(row: Row) -> None:
    first = cas.update(row.read, row.increment)
    row.reads = 0
    assert cas.update(row.read, row.increment, current=first).count == 2
    assert row.reads == 0


def test_an_insert_that_loses_to_another_insert_updates_the_winners_row(row: Row) -> None:
    def attempt(current: Counter | None) -> Counter:
        if current is None and row.writes == 0:
            row.table.create_entity({"PartitionKey": "p", "RowKey": "r", "count": 10})  # the rival's insert
        return row.increment(current)

    assert cas.update(row.read, attempt).count == 11
    assert row.count() == 11


def test_attempts_are_bounded_and_the_last_lost_race_is_not_reread(row: Row) -> None:
    cas.update(row.read, row.increment)
    row.reads = row.writes = 0
    with pytest.raises(cas.Exhausted, match="3 attempts"):
        cas.update(row.read, raced(row, 99), attempts=3)
    assert (row.reads, row.writes, row.count()) == (3, 3, 4)  # the rival's three bumps, none of ours


def test_stop_keeps_what_a_winner_wrote_instead_of_writing(row: Row) -> None:
    first = cas.update(row.read, row.increment)
    won = cas.update(row.read, raced(row, 1), current=first, stop=lambda c: c is not None and c.count >= 2)
    assert won is not None and won.count == 2  # the rival's row, returned as it is
    assert row.count() == 2 and row.writes == 2


def test_stop_is_asked_of_the_row_read_after_the_last_lost_race(row: Row) -> None:
    first = cas.update(row.read, row.increment)
    row.reads = 0
    won = cas.update(row.read, raced(row, 2), attempts=2, current=first,
                     stop=lambda c: c is not None and c.count >= 3)
    assert won is not None and won.count == 3 and row.reads == 2
    with pytest.raises(cas.Exhausted):
        cas.update(row.read, raced(row, 2), attempts=2, stop=lambda c: False)


def test_real_concurrent_writers_lose_no_update(row: Row) -> None:
    cas.update(row.read, row.increment)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: cas.update(row.read, row.increment, attempts=100), range(16)))
    assert row.count() == 17
    assert sorted(r.count for r in results) == list(range(2, 18))  # each write saw its own predecessor
