"""Optional enrichment (ENRICH_WEATHER=true): the air temperature at each trackpoint, from Open-Meteo.

One call per activity (hourly temperature at the track's middle point over the activity's UTC days),
cached per process, with a short timeout. Whatever goes wrong (no network, an error answer, missing
hours) the answer is None and the activity is uploaded without temperatures: enrichment never holds
up or fails a sync. Open-Meteo's archive lags about five days, so recent activities are asked of its
forecast endpoint (which keeps the past three months); OPEN_METEO_BASE_URL serves both paths.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.model.activity import Activity

ARCHIVE_URL = "https://archive-api.open-meteo.com"
FORECAST_URL = "https://api.open-meteo.com"
ARCHIVE_LAG = timedelta(days=6)  # newer than this: the forecast endpoint (its past days are observed weather)
TIMEOUT = (2.0, 3.0)  # connect, read (s): the worker has better things to wait for
CACHE_SIZE = 256

log = logging.getLogger(__name__)

Series = dict[datetime, float]  # the hour (aware UTC) -> °C
_cache: OrderedDict[tuple[str, float, float, date, date], Series] = OrderedDict()
_lock = threading.Lock()


def endpoint(end: datetime, base_url: str | None, now: datetime | None = None) -> str:
    """The URL to ask for an activity ending at `end`: the archive, or the forecast API for recent days."""
    recent = (now or datetime.now(UTC)) - end < ARCHIVE_LAG
    if base_url:
        return f"{base_url.rstrip('/')}/v1/{'forecast' if recent else 'archive'}"
    return f"{FORECAST_URL}/v1/forecast" if recent else f"{ARCHIVE_URL}/v1/archive"


def air_temperatures(activity: Activity, base_url: str | None = None,
                     now: datetime | None = None) -> list[float | None] | None:
    """°C per point (None for a point whose hour is unknown), or None when nothing could be had."""
    if not activity.points:
        return None
    try:
        start = activity.start.astimezone(UTC)
        times = [start + timedelta(seconds=p.offset) for p in activity.points]
        middle = activity.points[len(activity.points) // 2]
        url = endpoint(max(times), base_url, now)
        series = _series(url, middle.lat, middle.lon, min(times).date(), max(times).date())
        temps = [_at(series, t) for t in times]
    except Exception as exc:  # anything at all: the activity goes up without temperatures
        log.warning("weather enrichment skipped: %s", _why(exc))
        return None
    if all(t is None for t in temps):
        log.info("weather enrichment skipped: no temperatures for the activity's hours")
        return None
    return temps


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, WeatherError) else type(exc).__name__


class WeatherError(Exception):
    """Open-Meteo's answer was refused or not what its documentation describes."""


def _series(url: str, lat: float, lon: float, first: date, last: date) -> Series:
    key = (url, round(lat, 2), round(lon, 2), first, last)  # ~1 km: finer than the weather model's grid
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    series = _fetch(url, key[1], key[2], first, last)
    with _lock:
        _cache[key] = series
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return series


def _fetch(url: str, lat: float, lon: float, first: date, last: date) -> Series:
    from shared.strava.api import http_session

    resp = http_session().get(url, timeout=TIMEOUT, params={
        "latitude": f"{lat:.2f}", "longitude": f"{lon:.2f}", "start_date": first.isoformat(),
        "end_date": last.isoformat(), "hourly": "temperature_2m", "timezone": "GMT",
    })
    if resp.status_code != 200:
        reason = ""
        try:
            reason = str(resp.json().get("reason") or "")[:200]
        except (ValueError, AttributeError):
            pass
        raise WeatherError(f"Open-Meteo answered {resp.status_code}" + (f" ({reason})" if reason else ""))
    return parse(resp.json())


def parse(answer: Any) -> Series:
    """Open-Meteo's hourly block -> {hour: °C}; nulls (hours without data) are left out."""
    hourly = answer.get("hourly") if isinstance(answer, dict) else None
    times = hourly.get("time") if isinstance(hourly, dict) else None
    values = hourly.get("temperature_2m") if isinstance(hourly, dict) else None
    if not isinstance(times, list) or not isinstance(values, list) or len(times) != len(values):
        raise WeatherError("Open-Meteo's answer has no hourly temperature_2m series")
    series: Series = {}
    for when, value in zip(times, values, strict=True):
        if value is None:
            continue
        if not isinstance(when, str) or not isinstance(value, int | float) or isinstance(value, bool):
            raise WeatherError("Open-Meteo's hourly series is not times and numbers")
        try:
            hour = datetime.strptime(when, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        except ValueError:
            raise WeatherError("Open-Meteo's hourly times are not like 2024-05-01T07:00") from None
        if not -100 <= value <= 100:
            raise WeatherError("Open-Meteo's temperature is out of any plausible range")
        series[hour] = float(value)
    return series


def _at(series: Series, moment: datetime) -> float | None:
    """Linear between the hours around `moment`; None unless both (or the exact hour) are known."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    before = series.get(hour)
    if before is None:
        return None
    if moment == hour:
        return round(before, 1)
    after = series.get(hour + timedelta(hours=1))
    if after is None:
        return None
    share = (moment - hour).total_seconds() / 3600
    return round(before + (after - before) * share, 1)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
