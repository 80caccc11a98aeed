"""The deployment (infra/, azure.yaml, host.json) checked as far as this machine allows.

There is no Bicep CLI or azd here, so every .bicep file under infra/ is parsed with a Bicep grammar (pycep): a
syntax slip fails here rather than at `azd up`. Then the parsed templates are checked against the app itself: the
plan and scale (Flex Consumption), keyless storage, every role assignment and the code that needs it, every setting
shared/config.py reads, the Key Vault references, the alert, the outputs the hooks read, and the names in
shared/storage/clients.py. The azd hooks run for real against a stand-in `azd` / `az`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pycep import BicepParser

from shared import config as settings
from shared.storage import clients

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
HOOKS = INFRA / "hooks"
PARAMETERS = INFRA / "main.parameters.json"
AZURE_YAML = ROOT / "azure.yaml"
MODULES = ("main", "app/api", "app/identity", "app/keyvault", "app/monitoring", "app/rbac", "app/storage")


# ---------------------------------------------------------------------------------------------------------------------
# Reading the templates
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    name: str  # "main", "app/api", ...
    text: str
    tree: dict[str, Any]

    @property
    def code(self) -> str:
        """The text without comments (a `//` inside a quoted string is kept)."""
        return strip_comments(self.text)

    def section(self, key: str) -> dict[str, Any]:
        return self.tree.get(key) or {}


def strip_comments(text: str) -> str:
    return "\n".join(re.sub(r"^((?:[^'/]|'(?:[^'\\]|\\.)*'|/(?!/))*)//.*$", r"\1", line) for line in text.splitlines())


@cache
def template(name: str) -> Template:
    path = INFRA / f"{name}.bicep"
    text = path.read_text(encoding="utf-8")
    return Template(name, text, BicepParser(cache=False).parse(text=text))


def render(value: Any) -> str:
    """A pycep expression as Bicep-like text: `identity.outputs.id`, `!empty(alertEmail)`, `alwaysReady == 1 ? … : …`.

    pycep gives identifiers and string literals alike as Python strings, so both render bare.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if "operator" in value:
        kind, operands = value["operator"]["type"], value["operator"]["operands"]
        if kind == "property_accessor":
            return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
        if kind == "not":
            return "!" + render(operands["bool_value"])
        if kind == "equals":
            return f"{render(operands['operand_1'])} == {render(operands['operand_2'])}"
        if kind == "conditional":
            return (f"{render(operands['condition'])} ? {render(operands['true_value'])}"
                    f" : {render(operands['false_value'])}")
        return f"{kind}(" + ", ".join(render(v) for v in operands.values()) + ")"
    if "function" in value:
        function = value["function"]
        camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), function["type"])
        args = [render(v) for v in (function.get("parameters") or {}).values() if v is not None]
        return f"{camel}(" + ", ".join(args) + ")"
    return "{" + ", ".join(f"{k}: {render(v)}" for k, v in value.items()) + "}"


class Resource(NamedTuple):
    symbol: str
    config: dict[str, Any]
    condition: str | None  # rendered `if (...)` condition
    loop: dict[str, Any] | None


def resources(tpl: Template, type_: str) -> list[Resource]:
    found = []
    for symbol, spec in tpl.section("resources").items():
        if spec["type"] != type_:
            continue
        config, condition, loop = spec["config"], None, None
        if "loop_type" in config:  # [for x in xs: if (c) {...}]: the loop and its condition side by side
            loop, condition, config = config["loop_type"], config["condition"], config["config"]
        elif "condition" in config and "config" in config:  # if (c) {...}
            condition, config = config["condition"], config["config"]
        found.append(Resource(symbol, config, None if condition is None else render(condition), loop))
    return found


def resource(tpl: Template, type_: str) -> Resource:
    found = resources(tpl, type_)
    assert len(found) == 1, f"{tpl.name}: expected exactly one {type_}, found {len(found)}"
    return found[0]


def decorators(param: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in param["decorators"]}


def module_call(name: str) -> dict[str, Any]:
    """main.bicep's call of infra/app/<name>.bicep (its `config`: name, scope, params, dependsOn)."""
    modules = template("main").section("modules").values()
    calls = [m["config"] for m in modules if m["detail"]["path"] == f"./app/{name}.bicep"]
    assert len(calls) == 1, f"main.bicep should call app/{name}.bicep once"
    return calls[0]


def main_param_feeding(module: str, param: str) -> str:
    """The main.bicep parameter passed straight to `param` of app/<module>.bicep."""
    passed = render(module_call(module)["params"][param])
    assert passed in template("main").section("parameters"), f"app/{module}.bicep's {param} gets {passed}, no param"
    return passed


