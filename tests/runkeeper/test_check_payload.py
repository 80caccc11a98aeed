"""check_payload (the ack's validation without building points) gives exactly parse_payload's verdict."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.model.activity import Activity
from shared.runkeeper.payload import _PLAIN_COLUMNS, Checked, check_payload, parse_payload
from tests.support.datasets import Seed, generator


def _same_verdict(payload: object) -> None:
    full = parse_payload(payload)  # type: ignore[arg-type]
    checked = check_payload(payload)  # type: ignore[arg-type]
    if isinstance(full, list):
        assert checked == full
        return
    assert isinstance(checked, Checked) and isinstance(full, Activity)
    assert checked.points == len(full.points)
    assert checked.activity.points == [] and checked.activity.heart_rate == []
    assert checked.activity.type == full.type and checked.activity.start == full.start
    assert checked.activity.source_id == full.source_id


def _payload(**columns: str) -> dict[str, str]:
    n = columns["activityPathLatitude"].count(",") + 1
    base = {
        "activityType": "Running",
        "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
        "activityPathLongitude": ",".join(["-0.5"] * n),
        "activityPathTimestamp": ",".join(str(i) for i in range(n)),
    }
    base.update(columns)
    return base


def test_the_real_shaped_payloads(seed: Seed) -> None:
    payload = seed.payload()
    _same_verdict(payload)
    checked = check_payload(payload)
    assert isinstance(checked, Checked) and checked.points == seed.points


def test_the_synthetic_manual_and_big_payloads() -> None:
    synthetic = generator()
    manual = synthetic.manual_payload()
    _same_verdict(manual)
    checked = check_payload(manual)
    assert isinstance(checked, Checked) and checked.points == 0
    big = synthetic.big_payload(5_000)
    _same_verdict(big)
    checked = check_payload(big)
    assert isinstance(checked, Checked) and checked.points == 5_000


@pytest.mark.parametrize(("field", "value", "ok"), [
    ("lat", "90", True), ("lat", "90.000", True), ("lat", "-90", True), ("lat", "89.999999", True), ("lat", "0", True),
    ("lat", "5", True), ("lat", "90.0001", False), ("lat", "91", False), ("lat", "100", False), ("lat", "05.5", False),
    ("lat", "1e-5", False), ("lat", " 5", False), ("lat", "5.", False), ("lat", "-", False), ("lat", "", False),
    ("lon", "180", True), ("lon", "-179.9", True), ("lon", "99.5", True), ("lon", "180.1", False),
    ("lon", "190", False), ("lon", "1000", False),
    ("ele", "99999.9", True), ("ele", "-12", True), ("ele", "100000", False), ("ele", "1e3", False),
    ("hr_bpm", "300", True), ("hr_bpm", "299.5", True), ("hr_bpm", "0", True), ("hr_bpm", "300.5", False),
    ("hr_bpm", "301", False), ("hr_bpm", "-1", False),
])
def test_the_plain_patterns_accept_only_values_in_range(field: str, value: str, ok: bool) -> None:
    """A pattern may send an unusual valid value to the exact checks, but never let an invalid one through."""
    assert bool(_PLAIN_COLUMNS[field].fullmatch(f"1,{value},2")) is ok


def test_problems_in_pattern_columns_are_named_like_the_parser_names_them() -> None:
    payload = _payload(activityPathLatitude="51.1,91,51.3", activityPathAltitude="1,2,x",
                       activityHeartRateTimestamp="0,1,2", activityHeartRateBpm="120,400,130")
    _same_verdict(payload)
    found = check_payload(payload)
    assert isinstance(found, list)
    assert {p.field for p in found} >= {"activityPathLatitude[1]", "activityPathAltitude[2]",
                                        "activityHeartRateBpm[1]"}


_number_text = st.one_of(
    st.floats(-400, 400).map(repr), st.integers(-400, 400).map(str),
    st.text(alphabet="0123456789.-e ", min_size=0, max_size=8),
    st.decimals(-200, 200, places=3).map(str),
)
_column = st.lists(_number_text, min_size=1, max_size=6).map(",".join)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(lat=_column, lon=_column, ele=st.none() | _column, bpm=st.none() | _column)
def test_any_columns_get_the_same_verdict(lat: str, lon: str, ele: str | None, bpm: str | None) -> None:
    n = lat.count(",") + 1
    payload = _payload(activityPathLatitude=lat, activityPathLongitude=lon)
    if ele is not None:
        payload["activityPathAltitude"] = ele
    if bpm is not None:
        payload["activityHeartRateBpm"] = bpm
        payload["activityHeartRateTimestamp"] = ",".join(str(i) for i in range(bpm.count(",") + 1))
    assert payload["activityPathTimestamp"].count(",") + 1 == n
    _same_verdict(payload)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-400, 400, allow_nan=False), min_size=1, max_size=5), st.sampled_from(sorted(_PLAIN_COLUMNS)))
def test_a_matching_column_holds_only_values_the_exact_check_accepts(values: list[float], field: str) -> None:
    limits = {"lat": (-90, 90), "lon": (-180, 180), "ele": (-100_000, 100_000), "hr_bpm": (0, 300)}[field]
    for text in (",".join(f"{v:.4f}" for v in values), ",".join(str(round(v)) for v in values)):
        if _PLAIN_COLUMNS[field].fullmatch(text):
            assert all(limits[0] <= float(x) <= limits[1] for x in text.split(","))
            assert not re.search(r"[^-0-9.,]", text)
