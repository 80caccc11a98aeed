"""The fake Strava behaves as Strava's documentation and API reference say, so every other part's tests can trust it."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.fake_strava import STATUS_ERROR, STATUS_PROCESSING, STATUS_READY, FakeStrava, make_gpx


def gpx(start: datetime, points: int = 3, hr: bool = False) -> bytes:
    return make_gpx(start, points, heart_rate=hr)


START = datetime(2021, 6, 1, 7, 30, tzinfo=UTC)


def token(fake: FakeStrava, athlete_id: int | None = None, scope: str = "read,activity:write,activity:read_all"):
    answer = requests.post(f"{fake.url}/oauth/token", data={
        "client_id": fake.client_id, "client_secret": fake.client_secret,
        "code": fake.issue_code(athlete_id, scope), "grant_type": "authorization_code"}, timeout=5)
    assert answer.status_code == 200
    return answer.json()


def auth(tok: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok['access_token']}"}


def upload(fake: FakeStrava, tok: dict, data: bytes, *, gz: bool = True, **fields: str) -> requests.Response:
    body = gzip.compress(data) if gz else data
    return requests.post(f"{fake.url}/api/v3/uploads", headers=auth(tok), timeout=5,
                         files={"file": (fields.pop("filename", "run.gpx"), body)},
                         data={"data_type": "gpx.gz" if gz else "gpx", **fields})


def status(fake: FakeStrava, tok: dict, upload_id: str) -> dict:
    return requests.get(f"{fake.url}/api/v3/uploads/{upload_id}", headers=auth(tok), timeout=5).json()


# ---- OAuth ------------------------------------------------------------------------------------------
def authorize(fake: FakeStrava, scope: str = "activity:write,activity:read_all", **extra: str) -> requests.Response:
    params = {"client_id": fake.client_id, "redirect_uri": "http://localhost:7071/api/strava/callback",
              "response_type": "code", "approval_prompt": "auto", "scope": scope, "state": "s1", **extra}
    return requests.get(f"{fake.url}/oauth/authorize", params=params, allow_redirects=False, timeout=5)


def test_authorize_approves_with_code_state_and_scope(fake_strava: FakeStrava) -> None:
    answer = authorize(fake_strava)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert (location.hostname, location.port, location.path) == ("localhost", 7071, "/api/strava/callback")
    query = parse_qs(location.query)
    assert query["state"] == ["s1"]
    assert query["scope"] == ["read,activity:write,activity:read_all"]
    tok = requests.post(f"{fake_strava.url}/oauth/token", timeout=5, data={
        "client_id": fake_strava.client_id, "client_secret": fake_strava.client_secret,
        "code": query["code"][0], "grant_type": "authorization_code"}).json()
    assert tok["athlete"]["id"] == fake_strava.athlete.id
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 6 * 3600


def test_authorize_deny_and_fewer_scopes(fake_strava: FakeStrava) -> None:
    fake_strava.authorize_mode = "deny"
    query = parse_qs(urlsplit(authorize(fake_strava).headers["Location"]).query)
    assert query == {"state": ["s1"], "error": ["access_denied"]}
    fake_strava.authorize_mode = "approve"
    fake_strava.granted_scope = "activity:read_all"
    query = parse_qs(urlsplit(authorize(fake_strava).headers["Location"]).query)
    assert query["scope"] == ["read,activity:read_all"]


def test_authorize_refuses_unknown_client_and_foreign_redirect(fake_strava: FakeStrava) -> None:
    assert authorize(fake_strava, client_id="999").status_code == 400
    assert authorize(fake_strava, redirect_uri="https://evil.example/cb").status_code == 400


def test_codes_are_single_use_and_need_the_secret(fake_strava: FakeStrava) -> None:
    code = fake_strava.issue_code()
    form = {"client_id": fake_strava.client_id, "client_secret": "wrong", "code": code,
            "grant_type": "authorization_code"}
    assert requests.post(f"{fake_strava.url}/oauth/token", data=form, timeout=5).status_code == 401
    form["client_secret"] = fake_strava.client_secret
    assert requests.post(f"{fake_strava.url}/oauth/token", data=form, timeout=5).status_code == 200
    again = requests.post(f"{fake_strava.url}/oauth/token", data=form, timeout=5)
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "code"


def refresh(fake: FakeStrava, refresh_token: str) -> requests.Response:
    return requests.post(f"{fake.url}/oauth/token", timeout=5, data={
        "client_id": fake.client_id, "client_secret": fake.client_secret,
        "grant_type": "refresh_token", "refresh_token": refresh_token})


def test_refresh_one_hour_rule_and_rotation(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    same = refresh(fake_strava, tok["refresh_token"]).json()
    assert (same["access_token"], same["refresh_token"]) == (tok["access_token"], tok["refresh_token"])
    fake_strava.advance(5 * 3600 + 60)  # under an hour left
    new = refresh(fake_strava, tok["refresh_token"]).json()
    assert new["access_token"] != tok["access_token"] and new["refresh_token"] != tok["refresh_token"]
    old = refresh(fake_strava, tok["refresh_token"])
    assert old.status_code == 400 and old.json()["errors"][0]["field"] == "refresh_token"
    assert fake_strava.refresh_count == 3
    assert requests.get(f"{fake_strava.url}/api/v3/athlete", headers=auth(new), timeout=5).status_code == 200


def test_expired_tokens_answer_401_and_refresh_rotates(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    fake_strava.expire_access_tokens()
    answer = requests.get(f"{fake_strava.url}/api/v3/athlete", headers=auth(tok), timeout=5)
    assert answer.status_code == 401 and answer.json()["message"] == "Authorization Error"
    new = refresh(fake_strava, tok["refresh_token"]).json()
    assert new["access_token"] != tok["access_token"]
    assert fake_strava.token_is_valid(new["access_token"])


def test_token_lifetime_knob(fake_strava: FakeStrava) -> None:
    fake_strava.token_lifetime = 60
    tok = token(fake_strava)
    assert tok["expires_in"] == 60
    assert refresh(fake_strava, tok["refresh_token"]).json()["access_token"] != tok["access_token"]


def test_deauthorize_revokes(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    assert requests.post(f"{fake_strava.url}/oauth/deauthorize", data={"access_token": tok["access_token"]},
                         timeout=5).status_code == 200
    assert requests.get(f"{fake_strava.url}/api/v3/athlete", headers=auth(tok), timeout=5).status_code == 401
    assert refresh(fake_strava, tok["refresh_token"]).status_code == 400


def test_missing_write_scope_is_a_401_naming_the_permission(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava, scope="read,activity:read_all")
    answer = upload(fake_strava, tok, gpx(START))
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["field"] == "activity:write_permission"


# ---- uploads ----------------------------------------------------------------------------------------
def test_upload_processes_then_ready_with_points_and_heart_rate(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    fake_strava.processing_polls = 2
    answer = upload(fake_strava, tok, gpx(START, points=5, hr=True), name="Morning", sport_type="Run",
                    description="notes", trainer="0", commute="1", external_id="rk-1")
    assert answer.status_code == 201
    first = answer.json()
    assert first["status"] == STATUS_PROCESSING and first["activity_id"] is None and first["id_str"]
    assert first["id"] > 2**32
    assert status(fake_strava, tok, first["id_str"])["status"] == STATUS_PROCESSING
    assert status(fake_strava, tok, first["id_str"])["status"] == STATUS_PROCESSING
    done = status(fake_strava, tok, first["id_str"])
    assert done["status"] == STATUS_READY and done["error"] is None
    act = fake_strava.activity(done["activity_id"])
    assert (act.name, act.sport_type, act.description, act.trainer, act.commute, act.external_id) == (
        "Morning", "Run", "notes", False, True, "rk-1")
    assert (act.points, act.has_heart_rate, act.start_date, act.elapsed_time) == (5, True, START, 40)
    assert act.manual is False and act.distance and act.distance > 0


def test_plain_gpx_upload_without_type_takes_the_athlete_default(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    first = upload(fake_strava, tok, gpx(START), gz=False).json()
    act = fake_strava.activity(status(fake_strava, tok, first["id_str"])["activity_id"])
    assert act.sport_type == fake_strava.athlete.default_sport and act.has_heart_rate is False


@pytest.mark.parametrize("second_fields", [{"external_id": "other"}, {"external_id": "rk-1"}])
def test_duplicates_by_start_time_or_external_id(fake_strava: FakeStrava, second_fields: dict) -> None:
    tok = token(fake_strava)
    first = upload(fake_strava, tok, gpx(START), external_id="rk-1").json()
    activity_id = status(fake_strava, tok, first["id_str"])["activity_id"]
    start = START if second_fields["external_id"] == "other" else START + timedelta(hours=3)
    second = upload(fake_strava, tok, gpx(start), filename="2013-07-25-0653.gpx", **second_fields).json()
    done = status(fake_strava, tok, second["id_str"])
    assert done["status"] == STATUS_ERROR
    assert done["error"] == f"2013-07-25-0653.gpx duplicate of activity {activity_id}"
    assert len(fake_strava.activities()) == 1


@pytest.mark.parametrize(("data", "gz", "needle"), [
    (b"<gpx><trk><trkseg><trkpt lat='1' lon='2'></trkpt></trkseg></trk></gpx>", True, "Time information"),
    (b"not xml at all", True, "Improperly formatted"),
    (b"", True, "empty"),
    (b"\x1f\x8b\x08junk", False, "gzipped"),
])
def test_unreadable_files_end_in_a_processing_error(fake_strava: FakeStrava, data: bytes, gz: bool,
                                                    needle: str) -> None:
    tok = token(fake_strava)
    first = upload(fake_strava, tok, data, gz=gz).json()
    done = status(fake_strava, tok, first["id_str"])
    assert done["status"] == STATUS_ERROR and needle in done["error"]
    assert fake_strava.activities() == []


def test_bad_gzip_and_bad_data_type(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    answer = requests.post(f"{fake_strava.url}/api/v3/uploads", headers=auth(tok), timeout=5,
                           files={"file": ("a.gpx.gz", b"not gzip")}, data={"data_type": "gpx.gz"})
    assert "gzip" in status(fake_strava, tok, answer.json()["id_str"])["error"]
    answer = requests.post(f"{fake_strava.url}/api/v3/uploads", headers=auth(tok), timeout=5,
                           files={"file": ("a.kml", b"x")}, data={"data_type": "kml"})
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "data_type"
    sent_on_purpose = fake_strava.take_spec_violations()  # outside the spec's enum: 400 either way
    assert [v.param for v in sent_on_purpose] == (["data_type"] if fake_strava.spec else [])


def test_fail_next_processing_and_deleted_activity(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    fake_strava.fail_next_processing("Something odd.")
    bad = upload(fake_strava, tok, gpx(START)).json()
    assert status(fake_strava, tok, bad["id_str"])["error"] == "Something odd."
    good = upload(fake_strava, tok, gpx(START)).json()
    activity_id = status(fake_strava, tok, good["id_str"])["activity_id"]
    fake_strava.delete_activity(activity_id)
    assert status(fake_strava, tok, good["id_str"])["status"] == "The created activity has been deleted."


def test_unknown_upload_is_404(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    assert requests.get(f"{fake_strava.url}/api/v3/uploads/12345", headers=auth(tok), timeout=5).status_code == 404


# ---- manual activities and listing --------------------------------------------------------------------
def test_manual_activities_are_not_deduplicated_and_use_the_athletes_zone(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    form = {"name": "Treadmill", "sport_type": "Run", "start_date_local": "2021-06-01T08:30:00",
            "elapsed_time": "1800", "distance": "5000", "trainer": "1"}
    for _ in range(2):
        answer = requests.post(f"{fake_strava.url}/api/v3/activities", headers=auth(tok), data=form, timeout=5)
        assert answer.status_code == 201
    assert answer.json()["start_date"] == "2021-06-01T07:30:00Z"  # London summer time
    acts = fake_strava.activities()
    assert len(acts) == 2 and all(a.manual and a.trainer and a.distance == 5000 for a in acts)
    as_json = requests.post(f"{fake_strava.url}/api/v3/activities", headers=auth(tok), json=form, timeout=5)
    # Strava's spec takes these as formData: with the spec present a JSON body is refused (and recorded).
    assert as_json.status_code == (400 if fake_strava.spec else 201)
    assert len(fake_strava.take_spec_violations()) == (1 if fake_strava.spec else 0)


def test_manual_activity_names_every_missing_field(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    answer = requests.post(f"{fake_strava.url}/api/v3/activities", headers=auth(tok), data={"name": "x"}, timeout=5)
    assert answer.status_code == 400
    assert {e["field"] for e in answer.json()["errors"]} == {"start_date_local", "elapsed_time", "sport_type"}
    answer = requests.post(f"{fake_strava.url}/api/v3/activities", headers=auth(tok), timeout=5, data={
        "name": "x", "sport_type": "Jogging", "start_date_local": "2021-01-01T00:00:00", "elapsed_time": "1"})
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "sport_type"
    fake_strava.take_spec_violations()  # the missing required fields above were sent on purpose


def test_listing_filters_pages_and_orders(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    for i in range(5):
        fake_strava.add_activity(name=f"a{i}", sport_type="Run", start_date=START + timedelta(days=i))
    url = f"{fake_strava.url}/api/v3/athlete/activities"

    def names(**params: int) -> list[str]:
        return [a["name"] for a in requests.get(url, headers=auth(tok), params=params, timeout=5).json()]

    assert names() == ["a4", "a3", "a2", "a1", "a0"]
    after = int(START.timestamp())
    assert names(after=after) == ["a1", "a2", "a3", "a4"]  # strictly after, oldest first
    assert names(after=after - 1, before=after + 2 * 86400) == ["a0", "a1"]
    assert names(after=after - 1, per_page=2, page=2) == ["a2", "a3"]
    entry = requests.get(url, headers=auth(tok), params={"per_page": 1}, timeout=5).json()[0]
    assert {"id", "name", "sport_type", "start_date", "start_date_local", "external_id", "upload_id",
            "distance", "elapsed_time"} <= entry.keys()


def test_seeded_device_activities_are_duplicates_but_manual_ones_are_not(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    manual = fake_strava.add_activity(name="typed in", sport_type="Run", start_date=START, manual=True)
    first = upload(fake_strava, tok, gpx(START)).json()
    assert status(fake_strava, tok, first["id_str"])["status"] == STATUS_READY
    watch = fake_strava.add_activity(name="watch", sport_type="Run", start_date=START + timedelta(days=1))
    second = upload(fake_strava, tok, gpx(START + timedelta(days=1))).json()
    assert status(fake_strava, tok, second["id_str"])["error"].endswith(f"duplicate of activity {watch.id}")
    assert manual.id in {a.id for a in fake_strava.activities()}


def test_athletes_are_separate(fake_strava: FakeStrava) -> None:
    other = fake_strava.add_athlete("Grace", "Hopper")
    mine, theirs = token(fake_strava), token(fake_strava, other.id)
    assert theirs["athlete"]["firstname"] == "Grace"
    upload(fake_strava, mine, gpx(START))
    second = upload(fake_strava, theirs, gpx(START)).json()  # same start, other athlete: not a duplicate
    assert status(fake_strava, theirs, second["id_str"])["status"] == STATUS_READY
    assert len(fake_strava.activities(other.id)) == 1 and len(fake_strava.activities(fake_strava.athlete.id)) == 1
    assert requests.get(f"{fake_strava.url}/api/v3/uploads/{second['id_str']}", headers=auth(mine),
                        timeout=5).status_code == 404


# ---- rate limits, clock and faults ------------------------------------------------------------------
def test_headers_on_every_answer_and_429_past_the_limit(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    fake_strava.set_limits(overall=(3, 7), read=(2, 4))
    url = f"{fake_strava.url}/api/v3/athlete"
    first = requests.get(url, headers=auth(tok), timeout=5)
    assert first.headers["X-RateLimit-Limit"] == "3,7" and first.headers["X-RateLimit-Usage"] == "1,1"
    assert first.headers["X-ReadRateLimit-Limit"] == "2,4" and first.headers["X-ReadRateLimit-Usage"] == "1,1"
    requests.get(url, headers=auth(tok), timeout=5)
    refused = requests.get(url, headers=auth(tok), timeout=5)
    assert refused.status_code == 429
    assert refused.json() == {"message": "Rate Limit Exceeded", "errors": [
        {"resource": "Application", "field": "read rate limit", "code": "exceeded"}]}
    assert refused.headers["X-ReadRateLimit-Usage"] == "2,3"  # refused, yet counted toward the day
    write = upload(fake_strava, tok, gpx(START))  # uploads spend only the overall budget
    assert write.status_code == 201 and write.headers["X-RateLimit-Usage"] == "3,4"
    over = upload(fake_strava, tok, gpx(START + timedelta(hours=1)))
    assert over.status_code == 429 and over.json()["errors"][0]["field"] == "overall rate limit"
    assert fake_strava.rate_limited_count == 2
    fake_strava.advance_window()
    later = requests.get(url, headers=auth(tok), timeout=5)
    assert later.status_code == 200 and later.headers["X-RateLimit-Usage"] == "1,6"
    fake_strava.advance_window()
    spent = requests.get(url, headers=auth(tok), timeout=5)
    assert spent.status_code == 429 and spent.headers["X-ReadRateLimit-Usage"] == "0,5"  # the daily read limit
    fake_strava.advance_day()
    assert requests.get(url, headers=auth(tok), timeout=5).headers["X-RateLimit-Usage"] == "1,1"


def test_clock_is_settable_and_windows_are_natural(fake_strava: FakeStrava) -> None:
    fake_strava.now = datetime(2030, 1, 1, 10, 7, tzinfo=UTC)
    assert fake_strava.advance_window().replace(second=0) == datetime(2030, 1, 1, 10, 15, tzinfo=UTC)
    assert fake_strava.advance_day() == datetime(2030, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        fake_strava.now = datetime(2030, 1, 1)


def test_fail_next_before_and_after_apply(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    fake_strava.fail_next(1, 503, path_prefix="/api/v3/uploads", method="POST")
    assert upload(fake_strava, tok, gpx(START)).status_code == 503
    assert fake_strava.activities() == []
    fake_strava.fail_next(1, 500, path_prefix="/api/v3/uploads", after_apply=True)
    assert upload(fake_strava, tok, gpx(START)).status_code == 500
    assert len(fake_strava.activities()) == 1  # created anyway
    assert upload(fake_strava, tok, gpx(START + timedelta(hours=1))).status_code == 201  # faults used up


def test_hold_next_is_a_timeout_after_the_request_took_effect(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    fake_strava.hold_next(1, seconds=3, path_prefix="/api/v3/activities")
    with pytest.raises(requests.ReadTimeout):
        requests.post(f"{fake_strava.url}/api/v3/activities", headers=auth(tok), timeout=(2, 0.5), data={
            "name": "x", "sport_type": "Run", "start_date_local": "2021-01-01T00:00:00", "elapsed_time": "1"})
    assert len(fake_strava.activities()) == 1


def test_counters(fake_strava: FakeStrava) -> None:
    tok = token(fake_strava)
    first = upload(fake_strava, tok, gpx(START)).json()
    status(fake_strava, tok, first["id_str"])
    status(fake_strava, tok, first["id_str"])
    assert fake_strava.call_count("GET", f"/api/v3/uploads/{first['id']}") == 2
    assert fake_strava.calls["POST /api/v3/uploads"] == 1
    assert fake_strava.api_calls == 3
    assert fake_strava.usage() == {"overall": (3, 3), "read": (2, 2)}
    assert ("POST", "/oauth/token", 200) in fake_strava.requests_log
    fake_strava.reset_counters()
    assert fake_strava.api_calls == 0 and fake_strava.requests_log == []


def test_unknown_paths_are_404_json(fake_strava: FakeStrava) -> None:
    answer = requests.get(f"{fake_strava.url}/nowhere", timeout=5)
    assert answer.status_code == 404 and json.loads(answer.text)["message"] == "Record Not Found"