def api_settings() -> dict[str, str]:
    """The function app's settings: name -> rendered value."""
    entries = resource(template("app/api"), "Microsoft.Web/sites").config["properties"]["siteConfig"]["appSettings"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate app settings: {names}"
    return {e["name"]: render(e["value"]) for e in entries}


def variable(tpl: Template, name: str) -> Any:
    return tpl.section("variables")[name]["value"]


# ---------------------------------------------------------------------------------------------------------------------
# Every file parses; the modules fit together
# ---------------------------------------------------------------------------------------------------------------------

def test_infra_holds_exactly_the_expected_bicep_files() -> None:
    found = {p.relative_to(INFRA).with_suffix("").as_posix() for p in INFRA.rglob("*.bicep")}
    assert found == set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_bicep_file_parses_with_a_bicep_grammar(name: str) -> None:
    tpl = template(name)
    assert tpl.section("resources") or tpl.section("modules"), f"{name}.bicep declares nothing"
    expected_scope = "subscription" if name == "main" else "resourceGroup"
    assert tpl.tree["globals"]["scope"]["value"] == expected_scope


def test_main_creates_the_resource_group_from_the_azd_environment_and_deploys_into_it() -> None:
    main = template("main")
    rg = resource(main, "Microsoft.Resources/resourceGroups")
    assert rg.config["name"] == "${abbrs.resourcesResourceGroups}${environmentName}"
    assert json.loads((INFRA / "abbreviations.json").read_text())["resourcesResourceGroups"] == "rg-"
    assert main.section("parameters")["environmentName"]["default"] is None
    for symbol, module in main.section("modules").items():
        assert module["type"] == "local", f"{symbol}: registry modules (br:) cannot be parsed or checked here"
        assert (INFRA / module["detail"]["path"]).is_file(), f"{symbol}: {module['detail']['path']} is missing"
        assert module["config"]["scope"] == rg.symbol, f"module {symbol} must deploy into the resource group"


def test_every_abbreviation_main_uses_is_defined() -> None:
    abbreviations = json.loads((INFRA / "abbreviations.json").read_text())
    used = set(re.findall(r"abbrs\.(\w+)", template("main").code))
    assert used and used <= set(abbreviations), f"undefined: {used - set(abbreviations)}"


@pytest.mark.parametrize("module", [m.removeprefix("app/") for m in MODULES if m != "main"])
def test_module_calls_match_the_modules_parameters(module: str) -> None:
    declared = template(f"app/{module}").section("parameters")
    passed = module_call(module)["params"]
    assert set(passed) <= set(declared), f"app/{module}.bicep does not declare {set(passed) - set(declared)}"
    required = {name for name, spec in declared.items() if spec["default"] is None}
    assert required <= set(passed), f"main.bicep does not pass {required - set(passed)} to app/{module}.bicep"


def test_every_module_output_main_reads_exists() -> None:
    main = template("main")
    paths = {symbol: m["detail"]["path"] for symbol, m in main.section("modules").items()}
    for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", main.code):
        module = template(paths[symbol].removeprefix("./").removesuffix(".bicep"))
        assert output in module.section("outputs"), f"{paths[symbol]} has no output {output}"


# ---------------------------------------------------------------------------------------------------------------------
# Flex Consumption: plan, runtime, memory, scale, always ready
# ---------------------------------------------------------------------------------------------------------------------

def test_the_plan_is_flex_consumption_on_linux() -> None:
    plan = resource(template("app/api"), "Microsoft.Web/serverfarms").config
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    site = resource(template("app/api"), "Microsoft.Web/sites").config
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["serverFarmId"] == {"operator": {"type": "property_accessor",
                                                                "operands": {"operand_1": "plan", "operand_2": "id"}}}


def test_runtime_is_python_3_12_by_default_and_only_versions_the_project_supports() -> None:
    config = resource(template("app/api"), "Microsoft.Web/sites").config["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert main_param_feeding("api", "pythonVersion") == "pythonVersion"
    python = template("main").section("parameters")["pythonVersion"]
    assert python["default"] == "3.12"
    assert set(decorators(python)["allowed"]) <= {"3.11", "3.12"}
    assert 'requires-python = ">=3.11,<3.13"' in (ROOT / "pyproject.toml").read_text()


def test_memory_and_scale_are_parameters_with_modest_defaults() -> None:
    scale = resource(template("app/api"), "Microsoft.Web/sites").config["properties"]["functionAppConfig"][
        "scaleAndConcurrency"]
    params = template("main").section("parameters")
    assert scale["instanceMemoryMB"] == "instanceMemoryMB" == main_param_feeding("api", "instanceMemoryMB")
    assert set(decorators(params["instanceMemoryMB"])["allowed"]) == {512, 2048, 4096}
    assert params["instanceMemoryMB"]["default"] == 2048
    assert scale["maximumInstanceCount"] == "maximumInstanceCount" == main_param_feeding("api", "maximumInstanceCount")
    assert 1 <= params["maximumInstanceCount"]["default"] <= 3
    assert decorators(params["maximumInstanceCount"])["min_value"] == 1
    assert scale["triggers"]["http"]["perInstanceConcurrency"] == "httpPerInstanceConcurrency"
    assert params["httpPerInstanceConcurrency"]["default"] > 1  # Python's Flex default of 1 sends a 2nd request cold


def test_memory_default_holds_the_measured_worker_peak_with_headroom() -> None:
    # README "Performance" row: the worker's RSS growth for a 200,000-point activity (measured by bench/memory).
    row = re.search(r"200,000-point activity[^|\n]*\|\s*([\d,]+) MB", (ROOT / "README.md").read_text())
    assert row, "README's memory row for a 200,000-point activity is gone: update this test with the new figure"
    growth_mb = int(row.group(1).replace(",", ""))
    batch = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]["batchSize"]
    interpreter_mb, host_mb = 60, 250  # Python with the app and SDKs imported; the Functions host, high end
    peak = interpreter_mb + batch * growth_mb + host_mb
    default = template("main").section("parameters")["instanceMemoryMB"]["default"]
    assert default >= 2 * peak, f"{default} MB leaves under 2x headroom over a {peak} MB peak"
    assert interpreter_mb + growth_mb + host_mb > 512 * 0.8, "512 MB would now do: reconsider the default"


def test_always_ready_is_one_http_instance_or_none_from_the_parameter() -> None:
    api = template("app/api")
    scale = resource(api, "Microsoft.Web/sites").config["properties"]["functionAppConfig"]["scaleAndConcurrency"]
    assert render(variable(api, scale["alwaysReady"])) == "alwaysReady == 1 ? [{name: http, instanceCount: 1}] : []"
    assert main_param_feeding("api", "alwaysReady") == "alwaysReady"
    param = template("main").section("parameters")["alwaysReady"]
    assert decorators(param)["allowed"] == [0, 1]
    assert param["default"] == 0


def test_the_package_is_deployed_from_a_blob_container_reached_by_the_identity() -> None:
    site = resource(template("app/api"), "Microsoft.Web/sites").config
    storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["value"] == "${storageBlobEndpoint}${deploymentContainerName}"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert site["identity"]["type"] == "UserAssigned"
    assert set(site["identity"]["userAssignedIdentities"]) == {"'${identityId}'"}
    assert render(module_call("api")["params"]["identityId"]) == "identity.outputs.id"
    # The container exists: main names it and hands it to the storage module.
    assert "deploymentContainerName" in module_call("storage")["params"]["containerNames"]
    assert variable(template("main"), "deploymentContainerName").startswith("app-package-")


def test_nothing_flex_rejects_or_ignores_is_set() -> None:
    code = template("app/api").code
    for name in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
                 "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "linuxFxVersion",
                 "functionAppScaleLimit", "alwaysOn"):
        assert name not in code, f"{name} must not be set on Flex Consumption"


