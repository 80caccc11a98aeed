"""Sport mapping: every Runkeeper type lands on a real Strava sport type; equipment marks indoor machines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.model.sports import (
    RUNKEEPER_TYPES,
    STRAVA_SPORT_TYPES,
    Sport,
    runkeeper_type,
    strava_sport,
    type_from_gpx_name,
)

# Every activity type Runkeeper's Health Graph API reference lists, spelled as Runkeeper spells them.
FACTS_TYPES = [
    "Running", "Cycling", "Mountain Biking", "Walking", "Hiking", "Downhill Skiing", "Cross-Country Skiing",
    "Snowboarding", "Skating", "Swimming", "Wheelchair", "Rowing", "Elliptical", "Other", "Yoga", "Pilates",
    "CrossFit", "Spinning", "Zumba", "Barre", "Group Workout", "Dance", "Bootcamp", "Boxing / MMA", "Meditation",
    "Strength Training", "Circuit Training", "Core Strengthening", "Arc Trainer", "Stairmaster / Stepwell", "Sports",
    "Nordic Walking",
]


def test_every_runkeeper_type_is_mapped_to_a_current_strava_type() -> None:
    assert set(FACTS_TYPES) == set(RUNKEEPER_TYPES)
    for rk in RUNKEEPER_TYPES:
        assert strava_sport(rk).sport_type in STRAVA_SPORT_TYPES, rk


@pytest.mark.parametrize(
    ("rk", "strava"),
    [
        ("Running", "Run"), ("Cycling", "Ride"), ("Mountain Biking", "MountainBikeRide"), ("Walking", "Walk"),
        ("Hiking", "Hike"), ("Downhill Skiing", "AlpineSki"), ("Cross-Country Skiing", "NordicSki"),
        ("Swimming", "Swim"), ("Rowing", "Rowing"), ("Elliptical", "Elliptical"),
        ("Stairmaster / Stepwell", "StairStepper"), ("Strength Training", "WeightTraining"), ("Yoga", "Yoga"),
        ("Snowboarding", "Snowboard"), ("Wheelchair", "Wheelchair"), ("CrossFit", "Crossfit"),
        ("Nordic Walking", "Walk"), ("Other", "Workout"),
    ],
)
def test_issue_mapping(rk: str, strava: str) -> None:
    assert strava_sport(rk).sport_type == strava


@pytest.mark.parametrize("spelling", ["running", "RUNNING", " Running ", "cross country skiing", "StairMaster/Stepwell",
                                      "spinning", "mountain_biking"])
def test_matching_ignores_case_spaces_and_punctuation(spelling: str) -> None:
    assert strava_sport(spelling).sport_type != "Workout"
    assert runkeeper_type(spelling) in RUNKEEPER_TYPES


def test_equipment_refines_the_sport() -> None:
    assert strava_sport("Running", "Treadmill") == Sport("Run", trainer=True)
    assert strava_sport("Walking", "treadmill") == Sport("Walk", trainer=True)
    assert strava_sport("Other", "Treadmill") == Sport("Run", trainer=True)
    assert strava_sport("Cycling", "Stationary Bike") == Sport("Ride", trainer=True)
    assert strava_sport("Spinning") == Sport("Ride", trainer=True)
    assert strava_sport("Rowing", "Row Machine") == Sport("Rowing", trainer=True)
    assert strava_sport("Other", "Elliptical") == Sport("Elliptical", trainer=True)
    assert strava_sport("Running", "None") == Sport("Run", trainer=False)
    assert strava_sport("Running", None) == Sport("Run", trainer=False)
    assert strava_sport("Running", "a kettlebell") == Sport("Run", trainer=False)
    for rk in RUNKEEPER_TYPES:
        assert strava_sport(rk, "Treadmill").sport_type not in ("VirtualRun", "VirtualRide")


def test_secondary_type_refines_only_vague_types() -> None:
    assert strava_sport("Other", secondary_type="Tennis") == Sport("Tennis")
    assert strava_sport("Sports", secondary_type="table tennis") == Sport("TableTennis")
    assert strava_sport("Other", secondary_type="Hiking") == Sport("Hike")
    assert strava_sport("Other", secondary_type="Underwater hockey") == Sport("Workout")
    assert strava_sport("Running", secondary_type="Tennis") == Sport("Run")


@given(st.text(), st.none() | st.text(), st.none() | st.text())
def test_unknown_types_are_workout_never_a_crash(rk: str, equipment: str | None, secondary: str | None) -> None:
    assert strava_sport(rk, equipment, secondary).sport_type in STRAVA_SPORT_TYPES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Running 7/25/13 6:53 am", "Running"),
        ("Mountain Biking 8/1/13 5:20 pm", "Mountain Biking"),
        ("Cross-Country Skiing 1/2/2015 10:00", "Cross-Country Skiing"),
        ("Stairmaster / Stepwell 12.03.16 18:00", "Stairmaster / Stepwell"),
        ("  Walking   2014-08-02 10:50 ", "Walking"),
        ("Walking", "Walking"),
        ("Parkour 7/25/13 6:53 am", None),
        ("", None),
        ("7/25/13 6:53 am", None),
    ],
)
def test_type_from_gpx_name(name: str, expected: str | None) -> None:
    assert type_from_gpx_name(name) == expected


@pytest.mark.parametrize("kind", ["real", "synthetic"])
def test_type_from_every_export_gpx_name(kind: str) -> None:
    import re

    from tests.support.datasets import export, generator

    folder = export("2016", kind).path
    names = [m.group(1) for f in sorted(folder.glob("*.gpx"))
             if (m := re.search(r"<name><!\[CDATA\[(.*?)\]\]></name>", f.read_text(encoding="utf-8")))]
    found = {type_from_gpx_name(n) for n in names}
    assert None not in found and "Running" in found
    if kind == "real":
        assert len(names) > 100
    else:  # every GPS activity of the generator, its type read back from its <name>
        specs = [s for s in generator().ACTIVITIES_2016 if s.gps]
        assert len(names) == len(specs) and found == {s.type for s in specs} == {"Running", "Walking", "Cycling"}


def test_boxing_spelled_loosely_is_still_recognised() -> None:
    assert runkeeper_type("boxing/mma") == "Boxing / MMA"
