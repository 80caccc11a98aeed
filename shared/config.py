"""Every setting the app reads, in one place, so a missing one fails with its name, not a KeyError."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from shared.storage import clients
from shared.storage.clients import Storage, StorageSettingsError

DEFAULT_STRAVA_BASE_URL = "https://www.strava.com"
DEFAULT_TIMEZONE = "Europe/London"

# name -> (required, description): the single list README, the example file and infra are checked against.
SETTINGS: dict[str, tuple[bool, str]] = {
    clients.CONNECTION: (False, "Storage connection string (local runs, Azurite); in Azure, the identity-based "
                              "settings below instead (one of the two forms is required)"),
    clients.ACCOUNT_NAME: (False, "Identity-based storage: the account name (or the three service URIs below)"),
    clients.SERVICE_URIS["blob"]: (False, "Identity-based storage: https URL of the blob service"),
    clients.SERVICE_URIS["queue"]: (False, "Identity-based storage: https URL of the queue service"),
    clients.SERVICE_URIS["table"]: (False, "Identity-based storage: https URL of the table service"),
    clients.CREDENTIAL: (False, "managedidentity: use only the platform's managed identity (unset: the default "
                              "chain, e.g. `az login` for the command line)"),
    clients.CLIENT_ID: (False, "Client id of the user-assigned managed identity"),
    "SYNC_API_KEY": (True, "Key Zapier and the owner send as X-Api-Key"),
    "STRAVA_CLIENT_ID": (True, "Strava API application client id"),
    "STRAVA_CLIENT_SECRET": (True, "Strava API application client secret"),
    "STRAVA_BASE_URL": (False, f"Strava base URL (default {DEFAULT_STRAVA_BASE_URL})"),
    "ACTIVITY_TIMEZONE": (False, f"IANA zone for times without an offset (default {DEFAULT_TIMEZONE})"),
    "ENRICH_WEATHER": (False, "true: add air temperature from Open-Meteo to each trackpoint (default false)"),
    "OPEN_METEO_BASE_URL": (False, "One host serving Open-Meteo's /v1/archive and /v1/forecast (default: "
                                   "the public archive-api and api hosts)"),
    "SYNC_DELAY_SCALE": (False, "Multiplies every wait of the queue worker (rate-limit windows, retry back-off, "
                                "another worker's lease), default 1; tests shrink it. Not a number from 0 to "
                                "1000: 1"),
    clients.NAME_PREFIX: (False, "Put before every table, queue and container name, for tests and side-by-side "
                                 "local experiments on one storage account (default empty). Lowercase letters and "
                                 f"digits, a letter first, at most {clients.NAME_PREFIX_MAX}. Leave it empty where "
                                 "the Functions host runs the worker: its queue trigger listens on the unprefixed "
                                 f"queue {clients.ACTIVITY_QUEUE}. Refused in Azure (WEBSITE_INSTANCE_ID set)"),
    "STRAVA_GEAR": (False, "Gear per sport after upload: Strava sport types to gear ids, e.g. "
                           "Run=g12345,Ride=b67890 (default empty: no gear is set)"),
    "STRAVA_MUTE": (False, "Strava sport types to keep out of followers' home feeds (hide_from_home), e.g. "
                           "Walk,Workout (default empty)"),
    "STRAVA_ATHLETE_LIMIT": (False, "How many athletes may connect to this Strava API application (Standard "
                                    "Access: 10; raise it only with Extended Access); invitations beyond it are "
                                    "refused (default 10)"),
}
# Set by the platform in every Azure Functions instance (never by us): how the app knows it runs in Azure.
AZURE_INSTANCE = "WEBSITE_INSTANCE_ID"
DEFAULT_ENRICH_WEATHER = "false"
DEFAULT_OPEN_METEO_BASE_URL = ""  # empty: the public hosts (shared.live.weather)
DEFAULT_SYNC_DELAY_SCALE = 1.0
DEFAULT_ATHLETE_LIMIT = 10
GEAR_ID = re.compile(r"[bg]\d+")  # Strava's gear ids: b = bike, g = shoes (and other gear)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class SettingsError(RuntimeError):
    """A required setting is missing or invalid; the message names it (never its value)."""


@dataclass(frozen=True)
class Settings:
    storage: Storage
    api_key: str | None
    strava_client_id: str | None
    strava_client_secret: str | None = field(repr=False)
    strava_base_url: str = DEFAULT_STRAVA_BASE_URL
    timezone: str = DEFAULT_TIMEZONE
    enrich_weather: bool = False
    open_meteo_base_url: str | None = None
    # Not part of equality: settings that differ only in how long waits are scaled share the worker's Strava
    # clients and rate budget (shared.live.sync caches them per Settings), as they did when it was read apart.
    sync_delay_scale: float = field(default=DEFAULT_SYNC_DELAY_SCALE, compare=False)
    gear: tuple[tuple[str, str], ...] = ()  # STRAVA_GEAR: (sport type, gear id)
    mute: frozenset[str] = frozenset()  # STRAVA_MUTE: sport types
    athlete_limit: int = DEFAULT_ATHLETE_LIMIT

    def require(self, *names: str) -> None:
        """Raise one error naming every missing setting among `names` (setting names, as in SETTINGS)."""
        values = {
            "SYNC_API_KEY": self.api_key,
            "STRAVA_CLIENT_ID": self.strava_client_id,
            "STRAVA_CLIENT_SECRET": self.strava_client_secret,
        }
        missing = [n for n in names if not values.get(n)]
        if missing:
            raise SettingsError(
                "missing required setting(s): " + ", ".join(missing)
                + " (set them in local.settings.json or the Function App's configuration)"
            )


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def load(env: Mapping[str, str] | None = None, *, default_storage: str | None = None) -> Settings:
    """Read settings from the environment; only storage (either form, or `default_storage`) is needed by every path."""
    env = os.environ if env is None else env
    storage = _storage(env, default_storage)
    tz = _clean(env.get("ACTIVITY_TIMEZONE")) or DEFAULT_TIMEZONE
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for odd strings
        raise SettingsError(f"ACTIVITY_TIMEZONE is not a known IANA time zone: {tz!r}") from exc
    base = (_clean(env.get("STRAVA_BASE_URL")) or DEFAULT_STRAVA_BASE_URL).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SettingsError("STRAVA_BASE_URL must start with http:// or https://")
    enrich = (_clean(env.get("ENRICH_WEATHER")) or DEFAULT_ENRICH_WEATHER).lower()
    if enrich not in _TRUE + _FALSE:
        raise SettingsError("ENRICH_WEATHER must be true or false")
    weather = _clean(env.get("OPEN_METEO_BASE_URL"))
    if weather and not weather.startswith(("http://", "https://")):
        raise SettingsError("OPEN_METEO_BASE_URL must start with http:// or https://")
    return Settings(
        storage=storage,
        api_key=_clean(env.get("SYNC_API_KEY")),
        strava_client_id=_clean(env.get("STRAVA_CLIENT_ID")),
        strava_client_secret=_clean(env.get("STRAVA_CLIENT_SECRET")),
        strava_base_url=base,
        timezone=tz,
        enrich_weather=enrich in _TRUE,
        open_meteo_base_url=weather.rstrip("/") if weather else None,
        sync_delay_scale=delay_scale(env.get("SYNC_DELAY_SCALE")),
        gear=parse_gear(env.get("STRAVA_GEAR")),
        mute=parse_mute(env.get("STRAVA_MUTE")),
        athlete_limit=_athlete_limit(env.get("STRAVA_ATHLETE_LIMIT")),
    )


def _items(name: str, raw: str | None) -> list[str]:
    """The comma-separated items of a list setting; an empty item (",," or a trailing comma) is named."""
    raw = (raw or "").strip()
    if not raw:
        return []
    items = [item.strip() for item in raw.split(",")]
    for position, item in enumerate(items, 1):
        if not item:
            raise SettingsError(f"{name}: item {position} is empty (items are separated by single commas)")
    return items


def _sport(name: str, value: str) -> str:
    from shared.model.sports import STRAVA_SPORT_TYPES

    if value not in STRAVA_SPORT_TYPES:
        near = next((t for t in STRAVA_SPORT_TYPES if t.lower() == value.lower()), None)
        raise SettingsError(f"{name}: {value!r} is not a Strava sport type"
                            + (f" (did you mean {near}?)" if near else " (e.g. Run, Ride, Walk, Hike, Swim)"))
    return value


def parse_gear(raw: str | None) -> tuple[tuple[str, str], ...]:
    """STRAVA_GEAR `Run=g12345,Ride=b67890`: each sport type once, each gear id as Strava writes them."""
    pairs: dict[str, str] = {}
    for item in _items("STRAVA_GEAR", raw):
        sport, sep, gear = (part.strip() for part in item.partition("="))
        if not sep or not sport or not gear:
            raise SettingsError(f"STRAVA_GEAR: {item!r} is not sport=gear id (e.g. Run=g12345)")
        _sport("STRAVA_GEAR", sport)
        if not GEAR_ID.fullmatch(gear):
            raise SettingsError(f"STRAVA_GEAR: {gear!r} (for {sport}) is not a Strava gear id: b or g and digits, "
                                "e.g. g12345 (shoes) or b67890 (bike)")
        if sport in pairs:
            raise SettingsError(f"STRAVA_GEAR: {sport} is given twice")
        pairs[sport] = gear
    return tuple(pairs.items())


def parse_mute(raw: str | None) -> frozenset[str]:
    """STRAVA_MUTE `Walk,Workout`: Strava sport types whose activities are hidden from followers' home feeds."""
    return frozenset(_sport("STRAVA_MUTE", item) for item in _items("STRAVA_MUTE", raw))