def test_https_only_tls_1_2_and_no_basic_auth_publishing() -> None:
    api = template("app/api")
    site = resource(api, "Microsoft.Web/sites").config["properties"]
    assert site["httpsOnly"] is True
    assert site["siteConfig"]["minTlsVersion"] == "1.2"
    assert site["siteConfig"]["ftpsState"] == "Disabled"
    policies = {r.config["name"]: r.config["properties"]["allow"]
                for r in resources(api, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")}
    assert policies == {"ftp": False, "scm": False}


# ---------------------------------------------------------------------------------------------------------------------
# Keyless storage and identity-based settings
# ---------------------------------------------------------------------------------------------------------------------

def infra_text_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.is_file() and p.suffix in {".bicep", ".json", ".sh", ".ps1"})


def test_no_account_key_or_storage_connection_string_anywhere_in_infra() -> None:
    for path in [*infra_text_files(), AZURE_YAML]:
        text = path.read_text(encoding="utf-8")
        code = strip_comments(text) if path.suffix == ".bicep" else text
        for forbidden in ("listKeys", "AccountKey", "DefaultEndpointsProtocol", "SharedAccessSignature",
                          "listAccountSas", "listServiceSas"):
            assert forbidden.lower() not in code.lower(), f"{path.relative_to(ROOT)} mentions {forbidden}"
        # "connection string" is allowed only for Application Insights (it names the resource, it is no key).
        for match in re.finditer(r"\w*connection_?string\w*", code, re.IGNORECASE):
            start = code[max(0, match.start() - len("appInsights.properties.")):match.start()]
            allowed = (match.group() in {"appInsightsConnectionString", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
                       or (match.group() == "ConnectionString" and start.endswith("appInsights.properties.")))
            assert allowed, f"{path.relative_to(ROOT)}: {match.group()!r} is not Application Insights'"
    assert clients.CONNECTION not in api_settings(), "the app must not get a storage connection string"


def test_the_storage_account_refuses_shared_key_and_plain_http() -> None:
    account = resource(template("app/storage"), "Microsoft.Storage/storageAccounts").config
    assert account["kind"] == "StorageV2"
    properties = account["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowBlobPublicAccess"] is False


def test_storage_settings_are_identity_based_with_the_user_assigned_identity() -> None:
    values = api_settings()
    assert values[clients.CREDENTIAL] == "managedidentity"
    assert values[clients.CLIENT_ID] == "identityClientId"
    assert render(module_call("api")["params"]["identityClientId"]) == "identity.outputs.clientId"
    storage = template("app/storage")
    for kind, setting in clients.SERVICE_URIS.items():
        param = values[setting]
        assert render(module_call("api")["params"][param]) == f"storage.outputs.{kind}Endpoint"
        endpoint = render(storage.section("outputs")[f"{kind}Endpoint"]["value"])
        assert endpoint == f"storage.properties.primaryEndpoints.{kind}"
    site = resource(template("app/api"), "Microsoft.Web/sites").config["properties"]
    assert site["keyVaultReferenceIdentity"] == "identityId"


def test_application_insights_is_workspace_based_and_reached_by_identity() -> None:
    monitoring = template("app/monitoring")
    insights = resource(monitoring, "Microsoft.Insights/components").config
    assert insights["kind"] == "web"
    workspace = resource(monitoring, "Microsoft.OperationalInsights/workspaces")
    assert render(insights["properties"]["WorkspaceResourceId"]) == f"{workspace.symbol}.id"
    assert insights["properties"]["DisableLocalAuth"] is True
    values = api_settings()
    assert values["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert render(module_call("api")["params"][values["APPLICATIONINSIGHTS_CONNECTION_STRING"]]) == (
        "monitoring.outputs.appInsightsConnectionString")
    params = template("main").section("parameters")
    assert float(params["logDailyCapGb"]["default"]) <= 5 / 28  # inside the free 5 GB a month
    assert params["logRetentionDays"]["default"] == 30
    assert main_param_feeding("monitoring", "logDailyCapGb") == "logDailyCapGb"
    assert main_param_feeding("monitoring", "logRetentionDays") == "logRetentionDays"


# ---------------------------------------------------------------------------------------------------------------------
# Settings: every one the app reads is set, deliberately omitted, or a secret from Key Vault
# ---------------------------------------------------------------------------------------------------------------------

# In shared/config.py but deliberately not set in Azure.
OMITTED_SETTINGS = {
    clients.CONNECTION: "the connection-string form is for Azurite and local runs; the account refuses Shared Key",
    clients.ACCOUNT_NAME: "the template gives the three explicit service URIs instead (either form works)",
    "SYNC_DELAY_SCALE": "a test knob: in Azure every wait keeps its real length (the default, 1)",
    "STORAGE_NAME_PREFIX": "for tests and side-by-side local runs: the queue trigger and infra/ use the "
                           "unprefixed names, and config refuses a prefix in Azure (WEBSITE_INSTANCE_ID set)",
}
# Set in Azure for the Functions host, not read by the app's code.
HOST_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
# App setting -> (Key Vault secret name, main.bicep @secure() parameter).
SECRETS = {"STRAVA_CLIENT_SECRET": ("strava-client-secret", "stravaClientSecret"),
           "SYNC_API_KEY": ("sync-api-key", "syncApiKey")}


def test_every_setting_the_app_reads_is_set_or_deliberately_omitted() -> None:
    names = set(settings.SETTINGS)
    set_in_azure = set(api_settings())
    assert set(OMITTED_SETTINGS) <= names, "an omission above names a setting the app no longer reads"
    missing = names - set(OMITTED_SETTINGS) - set_in_azure
    assert not missing, f"not set in Azure and not deliberately omitted: {missing}"
    unread = set_in_azure - names - HOST_SETTINGS
    assert not unread, f"set in Azure but read by neither the app nor the host: {unread}"
    assert not set(OMITTED_SETTINGS) & set_in_azure


def test_plain_settings_come_from_main_parameters_with_the_apps_defaults() -> None:
    defaults = {"STRAVA_BASE_URL": settings.DEFAULT_STRAVA_BASE_URL, "ACTIVITY_TIMEZONE": settings.DEFAULT_TIMEZONE,
                "ENRICH_WEATHER": settings.DEFAULT_ENRICH_WEATHER,
                "OPEN_METEO_BASE_URL": settings.DEFAULT_OPEN_METEO_BASE_URL,
                "STRAVA_CLIENT_ID": None}  # required: no default
    values, params = api_settings(), template("main").section("parameters")
    for name, default in defaults.items():
        main_param = main_param_feeding("api", values[name])
        assert params[main_param]["default"] == default, f"{main_param} ({name}): default differs from shared.config"
        assert settings.SETTINGS[name][0] is (default is None)


def test_secrets_are_key_vault_references_to_secure_parameters() -> None:
    values, vault = api_settings(), template("app/keyvault")
    entries = {r.config["name"]: r for r in resources(vault, "Microsoft.KeyVault/vaults/secrets")}
    assert set(entries) == {secret for secret, _ in SECRETS.values()}
    for setting, (secret, main_param) in SECRETS.items():
        reference = re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=\$\{(\w+)\}\)", values[setting])
        assert reference, f"{setting} must be a Key Vault reference, not {values[setting]!r}"
        source = render(module_call("api")["params"][reference.group(1)])
        assert source.startswith("keyVault.outputs."), f"{setting}'s URI comes from {source}"
        output = vault.section("outputs")[source.removeprefix("keyVault.outputs.")]
        assert render(output["value"]) == f"{entries[secret].symbol}.properties.secretUri"
        vault_param = entries[secret].config["properties"]["value"]
        assert "secure" in decorators(vault.section("parameters")[vault_param])
        assert main_param_feeding("keyvault", vault_param) == main_param


def test_key_vault_is_in_rbac_mode_with_soft_delete() -> None:
    vault = resource(template("app/keyvault"), "Microsoft.KeyVault/vaults").config["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert "accessPolicies" not in vault
    assert render(vault["enablePurgeProtection"]) == "purgeProtection ? true : null"
    assert template("main").section("parameters")["keyVaultPurgeProtection"]["default"] is False


@pytest.mark.parametrize("name", MODULES)
def test_secret_parameters_are_secure_strings_without_defaults(name: str) -> None:
    for param, spec in template(name).section("parameters").items():
        looks_secret = re.search(r"(?i)secret|apikey|password", param) and not param.endswith("Uri")
        if "secure" in decorators(spec) or looks_secret:
            assert "secure" in decorators(spec), f"{name}.bicep: {param} must be @secure()"
            assert spec["type"] == "string" and spec["default"] is None, f"{name}.bicep: {param} must have no default"


@pytest.mark.parametrize("name", MODULES)
def test_no_output_carries_a_secret(name: str) -> None:
    tpl = template(name)
    secure = {p for p, spec in tpl.section("parameters").items() if "secure" in decorators(spec)}
    for output, spec in tpl.section("outputs").items():
        rendered = render(spec["value"])
        assert not set(re.findall(r"\w+", rendered)) & secure, f"{name}.bicep output {output} exposes a secret"
        assert not re.search(r"listKeys|listSecrets|properties\.value\b", rendered), f"{name}.bicep output {output}"


# ---------------------------------------------------------------------------------------------------------------------
# Role assignments: each one justified by a use in the code
# ---------------------------------------------------------------------------------------------------------------------

class Role(NamedTuple):
    name: str
    why: str
    evidence: tuple[tuple[str, str], ...]  # (file, text in it) showing the use


ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": Role(
        "Storage Blob Data Owner",
        "the host's AzureWebJobsStorage (blob leases; Microsoft documents Owner), the Flex package, claim checks",
        (("shared/live/blueprint.py", 'connection="AzureWebJobsStorage"'),
         ("shared/storage/clients.py", "PAYLOAD_CONTAINER"), ("infra/app/api.bicep", "blobContainer"))),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": Role(
        "Storage Blob Data Contributor",
        "the command line reads and writes payload blobs (retry of kept payloads)",
        (("shared/storage/kept.py", "PAYLOAD_CONTAINER"),)),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": Role(
        "Storage Queue Data Contributor",
        "queue triggers, the ack and retries sending, the host moving messages to the poison queue",
        (("shared/live/blueprint.py", "queue_trigger"), ("shared/storage/clients.py", "ACTIVITY_QUEUE"),
         ("shared/storage/messages.py", "send_message"))),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": Role(
        "Storage Table Data Contributor",
        "activity log, tokens, athletes and invitations, OAuth states",
        (("shared/storage/clients.py", "ACTIVITY_LOG_TABLE"), ("shared/storage/clients.py", "CONNECTIONS_TABLE"),
         ("shared/storage/clients.py", "USERS_TABLE"), ("shared/storage/clients.py", "OAUTH_STATE_TABLE"))),
    "3913510d-42f4-4e42-8a64-420c390055eb": Role(
        "Monitoring Metrics Publisher",
        "telemetry with an Entra token: Application Insights has local auth off",
        (("infra/app/api.bicep", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"),)),
    "4633458b-17de-408a-b874-0445c86b69e6": Role(
        "Key Vault Secrets User",
        "the platform resolves the Key Vault references STRAVA_CLIENT_SECRET and SYNC_API_KEY as the app",
        (("infra/app/api.bicep", "@Microsoft.KeyVault(SecretUri="), ("shared/config.py", "STRAVA_CLIENT_SECRET"))),
}
APP_ROLES = {"Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor",
             "Monitoring Metrics Publisher", "Key Vault Secrets User"}
USER_ROLES = {"Storage Blob Data Contributor", "Storage Queue Data Contributor", "Storage Table Data Contributor"}


class Assignment(NamedTuple):
    symbol: str
    role: str  # the role's name, from ROLES
    principal: str  # the parameter holding the principal id
    principal_type: str
    scope: str
    name: str  # rendered guid(...)
    condition: str | None


def role_assignments() -> list[Assignment]:
    found = []
    for name in MODULES:
        tpl = template(name)
        for res in resources(tpl, "Microsoft.Authorization/roleAssignments"):
            definition = res.config["properties"]["roleDefinitionId"]["function"]
            assert definition["type"] == "subscription_resource_id", f"{res.symbol}: use subscriptionResourceId()"
            role_id = variable(tpl, definition["parameters"]["resource_name_1"])
            assert role_id in ROLES, f"{name}.bicep {res.symbol}: role {role_id} has no justification in ROLES"
            props = res.config["properties"]
            found.append(Assignment(res.symbol, ROLES[role_id].name, props["principalId"], props["principalType"],
                                    res.config["scope"], render(res.config["name"]), res.condition))
    return found


def test_every_role_is_justified_by_code_that_exists() -> None:
    for role in ROLES.values():
        for file, text in role.evidence:
            assert text in (ROOT / file).read_text(encoding="utf-8"), f"{role.name}: {file} no longer shows {text!r}"


def test_the_apps_identity_gets_exactly_the_roles_it_uses() -> None:
    app = [a for a in role_assignments() if a.principal == "appPrincipalId"]
    assert {a.role for a in app} == APP_ROLES
    assert len(app) == len(APP_ROLES)
    scopes = {"Monitoring Metrics Publisher": "appInsights", "Key Vault Secrets User": "vault"}
    for a in app:
        assert a.principal_type == "ServicePrincipal" and a.condition is None, a.symbol
        assert a.scope == scopes.get(a.role, "storageAccount"), f"{a.symbol}: scoped to {a.scope}"
        assert re.fullmatch(rf"guid\({a.scope}\.id, appPrincipalId, \w+\)", a.name), f"{a.symbol}: name {a.name}"
    assert render(module_call("rbac")["params"]["appPrincipalId"]) == "identity.outputs.principalId"


def test_the_deploying_user_gets_the_command_lines_data_roles_only_when_named() -> None:
    user = [a for a in role_assignments() if a.principal == "userPrincipalId"]
    assert {a.role for a in user} == USER_ROLES
    assert len(user) == len(USER_ROLES)
    for a in user:
        assert a.principal_type == "User" and a.scope == "storageAccount", a.symbol
        assert a.condition == "!empty(userPrincipalId)", f"{a.symbol} must be conditional on a principal id"
    assert main_param_feeding("rbac", "userPrincipalId") == "principalId"
    assert template("main").section("parameters")["principalId"]["default"] == ""


def test_the_app_starts_only_after_its_roles_exist() -> None:
    assert "rbac" in module_call("api").get("dependsOn", [])


# ---------------------------------------------------------------------------------------------------------------------
# Every queue, table and container the app uses is created (names from shared/storage/clients.py)
# ---------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("param", "kind", "expected"), [
    ("queueNames", "queueServices/queues", {clients.ACTIVITY_QUEUE, clients.POISON_QUEUE}),
    ("tableNames", "tableServices/tables",
     {clients.CONNECTIONS_TABLE, clients.ACTIVITY_LOG_TABLE, clients.OAUTH_STATE_TABLE, clients.USERS_TABLE}),
    ("containerNames", "blobServices/containers", {clients.PAYLOAD_CONTAINER}),
])
def test_the_template_creates_every_storage_name_the_app_uses(param: str, kind: str, expected: set[str]) -> None:
    main, storage = template("main"), template("app/storage")
    passed = module_call("storage")["params"][param]
    names = {variable(main, symbol) for symbol in passed if symbol != "deploymentContainerName"}
    assert names == expected
    (created,) = resources(storage, f"Microsoft.Storage/storageAccounts/{kind}")
    assert created.loop == {"type": "array", "detail": {"item_name": created.config["name"], "array_name": param}}


