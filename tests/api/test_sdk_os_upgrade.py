"""Automatic OS image upgrades through the official SDK against a live (simulated, scaled-time) server: a publish
starts a platform upgrade, a bad version rolls back and says so in ``osUpgradeHistory``, ``osRollingUpgrade`` is
user-started without rollback, deferral waits for ``approveRollingUpgrade``, and the validation rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceIDs
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Recorder, Server, assert_arm_error, scale_set_body, wait_until

COMMAND = ["{python}", "-c", "pass"]


@pytest.fixture
def admin(server: Server, recorder: Recorder) -> Iterator[requests.Session]:
    session = server.session(recorder)
    yield session
    session.delete(f"{server.base}/_scaleset/faults", timeout=10).raise_for_status()


def publish(server: Server, http: requests.Session, offer: str, version: str) -> dict[str, Any]:
    url = f"{server.base}/_scaleset/images/aos/{offer}/stable/{version}"
    answer = http.put(url, json={"command": COMMAND}, timeout=10)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def tracking_latest(offer: str, *, capacity: int = 3, mode: str = "Manual", **automatic: Any) -> dict[str, Any]:
    body: Any = scale_set_body(capacity=capacity, mode=mode)
    body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"] = {
        "publisher": "aos",
        "offer": offer,
        "sku": "stable",
        "version": "latest",
    }
    body["properties"]["upgradePolicy"]["automaticOSUpgradePolicy"] = {"enableAutomaticOSUpgrade": True, **automatic}
    return dict(body)


def images(compute: ComputeManagementClient, group: str, name: str) -> dict[str, str]:
    vms = compute.virtual_machine_scale_set_vms.list(group, name)
    return {vm.instance_id: vm.storage_profile.image_reference.exact_version for vm in vms}


def history(compute: ComputeManagementClient, group: str, name: str) -> list[Any]:
    return list(compute.virtual_machine_scale_sets.get_os_upgrade_history(group, name))


def settled(compute: ComputeManagementClient, group: str, name: str, count: int) -> list[Any]:
    """The history once it holds ``count`` entries and the newest one has ended."""

    def done() -> list[Any] | None:
        entries = history(compute, group, name)
        if len(entries) == count and entries[0].properties.running_status.code != "RollingForward":
            return entries
        return None

    return list(wait_until(done, timeout=30, what=f"{count} finished OS upgrade(s)"))


def test_a_publish_starts_a_platform_upgrade_and_a_bad_version_rolls_back(
    server: Server,
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    admin: requests.Session,
) -> None:
    resources.resource_groups.create_or_update("aos-platform", {"location": "westus"})
    publish(server, admin, "platform", "1.0.0")
    sets = compute.virtual_machine_scale_sets
    sets.begin_create_or_update("aos-platform", "web", tracking_latest("platform")).result()
    assert images(compute, "aos-platform", "web") == {"0": "1.0.0", "1": "1.0.0", "2": "1.0.0"}
    assert history(compute, "aos-platform", "web") == []

    answer = publish(server, admin, "platform", "1.1.0")
    assert [i.lower() for i in answer["automaticOSUpgrades"]] == [sets.get("aos-platform", "web").id.lower()]
    [first] = settled(compute, "aos-platform", "web", 1)
    assert first.properties.running_status.code == "Completed"
    assert first.properties.started_by == "Platform"
    assert first.properties.target_image_reference.exact_version == "1.1.0"
    assert first.properties.target_image_reference.version == "latest"
    assert first.properties.progress.successful_instance_count == 3
    assert first.properties.running_status.end_time >= first.properties.running_status.start_time
    assert images(compute, "aos-platform", "web") == {"0": "1.1.0", "1": "1.1.0", "2": "1.1.0"}

    fault = {"kind": "never_healthy", "image_version": "1.2.0"}
    admin.post(f"{server.base}/_scaleset/faults", json=fault, timeout=10).raise_for_status()
    publish(server, admin, "platform", "1.2.0")
    newest, older = settled(compute, "aos-platform", "web", 2)
    assert older.properties.target_image_reference.exact_version == "1.1.0"
    assert newest.properties.running_status.code == "Faulted"
    assert newest.properties.error.code == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert newest.properties.progress.failed_instance_count == 1  # three instances: one at a time
    rollback = newest.properties.rollback_info
    wait_until(
        lambda: (
            history(compute, "aos-platform", "web")[0].properties.rollback_info.successfully_rolledback_instance_count
            == 1
        ),
        what="the failed instance's rollback",
    )
    assert rollback.failed_rolledback_instance_count == 0
    assert wait_until(lambda: set(images(compute, "aos-platform", "web").values()) == {"1.1.0"}, what="1.1.0 back")


def test_os_rolling_upgrade_is_user_started_and_never_rolls_back(
    server: Server,
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    admin: requests.Session,
) -> None:
    resources.resource_groups.create_or_update("aos-user", {"location": "westus"})
    publish(server, admin, "user", "1.0.0")
    body = tracking_latest("user", capacity=2)
    body["properties"]["upgradePolicy"]["automaticOSUpgradePolicy"] = {"enableAutomaticOSUpgrade": False}
    sets = compute.virtual_machine_scale_sets
    sets.begin_create_or_update("aos-user", "web", body).result()
    publish(server, admin, "user", "1.1.0")  # no automatic upgrade: the policy is off
    assert history(compute, "aos-user", "web") == []

    compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade("aos-user", "web").result()
    [entry] = history(compute, "aos-user", "web")
    assert entry.properties.started_by == "User" and entry.properties.running_status.code == "Completed"
    assert images(compute, "aos-user", "web") == {"0": "1.1.0", "1": "1.1.0"}

    fault = {"kind": "never_healthy", "image_version": "1.2.0"}
    admin.post(f"{server.base}/_scaleset/faults", json=fault, timeout=10).raise_for_status()
    publish(server, admin, "user", "1.2.0")
    poller = compute.virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade("aos-user", "web")
    with pytest.raises(HttpResponseError) as failed:
        poller.result()
    assert "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade" in str(failed.value)
    newest = history(compute, "aos-user", "web")[0]
    assert newest.properties.running_status.code == "Faulted"
    assert newest.properties.rollback_info.successfully_rolledback_instance_count == 0
    assert sorted(images(compute, "aos-user", "web").values()) == ["1.1.0", "1.2.0"]  # no automatic rollback


def test_deferral_waits_for_approval_set_wide_and_per_vm(
    server: Server,
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    admin: requests.Session,
    arm: requests.Session,
) -> None:
    resources.resource_groups.create_or_update("aos-defer", {"location": "westus"})
    publish(server, admin, "defer", "1.0.0")
    body = tracking_latest("defer", capacity=3, osRollingUpgradeDeferral=True)
    compute.virtual_machine_scale_sets.begin_create_or_update("aos-defer", "web", body).result()
    publish(server, admin, "defer", "1.1.0")
    wait_until(lambda: history(compute, "aos-defer", "web"), what="the deferred upgrade to start")

    def pending() -> int:
        entry = history(compute, "aos-defer", "web")[0]
        assert entry.properties.running_status.code == "RollingForward"
        return int(entry.properties.progress.pending_instance_count)

    assert pending() == 3
    compute.virtual_machine_scale_set_vms.begin_approve_rolling_upgrade("aos-defer", "web", "2").result()
    wait_until(lambda: images(compute, "aos-defer", "web")["2"] == "1.1.0", what="instance 2 upgraded")
    assert images(compute, "aos-defer", "web")["0"] == "1.0.0" and pending() == 2

    ids = VirtualMachineScaleSetVMInstanceIDs(instance_ids=["0"])
    compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade("aos-defer", "web", ids).result()
    wait_until(lambda: images(compute, "aos-defer", "web")["0"] == "1.1.0", what="instance 0 upgraded")
    compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade("aos-defer", "web").result()  # everything left
    [entry] = settled(compute, "aos-defer", "web", 1)
    assert entry.properties.running_status.code == "Completed"
    assert set(images(compute, "aos-defer", "web").values()) == {"1.1.0"}

    # Nothing waits for approval any more: 409, in the ARM envelope.
    path = "/resourceGroups/aos-defer/providers/Microsoft.Compute/virtualMachineScaleSets/web/approveRollingUpgrade"
    answer = arm.post(server.url(f"/subscriptions/{server.subscription}{path}"), json={}, timeout=10)
    assert_arm_error(answer, 409, "OperationNotAllowed")


def test_validation_needs_latest_and_a_health_source(
    server: Server, arm: requests.Session, resources: ResourceManagementClient
) -> None:
    resources.resource_groups.create_or_update("aos-invalid", {"location": "westus"})
    url = server.url(server.vmss_path("aos-invalid", "web"))
    pinned = tracking_latest("invalid")
    pinned["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] = "1.0.0"
    error = assert_arm_error(arm.put(url, json=pinned, timeout=10), 400, "BadRequest")
    assert "latest" in error["message"]
    assert error["target"] == "properties.virtualMachineProfile.storageProfile.imageReference.version"

    no_health = tracking_latest("invalid")
    del no_health["properties"]["virtualMachineProfile"]["extensionProfile"]
    error = assert_arm_error(arm.put(url, json=no_health, timeout=10), 400, "BadRequest")
    assert error["message"] == (
        "Automatic OS Upgrade is not supported for this Virtual Machine Scale Set because a health probe or "
        "health extension was not specified."
    )


def test_orchestration_service_state_suspends_and_resumes_repairs(
    server: Server, compute: ComputeManagementClient, resources: ResourceManagementClient, arm: requests.Session
) -> None:
    resources.resource_groups.create_or_update("aos-repairs", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    plain: Any = scale_set_body(capacity=1, mode="Manual")
    sets.begin_create_or_update("aos-repairs", "plain", plain).result()
    assert not sets.get_instance_view("aos-repairs", "plain").orchestration_services
    with pytest.raises(HttpResponseError) as refused:
        sets.begin_set_orchestration_service_state(
            "aos-repairs", "plain", {"serviceName": "AutomaticRepairs", "action": "Suspend"}
        ).result()
    assert refused.value.status_code == 409

    body: Any = scale_set_body(capacity=1, mode="Manual")
    body["properties"]["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT30M"}
    sets.begin_create_or_update("aos-repairs", "web", body).result()

    def state() -> str:
        [service] = sets.get_instance_view("aos-repairs", "web").orchestration_services
        assert service.service_name == "AutomaticRepairs"
        return str(getattr(service.service_state, "value", service.service_state))

    assert state() == "Running"
    sets.begin_set_orchestration_service_state(
        "aos-repairs", "web", {"serviceName": "AutomaticRepairs", "action": "Suspend"}
    ).result()
    assert state() == "Suspended"
    sets.begin_set_orchestration_service_state(
        "aos-repairs", "web", {"serviceName": "AutomaticRepairs", "action": "Resume"}
    ).result()
    assert state() == "Running"

    path = server.vmss_path("aos-repairs", "web") + "/setOrchestrationServiceState"
    bad = arm.post(server.url(path), json={"serviceName": "AutomaticRepairs", "action": "Pause"}, timeout=10)
    assert assert_arm_error(bad, 400, "InvalidParameter")["target"] == "action"
    missing = arm.post(server.url(path), json={"action": "Resume"}, timeout=10)
    assert assert_arm_error(missing, 400, "InvalidParameter")["target"] == "serviceName"

    body["properties"]["automaticRepairsPolicy"] = {"enabled": False}
    sets.begin_create_or_update("aos-repairs", "web", body).result()
    assert state() == "NotRunning"


def test_extension_upgrades_follow_published_versions(
    server: Server,
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    admin: requests.Session,
) -> None:
    resources.resource_groups.create_or_update("ext-upgrade", {"location": "westus"})
    agent = {
        "name": "agent",
        "properties": {
            "publisher": "ExtTest.Monitoring",
            "type": "Agent",
            "typeHandlerVersion": "1.0",
            "enableAutomaticUpgrade": True,
        },
    }
    body: Any = scale_set_body(capacity=2, mode="Manual")
    body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"].append(agent)
    sets = compute.virtual_machine_scale_sets
    sets.begin_create_or_update("ext-upgrade", "web", body).result()

    def agent_versions() -> list[str]:
        found = []
        for vm in compute.virtual_machine_scale_set_vms.list("ext-upgrade", "web", expand="instanceView"):
            [ext] = [e for e in vm.instance_view.extensions if e.name == "agent"]
            found.append(ext.type_handler_version)
        return found

    assert agent_versions() == ["1.0", "1.0"]
    url = f"{server.base}/_scaleset/extensions/ExtTest.Monitoring/Agent"
    answer = admin.put(f"{url}/1.1", json={"description": "fixes"}, timeout=10)
    assert answer.status_code == 201, answer.text
    rolling = compute.virtual_machine_scale_set_rolling_upgrades

    def completed() -> Any:
        try:
            latest = rolling.get_latest("ext-upgrade", "web")
        except ResourceNotFoundError:  # the publish woke the scale set; its pass has not run yet
            return None
        return latest if latest.running_status.code == "Completed" else None

    latest = wait_until(completed, what="the platform's extension upgrade")
    assert latest.progress.successful_instance_count == 2
    assert agent_versions() == ["1.1", "1.1"]

    # 1.2 published and the platform's upgrade started; a user-started one is refused while it runs, and works
    # after it (nothing left to do: it completes at once).
    assert admin.put(f"{url}/1.2", json={}, timeout=10).status_code == 201
    wait_until(lambda: agent_versions() == ["1.2", "1.2"] and completed(), what="the second extension upgrade")
    rolling.begin_start_extension_upgrade("ext-upgrade", "web").result()
    assert admin.put(f"{url}/2.0", json={}, timeout=10).status_code == 201  # a new major version: not rolled out
    rolling.begin_start_extension_upgrade("ext-upgrade", "web").result()
    assert agent_versions() == ["1.2", "1.2"]
    bad = admin.put(f"{url}/latest", json={}, timeout=10)
    assert_arm_error(bad, 400, "InvalidParameter")
