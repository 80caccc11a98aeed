"""The app as it runs in Azure: identity-based storage settings only, tokens from the managed identity.

Azurite over HTTPS with OAuth, the managed-identity stand-in (tests/fake_identity.py) and no account key
or connection string anywhere in the environment (tests/fixtures_identity.py); any request Azurite sees
signed with the key fails the test. On it: the live path (ack → queue → worker → the fake Strava), a
big payload through the claim-check blob, the command line's `status` and a small `import`, and what
happens when the token endpoint fails.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from shared.cli.app import EXIT_OK, main
from shared.storage import clients
from shared.storage.clients import Storage
from tests.support.builders import manual, track
from tests.support.fake_identity import FAKE_CLIENT_ID, FakeIdentity
from tests.support.fixtures_identity import provision


@pytest.fixture
def storage(identity_env: dict[str, str]) -> Storage:
    """Overrides conftest's: the app's storage as the settings in Azure describe it."""
    target = Storage.from_settings(os.environ)
    assert target.uses_identity and target.managed_identity and target.client_id == FAKE_CLIENT_ID
    return target


@pytest.fixture(autouse=True)
def provisioned(sync_env: Any) -> None:
    """This test's queues, tables and container (its storage prefix's), made beforehand as infra/ makes them."""
    provision(sync_env.storage)


def forget_credential() -> None:
    """The process keeps one credential, which caches its token: forget it, as a new process would start."""
    for cached in (clients.credential, clients.table, clients.queue, clients.container):
        cached.cache_clear()


@pytest.fixture
def fresh_credential() -> None:
    """The next storage call asks the token endpoint (whatever earlier tests left cached)."""
    forget_credential()


def _post(live: Any, payload: dict[str, Any]) -> str:
    resp = live.sync.post(payload)
    assert resp.status_code == 202, resp.get_body()
    return json.loads(resp.get_body())["id"]


def test_live_path_end_to_end_with_the_managed_identity(connected: Any, fake_identity: FakeIdentity) -> None:
    forget_credential()
    issued = fake_identity.token_count
    sid = _post(connected, track("2024-05-04T08:15:00+01:00", points=20))
    with connected.sync.drain() as drain:
        stats = drain.run(timeout=60)
    assert (stats.succeeded, stats.poisoned) == (1, [])
    entry = connected.sync.entry(sid)
    assert entry is not None and entry.status == "synced" and entry.activity_id
    assert [a.points for a in connected.activities()] == [20]
    # the user-assigned identity's own token, for storage, and asked once: the credential caches it
    assert set(fake_identity.resources) == {"https://storage.azure.com"} and fake_identity.token_count == issued + 1
    assert fake_identity.requests and all(r.query.get("client_id") == FAKE_CLIENT_ID for r in fake_identity.requests)


def test_a_big_payload_goes_through_its_claim_check_blob(connected: Any) -> None:
    sid = _post(connected, track("2024-05-05T08:15:00+01:00", points=2_000))  # ~100 KB: over a message
    assert len(connected.sync.blobs()) == 1
    with connected.sync.drain() as drain:
        drain.run(timeout=60)
    assert connected.sync.entry(sid).status == "synced"
    assert [a.points for a in connected.activities()] == [2_000]
    assert connected.sync.blobs() == []  # the claim check is gone once synced


def test_cli_status_reads_the_log_with_the_identity(connected: Any) -> None:
    sid = _post(connected, manual("2024-05-06T18:00:00+01:00"))
    out, err = io.StringIO(), io.StringIO()
    assert main(["status"], out=out, err=err) == EXIT_OK, err.getvalue()
    assert sid in out.getvalue() and "queued" in out.getvalue()


def _export(folder: Path) -> Path:
    """A two-activity Runkeeper export (one GPS run, one treadmill run), made here, not copied."""
    folder.mkdir()
    points = "".join(
        f'<trkpt lat="{51.5 + i * 0.0004:.6f}" lon="-0.100000"><ele>12.0</ele>'
        f"<time>2016-03-01T07:00:{i * 5:02d}Z</time></trkpt>" for i in range(10))
    (folder / "2016-03-01-0700.gpx").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="Runkeeper - http://www.runkeeper.com"'
        ' xmlns="http://www.topografix.com/GPX/1/1"><trk><name><![CDATA[Running 3/1/16 7:00 am]]></name>'
        f"<trkseg>{points}</trkseg></trk></gpx>\n", encoding="utf-8")
    (folder / "cardioActivities.csv").write_text(
        "Activity Id,Date,Type,Route Name,Distance (km),Duration,Average Pace,Average Speed (km/h),"
        "Calories Burned,Climb (m),Average Heart Rate (bpm),Friend's Tagged,Notes,GPX File\n"
        "b2,2016-03-02 18:00:00,Running,,5.00,25:00,5:00,12.00,350,0,,,Treadmill,\n"
        "a1,2016-03-01 07:00:00,Running,,0.20,0:45,3:45,16.00,20,0,,,,2016-03-01-0700.gpx\n", encoding="utf-8")
    return folder


def test_cli_import_moves_an_export_with_the_identity(connected: Any, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["import", str(_export(tmp_path / "export"))], out=out, err=err,
                clock=lambda: connected.fake.now, sleep=connected.fake.advance)
    assert code == EXIT_OK, out.getvalue() + err.getvalue()
    assert sorted(a.manual for a in connected.activities()) == [False, True]
    assert {e.status for e in connected.sync.entries()} == {"synced"} and len(connected.sync.entries()) == 2


# -- when the token endpoint misbehaves --------------------------------------------------------------------------

@pytest.mark.parametrize("failure", ["500", "garbage"])
def test_a_failing_token_endpoint_is_a_503_then_recovers(sync_env: Any, fake_identity: FakeIdentity,
                                                         fresh_credential: None, failure: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    if failure == "garbage":
        fake_identity.answer_garbage()
    else:
        fake_identity.fail_with(500, retry_after=0)
    caplog.set_level(logging.DEBUG)
    resp = sync_env.post(manual("2024-05-07T18:00:00+01:00"))
    assert resp.status_code == 503
    text = resp.get_body().decode()
    assert "retry later" in json.loads(text)["error"] and "Traceback" not in text
    fake_identity.normal()
    forget_credential()  # MSAL keeps a failed answer for a moment; a new process would not
    assert sync_env.queue_count() == 0 and sync_env.entries() == []
    assert sync_env.post(manual("2024-05-07T18:00:00+01:00")).status_code == 202  # Zapier's retry is accepted
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(token in logged for token in fake_identity.issued_tokens)


def test_a_failing_token_endpoint_makes_the_worker_retry_not_lose(connected: Any, fake_identity: FakeIdentity,
                                                                  fresh_credential: None) -> None:
    sid = _post(connected, manual("2024-05-08T18:00:00+01:00"))
    outcomes: list[str] = []

    def heal_after_first_try(msg: Any) -> None:
        from shared.live.worker import handle_message

        try:
            handle_message(msg)
        except Exception as exc:  # the host sees the exception and delivers the message again
            outcomes.append(type(exc).__name__)
            fake_identity.normal()
            forget_credential()
            raise
        outcomes.append("ok")

    with connected.sync.drain(handler=heal_after_first_try) as drain:  # the host's own connection keeps working
        forget_credential()
        fake_identity.fail_with(503, retry_after=0)
        stats = drain.run(timeout=60)
    assert outcomes[0] != "ok" and outcomes[-1] == "ok" and stats.poisoned == []
    assert connected.sync.entry(sid).status == "synced"
