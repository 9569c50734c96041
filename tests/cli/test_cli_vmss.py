"""``scaleset vmss`` / ``group`` against a live server: JSON shapes (queried with JMESPath), formats, exit codes."""

from __future__ import annotations

import jmespath
import pytest
import yaml
from tests.cli.conftest import Run

IMAGE = "Contoso:app:stable:1.0.0"


def _group(scaleset: Run, name: str) -> None:
    assert scaleset("group", "create", "-n", name, "-l", "westus", "-o", "none").code == 0


def test_create_rolling_with_every_policy_flag(scaleset: Run) -> None:
    _group(scaleset, "cli-create")
    created = scaleset(
        "vmss", "create", "-g", "cli-create", "-n", "web", "--image", IMAGE, "--instance-count", "3",
        "--vm-sku", "Standard_D2s_v3", "--zones", "1", "2", "--upgrade-policy-mode", "rolling",
        "--max-batch-instance-percent", "50", "--max-unhealthy-instance-percent", "40",
        "--max-unhealthy-upgraded-instance-percent", "30", "--pause-time-between-batches", "PT2S",
        "--enable-cross-zone-upgrade", "--prioritize-unhealthy-instances", "false", "--max-surge", "true",
        "--rollback-failed-instances-on-policy-breach", "--health-extension", "https:8443:/ready",
    )  # fmt: skip
    assert created.code == 0, created.err
    assert created.q("vmss.[name, resourceGroup, provisioningState, sku.capacity, sku.name]") == [
        "web", "cli-create", "Succeeded", 3, "Standard_D2s_v3",
    ]  # fmt: skip
    assert created.q("vmss.zones") == ["1", "2"]
    policy = created.q("vmss.upgradePolicy")
    assert policy["mode"] == "Rolling"
    assert jmespath.search("rollingUpgradePolicy", policy) == {
        "maxBatchInstancePercent": 50,
        "maxUnhealthyInstancePercent": 40,
        "maxUnhealthyUpgradedInstancePercent": 30,
        "pauseTimeBetweenBatches": "PT2S",
        "enableCrossZoneUpgrade": True,
        "prioritizeUnhealthyInstances": False,
        "maxSurge": True,
        "rollbackFailedInstancesOnPolicyBreach": True,
    }
    extension = created.q("vmss.virtualMachineProfile.extensionProfile.extensions[0]")
    assert extension["type"] == "ApplicationHealthLinux"  # flattened, as az prints it
    assert extension["settings"] == {"protocol": "https", "port": 8443, "requestPath": "/ready"}
    assert created.q("vmss.virtualMachineProfile.storageProfile.imageReference.version") == "1.0.0"
    assert created.q("vmss.location") == "westus"  # the resource group's, when -l is not given


def test_show_list_query_and_formats(scaleset: Run) -> None:
    _group(scaleset, "cli-show")
    assert scaleset("vmss", "create", "-g", "cli-show", "-n", "api", "--image", IMAGE, "-o", "none").code == 0
    shown = scaleset("vmss", "show", "-g", "cli-show", "-n", "api")
    assert shown.code == 0 and shown.err == ""
    assert shown.q("[upgradePolicy.mode, sku.capacity, resourceGroup, orchestrationMode]") == [
        "Manual", 2, "cli-show", "Uniform",
    ]  # fmt: skip
    assert "properties" not in shown.json()  # flattened

    queried = scaleset("vmss", "show", "-g", "cli-show", "-n", "api", "--query", "sku.capacity")
    assert queried.code == 0 and queried.out == "2\n"
    tsv = scaleset("vmss", "list", "-g", "cli-show", "--query", "[].[name, sku.capacity]", "-o", "tsv")
    assert tsv.out == "api\t2\n"
    assert yaml.safe_load(scaleset("vmss", "show", "-g", "cli-show", "-n", "api", "-o", "yaml").out)["name"] == "api"
    assert scaleset("vmss", "show", "-g", "cli-show", "-n", "api", "-o", "none").out == ""

    table = scaleset("vmss", "list", "-g", "cli-show", "-o", "table")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split() == ["Name", "ResourceGroup", "Location", "Zones", "Capacity", "UpgradePolicy",
                                "ProvisioningState"]  # fmt: skip
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["api", "cli-show", "westus", "2", "Manual", "Succeeded"]
    everywhere = scaleset("vmss", "list", "--query", "[?resourceGroup=='cli-show'].name")
    assert everywhere.json() == ["api"]


