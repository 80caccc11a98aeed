"""Connect with Strava end to end: the handlers called with real HttpRequests, Strava's 302 followed back."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest
import requests

from shared.owner.connect import callback, callback_url, connect
from shared.storage import oauthstates
from shared.storage.clients import Storage
from shared.strava.tokens import get_connection
from tests.support.azurite import free_port
from tests.support.fake_strava import FakeStrava
from tests.support.host import function

APP = "http://localhost:7071"


def get(url: str, headers: dict[str, str] | None = None) -> func.HttpRequest:
    """An HttpRequest as the Functions host builds it: query parsed into params."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    return func.HttpRequest("GET", url, headers=headers or {}, params=query, body=b"")


def start(env: dict[str, str], **headers: str) -> func.HttpResponse:
    url = f"{APP}/api/strava/connect" + ("" if headers else f"?key={env['SYNC_API_KEY']}")
    return connect(get(url, headers))


def through_strava(answer: func.HttpResponse) -> str:
    """Follow the 302 to the fake's consent page; answers the callback URL Strava sends the browser to."""
    assert answer.status_code == 302
    consent = requests.get(answer.headers["Location"], allow_redirects=False, timeout=5)
    assert consent.status_code == 302, consent.text
    return consent.headers["Location"]


def text(resp: func.HttpResponse) -> str:
    return resp.get_body().decode()


def test_connect_end_to_end(strava_env: dict[str, str], fake_strava: FakeStrava, storage: Storage) -> None:
    answer = start(strava_env)
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == fake_strava.url and location.path == "/oauth/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == [fake_strava.client_id]
    assert query["redirect_uri"] == [f"{APP}/api/strava/callback"]
    assert query["response_type"] == ["code"] and query["approval_prompt"] == ["auto"]
    assert query["scope"] == ["activity:write,activity:read_all"]
    assert len(query["state"][0]) >= 32 and strava_env["SYNC_API_KEY"] not in answer.headers["Location"]
    back = through_strava(answer)
    assert back.startswith(f"{APP}/api/strava/callback?")
    page = callback(get(back))
    assert page.status_code == 200
    assert "Connected to Strava as Ada Lovelace" in text(page)
    conn = get_connection(storage)
    assert conn is not None and conn.athlete_id == str(fake_strava.athlete.id)
    assert conn.scopes == "read,activity:write,activity:read_all"
    assert fake_strava.token_is_valid(conn.access_token)


def test_key_in_header_works_too(strava_env: dict[str, str], fake_strava: FakeStrava) -> None:
    answer = connect(get(f"{APP}/api/strava/connect", {"X-Api-Key": strava_env["SYNC_API_KEY"]}))
    assert answer.status_code == 302 and answer.headers["Location"].startswith(fake_strava.url)


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "wrong"}, {"X-Api-Key": ""}])
def test_without_the_right_key_401_json(strava_env: dict[str, str], storage: Storage, headers: dict) -> None:
    answer = connect(get(f"{APP}/api/strava/connect", headers))
    assert answer.status_code == 401 and answer.mimetype == "application/json"
    assert "API key" in json.loads(answer.get_body())["error"]
    wrong_query = connect(get(f"{APP}/api/strava/connect?key=nope"))
    assert wrong_query.status_code == 401 and wrong_query.get_body() == answer.get_body()
    assert list(oauthstates.clients.table(storage, oauthstates.clients.OAUTH_STATE_TABLE).list_entities()) == []


def test_used_state_is_refused(strava_env: dict[str, str], fake_strava: FakeStrava, storage: Storage) -> None:
    back = through_strava(start(strava_env))
    assert callback(get(back)).status_code == 200
    again = callback(get(back))
    assert again.status_code == 400 and "already used" in text(again)
    assert fake_strava.calls["POST /oauth/token"] == 1  # the code was not sent twice


def test_unknown_state_is_refused_and_nothing_stored(strava_env: dict[str, str], fake_strava: FakeStrava,
                                                     storage: Storage) -> None:
    back = through_strava(start(strava_env))
    query = parse_qs(urlsplit(back).query)
    for forged in ("A" * 43, "", "../../etc", "x'; drop"):
        page = callback(get(f"{APP}/api/strava/callback?state={forged}&code={query['code'][0]}"
                            "&scope=read,activity:write"))
        assert page.status_code == 400 and "nothing was stored" in text(page)
    assert get_connection(storage) is None
    assert fake_strava.calls["POST /oauth/token"] == 0


def test_expired_state_is_refused(strava_env: dict[str, str], fake_strava: FakeStrava, storage: Storage) -> None:
    state = oauthstates.create_state(storage, now=time.time() - oauthstates.TTL_SECONDS - 1)
    page = callback(get(f"{APP}/api/strava/callback?state={state}&code={fake_strava.issue_code()}"
                        "&scope=read,activity:write,activity:read_all"))
    assert page.status_code == 400 and "expired" in text(page)
    assert get_connection(storage) is None and fake_strava.calls["POST /oauth/token"] == 0