def _athlete_limit(raw: str | None) -> int:
    raw = (raw or "").strip()
    if not raw:
        return DEFAULT_ATHLETE_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError("STRAVA_ATHLETE_LIMIT must be a whole number of athletes, at least 1")
    return int(raw)


def delay_scale(raw: str | None) -> float:
    """SYNC_DELAY_SCALE: 1 in production; tests shrink every wait with it. Nonsense falls back to 1, not an error.

    A wrong value only changes how long the worker waits, never what it does, so it must not stop the app.
    """
    raw = (raw or "").strip()
    try:
        value = float(raw) if raw else DEFAULT_SYNC_DELAY_SCALE
    except ValueError:
        return DEFAULT_SYNC_DELAY_SCALE
    return value if 0 <= value <= 1000 else DEFAULT_SYNC_DELAY_SCALE


def _storage(env: Mapping[str, str], default: str | None = None) -> Storage:
    try:
        storage = Storage.from_settings(env, default=default)
    except StorageSettingsError as exc:
        raise SettingsError(str(exc)) from None
    if storage.prefix and _clean(env.get(AZURE_INSTANCE)):
        raise SettingsError(
            f"{clients.NAME_PREFIX} is set but this is Azure ({AZURE_INSTANCE} is set): the "
            f"queue trigger listens on the unprefixed queue {clients.ACTIVITY_QUEUE} and infra/ creates only the "
            f"unprefixed tables, queues and container, so remove {clients.NAME_PREFIX} from the app settings")
    return storage


