"""function_app.py and its blueprints: the bindings agree with the code, and the HTTP ack's cold path stays light."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from shared.live import blueprint as live
from shared.storage import clients
from tests.support.drain import HostQueueSettings, host_settings
from tests.support.host import functions

ROOT = Path(__file__).resolve().parent.parent


def _bindings(name: str) -> list[dict]:
    """The bindings the host indexes for the registered function `name`."""
    fn = functions()[name]
    assert fn.get_function_name() == name
    return json.loads(fn.get_function_json())["bindings"]


def test_queue_bindings_use_the_store_names_and_the_poison_convention() -> None:
    assert live.ACTIVITY_QUEUE == clients.ACTIVITY_QUEUE == "runkeeper-activities"
    assert live.POISON_QUEUE == clients.POISON_QUEUE == clients.ACTIVITY_QUEUE + "-poison"
    [trigger] = _bindings("sync_activity")
    assert trigger["type"] == "queueTrigger" and trigger["queueName"] == clients.ACTIVITY_QUEUE
    assert trigger["connection"] == "AzureWebJobsStorage"
    [poison] = _bindings("sync_activity_poison")
    assert poison["queueName"] == clients.POISON_QUEUE


def test_the_ack_is_post_only_with_a_function_key() -> None:
    trigger = next(b for b in _bindings("runkeeper") if b["type"] == "httpTrigger")
    assert trigger["route"] == "runkeeper"
    assert [m.upper() for m in trigger["methods"]] == ["POST"]
    assert trigger["authLevel"].upper() == "FUNCTION"


def test_host_json_queue_settings_are_what_the_drain_mimics() -> None:
    host = host_settings()
    assert isinstance(host, HostQueueSettings)
    assert host.message_encoding == "base64"  # what shared.storage.clients's queue client writes
    assert host.max_dequeue_count == 5
    assert host.visibility_timeout == 30.0


_PROBE = textwrap.dedent(
    """
    import json, sys
    import azure.functions as func
    mode, names, payload = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    if mode == "ack":
        import function_app
        shared_at_import = sorted(m for m in sys.modules if m == "shared" or m.startswith("shared."))
        from tests.support.host import function  # this test's names: STORAGE_NAME_PREFIX is in the environment
        at_import = sorted(m for m in ("azure.data.tables", "azure.storage.queue", "azure.storage.blob")
                           if m in sys.modules)
        req = func.HttpRequest("POST", "http://localhost/api/runkeeper", headers={}, body=open(payload, "rb").read())
        status = function("runkeeper")(req).status_code
    else:  # the floor: the storage SDKs doing the ack's two writes, nothing of ours
        import os
        from azure.data.tables import TableClient
        from azure.storage.queue import QueueClient
        conn = os.environ["AzureWebJobsStorage"]
        TableClient.from_connection_string(conn, table_name=names["ACTIVITY_LOG_TABLE"]).upsert_entity(
            {"PartitionKey": "p", "RowKey": "r"})
        QueueClient.from_connection_string(conn, names["ACTIVITY_QUEUE"] + "-floor").create_queue()
        at_import, shared_at_import, status = [], [], 0
    print(json.dumps({"status": status, "modules": sorted(sys.modules), "at_import": at_import,
                      "shared_at_import": shared_at_import}))
    """
)


def _probe(sync_env, mode: str, payload_path: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _PROBE, mode, json.dumps(sync_env.names), payload_path],
                            cwd=ROOT, env=sync_env.subprocess_env(), capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cold_ack_loads_nothing_beyond_the_storage_sdks(sync_env, seed_payload, tmp_path) -> None:
    """A fresh interpreter imports function_app and serves one POST: no gpxpy, no Strava code, and no
    `requests` of ours (the Azure storage SDKs bring `requests` as their HTTP transport: that is the floor)."""
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(dict(seed_payload, apiKey=sync_env.api_key)), encoding="utf-8")
    ack = _probe(sync_env, "ack", str(payload))
    floor = _probe(sync_env, "floor", str(payload))
    assert ack["status"] == 202 and sync_env.queue_count() == 1
    assert ack["at_import"] == []  # storage SDKs load on the first request, not at import
    # the blueprints import nothing of the app: every function imports its work when called
    assert ack["shared_at_import"] == ["shared", "shared.live", "shared.live.blueprint", "shared.owner",
                                       "shared.owner.blueprint"]

    loaded = set(ack["modules"])
    for heavy in ("gpxpy", "shared.strava.api", "shared.strava.tokens", "shared.live.sync", "shared.live.worker",
                  "shared.strava.gpx"):
        assert heavy not in loaded, heavy
    extra = {m.split(".")[0] for m in loaded - set(floor["modules"])} - {"shared", "function_app"}
    assert "requests" not in extra and "urllib3" not in extra
    assert "requests" not in loaded or "requests" in floor["modules"]


def test_the_app_registers_each_flows_blueprint_once_in_order() -> None:
    """function_app.py holds no function of its own: the live flow's three, the owner's five, the page's eight."""
    assert list(functions()) == ["runkeeper", "sync_activity", "sync_activity_poison", "strava_connect",
                                 "strava_callback", "activities", "activity_retry", "invitations",
                                 "page", "page_sign_in", "page_sign_out", "page_retry", "page_connect",
                                 "page_invite", "page_revoke_invitation", "page_static"]
    assert all(fn.get_user_function().__module__ == "shared.live.blueprint" for fn in
               list(functions().values())[:3])
    assert all(fn.get_user_function().__module__ == "shared.owner.blueprint" for fn in
               list(functions().values())[3:])