def test_function_app_binds_the_queues_the_template_creates() -> None:
    app = (ROOT / "shared/live/blueprint.py").read_text()  # the live flow's blueprint holds the queue triggers
    assert f'ACTIVITY_QUEUE = "{clients.ACTIVITY_QUEUE}"' in app
    assert 'POISON_QUEUE = ACTIVITY_QUEUE + "-poison"' in app
    assert clients.POISON_QUEUE == clients.ACTIVITY_QUEUE + "-poison"


# ---------------------------------------------------------------------------------------------------------------------
# The failure alert
# ---------------------------------------------------------------------------------------------------------------------

def test_the_alert_exists_only_with_an_email_and_mails_it() -> None:
    monitoring = template("app/monitoring")
    group = resource(monitoring, "Microsoft.Insights/actionGroups")
    rule = resource(monitoring, "Microsoft.Insights/scheduledQueryRules")
    assert group.condition == rule.condition == "!empty(alertEmail)"
    assert [r["emailAddress"] for r in group.config["properties"]["emailReceivers"]] == ["alertEmail"]
    assert render(rule.config["properties"]["actions"]["actionGroups"]) == f"[{group.symbol}.id]"
    assert main_param_feeding("monitoring", "alertEmail") == "alertEmail"
    assert template("main").section("parameters")["alertEmail"]["default"] == ""


