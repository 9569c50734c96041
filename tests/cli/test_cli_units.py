"""The client's pieces without a server: targets (local discovery, ``--cloud azure``), ``--set``, output, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from rich.console import Console

from scaleset.api import serve
from scaleset.cli import connect
from scaleset.cli.connect import Session, resolve_target
from scaleset.cli.errors import CliError, UsageError, describe
from scaleset.cli.output import add_resource_group, flatten, shaped, table_rows, write
from scaleset.cli.progress import Snapshot
from scaleset.cli.setpath import apply_set
from scaleset.main import build_parser, main

VMSS_ID = "/subscriptions/s/resourceGroups/RG1/providers/Microsoft.Compute/virtualMachineScaleSets/web"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("SCALESET_ENDPOINT", "SCALESET_DATA_DIR", "AZURE_SUBSCRIPTION_ID", "SCALESET_TENANT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path


def _fake_data_dir(directory: Path) -> Path:
    (directory / "tls").mkdir(parents=True)
    (directory / "tls" / "ca.pem").write_text("not a real certificate; never used without a request\n")
    (directory / "client-secret").write_text("s3cret\n")
    return directory


# ---------------------------------------------------------------------- targets


def test_the_duplicated_constants_match_the_server() -> None:
    assert (connect.SUBSCRIPTION, connect.TENANT, connect.CLIENT_ID) == (
        serve.SUBSCRIPTION,
        serve.TENANT,
        serve.CLIENT_ID,
    )
    assert connect.DEFAULT_PORT == serve.DEFAULT_PORT


def test_local_discovery_follows_the_serve_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert connect.default_data_dir() == serve.default_data_dir() == clean_env / "xdg" / "scaleset"
    data_dir = _fake_data_dir(clean_env / "xdg" / "scaleset")
    target = resolve_target("local", endpoint=None, data_dir=None, subscription=None)
    assert target.endpoint == "https://127.0.0.1:8443" and target.ca == data_dir / "tls" / "ca.pem"
    assert target.subscription == connect.SUBSCRIPTION and isinstance(target.credential, ClientSecretCredential)
    session = Session(target)
    assert isinstance(session.compute, ComputeManagementClient)
    assert session.compute._config.base_url == "https://127.0.0.1:8443"

    other = _fake_data_dir(clean_env / "elsewhere")
    monkeypatch.setenv("SCALESET_DATA_DIR", str(other))
    monkeypatch.setenv("SCALESET_ENDPOINT", "https://127.0.0.1:9443/")
    moved = resolve_target("local", endpoint=None, data_dir=None, subscription="sub-2")
    assert (moved.endpoint, moved.ca, moved.subscription) == (
        "https://127.0.0.1:9443",
        other / "tls" / "ca.pem",
        "sub-2",
    )


def test_local_discovery_errors(clean_env: Path) -> None:
    with pytest.raises(CliError) as missing:
        resolve_target("local", endpoint=None, data_dir=clean_env / "nothing", subscription=None)
    assert missing.value.code == "ServerNotFound" and missing.value.exit_code == 1
    with pytest.raises(UsageError):
        resolve_target("local", endpoint="http://127.0.0.1:8443", data_dir=None, subscription=None)


def test_cloud_azure_builds_clients_without_calling_them(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-00000000abcd")
    target = resolve_target("azure", endpoint=None, data_dir=None, subscription=None)
    assert target.cloud == "azure" and not target.local and target.poll_interval == 5.0
    assert isinstance(target.credential, DefaultAzureCredential)
    assert target.client_kwargs() == {}  # the SDK's defaults: public ARM, certifi, its own retries
    session = Session(target)
    compute, resources = session.compute, session.resources
    assert isinstance(compute, ComputeManagementClient) and isinstance(resources, ResourceManagementClient)
    assert compute._config.subscription_id == "00000000-0000-0000-0000-00000000abcd"
    assert compute._config.base_url.rstrip("/") == "https://management.azure.com"
    assert resources._config.base_url.rstrip("/") == "https://management.azure.com"
    assert compute._config.credential_scopes == ["https://management.azure.com/.default"]
    explicit = resolve_target(
        "azure", endpoint=None, data_dir=None, subscription="11111111-2222-3333-4444-555555555555"
    )
    assert explicit.subscription == "11111111-2222-3333-4444-555555555555"


def test_cloud_azure_usage(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vmss", "list", "--cloud", "azure"]) == 1  # no subscription anywhere: nothing is sent
    assert capsys.readouterr().err.startswith("(SubscriptionNotFound) ")
    assert main(["vmss", "list", "--cloud", "azure", "--subscription", "x", "--endpoint", "https://h"]) == 2
    assert "--endpoint and --data-dir" in capsys.readouterr().err
    assert main(["fault", "list", "--cloud", "azure", "--subscription", "x"]) == 2
    assert capsys.readouterr().err.startswith("(InvalidArgumentValue) fault injection exists only")


def test_serve_and_sim_still_parse(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["serve", "--port", "9999", "--time-scale", "5"])
    assert args.run is serve.run and args.port == 9999
    assert main(["serve", "--time-scale", "0"]) == 2  # serve's own check, before it binds anything
    assert main(["sim", "--help"]) == 0
    assert main([]) == 2
    assert main(["--version"]) == 0
    capsys.readouterr()


# ---------------------------------------------------------------------- --set


def _vmss_body() -> dict[str, object]:
    return {
        "id": VMSS_ID,
        "name": "web",
        "sku": {"name": "Standard_D2s_v3", "capacity": 2},
        "properties": {
            "upgradePolicy": {"mode": "Manual"},
            "virtualMachineProfile": {
                "extensionProfile": {
                    "extensions": [
                        {"name": "A", "properties": {"type": "CustomScript", "settings": {"x": 1}}},
                        {"name": "HealthExtension", "properties": {"type": "ApplicationHealthLinux", "settings": {}}},
                    ]
                }
            },
        },
    }


def test_set_follows_az_paths_into_the_wire_body() -> None:
    body = _vmss_body()
    apply_set(body, "upgradePolicy.mode=Rolling")
    apply_set(body, "sku.capacity=5")
    apply_set(body, "UPGRADEPOLICY.rollingUpgradePolicy.maxSurge=true")  # case-insensitive; missing objects made
    apply_set(body, "virtualMachineProfile.extensionProfile.extensions[name=HealthExtension].settings.port=8080")
    apply_set(body, "virtualMachineProfile.extensionProfile.extensions[0].typeHandlerVersion=2.1", force_string=True)
    apply_set(body, "virtualMachineProfile.extensionProfile.extensions[0].settings.x=2.5")
    apply_set(body, 'virtualMachineProfile.extensionProfile.extensions[-1].settings.path="/h"')
    apply_set(body, "tags.team=web")
    apply_set(body, 'automaticRepairsPolicy={"enabled": false}')
    props = body["properties"]
    assert isinstance(props, dict)
    assert props["upgradePolicy"] == {"mode": "Rolling", "rollingUpgradePolicy": {"maxSurge": True}}
    assert body["sku"] == {"name": "Standard_D2s_v3", "capacity": 5}
    extensions = props["virtualMachineProfile"]["extensionProfile"]["extensions"]
    assert extensions[0]["properties"]["typeHandlerVersion"] == "2.1"  # a new key goes under properties
    assert extensions[0]["properties"]["settings"] == {"x": 2.5}  # JSON values unless --force-string
    assert extensions[1]["properties"]["settings"] == {"port": 8080, "path": "/h"}
    assert body["tags"] == {"team": "web"}  # an envelope field stays at the top
    assert props["automaticRepairsPolicy"] == {"enabled": False}


@pytest.mark.parametrize(
    "bad",
    ["nothing", "=1", "a..b=1", "a.=1", "[0]=1", "virtualMachineProfile.extensionProfile.extensions[5].x=1",
     "virtualMachineProfile.extensionProfile.extensions[name=Z].x=1", "sku.capacity[0]=1"],
)  # fmt: skip
def test_bad_set_paths_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        apply_set(_vmss_body(), bad)


# ---------------------------------------------------------------------- output


def test_flatten_and_resource_group_as_az_prints_them() -> None:
    out = shaped(_vmss_body())
    assert out["upgradePolicy"] == {"mode": "Manual"} and "properties" not in out
    assert out["resourceGroup"] == "RG1"
    extension = out["virtualMachineProfile"]["extensionProfile"]["extensions"][0]
    assert extension == {"name": "A", "type": "CustomScript", "settings": {"x": 1}}
    untouched = flatten({"settings": {"name": "n", "properties": {"kept": True}}, "properties": {"a": 1}})
    assert untouched == {"settings": {"name": "n", "properties": {"kept": True}}, "a": 1}
    nested = add_resource_group({"value": [{"id": VMSS_ID + "/virtualMachines/0"}, {"id": "/subscriptions/s"}]})
    assert nested["value"][0]["resourceGroup"] == "RG1" and "resourceGroup" not in nested["value"][1]


def test_formats() -> None:
    rows = [{"name": "a", "n": 1, "ok": True, "nested": {"x": 1}}, {"name": "b", "n": None, "ok": False}]
    out = io.StringIO()
    write(rows, "tsv", stream=out)
    assert out.getvalue() == "1\ta\t\tTrue\nNone\tb\tFalse\n"  # sorted keys; an object empty, null None (az)
    out = io.StringIO()
    write([["a", [1, 2], None], "b"], "tsv", stream=out)
    assert out.getvalue() == "a\t2\tNone\nb\n"
    out = io.StringIO()
    write(rows, "yaml", stream=out)
    assert yaml.safe_load(out.getvalue()) == rows
    out = io.StringIO()
    write(rows, "table", stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["Name", "N", "Ok"] and lines[2].split() == ["a", "1", "True"]
    assert all(line == line.rstrip() for line in lines)
    out = io.StringIO()
    write({"a": 1}, "jsonc", stream=out)
    assert "\x1b[" in out.getvalue() and '"a"' in out.getvalue()
    out = io.StringIO()
    write(None, "json", stream=out)
    write({"a": 1}, "none", stream=out)
    assert out.getvalue() == ""
    assert table_rows(["x", "y"]) == (["Result"], [["x"], ["y"]])


def test_progress_snapshot_lines_and_panel() -> None:
    status = {
        "policy": {"maxBatchInstancePercent": 20},
        "runningStatus": {"code": "RollingForward", "startTime": "t0", "lastAction": "Start"},
        "progress": {
            "successfulInstanceCount": 4,
            "failedInstanceCount": 0,
            "inProgressInstanceCount": 2,
            "pendingInstanceCount": 4,
        },
    }
    snapshot = Snapshot(status, instances=10, latest_model=6, healthy=4)
    assert snapshot.batches() == (3, 5, 2)
    assert snapshot.line("web") == (
        "rolling upgrade web: RollingForward · batch ≈3/5 · succeeded 4, failed 0, in progress 2, pending 4 · "
        "latest model 6/10 (4 healthy)"
    )
    console = Console(record=True, width=120, force_terminal=True)
    console.print(snapshot.render("web"))
    text = console.export_text()
    assert "RollingForward" in text and "≈ 3 of 5" in text and "4 succeeded" in text
    waiting = Snapshot(None, instances=3, latest_model=3, healthy=3)
    assert waiting.batches() is None and "waiting for a rollout" in waiting.line("web")


# ---------------------------------------------------------------------- errors


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "Not Found" if status == 404 else "Bad Request"
        self.headers: dict[str, str] = {}
        self.request = None

    def text(self, encoding: str | None = None) -> str:
        return '{"error": {"code": "Nope", "message": "first line\\nsecond line"}}'


def test_errors_become_one_line_and_an_exit_code() -> None:
    not_found = ResourceNotFoundError(response=_Response(404))  # type: ignore[arg-type]
    assert describe(not_found) == ("(Nope) first line", 3)
    bad = HttpResponseError(response=_Response(400))  # type: ignore[arg-type]
    assert describe(bad) == ("(Nope) first line", 1)
    unreachable = ClientAuthenticationError("Authentication failed: refused")
    unreachable.__cause__ = ServiceRequestError("Connection refused")
    line, code = describe(unreachable, endpoint="https://127.0.0.1:1")
    assert code == 1 and line.startswith("(ConnectionError) Could not reach https://127.0.0.1:1: Connection refused")
    assert describe(ClientAuthenticationError("denied\nmore")) == ("(AuthenticationFailed) denied", 1)
    assert describe(ValueError("boom\ntrace")) == ("(InternalError) ValueError: boom", 1)
    assert describe(KeyboardInterrupt())[1] == 130
    assert describe(CliError("X", "y", exit_code=3)) == ("(X) y", 3)
