"""POST /api/runkeeper against hostile input, called as the host calls it (real Azurite behind it).

Whatever arrives, the answer is a 202/200, or a 4xx whose JSON names every problem; never a 5xx,
never an exception out of the function, never a stack trace in the body. Whatever is accepted
becomes GPX that is well-formed XML and keeps the notes as text, `]]>` and `<script>` included.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest
from defusedxml import ElementTree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.runkeeper.payload import parse_payload
from shared.storage import messages
from shared.strava.convert import to_strava
from tests.support.builders import manual
from tests.support.host import function

GPX_NS = "{http://www.topografix.com/GPX/1/1}"
TRACK = {
    "activityType": "Running",
    "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
    "activityPathLatitude": "51.5,51.5001,51.5002",
    "activityPathLongitude": "-0.1,-0.1001,-0.1002",
    "activityPathAltitude": "10,11,12",
    "activityPathTimestamp": "0,5,10",
    "activityPathType": "start,gps,end",
}
MANUAL = manual("2022-10-01T08:00:00+01:00", "Cycling", duration=3600, distance="20000")
HOSTILE_NOTES = "]]><script>alert(1)</script><![CDATA[ & &amp; \"' \u2028 \U0001f3c3 </desc></gpx>"


def call(body: bytes, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """The registered function with a request built like the host builds one."""
    req = func.HttpRequest("POST", "http://localhost:7071/api/runkeeper", headers=headers or {}, body=body,
                           params={})
    return function("runkeeper")(req)


def check(resp: func.HttpResponse) -> dict[str, Any]:
    """The invariants of every answer; returns the JSON body."""
    assert isinstance(resp, func.HttpResponse)
    assert resp.status_code in (200, 202) or 400 <= resp.status_code < 500, (resp.status_code, resp.get_body()[:500])
    text = resp.get_body().decode("utf-8")
    assert "Traceback" not in text and 'File "' not in text
    body = json.loads(text)
    assert isinstance(body, dict)
    if resp.status_code >= 400:
        assert isinstance(body.get("error"), str) and body["error"]
        if resp.status_code == 400:
            problems = body.get("problems")
            assert isinstance(problems, list) and problems, body
            for p in problems:
                assert isinstance(p, dict) and isinstance(p.get("message"), str) and p["message"]
                assert isinstance(p.get("field"), str)
    else:
        assert body.get("status") and body.get("id")
    return body


def gpx_of(payload: dict[str, Any]) -> bytes | None:
    """The worker's conversion of an accepted payload (None for a manual activity)."""
    parsed = parse_payload(payload, "Europe/London")
    assert not isinstance(parsed, list), parsed
    return to_strava(parsed, "Europe/London").gpx


def assert_well_formed(gpx: bytes, notes: str | None = None) -> None:
    root = ElementTree.fromstring(gpx)
    assert root.tag == GPX_NS + "gpx"
    if notes is not None and notes.strip():
        desc = root.find(f"{GPX_NS}trk/{GPX_NS}desc")
        assert desc is not None
        kept = "".join(c for c in notes.strip() if c in "\t\n\r" or (" " <= c and c not in "\ufffe\uffff"
                                                                      and not "\ud800" <= c <= "\udfff"))
        assert desc.text == kept.replace("\r\n", "\n").replace("\r", "\n")  # XML's line-end normalisation


def post(sync_env, payload: Any, *, raw: bytes | None = None) -> tuple[func.HttpResponse, dict[str, Any]]:
    body = raw if raw is not None else json.dumps(payload, allow_nan=True).encode("utf-8", "surrogatepass")
    resp = call(body, {"Content-Type": "application/json", "X-Api-Key": sync_env.api_key})
    return resp, check(resp)


# ---- the corpus of nasty cases ------------------------------------------------------------------------
def _lists(n: int, **override: str) -> dict[str, Any]:
    base = {
        "activityType": "Running", "activityStartTimeIso": "2023-01-02T07:00:00Z",
        "activityPathLatitude": ",".join(["51.5"] * n), "activityPathLongitude": ",".join(["-0.1"] * n),
        "activityPathTimestamp": ",".join(str(i) for i in range(n)),
        "activityPathType": ",".join((["start"] + ["gps"] * max(0, n - 2) + ["end"])[:n]),
    }
    return {**base, **override}


