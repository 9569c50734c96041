"""The real ``az`` CLI, unchanged, driving a live scaleset server: the README's recipe, command by command.

One server and one login for the module; each test batches its checks into as few ``az`` processes as it can
(every one costs about half a second). ``az vmss create`` is not here on purpose: it needs Microsoft.Network and
ARM template deployments, so scale sets are created with ``az rest`` and ``az resource create`` (see the README).
"""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import scale_set_body
from tests.az.conftest import Az

GROUP = "az-tests"
API_VERSION = "2024-11-01"
IMAGE = "virtualMachineProfile.storageProfile.imageReference.version"


def vmss_url(az: Az, name: str) -> str:
    path = az.server.vmss_path(GROUP, name)
    return f"{path}?api-version={API_VERSION}"


def create(az: Az, name: str, body: dict[str, Any]) -> Any:
    """A scale set through ``az rest`` (one PUT, no polling), then ``az vmss wait --created`` until it is built."""
    answer = az.json("rest", "--method", "put", "--url", vmss_url(az, name), "--body", f"@{az.put_body(name, body)}")
    az.ok("vmss", "wait", "--created", "-g", GROUP, "-n", name, "--interval", "1", "--timeout", "60")
    return answer


def instances(az: Az, name: str) -> list[list[Any]]:
    return list(
        az.json(
            "vmss",
            "list-instances",
            "-g",
            GROUP,
            "-n",
            name,
            "--query",
            "[].[instanceId, latestModelApplied, provisioningState]",
        )
    )


def latest(az: Az, name: str) -> Any:
    return az.json(
        "vmss",
        "rolling-upgrade",
        "get-latest",
        "-g",
        GROUP,
        "-n",
        name,
        "--query",
        "{code: runningStatus.code, lastAction: runningStatus.lastAction, progress: progress}",
    )


def test_cloud_from_metadata_and_service_principal_login(az: Az) -> None:
    """``az cloud register`` with only the ARM endpoint: the rest came from ``GET /metadata/endpoints``."""
    cloud = az.json(
        "cloud",
        "show",
        "-n",
        "scaleset",
        "--query",
        "{ad: endpoints.activeDirectory, arm: endpoints.resourceManager, "
        "audience: endpoints.activeDirectoryResourceId, active: isActive}",
    )
    assert cloud == {
        "ad": az.server.base,
        "arm": f"{az.server.base}/",
        "audience": "https://management.core.windows.net/",
        "active": True,
    }
    account = az.json(
        "account", "show", "--query", "{id: id, tenant: tenantId, user: user.type, cloud: environmentName}"
    )
    assert account == {
        "id": az.server.subscription,
        "tenant": az.server.tenant,
        "user": "servicePrincipal",
        "cloud": "scaleset",
    }
    group = az.json(
        "group", "create", "-n", GROUP, "-l", "westus", "--query", "{name: name, state: properties.provisioningState}"
    )
    assert group == {"name": GROUP, "state": "Succeeded"}


def test_rolling_scale_set_show_list_scale_and_update(az: Az) -> None:
    body = scale_set_body(capacity=4, rolling={"maxBatchInstancePercent": 50, "pauseTimeBetweenBatches": "PT5M"})
    answer = create(az, "web", body)
    assert answer["name"] == "web" and answer["properties"]["upgradePolicy"]["mode"] == "Rolling"

    shown = az.json(
        "vmss",
        "show",
        "-g",
        GROUP,
        "-n",
        "web",
        "--query",
        "{name: name, state: provisioningState, mode: upgradePolicy.mode, capacity: sku.capacity, sku: sku.name, "
        f"batch: upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent, image: {IMAGE}, "
        "extensions: virtualMachineProfile.extensionProfile.extensions[].name}",
    )
    assert shown == {
        "name": "web",
        "state": "Succeeded",
        "mode": "Rolling",
        "capacity": 4,
        "sku": "Standard_D2s_v3",
        "batch": 50,
        "image": "1.0.0",
        "extensions": ["HealthExtension"],
    }
    assert az.json("vmss", "list", "-g", GROUP, "--query", "[].name") == ["web"]
    assert instances(az, "web") == [[str(i), True, "Succeeded"] for i in range(4)]

    view = az.json(
        "vmss",
        "get-instance-view",
        "-g",
        GROUP,
        "-n",
        "web",
        "--query",
        "{vms: virtualMachine.statusesSummary[].[code, count], extension: extensions[0].name}",
    )
    assert view == {"vms": [["ProvisioningState/succeeded", 4]], "extension": "HealthExtension"}
    vm = az.json(
        "vmss",
        "get-instance-view",
        "-g",
        GROUP,
        "-n",
        "web",
        "--instance-id",
        "0",
        "--query",
        "{health: vmHealth.status.code, statuses: statuses[].code}",
    )
    assert vm == {
        "health": "HealthState/healthy",
        "statuses": ["ProvisioningState/succeeded", "PowerState/running"],
    }

    scaled = az.json(
        "vmss",
        "scale",
        "-g",
        GROUP,
        "-n",
        "web",
        "--new-capacity",
        "6",
        "--query",
        "{capacity: sku.capacity, state: provisioningState}",
    )
    assert scaled == {"capacity": 6, "state": "Succeeded"}
    assert [row[0] for row in instances(az, "web")] == [str(i) for i in range(6)]

    # An image change in Rolling mode: az's PUT stays InProgress until the rollout ends, so when the command
    # returns the rollout is already Completed and every instance runs the new model.
    updated = az.json(
        "vmss",
        "update",
        "-g",
        GROUP,
        "-n",
        "web",
        "--set",
        f"{IMAGE}=2.0.0",
        "--query",
        f"{{image: {IMAGE}, state: provisioningState}}",
    )
    assert updated == {"image": "2.0.0", "state": "Succeeded"}
    assert latest(az, "web") == {
        "code": "Completed",
        "lastAction": "Start",
        "progress": {
            "successfulInstanceCount": 6,
            "failedInstanceCount": 0,
            "inProgressInstanceCount": 0,
            "pendingInstanceCount": 0,
        },
    }
    assert instances(az, "web") == [[str(i), True, "Succeeded"] for i in range(6)]


