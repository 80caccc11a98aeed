"""The ack's screen for big columns: never says "fine" about characters a plain column cannot hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from shared.plaincolumns import lowercase_words, plain_decimals
from tests.conftest import data_path


def test_the_real_columns_pass() -> None:
    seed = json.loads(data_path("zapier", "example-seed-app.json").read_text(encoding="utf-8"))
    for key in ("activityPathLatitude", "activityPathLongitude", "activityPathAltitude", "activityPathTimestamp",
                "activityHeartRateTimestamp", "activityHeartRateBpm"):
        assert plain_decimals(seed[key]), key
    assert lowercase_words(seed["activityPathType"])


def test_what_a_wrongly_mapped_zap_sends_does_not_pass() -> None:
    for text in ("", "Running", "51.1,51.2,abc", "1e5", "1 ,2", "+5", "nan", "inf", "٥", "5\u00a0", "1_0", "[1,2]",
                 '"1"', "1;2"):
        assert not plain_decimals(text), text
    for text in ("", "gps,GPS", "gps, gps", "gps,pause1", "gps,é", "51.1,51.2"):
        assert not lowercase_words(text), text


def test_what_passes_the_screen_may_still_be_wrong_value_by_value() -> None:
    """The screen is about characters only: these are the worker's to name (tests/test_worker.py)."""
    for text in ("91,200", "1.2.3", "-", "1,,2", ",5", "5,", "--1"):
        assert plain_decimals(text), text
    assert lowercase_words("gps,walking,,gps")


@given(st.text(max_size=40))
def test_passing_means_only_plain_characters(text: str) -> None:
    if plain_decimals(text):
        assert text and set(text) <= set("0123456789.,-")
    if lowercase_words(text):
        assert text and set(text) <= set("abcdefghijklmnopqrstuvwxyz,")


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.5f}"), min_size=1, max_size=30))
def test_plain_decimals_always_pass(values: list[str]) -> None:
    assert plain_decimals(",".join(values))
