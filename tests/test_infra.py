"""The Bicep template checked as far as this machine allows (no az/bicep CLI here).

The template is parsed with a real Bicep grammar (pycep), so a syntax slip fails here rather than at
`az deployment group create`; then its settings, secrets, security switches and outputs are checked
against shared/settings.py, function_app.py and the parameters example.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared import settings

ROOT = Path(__file__).resolve().parent.parent
BICEP = ROOT / "infra" / "main.bicep"
PARAMS = ROOT / "infra" / "main.parameters.example.json"

# What the Functions host itself needs on Linux Consumption, beside the app's own SETTINGS.
HOST_SETTINGS = {"FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
# The app settings that carry a secret: they must come from @secure() parameters without defaults.
SECRET_SETTINGS = {"SYNC_API_KEY", "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"}


@pytest.fixture(scope="module")
def source() -> str:
    return BICEP.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def template(source: str) -> dict[str, Any]:
    return BicepParser(cache=False).parse(text=source)


@pytest.fixture(scope="module")
def params_file() -> dict[str, Any]:
    return json.loads(PARAMS.read_text(encoding="utf-8"))


def resource(template: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [r["config"] for r in template["resources"].values() if r["type"] == type_]
    assert len(found) == 1, f"expected exactly one {type_}, found {len(found)}"
    return found[0]


def app_settings(template: dict[str, Any]) -> dict[str, Any]:
    entries = resource(template, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate app settings: {names}"
    return {e["name"]: e["value"] for e in entries}


def decorators(param: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in param["decorators"]}


def setting_parameter(template: dict[str, Any], source: str, name: str) -> str | None:
    """The parameter an app setting is wired to directly (`value: someParam`), or None."""
    value = app_settings(template)[name]
    if isinstance(value, str) and value in template["parameters"]:
        # pycep renders identifiers and string literals alike: make sure it is the bare identifier.
        if re.search(rf"name: '{name}'\s*\n\s*value: {re.escape(value)}\s*\n", source):
            return value
    return None


def test_template_parses_with_a_bicep_grammar(template: dict[str, Any]) -> None:
    assert template["globals"]["scope"]["value"] == "resourceGroup"
    assert {"parameters", "resources", "outputs"} <= template.keys()


def test_app_settings_are_exactly_the_apps_settings_plus_the_hosts(template: dict[str, Any]) -> None:
    assert set(app_settings(template)) == set(settings.SETTINGS) | HOST_SETTINGS


def test_no_windows_or_premium_content_share_settings(source: str) -> None:
    # Not supported on Linux Consumption; setting them makes the app fail to start there.
    assert "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" not in re.sub(r"//.*", "", source)
    assert "WEBSITE_CONTENTSHARE" not in re.sub(r"//.*", "", source)


def test_host_settings_values(template: dict[str, Any]) -> None:
    values = app_settings(template)
    assert values["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    conn = values["APPLICATIONINSIGHTS_CONNECTION_STRING"]["operator"]["operands"]
    assert conn["operand_1"] == "appInsights"
    assert conn["operand_2"]["operator"]["operands"]["operand_2"] == "ConnectionString"


def test_storage_setting_is_built_from_the_account_over_https(template: dict[str, Any], source: str) -> None:
    assert app_settings(template)["AzureWebJobsStorage"] == "storageConnectionString"
    conn = template["variables"]["storageConnectionString"]["value"]
    assert conn.startswith("DefaultEndpointsProtocol=https;AccountName=${storage.name};")
    assert "AccountKey=${storage.listKeys().keys[0].value}" in conn
    assert "EndpointSuffix=${environment().suffixes.storage}" in conn
    assert "param storage" not in source  # never a parameter: nobody should paste an account key


def test_every_other_setting_is_a_parameter_in_the_example_file(
    template: dict[str, Any], source: str, params_file: dict[str, Any]
) -> None:
    for name in set(settings.SETTINGS) - {"AzureWebJobsStorage"}:
        param = setting_parameter(template, source, name)
        assert param, f"{name} is not wired to a parameter"
        assert param in params_file["parameters"], f"{param} ({name}) missing from {PARAMS.name}"


def test_required_settings_have_no_default_and_optional_ones_match_the_apps_defaults(
    template: dict[str, Any], source: str
) -> None:
    defaults = {"STRAVA_BASE_URL": settings.DEFAULT_STRAVA_BASE_URL, "ACTIVITY_TIMEZONE": settings.DEFAULT_TIMEZONE,
                "ENRICH_WEATHER": settings.DEFAULT_ENRICH_WEATHER,
                "OPEN_METEO_BASE_URL": settings.DEFAULT_OPEN_METEO_BASE_URL}
    for name, (required, _) in settings.SETTINGS.items():
        param = setting_parameter(template, source, name)
        if param is None:
            continue
        default = template["parameters"][param]["default"]
        if required:
            assert default is None, f"{param} ({name}) is required by the app, so it must not have a default"
        else:
            assert default == defaults[name], f"{param} default differs from shared/settings.py"


def test_secrets_are_secure_parameters_without_defaults(template: dict[str, Any], source: str) -> None:
    for name in SECRET_SETTINGS:
        param = setting_parameter(template, source, name)
        assert param is not None
        spec = template["parameters"][param]
        assert "secure" in decorators(spec), f"{param} must be @secure()"
        assert spec["default"] is None, f"{param} must not have a default"
        assert spec["type"] == "string"


def test_outputs_leak_no_secret(template: dict[str, Any], source: str) -> None:
    secret_names = {setting_parameter(template, source, n) for n in SECRET_SETTINGS} | {
        "storageConnectionString",
        "listKeys",
        "ConnectionString",
    }
    rendered = json.dumps(template["outputs"])
    for secret in secret_names:
        assert secret and secret not in rendered, f"an output exposes {secret}"


def test_https_only_and_tls_1_2_everywhere(template: dict[str, Any]) -> None:
    site = resource(template, "Microsoft.Web/sites")["properties"]
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["siteConfig"]["scmMinTlsVersion"] == "1.2"
    assert site["siteConfig"]["ftpsState"] == "Disabled"
    storage = resource(template, "Microsoft.Storage/storageAccounts")
    assert storage["kind"] == "StorageV2"
    assert storage["properties"]["supportsHttpsTrafficOnly"] is True
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert storage["properties"]["allowBlobPublicAccess"] is False


def test_linux_consumption_plan_and_python(template: dict[str, Any]) -> None:
    plan = resource(template, "Microsoft.Web/serverfarms")
    assert plan["sku"]["name"] == "Y1" and plan["sku"]["tier"] == "Dynamic"
    assert plan["properties"]["reserved"] is True
    site = resource(template, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["reserved"] is True
    assert site["properties"]["siteConfig"]["linuxFxVersion"] == "Python|${pythonVersion}"
    python = template["parameters"]["pythonVersion"]
    assert python["default"] == "3.11"
    # Every version offered is one the project runs on (pyproject) and Linux Consumption offers (<= 3.12).
    assert set(decorators(python)["allowed"]) <= {"3.11", "3.12"}
    assert 'requires-python = ">=3.11,<3.13"' in (ROOT / "pyproject.toml").read_text()


def test_scale_out_is_modest(template: dict[str, Any]) -> None:
    site_config = resource(template, "Microsoft.Web/sites")["properties"]["siteConfig"]
    limit = template["parameters"][site_config["functionAppScaleLimit"]]
    assert 1 <= limit["default"] <= 5
    assert decorators(limit)["max_value"] <= 20


def test_workspace_based_application_insights(template: dict[str, Any]) -> None:
    insights = resource(template, "Microsoft.Insights/components")
    assert insights["kind"] == "web"
    workspace_id = insights["properties"]["WorkspaceResourceId"]["operator"]["operands"]
    assert workspace_id["operand_1"] in template["resources"]
    workspace = template["resources"][workspace_id["operand_1"]]
    assert workspace["type"] == "Microsoft.OperationalInsights/workspaces"
    assert float(template["parameters"]["logDailyCapGb"]["default"]) <= 5 / 28  # inside the free 5 GB a month


def test_outputs_point_at_the_apps_real_routes(template: dict[str, Any]) -> None:
    outputs = template["outputs"]
    assert outputs["functionAppName"]["value"]["operator"]["operands"] == {
        "operand_1": "functionApp",
        "operand_2": "name",
    }
    assert outputs["runkeeperUrl"]["value"] == "https://${hostName}/api/runkeeper"
    assert outputs["stravaConnectUrl"]["value"] == "https://${hostName}/api/strava/connect"
    # The routes really are those: host.json's prefix and function_app.py's routes.
    assert json.loads((ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"] == "api"
    app = (ROOT / "function_app.py").read_text()
    assert 'route="runkeeper"' in app and 'route="strava/connect"' in app


def test_parameters_file_is_a_valid_deployment_parameters_file(
    template: dict[str, Any], params_file: dict[str, Any]
) -> None:
    assert params_file["$schema"].endswith("/deploymentParameters.json#")
    assert params_file["contentVersion"] == "1.0.0.0"
    declared = template["parameters"]
    for name, entry in params_file["parameters"].items():
        assert name in declared, f"{PARAMS.name} sets {name}, which main.bicep does not declare"
        assert set(entry) == {"value"}
    for name, spec in declared.items():
        if spec["default"] is None:
            assert name in params_file["parameters"], f"required parameter {name} missing from {PARAMS.name}"
        allowed = decorators(spec).get("allowed")
        if allowed and name in params_file["parameters"]:
            assert params_file["parameters"][name]["value"] in allowed


def test_parameters_file_holds_only_placeholders_for_secrets(
    template: dict[str, Any], params_file: dict[str, Any]
) -> None:
    for name, spec in template["parameters"].items():
        if "secure" not in decorators(spec):
            continue
        value = params_file["parameters"][name]["value"]
        assert re.fullmatch(r"<[^<>]+>", value), f"{name} must be an obvious <placeholder>, not {value!r}"
    # A forgotten API-key placeholder must fail the deployment instead of becoming a guessable key.
    key_spec = template["parameters"]["syncApiKey"]
    assert len(params_file["parameters"]["syncApiKey"]["value"]) < decorators(key_spec)["min_length"]


def looks_like_a_secret(value: str) -> bool:
    """Hex or base64-ish runs long enough to be a client secret, token or key, or a pasted connection string."""
    return bool(
        re.search(r"[0-9a-fA-F]{20,}", value)
        or re.search(r"[A-Za-z0-9+/_-]{32,}={0,2}", value)
        or re.search(r"(?i)accountkey=|instrumentationkey=|sharedaccesssignature|[?&]sig=|[?&]code=", value)
    )


def test_parameters_file_has_nothing_that_looks_like_a_real_secret(params_file: dict[str, Any]) -> None:
    for name, entry in params_file["parameters"].items():
        assert not looks_like_a_secret(str(entry["value"])), f"{PARAMS.name}: {name} looks like a real secret"
    # The detector itself tells a pasted Strava secret or API key from our placeholders.
    assert looks_like_a_secret("3f9a1c0e5b7d2a4c6e8f0a1b2c3d4e5f6a7b8c9d")
    assert looks_like_a_secret("kR2vX9_qL0wZ7mN4bT8yH1cF6jD3sA5eG0uP2iO9")
    assert not looks_like_a_secret("<your Strava client secret>")