CORPUS_400: dict[str, tuple[bytes | dict[str, Any], str]] = {
    "huge number": ({**MANUAL, "activityTotalDistance": 1e308}, "activityTotalDistance"),
    "number beyond float": (b'{"activityType":"Cycling","activityStartTimeIso":"2022-10-01T08:00:00Z",'
                            b'"activityDuration":1e400}', "activityDuration"),
    "huge integer": (b'{"activityType":"Cycling","activityStartTimeIso":"2022-10-01T08:00:00Z",'
                     b'"activityDuration":' + b"9" * 5000 + b"}", "body"),
    "NaN literal": (b'{"activityType":"Running","activityDuration":NaN}', "body"),
    "Infinity literal": (b'{"activityType":"Running","activityDuration":-Infinity}', "body"),
    "NaN in a list": (_lists(3, activityPathLatitude="51.5,NaN,51.5"), "activityPathLatitude"),
    "Infinity in a list": (_lists(3, activityPathLongitude="-0.1,Infinity,-0.1"), "activityPathLongitude"),
    "object for the type": ({**MANUAL, "activityType": {"$ne": "x"}}, "activityType"),
    "list for the start": ({**MANUAL, "activityStartTimeIso": ["2022-10-01T08:00:00Z"]}, "activityStartTimeIso"),
    "object for notes": ({**MANUAL, "activityNotes": {"a": "<b>"}}, "activityNotes"),
    "nested lists for a path": (_lists(2, activityPathLatitude=[[51.5], [51.6]]), "activityPathLatitude"),
    "10 MB type": ({**MANUAL, "activityType": "R" * 10_000_000}, "activityType"),
    "invalid UTF-8": (b'{"activityType":"Run\xff\xfening"}', "body"),
    "lone surrogate escape": (b'{"activityType":"\\ud800","activityStartTimeIso":"2022-10-01T08:00:00Z",'
                              b'"activityDuration":60}', "body"),
    "lone surrogate in an unknown key": (b'{"activityType":"Cycling","activityStartTimeIso":"2022-10-01T08:00:00Z",'
                                         b'"activityDuration":60,"x\\udc00":1}', "body"),
    "lone surrogate in notes": (b'{"activityType":"Cycling","activityStartTimeIso":"2022-10-01T08:00:00Z",'
                                b'"activityDuration":60,"activityNotes":"ok \\udfff"}', "body"),
    "zero points and no duration": (_lists(0), "activityDuration"),
    "one point and no duration": (_lists(1), "activityDuration"),  # one point is no track
    "timestamps going backwards": (_lists(4, activityPathTimestamp="0,10,5,20"), "activityPathTimestamp"),
    "latitude of 91": (_lists(3, activityPathLatitude="51.5,91,51.5"), "activityPathLatitude"),
    "longitude of -180.5": (_lists(3, activityPathLongitude="0,-180.5,0"), "activityPathLongitude"),
    "lists of different lengths": (_lists(3, activityPathLongitude="-0.1,-0.1"), "activityPathLongitude"),
    "start in the year 9999": ({**MANUAL, "activityStartTimeIso": "9999-12-31T23:59:59Z"}, "activityStartTimeIso"),
    "start is not a date": ({**MANUAL, "activityStartTimeIso": "<script>"}, "activityStartTimeIso"),
    "a JSON array": (b"[1,2,3]", "body"),
    "a JSON string": (b'"hello"', "body"),
    "null": (b"null", "body"),
    "empty body": (b"", "body"),
    "deep nesting": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "body"),
    "type is a boolean": ({**MANUAL, "activityType": True}, "activityType"),
    "negative duration": ({**MANUAL, "activityDuration": -5}, "activityDuration"),
    "heart rate of 10,000": ({**_lists(3), "activityHeartRateTimestamp": "0,1,2",
                              "activityHeartRateBpm": "120,10000,130"}, "activityHeartRateBpm"),
}


@pytest.mark.parametrize("case", sorted(CORPUS_400))
def test_nasty_case_is_a_4xx_naming_the_problem(sync_env, case: str) -> None:
    payload, field = CORPUS_400[case]
    raw = payload if isinstance(payload, bytes) else None
    resp, body = post(sync_env, payload, raw=raw)
    assert resp.status_code == 400, (case, body)
    fields = " ".join(p["field"] for p in body["problems"])
    assert field.lower() in fields.lower(), (case, body["problems"])
    assert sync_env.queue_count() == 0


def test_a_body_over_the_limit_is_413_not_a_crash(sync_env) -> None:
    resp, body = post(sync_env, None, raw=b'{"activityNotes":"' + b"x" * (21 * 1024 * 1024) + b'"}')
    assert resp.status_code == 413 and "MB" in body["error"]


