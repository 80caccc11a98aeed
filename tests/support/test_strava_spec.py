"""The validator the fake Strava applies to every request: Strava's official spec (tests/support/strava_spec.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support.fake_strava import FakeStrava
from tests.support.strava_spec import StravaSpec, load_spec


@pytest.fixture(scope="module")
def spec() -> StravaSpec:
    loaded = load_spec()
    if loaded is None:
        pytest.skip("Strava's spec not present (../shared/data/strava/strava_swagger.json)")
    return loaded


def form(**fields: str) -> tuple[str, bytes]:
    from urllib.parse import urlencode

    return "application/x-www-form-urlencoded", urlencode(fields).encode()


MANUAL = {"name": "Run", "sport_type": "Run", "start_date_local": "2021-06-01T08:30:00", "elapsed_time": "1800",
          "distance": "5000.0", "trainer": "0", "commute": "1"}


def named(violations: list) -> list[tuple[str, str]]:
    return [(v.param, v.problem.split(" (spec")[0]) for v in violations]


def test_what_the_app_sends_is_inside_the_spec(spec: StravaSpec) -> None:
    assert spec.check("POST", "/api/v3/activities", {}, *form(**MANUAL)) == []
    query = {"after": ["1600000000"], "before": ["1700000000"], "per_page": ["200"], "page": ["2"]}
    assert spec.check("GET", "/api/v3/athlete/activities", query, "", b"") == []
    assert spec.check("GET", "/api/v3/uploads/9000000001", {}, "", b"") == []
    assert spec.check("GET", "/api/v3/athlete", {}, "", b"") == []
    body = json.dumps({"gear_id": "g12345", "hide_from_home": True}).encode()
    assert spec.check("PUT", "/api/v3/activities/9000000001", {}, "application/json", body) == []
    # Not described by the spec (OAuth): not checked.
    assert spec.check("POST", "/oauth/token", {}, *form(grant_type="x")) == []


def test_types_enums_and_required_are_named(spec: StravaSpec) -> None:
    bad = {**MANUAL, "trainer": "true", "elapsed_time": "30:00"}
    del bad["name"]
    assert sorted(named(spec.check("POST", "/api/v3/activities", {}, *form(**bad)))) == [
        ("elapsed_time", "'30:00' is not an integer"), ("name", "required, missing"),
        ("trainer", "'true' is not an integer")]
    got = spec.check("GET", "/api/v3/athlete/activities", {"per_page": ["lots"], "after": ["1.5"]}, "", b"")
    assert sorted(named(got)) == [("after", "'1.5' is not an integer"), ("per_page", "'lots' is not an integer")]
    # The spec's own words come with the violation.
    (violation,) = spec.check("GET", "/api/v3/athlete/activities", {"before": ["x"]}, "", b"")
    assert "An epoch timestamp" in violation.problem and "integer in query" in violation.problem


def test_uploads_multipart_file_enum_and_the_allow_list(spec: StravaSpec) -> None:
    def multipart(fields: dict[str, str], file: bool = True) -> list[tuple[str, str]]:
        prepared = requests.Request("POST", "http://x/api/v3/uploads", data=fields,
                                    files={"file": ("a.gpx.gz", b"\x1f\x8b data")} if file else None).prepare()
        if not file:  # force multipart without a file part
            prepared = requests.Request("POST", "http://x/api/v3/uploads",
                                        files={k: (None, v) for k, v in fields.items()}).prepare()
        return named(spec.check("POST", "/api/v3/uploads", {}, prepared.headers["Content-Type"],
                                prepared.body))

    ok = {"data_type": "gpx.gz", "name": "n", "trainer": "0", "commute": "1", "external_id": "e",
          "sport_type": "Run"}  # sport_type: documented, not in the spec, allow-listed
    assert multipart(ok) == []
    assert multipart({**ok, "data_type": "kml"}) == [
        ("data_type", "'kml' is not one of fit, fit.gz, tcx, tcx.gz, gpx, gpx.gz")]
    assert multipart({**ok, "hide_from_home": "true"}) == [
        ("hide_from_home", "sent in formData, not a parameter of this operation in the spec")]
    assert multipart({**ok, "file": "not a file"}, file=False) == [("file", "must be a file part")]


def test_paths_methods_locations_and_bodies(spec: StravaSpec) -> None:
    assert named(spec.check("GET", "/api/v3/nowhere", {}, "", b"")) == [("(path)", "no such path in the spec")]
    assert named(spec.check("DELETE", "/api/v3/activities/1", {}, "", b"")) == [
        ("(method)", "method not in the spec; it has GET, PUT")]
    assert named(spec.check("GET", "/api/v3/uploads/abc", {}, "", b"")) == [("uploadId", "'abc' is not an integer")]
    assert named(spec.check("POST", "/api/v3/activities", {"name": ["x"]}, *form(**{**MANUAL, "name": "y"}))) == [
        ("name", "sent in query, but the spec has it in formData")]
    assert named(spec.check("POST", "/api/v3/activities", {}, "application/json", json.dumps(MANUAL).encode())) == [
        ("(body)", "a JSON body, but the spec takes this operation's parameters in formData")]
    put = spec.check("PUT", "/api/v3/activities/1", {}, "application/json",
                     json.dumps({"hide_from_home": "yes", "private": True}).encode())
    assert sorted(v.param for v in put) == ["hide_from_home", "private"]


def test_no_spec_file_means_no_validation(tmp_path: Path) -> None:
    assert load_spec(str(tmp_path / "absent.json")) is None


def test_the_fake_answers_400_and_records(fake_strava: FakeStrava) -> None:
    if fake_strava.spec is None:
        pytest.skip("Strava's spec not present")
    tok = requests.post(f"{fake_strava.url}/oauth/token", timeout=5, data={
        "client_id": fake_strava.client_id, "client_secret": fake_strava.client_secret,
        "grant_type": "authorization_code", "code": fake_strava.issue_code()}).json()["access_token"]
    answer = requests.get(f"{fake_strava.url}/api/v3/athlete/activities", params={"per_page": "many"},
                          headers={"Authorization": f"Bearer {tok}"}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "per_page" and "integer" in answer.json()["errors"][0]["code"]
    assert [v.param for v in fake_strava.take_spec_violations()] == ["per_page"]