def test_instances_views_and_actions(scaleset: Run) -> None:
    _group(scaleset, "cli-act")
    assert scaleset("vmss", "create", "-g", "cli-act", "-n", "app", "--image", IMAGE, "--instance-count", "3",
                    "--health-extension", "-o", "none").code == 0  # fmt: skip
    listed = scaleset("vmss", "list-instances", "-g", "cli-act", "-n", "app", "--expand", "instanceView")
    assert listed.q("[].instanceId") == ["0", "1", "2"]
    assert listed.q("[].latestModelApplied") == [True, True, True]
    assert set(listed.q("[].resourceGroup")) == {"cli-act"}
    assert listed.q("[0].instanceView.statuses[1].code") == "PowerState/running"

    summary = scaleset("vmss", "get-instance-view", "-g", "cli-act", "-n", "app")
    assert summary.q("virtualMachine.statusesSummary[0].count") == 3
    one = scaleset("vmss", "get-instance-view", "-g", "cli-act", "-n", "app", "--instance-id", "1")
    assert one.q("statuses[1].code") == "PowerState/running"
    every = scaleset("vmss", "get-instance-view", "-g", "cli-act", "-n", "app", "--instance-id", "*")
    assert len(every.json()) == 3
    vm = scaleset("vmss", "show", "-g", "cli-act", "-n", "app", "--instance-id", "2", "--query", "[instanceId, name]")
    assert vm.json() == ["2", "app_2"]

    for verb in (["stop", "--instance-ids", "0"], ["deallocate", "--instance-ids", "1"], ["start"], ["restart"]):
        done = scaleset("vmss", *verb, "-g", "cli-act", "-n", "app")
        assert (done.code, done.out, done.err) == (0, "", ""), verb  # actions print nothing, as az
    assert scaleset("vmss", "reimage", "-g", "cli-act", "-n", "app", "--instance-ids", "2").code == 0
    running = scaleset("vmss", "get-instance-view", "-g", "cli-act", "-n", "app", "--instance-id", "0",
                       "--query", "statuses[1].code", "-o", "tsv")  # fmt: skip
    assert running.out == "PowerState/running\n"

    protect = scaleset("vmss", "update", "-g", "cli-act", "-n", "app", "--instance-id", "1",
                       "--protect-from-scale-in", "--query", "protectionPolicy")  # fmt: skip
    assert protect.code == 0, protect.err
    assert protect.json() == {"protectFromScaleIn": True, "protectFromScaleSetActions": False}

    assert scaleset("vmss", "delete-instances", "-g", "cli-act", "-n", "app", "--instance-ids", "0").code == 0
    left = scaleset("vmss", "list-instances", "-g", "cli-act", "-n", "app", "--query", "[].instanceId")
    assert left.json() == ["1", "2"]