def test_the_alert_runs_hourly_mails_at_most_hourly_and_says_where_to_look() -> None:
    monitoring = template("app/monitoring")
    rule = resource(monitoring, "Microsoft.Insights/scheduledQueryRules").config
    props = rule["properties"]
    assert rule["kind"] == "LogAlert"
    assert (props["evaluationFrequency"], props["windowSize"], props["muteActionsDuration"]) == ("PT1H",) * 3
    assert props["autoMitigate"] is False  # Azure allows muting only without auto-resolve
    assert render(props["scopes"]) == f"[{resource(monitoring, 'Microsoft.Insights/components').symbol}.id]"
    (criterion,) = props["criteria"]["allOf"]
    assert (criterion["operator"], criterion["threshold"]) == ("GreaterThan", 0)
    assert "/api/activities?status=failed" in props["description"]
    assert "python -m shared.cli status" in props["description"]


def test_the_alert_query_matches_what_the_app_logs() -> None:
    monitoring = template("app/monitoring")
    props = resource(monitoring, "Microsoft.Insights/scheduledQueryRules").config["properties"]
    (criterion,) = props["criteria"]["allOf"]
    query = variable(monitoring, criterion["query"])
    assert re.search(rf"summarize {criterion['metricMeasureColumn']} = dcount\(", query)
    # The activity log's line for every status change, and the poison path's line without an activity id.
    assert 'startswith "activity "' in query and '" status=failed "' in query
    assert "activity sync_id=%s status=%s " in (ROOT / "shared/storage/activitylog.py").read_text()
    assert '"failed queue message without an activity id' in query
    assert "failed queue message without an activity id" in (ROOT / "shared/live/sync.py").read_text()
    # A poisoned message is recorded as a failed activity, so the first line covers it.
    assert "poison queue" in (ROOT / "shared/live/worker.py").read_text()
    assert 'status="failed"' in (ROOT / "shared/live/sync.py").read_text().split("def give_up", 1)[1]