ACCEPTED: dict[str, dict[str, Any]] = {
    "notes with ]]> and <script>": {**TRACK, "activityNotes": HOSTILE_NOTES},
    "notes with control characters": {**TRACK, "activityNotes": "a\x00b\x01c\x0bd\x1fe\ufffff"},
    "notes that are 10 MB": {**TRACK, "activityNotes": "<&>" * 3_500_000},
    "surrogate pair (an emoji, escaped)": {**MANUAL, "activityNotes": "\U0001f3c3"},
    "two points": _lists(2),
    "duplicated point times": _lists(3, activityPathTimestamp="0,0,0"),
    "manual with hostile notes": {**MANUAL, "activityNotes": HOSTILE_NOTES},
    "numbers as JSON numbers": {**MANUAL, "activityDuration": 3600.0, "activityTotalDistance": 0},
    "unknown extra keys": {**TRACK, "<script>": "x", "activityFoo": {"deep": [1, 2]}},
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_odd_but_valid_input_is_accepted_and_its_gpx_is_well_formed(sync_env, case: str) -> None:
    payload = ACCEPTED[case]
    resp, _ = post(sync_env, payload)
    assert resp.status_code == 202, resp.get_body()[:500]
    [message] = sync_env.visible_messages()
    queued = messages.load_payload(sync_env.storage, messages.decode(json.dumps(message)))
    gpx = gpx_of(queued)
    if gpx is not None:
        notes = queued.get("activityNotes")
        assert_well_formed(gpx, notes if isinstance(notes, str) else None)


def test_duplicated_keys_are_refused_by_name(sync_env) -> None:
    """Two values for one key: which one Zapier meant is unknowable, so neither is guessed."""
    raw = (b'{"activityType":"Running","activityType":"Cycling",'
           b'"activityStartTimeIso":"2022-10-01T08:00:00Z","activityDuration":60}')
    resp, body = post(sync_env, None, raw=raw)
    assert resp.status_code == 400
    assert "'activityType' appears more than once" in body["error"]
    assert sync_env.queue_count() == 0


# ---- hypothesis ---------------------------------------------------------------------------------------
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=12)
_number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
    st.sampled_from(["", " ", "1e999", "-0", "0x10", "١٢", "1,5", "NaN", "inf", "+3", ".5", "5."]),
)


@st.composite
def _lists_text(draw: st.DrawFn, n: int) -> str:
    return ",".join(draw(st.lists(_number_text, min_size=n, max_size=n)))


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    """Payloads near the real shape: each key absent, sensible, or nonsense of any JSON type."""
    n = draw(st.integers(min_value=0, max_value=6))
    sensible: dict[str, st.SearchStrategy[Any]] = {
        "activityType": st.sampled_from(["Running", "Cycling", "Other", "Yoga", "running", "Boxing / MMA", ""]),
        "activityStartTimeIso": st.sampled_from(["2022-09-26T18:52:22+01:00", "2022-09-26T18:52:22", "2022-09-26",
                                                 "Sat, 1 Jan 2011 00:00:00", "1900-01-01T00:00:00Z", "now"]),
        "activityNotes": st.text(max_size=200),
        "activityDuration": st.one_of(_number_text, st.floats(allow_nan=False, allow_infinity=False)),
        "activityTotalDistance": _number_text,
        "activityPathLatitude": _lists_text(n),
        "activityPathLongitude": _lists_text(n),
        "activityPathAltitude": _lists_text(n),
        "activityPathTimestamp": _lists_text(n),
        "activityPathType": st.lists(st.sampled_from(["start", "gps", "pause", "resume", "end", "manual", "x"]),
                                     min_size=n, max_size=n).map(",".join),
        "activityHeartRateTimestamp": _lists_text(n),
        "activityHeartRateBpm": _lists_text(n),
    }
    payload: dict[str, Any] = {}
    for key, strategy in sensible.items():
        choice = draw(st.integers(min_value=0, max_value=9))
        if choice < 6:
            payload[key] = draw(strategy)
        elif choice < 8:
            payload[key] = draw(_json)
    payload.update(draw(st.dictionaries(st.text(max_size=12), _json, max_size=2)))
    return payload


HYPOTHESIS = settings(max_examples=150, deadline=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@HYPOTHESIS
@given(payload=payloads())
def test_any_payload_is_answered_properly(sync_env, payload: dict[str, Any]) -> None:
    resp, _ = post(sync_env, payload)
    if resp.status_code == 202:
        gpx = gpx_of(payload)
        if gpx is not None:
            notes = payload.get("activityNotes")
            assert_well_formed(gpx, notes if isinstance(notes, str) else None)


@HYPOTHESIS
@given(raw=st.one_of(st.binary(max_size=300), _json.map(lambda v: json.dumps(v).encode())))
def test_any_body_is_answered_properly(sync_env, raw: bytes) -> None:
    post(sync_env, None, raw=raw)


@HYPOTHESIS
@given(raw=st.binary(max_size=200), key=st.one_of(st.none(), st.text(max_size=30)))
def test_without_the_key_anything_is_401(sync_env, raw: bytes, key: str | None) -> None:
    headers = {} if key is None else {"X-Api-Key": key.encode("utf-8", "replace").decode("latin-1")}
    resp = call(raw, headers)
    body = check(resp)
    assert resp.status_code == 401 and "key" in body["error"]