def test_scale_and_manual_update(scaleset: Run) -> None:
    _group(scaleset, "cli-manual")
    assert scaleset("vmss", "create", "-g", "cli-manual", "-n", "svc", "--image", IMAGE, "-o", "none").code == 0
    scaled = scaleset("vmss", "scale", "-g", "cli-manual", "-n", "svc", "--new-capacity", "4", "--query", "sku")
    assert scaled.code == 0 and scaled.json()["capacity"] == 4
    same = scaleset("vmss", "scale", "-g", "cli-manual", "-n", "svc", "--new-capacity", "4")
    assert (same.code, same.out) == (0, "")  # already there: no request, no output (az)

    updated = scaleset(
        "vmss", "update", "-g", "cli-manual", "-n", "svc",
        "--set", "virtualMachineProfile.storageProfile.imageReference.version=1.1.0", "tags.team=web",
        "--set", "upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent=50",
    )  # fmt: skip
    assert updated.code == 0, updated.err
    assert updated.q("virtualMachineProfile.storageProfile.imageReference.version") == "1.1.0"
    assert updated.q("tags") == {"team": "web"}
    assert updated.q("upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent") == 50
    assert updated.q("upgradePolicy.mode") == "Manual" and updated.err == ""  # Manual: no rollout view

    stale = scaleset("vmss", "list-instances", "-g", "cli-manual", "-n", "svc",
                     "--filter", "properties/latestModelApplied eq false", "--query", "length(@)")  # fmt: skip
    assert stale.json() == 4
    assert scaleset("vmss", "update-instances", "-g", "cli-manual", "-n", "svc", "--instance-ids", "0", "1").code == 0
    assert scaleset("vmss", "update-instances", "-g", "cli-manual", "-n", "svc", "--instance-ids", "*").code == 0
    stale = scaleset("vmss", "list-instances", "-g", "cli-manual", "-n", "svc",
                     "--query", "[?!latestModelApplied] | length(@)")  # fmt: skip
    assert stale.json() == 0


def test_delete_then_not_found(scaleset: Run) -> None:
    _group(scaleset, "cli-delete")
    assert scaleset("vmss", "create", "-g", "cli-delete", "-n", "gone", "--image", IMAGE, "-o", "none").code == 0
    deleted = scaleset("vmss", "delete", "-g", "cli-delete", "-n", "gone")
    assert (deleted.code, deleted.out) == (0, "")
    missing = scaleset("vmss", "show", "-g", "cli-delete", "-n", "gone")
    assert missing.code == 3 and missing.out == ""
    assert missing.err.startswith("(ResourceNotFound) ") and missing.err.count("\n") == 1
    no_group = scaleset("vmss", "list", "-g", "cli-nowhere")
    assert no_group.code == 3 and no_group.err.startswith("(ResourceGroupNotFound) ")
    groups = scaleset("group", "list", "--query", "[?name=='cli-delete'].properties.provisioningState")
    assert groups.json() == ["Succeeded"]
    assert scaleset("group", "delete", "-n", "cli-delete", "--yes").code == 0
    assert scaleset("group", "show", "-n", "cli-delete").code == 3


def test_service_errors_are_one_line_and_exit_1(scaleset: Run) -> None:
    _group(scaleset, "cli-errors")
    bad = scaleset("vmss", "create", "-g", "cli-errors", "-n", "web", "--upgrade-policy-mode", "Rolling",
                   "--health-extension", "--max-batch-instance-percent", "3")  # fmt: skip
    assert bad.code == 1 and bad.out == ""
    assert bad.err.startswith("(InvalidParameter) ") and bad.err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["vmss", "show", "-g", "x"], "required: -n"),
        (["vmss", "show", "-g", "x", "-n", "y", "--query", "[?"], "invalid JMESPath"),
        (["vmss", "show", "-g", "x", "-n", "y", "-o", "xml"], "invalid choice"),
        (["vmss", "create", "-g", "x", "-n", "y", "--image", "not-an-image"], "publisher:offer:sku:version"),
        (["vmss", "create", "-g", "x", "-n", "y", "--max-surge", "maybe"], "expected true or false"),
        (["vmss", "create", "-g", "x", "-n", "y", "--pause-time-between-batches", "soon"], "ISO 8601"),
        (["vmss", "scale", "-g", "x", "-n", "y"], "--new-capacity"),
        (["vmss", "update", "-g", "x", "-n", "y", "--set", "=1"], "PATH=VALUE"),
        (["vmss", "update-instances", "-g", "x", "-n", "y", "--instance-ids", "zero"], "not an instance id"),
        (["vmss", "rolling-upgrade", "wait", "-g", "x", "-n", "y", "--timeout", "-1"], "positive"),
        (["vmss", "frobnicate"], "invalid choice"),
        (["fault", "add", "--kind", "zone_outage"], "needs --zone"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(scaleset: Run, argv: list[str], fragment: str) -> None:
    result = scaleset(*argv)
    assert result.code == 2 and result.out == ""
    assert fragment in result.err and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
