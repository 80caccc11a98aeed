"""Members cut out of a JSON object's text give exactly what decoding and dropping them would."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.jsontext import without_members

DROP = ("apiKey", "apiEndpoint")
_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
_names = st.sampled_from(["apiKey", "apiEndpoint", "activityType", "api", "notes", "apikey"]) | st.text(max_size=8)
_space = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])


@st.composite
def _object_text(draw: st.DrawFn) -> str:
    """A JSON object's text with its members in any order, any spacing, names plain or \\u-escaped."""
    members = draw(st.dictionaries(_names, _value, max_size=6))
    parts = []
    for name, value in members.items():
        escaped = draw(st.booleans())
        name_text = json.dumps(name, ensure_ascii=escaped)
        if escaped and name:  # every character as \\uXXXX, beyond the BMP as a surrogate pair
            units = name.encode("utf-16-be")
            name_text = '"' + "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)) + '"'
        parts.append(draw(_space) + name_text + draw(_space) + ":" + draw(_space)
                     + json.dumps(value, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))))
    return draw(_space) + "{" + ",".join(p + draw(_space) for p in parts) + draw(_space) + "}" + draw(_space)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_object_text())
def test_cutting_members_equals_dropping_them_after_decoding(text: str) -> None:
    expected = {k: v for k, v in json.loads(text).items() if k not in DROP}
    out = without_members(text.encode("utf-8"), DROP)
    assert json.loads(out) == expected


def test_the_other_members_keep_their_text() -> None:
    text = '{ "a": "x\\u00e9", "apiKey":"secret" ,"b":[1, 2.50],"api\\u004bey": "s2", "apiEndpoint":{"u": 1}}'
    out = without_members(text.encode(), DROP)
    assert out == b'{"a": "x\\u00e9","b":[1, 2.50]}'
    assert b"secret" not in out and b"s2" not in out
    assert without_members('{"é": "\\"apiKey\\"", "apiKey": 1}'.encode(), DROP) == '{"é": "\\"apiKey\\""}'.encode()


@pytest.mark.parametrize("text", ["[1]", "", "  ", '{"a" 1}', '{"a": 1 "b": 2}', '{1: 2}'])
def test_text_that_is_not_an_object_raises(text: str) -> None:
    with pytest.raises(ValueError):
        without_members(text.encode(), DROP)


@pytest.mark.parametrize("value", [
    '\\"' * 1000, "\\\\" * 1000 + '\\"', "a\\\\", "\\u00e9\\ud83d\\ude00",
    "x" * 100_000,
])
def test_escapes_and_long_strings_end_where_json_says(value: str) -> None:
    text = '{"n": "' + value + '", "apiKey": "SECRET-KEY-VALUE", "m": "' + value + '"}'
    out = without_members(text.encode(), DROP)
    assert b"SECRET-KEY-VALUE" not in out
    assert json.loads(out) == {"n": json.loads('"' + value + '"'), "m": json.loads('"' + value + '"')}