# ---------------------------------------------------------------------------------------------------------------------
# Outputs, azure.yaml, parameters file and hooks
# ---------------------------------------------------------------------------------------------------------------------

HOOK_OUTPUTS = {"AZURE_FUNCTION_APP_NAME", "AZURE_RESOURCE_GROUP", "RUNKEEPER_URL", "STRAVA_CONNECT_URL",
                "STRAVA_CALLBACK_DOMAIN"}


def test_outputs_point_at_the_apps_real_routes() -> None:
    outputs = template("main").section("outputs")
    assert HOOK_OUTPUTS <= set(outputs)
    assert outputs["RUNKEEPER_URL"]["value"] == "https://${api.outputs.hostName}/api/runkeeper"
    assert outputs["STRAVA_CONNECT_URL"]["value"] == "https://${api.outputs.hostName}/api/strava/connect"
    assert render(outputs["STRAVA_CALLBACK_DOMAIN"]["value"]) == "api.outputs.hostName"
    assert render(template("app/api").section("outputs")["hostName"]["value"]) == "site.properties.defaultHostName"
    assert json.loads((ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"] == "api"
    app = "".join((ROOT / f).read_text() for f in ("function_app.py", "shared/live/blueprint.py",
                                                    "shared/owner/blueprint.py"))  # the app and its blueprints
    assert 'route="runkeeper"' in app and 'route="strava/connect"' in app and 'route="activities"' in app


def parse_simple_yaml(text: str) -> dict[str, Any]:
    """azure.yaml's subset of YAML (nested mappings of plain scalars, `#` comments); anything else is refused.

    PyYAML is not a dependency of this project; when it happens to be installed, the result is compared with it.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s+#.*$|^\s*#.*$", "", raw).rstrip()
        if not line:
            continue
        match = re.fullmatch(r"( *)([A-Za-z_][\w.-]*):(?: +(.*))?", line)
        assert match and "\t" not in raw, f"azure.yaml line {number} is outside the simple subset: {raw!r}"
        indent, key, scalar = len(match.group(1)), match.group(2), match.group(3)
        while indent <= stack[-1][0]:
            stack.pop()
        parent = stack[-1][1]
        assert key not in parent, f"azure.yaml line {number}: {key} twice"
        if scalar is None:
            parent[key] = {}
            stack.append((indent, parent[key]))
        else:
            assert not scalar.startswith(("[", "{", "&", "*", "|", ">", "-")), f"azure.yaml line {number}: {scalar!r}"
            scalar = scalar.strip("'\"") if scalar[:1] in "'\"" else scalar
            parent[key] = {"true": True, "false": False}.get(scalar, scalar)
    return root


@pytest.fixture(scope="module")
def azure_yaml() -> dict[str, Any]:
    parsed = parse_simple_yaml(AZURE_YAML.read_text(encoding="utf-8"))
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return parsed
    assert yaml.safe_load(AZURE_YAML.read_text(encoding="utf-8")) == parsed
    return parsed


def test_azure_yaml_deploys_this_folder_as_a_python_function_app(azure_yaml: dict[str, Any]) -> None:
    assert azure_yaml["name"]
    assert azure_yaml["metadata"]["template"].startswith(azure_yaml["name"] + "@")
    assert azure_yaml["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    for needed in ("function_app.py", "host.json", "requirements.txt"):
        assert (ROOT / needed).is_file()
    # The function app carries the tag azd finds the service by.
    tags = resource(template("app/api"), "Microsoft.Web/sites").config["tags"]
    assert render(tags) == "union(tags, {'azd-service-name': api})"


def hook_scripts(azure_yaml: dict[str, Any]) -> list[tuple[str, str, Path]]:
    """(hook, shell, script) for every hook in azure.yaml."""
    found = []
    for hook, platforms in azure_yaml["hooks"].items():
        assert set(platforms) == {"posix", "windows"}, f"{hook}: needs a posix and a windows variant"
        for platform, spec in platforms.items():
            assert spec["shell"] == {"posix": "sh", "windows": "pwsh"}[platform]
            found.append((hook, spec["shell"], ROOT / spec["run"]))
    return found


def test_azure_yaml_hooks_exist_are_executable_and_parse(azure_yaml: dict[str, Any]) -> None:
    scripts = hook_scripts(azure_yaml)
    assert {hook for hook, _, _ in scripts} == {"preprovision", "postdeploy"}
    for hook, shell, script in scripts:
        assert script.is_file() and script.parent == HOOKS, f"{hook}: {script} is missing"
        assert os.access(script, os.X_OK), f"{script.relative_to(ROOT)} is not executable"
        if shell == "sh":
            assert script.read_text().startswith("#!/bin/sh\n")
            subprocess.run(["sh", "-n", str(script)], check=True)


def test_hooks_read_only_outputs_main_declares() -> None:
    outputs = set(template("main").section("outputs"))
    for script in HOOKS.iterdir():
        text = script.read_text()
        used = set(re.findall(r"\$\{(AZURE_[A-Z_]+|RUNKEEPER_URL|STRAVA_[A-Z_]+)", text))
        used |= set(re.findall(r"\$env:(AZURE_[A-Z_]+|RUNKEEPER_URL|STRAVA_[A-Z_]+)", text))
        assert used - {"STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET"} <= outputs, f"{script.name}: {used - outputs}"
    assert HOOK_OUTPUTS <= set(re.findall(r"\$\{(\w+)", (HOOKS / "postdeploy.sh").read_text()))


@pytest.fixture(scope="module")
def parameters_file() -> dict[str, Any]:
    return json.loads(PARAMETERS.read_text(encoding="utf-8"))


AZD_VALUE = re.compile(r"\$\{(?P<var>[A-Z][A-Z0-9_]*)(?:=(?P<default>[^}]*))?\}")


def test_parameters_file_maps_every_required_parameter_to_the_azd_environment(parameters_file: dict[str, Any]) -> None:
    assert parameters_file["$schema"].endswith("/deploymentParameters.json#")
    assert parameters_file["contentVersion"] == "1.0.0.0"
    declared, mapped = template("main").section("parameters"), parameters_file["parameters"]
    assert set(mapped) <= set(declared), f"main.bicep does not declare {set(mapped) - set(declared)}"
    assert {n for n, spec in declared.items() if spec["default"] is None} <= set(mapped)
    variables = {}
    for name, entry in mapped.items():
        assert set(entry) == {"value"}
        value = AZD_VALUE.fullmatch(entry["value"])
        assert value, f"{name}: {entry['value']!r} is not an azd ${{VAR}} or ${{VAR=default}}"
        variables[name] = value["var"]
        spec = declared[name]
        if value["default"] is not None:  # azd's default must be the template's, or the two drift apart
            assert value["default"] == ("" if spec["default"] is None else str(spec["default"])), name
        if "secure" in decorators(spec):
            assert value["default"] is None, f"{name}: a secret gets no default"
    assert variables == variables | {
        "environmentName": "AZURE_ENV_NAME", "location": "AZURE_LOCATION", "principalId": "AZURE_PRINCIPAL_ID",
        "stravaClientId": "STRAVA_CLIENT_ID", "stravaClientSecret": "STRAVA_CLIENT_SECRET",
        "syncApiKey": "SYNC_API_KEY", "alwaysReady": "ALWAYS_READY", "alertEmail": "ALERT_EMAIL"}
    assert mapped["alwaysReady"]["value"] == "${ALWAYS_READY=0}" and mapped["alertEmail"]["value"] == "${ALERT_EMAIL=}"


# ---------------------------------------------------------------------------------------------------------------------
# The hooks, run against stand-in azd / az commands
# ---------------------------------------------------------------------------------------------------------------------

def stand_in(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def run_hook(script: str, bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # The stand-ins first, then this interpreter's directory (the hook may need python3), then the system's.
    clean = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(bin_dir), **env}
    return subprocess.run(["sh", str(HOOKS / script)], env=clean, capture_output=True, text=True, timeout=60)


def test_preprovision_stops_with_what_to_run_when_strava_is_not_configured(tmp_path: Path) -> None:
    stand_in(tmp_path, "azd", f'echo "$@" >> {tmp_path}/calls\n')
    result = run_hook("preprovision.sh", tmp_path, STRAVA_CLIENT_ID="12345")
    assert result.returncode != 0
    assert "STRAVA_CLIENT_SECRET" in result.stderr and "azd env set STRAVA_CLIENT_SECRET" in result.stderr
    assert "STRAVA_CLIENT_ID " not in result.stderr.split("\n")[0]  # only what is missing is named
    assert not (tmp_path / "calls").exists()


def test_preprovision_generates_the_api_key_once_and_never_prints_it(tmp_path: Path) -> None:
    stand_in(tmp_path, "azd", f'echo "$@" >> {tmp_path}/calls\n')
    result = run_hook("preprovision.sh", tmp_path, STRAVA_CLIENT_ID="12345", STRAVA_CLIENT_SECRET="s3cret")
    assert result.returncode == 0, result.stderr
    (call,) = (tmp_path / "calls").read_text().splitlines()
    verb, key = call.rsplit(" ", 1)
    assert verb == "env set SYNC_API_KEY" and re.fullmatch(r"[A-Za-z0-9_-]{43}", key)
    assert key not in result.stdout + result.stderr
    (tmp_path / "calls").unlink()
    again = run_hook("preprovision.sh", tmp_path, STRAVA_CLIENT_ID="1", STRAVA_CLIENT_SECRET="s", SYNC_API_KEY=key)
    assert again.returncode == 0 and not (tmp_path / "calls").exists()


def test_postdeploy_prints_the_three_next_steps_without_the_api_key(tmp_path: Path) -> None:
    stand_in(tmp_path, "az", 'case "$*" in *"--function-name runkeeper"*) echo fn-key-123;; *) exit 1;; esac\n')
    host = "func-api-abc.azurewebsites.net"
    result = run_hook("postdeploy.sh", tmp_path, AZURE_FUNCTION_APP_NAME="func-api-abc", AZURE_RESOURCE_GROUP="rg-dev",
                      RUNKEEPER_URL=f"https://{host}/api/runkeeper", STRAVA_CALLBACK_DOMAIN=host,
                      STRAVA_CONNECT_URL=f"https://{host}/api/strava/connect", SYNC_API_KEY="the-owners-key-xyz")
    assert result.returncode == 0, result.stderr
    assert f"https://{host}/api/runkeeper?code=fn-key-123" in result.stdout
    assert f"https://{host}/api/strava/connect?key=<your SYNC_API_KEY>" in result.stdout
    assert f"Authorization Callback Domain to:  {host}" in result.stdout
    assert "the-owners-key-xyz" not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------------------------
# host.json and .gitignore
# ---------------------------------------------------------------------------------------------------------------------

def minutes(timespan: str) -> float:
    hours, mins, secs = (float(part) for part in timespan.split(":"))
    return hours * 60 + mins + secs / 60


def test_host_json_keeps_concurrent_uploads_few() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    queues = host["extensions"]["queues"]
    assert queues["newBatchThreshold"] == 0  # otherwise the host fetches batchSize/2 more while a batch runs
    assert 1 <= queues["batchSize"] <= 2
    # In flight at most: per instance (batchSize + newBatchThreshold) x the default instance limit, ~2 calls each,
    # against Strava's default 100 reads and 200 calls per 15 minutes for the whole app.
    in_flight = (queues["batchSize"] + queues["newBatchThreshold"]) * template("main").section("parameters")[
        "maximumInstanceCount"]["default"]
    assert in_flight <= 6
    assert queues["maxDequeueCount"] >= 3  # transient failures are retried before the poison queue
    assert 1 <= minutes(host["functionTimeout"]) <= 10
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"


def test_gitignore_keeps_azd_environments_out_and_the_parameters_file_in() -> None:
    lines = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert ".azure/" in lines
    assert not {"infra/main.parameters.json", "main.parameters.json", "infra/"} & lines