def load_for_cli(env: Mapping[str, str] | None = None, settings_file: Path | None = None) -> Settings:
    """The command line's view: the environment first, then local.settings.json, storage defaulting to Azurite.

    The environment's storage settings, in either form, replace the file's: a laptop that sets
    AzureWebJobsStorage__accountName reaches Azure with `az login` whatever local.settings.json says.
    """
    merged: dict[str, str] = {}
    path = settings_file or Path("local.settings.json")
    if path.is_file():
        try:
            values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
        except (ValueError, AttributeError) as exc:
            raise SettingsError(f"{path} is not valid JSON with a Values object") from exc
        merged.update({k: str(v) for k, v in values.items() if isinstance(k, str)})
    env = os.environ if env is None else env
    storage_names = (clients.CONNECTION, *clients.IDENTITY_SETTINGS)
    if any(_clean(env.get(name)) for name in storage_names):
        for name in (*storage_names, clients.NAME_PREFIX):  # the file's prefix was for the file's storage
            merged.pop(name, None)
    merged.update(env)
    return load(merged, default_storage=clients.DEVELOPMENT_STORAGE)


@lru_cache(maxsize=8)
def _cached(_env: tuple[str | None, ...]) -> Settings:
    return load()


def current() -> Settings:
    """The functions' settings, cached per process; keyed by the variables, so a changed environment is seen."""
    return _cached(tuple(os.environ.get(name) for name in SETTINGS))
