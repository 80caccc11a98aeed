"""GET /api/activities and POST /api/invitations through the registered functions, against Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.owner.connect import connect
from shared.storage import activitylog, users
from shared.storage.activitylog import Entry
from tests.support.athletes import APP, body, call, list_log, request, retry

START = datetime(2024, 3, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def log_rows(sync_env) -> list[Entry]:
    """Five owner rows a day apart (newest last), one per status, plus a row of another athlete."""
    made = []
    for n, status in enumerate(("synced", "failed", "queued", "duplicate", "synced")):
        entry = Entry(user=activitylog.OWNER, sync_id=f"a{n:020x}", status=status, start=START + timedelta(days=n),
                      name=f"run {n}", sport_type="Run", error="Strava said no" if status == "failed" else None)
        made.append(activitylog.create(sync_env.storage, entry))
    activitylog.create(sync_env.storage, Entry(user="athlete-9", sync_id="a" + "9" * 20, status="synced",
                                               start=START))
    return made


def test_the_owners_log_newest_first_without_other_athletes(sync_env, log_rows) -> None:
    resp = list_log(sync_env.api_key)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    answer = body(resp)
    assert answer["user"] == "owner" and answer["count"] == 5
    assert [a["id"] for a in answer["activities"]] == [e.sync_id for e in reversed(log_rows)]
    first = answer["activities"][-1]
    assert first["status"] == "synced" and first["start"] == "2024-03-01T07:00:00Z" and first["name"] == "run 0"
    assert not {"lease_owner", "lease_until", "etag", "user"} & set(first)


def test_filters_status_since_and_limit(sync_env, log_rows) -> None:
    def ids(query: str) -> list[str]:
        resp = list_log(sync_env.api_key, query)
        assert resp.status_code == 200, resp.get_body()
        return [a["id"] for a in body(resp)["activities"]]

    assert ids("?status=failed") == [log_rows[1].sync_id]
    assert body(list_log(sync_env.api_key, "?status=failed"))["activities"][0]["error"] == "Strava said no"
    assert ids("?since=2024-03-04") == [log_rows[4].sync_id, log_rows[3].sync_id]
    assert ids("?since=2024-03-03T08:00:00%2B01:00") == [e.sync_id for e in reversed(log_rows[2:])]
    assert ids("?since=2024-03-03T07:00:01") == [log_rows[4].sync_id, log_rows[3].sync_id]  # no offset: UTC
    assert ids("?status=synced&limit=1") == [log_rows[4].sync_id]
    assert ids("?limit=2&code=function-key") == [log_rows[4].sync_id, log_rows[3].sync_id]


def test_every_problem_with_the_query_is_named(sync_env, log_rows) -> None:
    resp = list_log(sync_env.api_key, "?status=lost&since=yesterday&limit=0&colour=red")
    assert resp.status_code == 400
    problems = {p["field"] for p in body(resp)["problems"]}
    assert problems == {"status", "since", "limit", "colour"}
    assert "synced" in next(p["message"] for p in body(resp)["problems"] if p["field"] == "status")
    assert list_log(sync_env.api_key, "?limit=1001").status_code == 400


@pytest.mark.parametrize("key", [None, "", "wrong", "rk_" + "x" * 43])
def test_every_endpoint_wants_a_key(sync_env, log_rows, key) -> None:
    headers = {} if key is None else {"X-Api-Key": key}
    answers = [
        call("activities", request("GET", f"{APP}/api/activities", headers=headers)),
        retry(key, log_rows[1].sync_id),
        call("invitations", request("POST", f"{APP}/api/invitations", headers=headers)),
    ]
    for resp in answers:
        assert resp.status_code == 401 and "API key" in body(resp)["error"]
    assert activitylog.get(sync_env.storage, "owner", log_rows[1].sync_id).status == "failed"


def test_a_personal_key_sees_only_its_own_log(sync_env, log_rows) -> None:
    _, key = users.issue_key(sync_env.storage, "9", "Nine")
    answer = body(list_log(key))
    assert answer["user"] == "athlete-9" and [a["id"] for a in answer["activities"]] == ["a" + "9" * 20]
    assert retry(key, log_rows[1].sync_id).status_code == 404  # the owner's failure is not theirs


def test_owner_invites_and_the_link_opens_the_connect_page(sync_env, strava_env, fake_strava) -> None:
    resp = call("invitations", request("POST", "https://app.example/api/invitations?code=fn",
                                       headers={"X-Api-Key": strava_env["SYNC_API_KEY"]}, body={"note": "for Bob"}))
    assert resp.status_code == 201, resp.get_body()
    answer = body(resp)
    assert answer["invitation"].startswith("inv_")
    assert answer["connect_url"] == f"https://app.example/api/strava/connect?key={answer['invitation']}"
    assert datetime.fromisoformat(answer["expires_at"]) > datetime.now(UTC) + timedelta(days=6)
    page = connect(request("GET", answer["connect_url"]))
    assert page.status_code == 302 and page.headers["Location"].startswith(fake_strava.url + "/oauth/authorize")


def test_only_the_owner_invites_and_bad_requests_are_named(sync_env) -> None:
    _, key = users.issue_key(sync_env.storage, "9", "Nine")
    resp = call("invitations", request("POST", f"{APP}/api/invitations", headers={"X-Api-Key": key}))
    assert resp.status_code == 403
    bad = call("invitations", request("POST", f"{APP}/api/invitations", headers={"X-Api-Key": sync_env.api_key},
                                      body={"note": 5, "for": "x"}))
    assert bad.status_code == 400 and {p["field"] for p in body(bad)["problems"]} == {"note", "for"}
    junk = call("invitations", request("POST", f"{APP}/api/invitations", headers={"X-Api-Key": sync_env.api_key},
                                       body=b"{not json"))
    assert junk.status_code == 400
    assert [r for r in users.table(sync_env.storage).list_entities() if r.get("kind") == "invite"] == []


def test_storage_down_is_a_clear_503(sync_env, log_rows, monkeypatch) -> None:
    from tests.support.azurite import free_port

    dead = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    broken = ";".join(f"TableEndpoint={dead}" if p.startswith("TableEndpoint=") else p
                      for p in sync_env.storage.connection_string.rstrip(";").split(";")) + ";"
    monkeypatch.setenv("AzureWebJobsStorage", broken)
    resp = list_log(sync_env.api_key)
    assert resp.status_code == 503 and "Traceback" not in resp.get_body().decode()
