"""Weather enrichment against a local fake Open-Meteo: atemp per trackpoint, one call, never an unsynced activity."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import gpxpy
import pytest

from shared import config
from shared.live import weather
from shared.model.activity import Activity, Point
from shared.strava.gpx import activity_to_gpx
from tests.support.athletes import post_activity
from tests.support.fake_openmeteo import FakeOpenMeteo

START = "2024-05-01T07:00:00+01:00"  # 06:00 UTC
OFFSETS = (0, 720, 1800, 3600, 5400)  # 06:00, 06:12, 06:30, 07:00, 07:30 UTC
EXPECTED = [6.0, 6.2, 6.5, 7.0, 7.5]  # with the temperature below: the hour of day in °C


@pytest.fixture
def meteo() -> Iterator[FakeOpenMeteo]:
    fake = FakeOpenMeteo().start()
    fake.temperature = lambda hour: float(hour.hour)
    weather.clear_cache()
    try:
        yield fake
    finally:
        fake.stop()
        weather.clear_cache()


@pytest.fixture
def enriched(connected, meteo, monkeypatch):
    monkeypatch.setenv("ENRICH_WEATHER", "true")
    monkeypatch.setenv("OPEN_METEO_BASE_URL", meteo.url)
    monkeypatch.setattr(weather, "TIMEOUT", (1.0, 1.0))
    return connected


def run_payload(start: str = START, *, heart_rate: bool = False) -> dict[str, str]:
    n = len(OFFSETS)
    payload = {
        "activityType": "Running", "activityStartTimeIso": start,
        "activityPathLatitude": ",".join(f"{51.5 + i * 0.01:.6f}" for i in range(n)),
        "activityPathLongitude": ",".join("-0.120000" for _ in range(n)),
        "activityPathAltitude": ",".join("20" for _ in range(n)),
        "activityPathTimestamp": ",".join(str(t) for t in OFFSETS),
        "activityPathType": ",".join(["start", "gps", "gps", "gps", "end"]),
    }
    if heart_rate:
        payload["activityHeartRateTimestamp"] = "0"
        payload["activityHeartRateBpm"] = "140"
    return payload


def sync_one(live, payload: dict[str, str]):
    resp = post_activity(live.sync.api_key, payload)
    assert resp.status_code == 202, resp.get_body()
    sid = json.loads(resp.get_body())["id"]
    with live.sync.drain() as drain:
        drain.run(timeout=60)
    assert live.sync.entry(sid).status == "synced"
    [activity] = live.activities()
    return activity


def atemps(gpx: bytes) -> list[float]:
    parsed = gpxpy.parse(gpx.decode())
    found = []
    for point in parsed.tracks[0].segments[0].points:
        for ext in point.extensions:
            found += [float(e.text) for e in ext.iter() if e.tag.endswith("atemp")]
    return found


def test_each_point_gets_the_air_temperature_in_one_call(enriched, meteo) -> None:
    activity = sync_one(enriched, run_payload())
    assert atemps(activity.gpx) == EXPECTED
    [(path, query)] = meteo.calls
    assert path == "/v1/archive"  # an old activity: the archive
    assert query["start_date"] == query["end_date"] == "2024-05-01"
    assert query["hourly"] == "temperature_2m" and query["timezone"] == "GMT"
    assert (query["latitude"], query["longitude"]) == ("51.52", "-0.12")  # the track's middle point


def test_atemp_goes_before_heart_rate_as_the_schema_orders_them(enriched) -> None:
    gpx = sync_one(enriched, run_payload(heart_rate=True)).gpx.decode()
    assert "<gpxtpx:TrackPointExtension><gpxtpx:atemp>6.0</gpxtpx:atemp><gpxtpx:hr>140</gpxtpx:hr>" in gpx
    assert atemps(gpx.encode()) == EXPECTED


def test_a_recent_activity_asks_the_forecast_endpoint(enriched, meteo) -> None:
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    meteo.temperature = lambda hour: 12.0
    activity = sync_one(enriched, run_payload(start.isoformat()))
    assert [path for path, _ in meteo.calls] == ["/v1/forecast"]
    assert atemps(activity.gpx) == [12.0] * len(OFFSETS)


@pytest.mark.parametrize("fault", ["status", "timeout", "garbage", "nulls"])
def test_any_failure_leaves_the_activity_unenriched_but_synced(enriched, meteo, fault) -> None:
    if fault == "status":
        meteo.fail_status = 500
    elif fault == "timeout":
        meteo.delay = 3.0  # beyond the (shortened) read timeout
    elif fault == "garbage":
        meteo.garbage = True
    else:
        meteo.null_hours = {datetime(2024, 5, 1, h, tzinfo=UTC) for h in range(24)}
    activity = sync_one(enriched, run_payload())
    assert b"atemp" not in activity.gpx and activity.points == len(OFFSETS)
    assert len(meteo.calls) == 1


def test_off_by_default(connected, meteo, monkeypatch) -> None:
    monkeypatch.setenv("OPEN_METEO_BASE_URL", meteo.url)
    activity = sync_one(connected, run_payload())
    assert b"atemp" not in activity.gpx and meteo.calls == []


def test_missing_hours_leave_only_those_points_bare_and_answers_are_cached(meteo) -> None:
    meteo.null_hours = {datetime(2024, 5, 1, 7, tzinfo=UTC)}
    act = Activity(type="Running", start=datetime(2024, 5, 1, 6, 0, tzinfo=UTC),
                   points=[Point(51.5, -0.12, None, float(t)) for t in OFFSETS])
    temps = weather.air_temperatures(act, meteo.url, now=datetime(2024, 6, 1, tzinfo=UTC))
    assert temps == [6.0, None, None, None, None]  # 06:12 onwards needs 07:00, which is null
    assert weather.air_temperatures(act, meteo.url, now=datetime(2024, 6, 1, tzinfo=UTC)) == temps
    assert len(meteo.calls) == 1
    gpx = activity_to_gpx(act, temps)
    assert gpx.count(b"<gpxtpx:atemp>") == 1 and atemps(gpx) == [6.0]


def test_an_activity_over_midnight_asks_for_both_days(meteo) -> None:
    meteo.temperature = lambda hour: 5.0 if hour.day == 1 else 7.0
    act = Activity(type="Running", start=datetime(2024, 5, 1, 23, 30, tzinfo=UTC),
                   points=[Point(51.5, -0.12, None, float(t)) for t in (0, 1800, 3600)])
    assert weather.air_temperatures(act, meteo.url, now=datetime(2024, 6, 1, tzinfo=UTC)) == [6.0, 7.0, 7.0]
    assert meteo.calls[0][1]["start_date"] == "2024-05-01" and meteo.calls[0][1]["end_date"] == "2024-05-02"


def test_endpoints_and_parse_edge_cases() -> None:
    now = datetime(2024, 6, 10, tzinfo=UTC)
    assert weather.endpoint(now - timedelta(days=2), None, now) == "https://api.open-meteo.com/v1/forecast"
    assert weather.endpoint(now - timedelta(days=30), None, now) == "https://archive-api.open-meteo.com/v1/archive"
    assert weather.endpoint(now - timedelta(days=30), "http://h:1/", now) == "http://h:1/v1/archive"
    for bad in ({}, {"hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": []}},
                {"hourly": {"time": ["yesterday"], "temperature_2m": [1.0]}},
                {"hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": [1e9]}},
                {"hourly": {"time": ["2024-01-01T00:00"], "temperature_2m": ["warm"]}}):
        with pytest.raises(weather.WeatherError):
            weather.parse(bad)


def test_the_setting_is_checked() -> None:
    base = {"AzureWebJobsStorage": "x"}
    assert config.load(base).enrich_weather is False
    assert config.load({**base, "ENRICH_WEATHER": "TRUE"}).enrich_weather is True
    with pytest.raises(config.SettingsError, match="ENRICH_WEATHER"):
        config.load({**base, "ENRICH_WEATHER": "sometimes"})
    with pytest.raises(config.SettingsError, match="OPEN_METEO_BASE_URL"):
        config.load({**base, "OPEN_METEO_BASE_URL": "ftp://x"})


def test_gpx_with_temperatures_has_one_per_point_or_refuses() -> None:
    act = Activity(type="Running", start=datetime(2024, 5, 1, 6, 0, tzinfo=UTC),
                   points=[Point(51.5, -0.12, None, 0.0), Point(51.6, -0.12, None, 10.0)])
    with pytest.raises(ValueError, match="air temperatures"):
        activity_to_gpx(act, [1.0])
    assert re.findall(rb"<gpxtpx:atemp>([^<]+)<", activity_to_gpx(act, [-3.5, None])) == [b"-3.5"]
