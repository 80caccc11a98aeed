from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import config as s
from shared.storage import clients
from shared.storage.clients import Storage


def test_defaults_and_names() -> None:
    cfg = s.load({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert cfg.strava_base_url == "https://www.strava.com"
    assert cfg.timezone == "Europe/London"
    assert cfg.api_key is None


def test_missing_storage_names_both_forms() -> None:
    with pytest.raises(s.SettingsError, match=r"AzureWebJobsStorage .*AzureWebJobsStorage__accountName"):
        s.load({})


def test_require_names_every_missing_setting_without_values() -> None:
    cfg = s.load({"AzureWebJobsStorage": "x", "STRAVA_CLIENT_SECRET": "sekrit-value"})
    with pytest.raises(s.SettingsError) as err:
        cfg.require("SYNC_API_KEY", "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET")
    assert "SYNC_API_KEY" in str(err.value) and "STRAVA_CLIENT_ID" in str(err.value)
    assert "STRAVA_CLIENT_SECRET" not in str(err.value)
    assert "sekrit-value" not in repr(cfg)


def test_bad_timezone_and_base_url() -> None:
    with pytest.raises(s.SettingsError, match="ACTIVITY_TIMEZONE"):
        s.load({"AzureWebJobsStorage": "x", "ACTIVITY_TIMEZONE": "Mars/Olympus"})
    with pytest.raises(s.SettingsError, match="STRAVA_BASE_URL"):
        s.load({"AzureWebJobsStorage": "x", "STRAVA_BASE_URL": "ftp://nope"})
    assert s.load({"AzureWebJobsStorage": "x", "STRAVA_BASE_URL": "http://127.0.0.1:9/"}).strava_base_url == (
        "http://127.0.0.1:9"
    )


def test_cli_reads_local_settings_and_defaults_storage(tmp_path: Path) -> None:
    f = tmp_path / "local.settings.json"
    f.write_text(json.dumps({"Values": {"STRAVA_CLIENT_ID": "42", "AzureWebJobsStorage": ""}}))
    cfg = s.load_for_cli(env={"ACTIVITY_TIMEZONE": "Asia/Hong_Kong"}, settings_file=f)
    assert cfg.strava_client_id == "42"
    assert cfg.storage == Storage.from_connection_string(clients.DEVELOPMENT_STORAGE)
    assert cfg.timezone == "Asia/Hong_Kong"


def test_cli_takes_identity_storage_from_the_environment_over_the_file(tmp_path: Path) -> None:
    """A laptop with `az login`: AzureWebJobsStorage__accountName in the shell beats the file's Azurite."""
    f = tmp_path / "local.settings.json"
    f.write_text(json.dumps({"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}}))
    cfg = s.load_for_cli(env={"AzureWebJobsStorage__accountName": "rk2strava"}, settings_file=f)
    assert cfg.storage.uses_identity and not cfg.storage.managed_identity
    assert cfg.storage.queue_url == "https://rk2strava.queue.core.windows.net"


def test_example_file_lists_every_setting_of_a_local_run() -> None:
    """Identity-based storage is for Azure (and the CLI against it): the local example uses Azurite."""
    example = json.loads((Path(__file__).parent.parent / "local.settings.json.example").read_text())["Values"]
    assert set(s.SETTINGS) - set(clients.IDENTITY_SETTINGS) <= set(example)
    assert not set(clients.IDENTITY_SETTINGS) & set(example)


def test_azurite_fixture_serves_queues(storage: Storage, unique: str) -> None:
    from azure.storage.queue import QueueClient

    q = QueueClient.from_connection_string(storage.connection_string, f"smoke{unique}")
    q.create_queue()
    q.send_message("hello")
    assert [m.content for m in q.receive_messages()] == ["hello"]


# -- STORAGE_NAME_PREFIX: tests and side-by-side local runs only -------------------------------------------------

def test_name_prefix_is_read_with_the_storage() -> None:
    cfg = s.load({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "STORAGE_NAME_PREFIX": "dev2"})
    assert cfg.storage.prefix == "dev2"
    assert s.load({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).storage.prefix == ""
    assert s.SETTINGS["STORAGE_NAME_PREFIX"][0] is False


def test_an_invalid_name_prefix_fails_naming_the_setting() -> None:
    with pytest.raises(s.SettingsError, match="STORAGE_NAME_PREFIX"):
        s.load({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "STORAGE_NAME_PREFIX": "Dev-2"})


@pytest.mark.parametrize("storage", [{"AzureWebJobsStorage__accountName": "rk2strava"},
                                     {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}])
def test_a_name_prefix_is_refused_in_azure(storage: dict[str, str]) -> None:
    """The platform sets WEBSITE_INSTANCE_ID; there the host's trigger and infra/ use the unprefixed names."""
    env = {**storage, "STORAGE_NAME_PREFIX": "dev2", "WEBSITE_INSTANCE_ID": "0123abcd"}
    with pytest.raises(s.SettingsError) as err:
        s.load(env)
    message = str(err.value)
    assert "STORAGE_NAME_PREFIX" in message and "WEBSITE_INSTANCE_ID" in message
    assert clients.ACTIVITY_QUEUE in message and "remove" in message
    assert s.load({**env, "STORAGE_NAME_PREFIX": ""}).storage.prefix == ""  # empty, as in Azure: fine
    assert s.load({**env, "WEBSITE_INSTANCE_ID": ""}).storage.prefix == "dev2"  # not Azure: allowed


def test_cli_drops_the_files_prefix_with_the_files_storage(tmp_path: Path) -> None:
    """A prefix in local.settings.json was for the file's Azurite, not for storage the environment names."""
    f = tmp_path / "local.settings.json"
    f.write_text(json.dumps({"Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                        "STORAGE_NAME_PREFIX": "dev2"}}))
    assert s.load_for_cli(env={}, settings_file=f).storage.prefix == "dev2"
    cfg = s.load_for_cli(env={"AzureWebJobsStorage__accountName": "rk2strava"}, settings_file=f)
    assert cfg.storage.uses_identity and cfg.storage.prefix == ""
    both = s.load_for_cli(env={"AzureWebJobsStorage__accountName": "rk2strava", "STORAGE_NAME_PREFIX": "exp1"},
                          settings_file=f)
    assert both.storage.prefix == "exp1"