def test_manual_scale_set_update_instances(az: Az) -> None:
    # The other create path the README gives: az resource create (a PUT that az polls to the end, then a GET).
    body = az.put_body("manual", scale_set_body(capacity=3, mode="Manual"))
    resource_id = az.server.vmss_path(GROUP, "manual")
    created = az.json(
        "resource",
        "create",
        "--id",
        resource_id,
        "--api-version",
        API_VERSION,
        "--is-full-object",
        "--properties",
        f"@{body}",
        "--query",
        "{id: id, state: properties.provisioningState, mode: properties.upgradePolicy.mode}",
    )
    assert created == {"id": resource_id, "state": "Succeeded", "mode": "Manual"}
    az.ok("vmss", "update", "-g", GROUP, "-n", "manual", "--set", f"{IMAGE}=2.0.0", "-o", "none")
    assert instances(az, "manual") == [[str(i), False, "Succeeded"] for i in range(3)]
    az.ok("vmss", "update-instances", "-g", GROUP, "-n", "manual", "--instance-ids", "0", "1", "-o", "none")
    assert instances(az, "manual") == [["0", True, "Succeeded"], ["1", True, "Succeeded"], ["2", False, "Succeeded"]]


def test_rolling_upgrade_cancel_mid_flight_and_with_nothing_running(az: Az) -> None:
    # Five batches of one with a ten-hour pause between them (a minute of wall time at the server's time scale):
    # after the first batch the rollout sits in its pause, mid-flight, until cancelled.
    body = scale_set_body(capacity=5, rolling={"maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT10H"})
    create(az, "slow", body)
    az.ok("vmss", "update", "-g", GROUP, "-n", "slow", "--set", f"{IMAGE}=2.0.0", "--no-wait", "-o", "none")
    deadline = time.monotonic() + 30
    status = latest(az, "slow")
    while not (status["code"] == "RollingForward" and status["progress"]["successfulInstanceCount"] >= 1):
        assert time.monotonic() < deadline, f"the rollout never got past its first batch: {status}"
        time.sleep(0.2)
        status = latest(az, "slow")

    az.ok("vmss", "rolling-upgrade", "cancel", "-g", GROUP, "-n", "slow", "-o", "none")
    cancelled = latest(az, "slow")
    assert cancelled["code"] == "Cancelled" and cancelled["lastAction"] == "Cancel"
    progress = cancelled["progress"]
    assert 1 <= progress["successfulInstanceCount"] < 5 and progress["pendingInstanceCount"] >= 1
    assert progress["successfulInstanceCount"] + progress["pendingInstanceCount"] + progress["failedInstanceCount"] == 5

    again = az.run("vmss", "rolling-upgrade", "cancel", "-g", GROUP, "-n", "slow", "-o", "none")
    assert again.returncode != 0
    assert "(OperationNotAllowed)" in again.stderr, again.stderr


def test_os_rolling_upgrade_history_and_orchestration_service_state(az: Az) -> None:
    body = scale_set_body(capacity=2, mode="Manual")
    body["properties"]["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT30M"}  # type: ignore[index]
    create(az, "platform", body)
    az.ok("vmss", "rolling-upgrade", "start", "-g", GROUP, "-n", "platform", "-o", "none")
    history = az.json(
        "vmss",
        "get-os-upgrade-history",
        "-g",
        GROUP,
        "-n",
        "platform",
        "--query",
        "[].{code: properties.runningStatus.code, by: properties.startedBy, "
        "exact: properties.targetImageReference.exactVersion}",
    )
    assert history == [{"code": "Completed", "by": "User", "exact": "1.0.0"}]

    def service_state() -> Any:
        return az.json(
            "vmss",
            "get-instance-view",
            "-g",
            GROUP,
            "-n",
            "platform",
            "--query",
            "orchestrationServices[0].serviceState",
        )

    assert service_state() == "Running"
    common = ("-g", GROUP, "-n", "platform", "--service-name", "AutomaticRepairs", "-o", "none")
    az.ok("vmss", "set-orchestration-service-state", *common, "--action", "Suspend")
    assert service_state() == "Suspended"
    az.ok("vmss", "set-orchestration-service-state", *common, "--action", "Resume")
    assert service_state() == "Running"


def test_delete_then_show_missing_exits_3(az: Az) -> None:
    az.ok("vmss", "delete", "-g", GROUP, "-n", "manual")
    missing = az.run("vmss", "show", "-g", GROUP, "-n", "manual")
    assert missing.returncode == 3, missing.stderr
    assert "(ResourceNotFound)" in missing.stderr, missing.stderr
    assert "manual" not in az.json("vmss", "list", "-g", GROUP, "--query", "[].name")
