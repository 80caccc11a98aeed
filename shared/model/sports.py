"""Runkeeper activity type (+ equipment) -> Strava sport type, so every activity lands as the right sport.

Unknown types become Workout rather than an error: a new Runkeeper type must never stop a sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sport:
    sport_type: str
    trainer: bool = False  # indoors on a machine (Strava's `trainer` flag)


# Every activity type Runkeeper's Health Graph API documents for `type`, in Runkeeper's spelling.
_MAPPING: dict[str, Sport] = {
    "Running": Sport("Run"),
    "Cycling": Sport("Ride"),
    "Mountain Biking": Sport("MountainBikeRide"),
    "Walking": Sport("Walk"),
    "Hiking": Sport("Hike"),
    "Downhill Skiing": Sport("AlpineSki"),
    "Cross-Country Skiing": Sport("NordicSki"),
    "Snowboarding": Sport("Snowboard"),
    "Skating": Sport("IceSkate"),
    "Swimming": Sport("Swim"),
    "Wheelchair": Sport("Wheelchair"),
    "Rowing": Sport("Rowing"),
    "Elliptical": Sport("Elliptical"),
    "Other": Sport("Workout"),
    "Yoga": Sport("Yoga"),
    "Pilates": Sport("Pilates"),
    "CrossFit": Sport("Crossfit"),
    "Spinning": Sport("Ride", trainer=True),
    "Zumba": Sport("Dance"),
    "Barre": Sport("Workout"),
    "Group Workout": Sport("Workout"),
    "Dance": Sport("Dance"),
    "Bootcamp": Sport("HighIntensityIntervalTraining"),
    "Boxing / MMA": Sport("Workout"),
    "Meditation": Sport("Workout"),
    "Strength Training": Sport("WeightTraining"),
    "Circuit Training": Sport("HighIntensityIntervalTraining"),
    "Core Strengthening": Sport("Workout"),
    "Arc Trainer": Sport("Elliptical", trainer=True),
    "Stairmaster / Stepwell": Sport("StairStepper", trainer=True),
    "Sports": Sport("Workout"),
    "Nordic Walking": Sport("Walk"),
}
RUNKEEPER_TYPES: tuple[str, ...] = tuple(_MAPPING)

# Strava's current SportType enum (its API reference, "SportType"): a secondary type naming one is taken as is.
STRAVA_SPORT_TYPES: tuple[str, ...] = (
    "AlpineSki", "BackcountrySki", "Badminton", "Basketball", "Canoeing", "Cricket", "Crossfit", "Dance",
    "EBikeRide", "Elliptical", "EMountainBikeRide", "Golf", "GravelRide", "Handcycle",
    "HighIntensityIntervalTraining", "Hike", "IceSkate", "InlineSkate", "Kayaking", "Kitesurf", "MountainBikeRide",
    "NordicSki", "Padel", "PhysicalTherapy", "Pickleball", "Pilates", "Racquetball", "Ride", "RockClimbing",
    "RollerSki", "Rowing", "Run", "Sail", "Skateboard", "Snowboard", "Snowshoe", "Soccer", "Squash",
    "StairStepper", "StandUpPaddling", "Surfing", "Swim", "TableTennis", "Tennis", "TrailRun", "Velomobile",
    "VirtualRide", "VirtualRow", "VirtualRun", "Volleyball", "Walk", "WeightTraining", "Wheelchair", "Windsurf",
    "Workout", "Yoga",
)
WORKOUT = Sport("Workout")
_VAGUE = {"Workout"}  # Runkeeper types that say nothing, so a secondary type may say more
_ON_FOOT = {"Run", "Walk", "Hike", "TrailRun"}


def _key(text: str) -> str:
    """Case, spaces and punctuation do not matter: 'stairmaster/stepwell' finds 'Stairmaster / Stepwell'."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


_BY_KEY: dict[str, str] = {_key(t): t for t in RUNKEEPER_TYPES}
_STRAVA_BY_KEY: dict[str, str] = {_key(t): t for t in STRAVA_SPORT_TYPES}


def runkeeper_type(text: str) -> str | None:
    """Runkeeper's own spelling of a type however it was written, or None when it is not one."""
    return _BY_KEY.get(_key(text))


def _from_secondary(secondary_type: str | None) -> Sport | None:
    if not secondary_type:
        return None
    key = _key(secondary_type)
    if key in _STRAVA_BY_KEY:
        return Sport(_STRAVA_BY_KEY[key])
    known = _BY_KEY.get(key)
    return _MAPPING[known] if known else None


def strava_sport(runkeeper_type: str, equipment: str | None = None, secondary_type: str | None = None) -> Sport:
    """The Strava sport for a Runkeeper activity; equipment says it was indoors (treadmill, stationary bike...)."""
    known = _BY_KEY.get(_key(runkeeper_type or ""))
    sport = _MAPPING[known] if known else WORKOUT
    if sport.sport_type in _VAGUE:
        sport = _from_secondary(secondary_type) or sport
    machine = _key(equipment or "")
    if machine == "treadmill":
        return Sport(sport.sport_type if sport.sport_type in _ON_FOOT else "Run", trainer=True)
    if machine == "stationarybike":
        return Sport("Ride", trainer=True)
    if machine == "elliptical":
        return Sport("Elliptical", trainer=True)
    if machine == "rowmachine":
        return Sport("Rowing", trainer=True)
    return sport


_GPX_NAME = re.compile(r"\s*(.+?)\s+\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}\b.*", re.DOTALL)


def type_from_gpx_name(name: str) -> str | None:
    """The Runkeeper type in an export GPX's `<name>` ('Running 7/25/13 6:53 am' -> 'Running'), None if unknown."""
    match = _GPX_NAME.fullmatch(name or "")
    return runkeeper_type(match.group(1)) if match else runkeeper_type(name or "")
