"""StravaClient against the fake Strava over real HTTP: requests sent, answers classified, budget tracked."""

from __future__ import annotations

import gzip
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.config import Settings
from shared.storage.clients import Storage
from shared.strava.api import StravaClient, http_session
from shared.strava.errors import MissingPermission, NotConnected, Permanent, RateLimited, Transient, Unauthorized
from shared.strava.ratelimit import next_midnight, next_window
from shared.strava.tokens import Connection, client_from_settings, get_connection
from tests.support.azurite import free_port
from tests.support.fake_strava import FakeStrava, make_gpx
from tests.support.fixtures_strava import connect_athlete

START = datetime(2021, 6, 1, 7, 30, tzinfo=UTC)


class StaticTokens:
    """A TokenSource that never changes its token: the client must not loop on 401s."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.refreshes = 0

    def access_token(self) -> str:
        return self.token

    def refresh(self, stale_access_token: str) -> str:
        self.refreshes += 1
        return self.token


def upload(client: StravaClient, data: bytes, **fields: object):
    args = {"name": "Morning Run", "description": None, "sport_type": "Run", "trainer": False, "commute": False,
            "external_id": "rk-1"}
    args.update(fields)
    return client.upload_gpx(data, **args)  # type: ignore[arg-type]


def test_one_session_per_process() -> None:
    assert http_session() is http_session()


def test_upload_sends_gzipped_gpx_and_every_field(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    data = make_gpx(START, points=4, heart_rate=True)
    first = upload(strava_client, data, name="Evening Ride", description="windy", sport_type="Ride", trainer=True,
                   commute=True, external_id="rk-42", filename="2013-07-25-0653.gpx")
    assert first.status == "Your activity is still being processed." and first.error is None
    assert int(first.id) > 2**32  # id_str kept as a string
    outcome = strava_client.wait_for_upload(first.id)
    assert outcome.state == "ready" and outcome.upload_id == first.id
    act = fake_strava.activity(outcome.activity_id)
    assert (act.name, act.description, act.sport_type, act.trainer, act.commute, act.external_id) == (
        "Evening Ride", "windy", "Ride", True, True, "rk-42")
    assert (act.data_type, act.points, act.has_heart_rate, act.gpx) == ("gpx.gz", 4, True, data)


def test_already_gzipped_bytes_are_not_gzipped_twice(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    data = make_gpx(START)
    outcome = strava_client.wait_for_upload(upload(strava_client, gzip.compress(data)).id)
    assert outcome.state == "ready"
    assert fake_strava.activity(outcome.activity_id).gpx == data


def test_duplicate_is_classified_with_the_existing_activity(strava_client: StravaClient) -> None:
    first = strava_client.wait_for_upload(upload(strava_client, make_gpx(START)).id)
    second = strava_client.wait_for_upload(upload(strava_client, make_gpx(START), external_id="rk-2").id)
    assert second.state == "duplicate"
    assert second.activity_id == first.activity_id
    assert f"duplicate of activity {first.activity_id}" in (second.message or "")


def test_processing_error_is_classified_with_stravas_message(strava_client: StravaClient) -> None:
    outcome = strava_client.wait_for_upload(upload(strava_client, b"<gpx><trk>broken").id)
    assert outcome.state == "error" and outcome.activity_id is None
    assert "Improperly formatted data" in (outcome.message or "")


def test_deleted_activity_is_an_error(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    first = strava_client.wait_for_upload(upload(strava_client, make_gpx(START)).id)
    fake_strava.delete_activity(int(first.activity_id or 0))
    outcome = strava_client.upload_status(first.upload_id)
    assert outcome.state == "error" and outcome.message == "The created activity has been deleted."


def test_still_processing_is_reported_within_the_bound(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.processing_polls = 1000
    first = upload(strava_client, make_gpx(START))
    outcome = strava_client.wait_for_upload(first.id, max_wait=0)
    assert outcome.state == "processing" and outcome.activity_id is None
    assert fake_strava.call_count("GET", f"/api/v3/uploads/{first.id}") == 1


def test_wait_polls_until_ready(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.processing_polls = 1
    first = upload(strava_client, make_gpx(START))
    outcome = strava_client.wait_for_upload(first.id, max_wait=10, interval=0.01)  # clamped to 1 s between polls
    assert outcome.state == "ready"
    assert fake_strava.call_count("GET", f"/api/v3/uploads/{first.id}") == 2


def test_manual_activity_is_created_each_time(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    made = [strava_client.create_manual_activity(
        name="Treadmill", sport_type="Run", start_date_local=datetime(2021, 6, 1, 8, 30), elapsed_time=1800,
        description="easy", distance=5000.0, trainer=True) for _ in range(2)]
    assert made[0]["id"] != made[1]["id"]
    act = fake_strava.activity(made[0]["id"])
    assert (act.manual, act.trainer, act.distance, act.elapsed_time, act.description) == (True, True, 5000, 1800,
                                                                                           "easy")
    assert act.start_date_local == datetime(2021, 6, 1, 8, 30)
    assert act.start_date == datetime(2021, 6, 1, 7, 30, tzinfo=UTC)


def test_bad_request_is_permanent_with_stravas_message(strava_client: StravaClient) -> None:
    with pytest.raises(Permanent, match="sport_type") as info:
        strava_client.create_manual_activity(name="x", sport_type="Jogging", start_date_local=START, elapsed_time=1)
    assert info.value.status == 400 and not isinstance(info.value, NotConnected)


@pytest.mark.parametrize(("count", "pages"), [(0, 1), (199, 1), (200, 2), (450, 3)])
def test_list_activities_reads_every_page(strava_client: StravaClient, fake_strava: FakeStrava, count: int,
                                          pages: int) -> None:
    for i in range(count):
        fake_strava.add_activity(name=f"a{i}", sport_type="Run", start_date=START + timedelta(hours=i))
    fake_strava.add_activity(name="too late", sport_type="Run", start_date=START + timedelta(days=400))
    found = strava_client.list_activities(START - timedelta(seconds=1), START + timedelta(days=300))
    assert [a["name"] for a in found] == [f"a{i}" for i in range(count)]
    assert fake_strava.call_count("GET", "/api/v3/athlete/activities") == pages


# ---- errors --------------------------------------------------------------------------------------
def test_not_connected(strava_settings: Settings) -> None:
    client = client_from_settings(strava_settings)
    with pytest.raises(NotConnected, match="/api/strava/connect"):
        client.list_activities(START, START + timedelta(days=1))
    assert isinstance(NotConnected("x"), Permanent)


def test_overall_429_is_rate_limited_until_the_next_window(strava_client: StravaClient,
                                                           fake_strava: FakeStrava) -> None:
    fake_strava.set_limits(overall=(2, 1000))
    upload(strava_client, make_gpx(START))
    upload(strava_client, make_gpx(START + timedelta(hours=1)))
    before = fake_strava.now
    with pytest.raises(RateLimited) as info:
        upload(strava_client, make_gpx(START + timedelta(hours=2)))
    assert info.value.kind == "overall" and info.value.status == 429
    assert fake_strava.now == before  # the client is on the fake's clock, which stands still: one exact window
    assert info.value.reset_at == next_window(before)
    assert not strava_client.budget.can_call("overall", fake_strava.now)
    assert fake_strava.rate_limited_count == 1


def test_read_429_says_read(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.set_limits(read=(1, 1000))
    strava_client.athlete()
    with pytest.raises(RateLimited) as info:
        strava_client.athlete()
    assert info.value.kind == "read"
    upload(strava_client, make_gpx(START))  # the overall budget is still open for uploads


def test_daily_429_resets_at_midnight(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.set_limits(overall=(100, 1))
    strava_client.athlete()
    before = fake_strava.now
    with pytest.raises(RateLimited) as info:
        strava_client.athlete()
    assert info.value.reset_at == next_midnight(before)


def test_budget_matches_the_headers(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.set_limits(overall=(57, 555), read=(31, 333))
    assert strava_client.budget.remaining("overall", fake_strava.now) == (None, None)
    first = upload(strava_client, make_gpx(START))
    strava_client.upload_status(first.id)
    strava_client.create_manual_activity(name="m", sport_type="Walk", start_date_local=START, elapsed_time=60)
    strava_client.list_activities(START - timedelta(days=1), START + timedelta(days=1))
    usage = fake_strava.usage()
    now = fake_strava.now
    assert usage == {"overall": (4, 4), "read": (2, 2)}
    assert strava_client.budget.remaining("overall", now) == (57 - 4, 555 - 4)
    assert strava_client.budget.remaining("read", now) == (31 - 2, 333 - 2)
    assert strava_client.calls == 4


def test_5xx_before_sending_a_post_may_have_applied(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.fail_next(1, 502, path_prefix="/api/v3/uploads")
    with pytest.raises(Transient) as info:
        upload(strava_client, make_gpx(START))
    assert info.value.maybe_applied and info.value.status == 502


def test_5xx_after_apply_on_manual_activity(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.fail_next(1, 500, path_prefix="/api/v3/activities", after_apply=True)
    with pytest.raises(Transient) as info:
        strava_client.create_manual_activity(name="m", sport_type="Walk", start_date_local=START, elapsed_time=60)
    assert info.value.maybe_applied
    assert len(fake_strava.activities()) == 1  # Strava did create it: the caller must look before retrying


def test_5xx_on_a_read_is_transient_and_not_applied(strava_client: StravaClient, fake_strava: FakeStrava) -> None:
    fake_strava.fail_next(1, 503, path_prefix="/api/v3/athlete/activities")
    with pytest.raises(Transient) as info:
        strava_client.list_activities(START, START + timedelta(days=1))
    assert not info.value.maybe_applied


def test_timeout_after_sending_is_transient_maybe_applied(strava_settings: Settings, connected_athlete: Connection,
                                                         fake_strava: FakeStrava) -> None:
    client = client_from_settings(strava_settings, timeout=(2, 0.5))
    fake_strava.hold_next(1, seconds=3, path_prefix="/api/v3/activities")
    with pytest.raises(Transient, match="timed out") as info:
        client.create_manual_activity(name="m", sport_type="Walk", start_date_local=START, elapsed_time=60)
    assert info.value.maybe_applied
    assert len(fake_strava.activities()) == 1


def test_connection_refused_is_transient_not_applied() -> None:
    client = StravaClient(f"http://127.0.0.1:{free_port()}", StaticTokens("t"), timeout=(1, 1))
    with pytest.raises(Transient) as info:
        client.create_manual_activity(name="m", sport_type="Walk", start_date_local=START, elapsed_time=60)
    assert not info.value.maybe_applied


# ---- 401 handling ----------------------------------------------------------------------------------
def test_401_refreshes_once_and_retries(strava_client: StravaClient, fake_strava: FakeStrava, storage: Storage,
                                        connected_athlete: Connection) -> None:
    strava_client.athlete()
    fake_strava.expire_access_tokens()
    assert strava_client.athlete()["id"] == fake_strava.athlete.id
    assert fake_strava.refresh_count == 1
    stored = get_connection(storage)
    assert stored is not None and stored.access_token != connected_athlete.access_token
    assert fake_strava.token_is_valid(stored.access_token)
    assert stored.refresh_token != connected_athlete.refresh_token


def test_a_second_401_is_unauthorized_never_a_loop(fake_strava: FakeStrava) -> None:
    tokens = StaticTokens("not-a-token")
    client = StravaClient(fake_strava.url, tokens)
    with pytest.raises(Unauthorized, match="401") as info:
        client.athlete()
    assert tokens.refreshes == 1
    assert not isinstance(info.value, MissingPermission)  # a bad token, not a scope: a retry may help
    assert fake_strava.call_count("GET", "/api/v3/athlete") == 2


def test_missing_permission_is_unauthorized_without_a_refresh(strava_env: dict[str, str], storage: Storage,
                                                              fake_strava: FakeStrava,
                                                              strava_settings: Settings) -> None:
    connect_athlete(storage, fake_strava, scope="read,activity:read_all")
    client = client_from_settings(strava_settings)
    with pytest.raises(Unauthorized, match="activity:write_permission") as info:
        upload(client, make_gpx(START))
    assert fake_strava.refresh_count == 0
    assert isinstance(info.value, MissingPermission) and info.value.permission == "activity:write_permission"


def test_no_secret_in_errors_logs_or_repr(strava_settings: Settings, connected_athlete: Connection,
                                          fake_strava: FakeStrava, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_from_settings(strava_settings, timeout=(2, 0.5))
    messages = [repr(client), repr(connected_athlete), repr(client._tokens)]
    fake_strava.expire_access_tokens()
    fake_strava.set_limits(read=(2, 100))
    fake_strava.fail_next(1, 500, path_prefix="/api/v3/uploads")
    fake_strava.hold_next(1, seconds=2, path_prefix="/api/v3/activities")
    attempts = [
        lambda: client.athlete(),
        lambda: upload(client, make_gpx(START)),
        lambda: client.create_manual_activity(name="m", sport_type="Walk", start_date_local=START, elapsed_time=6),
        lambda: client.create_manual_activity(name="m", sport_type="Nope", start_date_local=START, elapsed_time=6),
        lambda: client.athlete(),
        lambda: client.athlete(),
    ]
    for attempt in attempts:
        try:
            attempt()
        except Exception as exc:
            messages.append(f"{exc!s} {exc!r}")
    assert len(messages) >= 6  # the failures above did happen
    current = fake_strava.current_tokens()
    assert current is not None
    secrets = [connected_athlete.access_token, connected_athlete.refresh_token, *current[:2],
               strava_settings.strava_client_secret]
    text = caplog.text + "\n".join(messages)
    for secret in secrets:
        assert secret and secret not in text


def test_the_errors_are_a_leaf_any_module_can_catch_without_loading_the_client() -> None:
    probe = ("import sys, shared.strava.errors; "
             "print(sorted(m for m in sys.modules if m.startswith('shared') or m in ('requests', 'urllib3')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "['shared', 'shared.strava', 'shared.strava.errors']"
    assert issubclass(MissingPermission, Unauthorized) and issubclass(NotConnected, Permanent)