def test_state_is_good_for_ten_minutes(storage: Storage, strava_env: dict[str, str]) -> None:
    state = oauthstates.create_state(storage, now=time.time() - oauthstates.TTL_SECONDS + 30)
    assert oauthstates.consume_state(storage, state) == "ok"
    assert oauthstates.consume_state(storage, state) == "used"


def test_access_denied_changes_nothing(strava_env: dict[str, str], fake_strava: FakeStrava, storage: Storage) -> None:
    fake_strava.authorize_mode = "deny"
    page = callback(get(through_strava(start(strava_env))))
    assert page.status_code == 200 and "nothing changed" in text(page)
    assert get_connection(storage) is None


def test_denial_keeps_an_existing_connection(strava_env: dict[str, str], fake_strava: FakeStrava, storage: Storage,
                                             connected_athlete) -> None:
    fake_strava.authorize_mode = "deny"
    callback(get(through_strava(start(strava_env))))
    assert get_connection(storage) == connected_athlete


def test_grant_without_activity_write_asks_to_tick_it(strava_env: dict[str, str], fake_strava: FakeStrava,
                                                      storage: Storage) -> None:
    fake_strava.granted_scope = "activity:read_all"
    page = callback(get(through_strava(start(strava_env))))
    assert page.status_code == 400 and "ticked" in text(page)
    assert get_connection(storage) is None and fake_strava.calls["POST /oauth/token"] == 0


def test_athlete_name_is_html_escaped(strava_env: dict[str, str], fake_strava: FakeStrava) -> None:
    fake_strava.athlete.firstname = "<script>alert(1)</script>"
    fake_strava.athlete.lastname = "O'Brien & Co"
    page = text(callback(get(through_strava(start(strava_env)))))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "O&#x27;Brien &amp; Co" in page


def test_strava_unavailable_at_code_exchange(strava_env: dict[str, str], fake_strava: FakeStrava,
                                             storage: Storage) -> None:
    back = through_strava(start(strava_env))
    fake_strava.fail_next(1, 503, path_prefix="/oauth/token")
    page = callback(get(back))
    assert page.status_code == 502 and "nothing was stored" in text(page)
    assert get_connection(storage) is None


def test_missing_strava_settings_named_after_the_key_check(strava_env: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRAVA_CLIENT_SECRET")
    assert start(strava_env, **{"X-Api-Key": "wrong"}).status_code == 401
    answer = start(strava_env)
    assert answer.status_code == 503 and "STRAVA_CLIENT_SECRET" in json.loads(answer.get_body())["error"]


def test_storage_down_is_503_not_a_stack_trace(strava_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("AzureWebJobsStorage", strava_env["AzureWebJobsStorage"].replace(
        strava_env["AzureWebJobsStorage"].split("TableEndpoint=")[1].split(";")[0],
        f"http://127.0.0.1:{port}/devstoreaccount1"))
    answer = start(strava_env)
    assert answer.status_code == 503 and "storage" in json.loads(answer.get_body())["error"]
    page = callback(get(f"{APP}/api/strava/callback?state={'A' * 43}&code=c&scope=activity:write"))
    assert page.status_code == 503 and "Traceback" not in text(page)


def test_callback_url_follows_the_request(strava_env: dict[str, str]) -> None:
    assert callback_url("https://app.azurewebsites.net/api/strava/connect?key=x") == (
        "https://app.azurewebsites.net/api/strava/callback")
    assert callback_url("http://h:1/prefix/strava/connect/") == "http://h:1/prefix/strava/callback"


def test_bound_functions_call_these_handlers(strava_env: dict[str, str], fake_strava: FakeStrava,
                                             storage: Storage) -> None:
    answer = function("strava_connect")(get(f"{APP}/api/strava/connect?key={strava_env['SYNC_API_KEY']}"))
    page = function("strava_callback")(get(through_strava(answer)))
    assert page.status_code == 200 and get_connection(storage) is not None


def test_no_secret_in_any_answer_or_log(strava_env: dict[str, str], fake_strava: FakeStrava, storage: Storage,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answers = [start(strava_env), connect(get(f"{APP}/api/strava/connect?key=wrong"))]
    back = through_strava(answers[0])
    answers += [callback(get(back)), callback(get(back))]
    fake_strava.granted_scope = "read"
    answers.append(callback(get(through_strava(start(strava_env)))))
    fake_strava.granted_scope = None
    later = through_strava(start(strava_env))
    fake_strava.fail_next(1, 500, path_prefix="/oauth/token")
    answers.append(callback(get(later)))
    conn = get_connection(storage)
    assert conn is not None
    code = parse_qs(urlsplit(back).query)["code"][0]
    secrets = [strava_env["SYNC_API_KEY"], strava_env["STRAVA_CLIENT_SECRET"], conn.access_token,
               conn.refresh_token, code]
    seen = caplog.text + "".join(
        text(a) + json.dumps(dict(a.headers)) for a in answers)
    for secret in secrets:
        assert secret not in seen
