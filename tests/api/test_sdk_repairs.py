"""Automatic instance repairs through the official SDK, against the simulated server (time scale 600: the least
grace period, PT10M, passes in a second). An instance's application is made to answer its probes badly with the
health injection route; the repair service replaces it (or reimages it, keeping its id), never touches a protected
instance, and does nothing while suspended. What the engine decided is read from ``/_scaleset/events``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetVM, VirtualMachineScaleSetVMProtectionPolicy
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Server, scale_set_body, wait_until

NAME = "web"
CAPACITY = 3
GRACE = 600.0  # PT10M, in virtual seconds


# ---------------------------------------------------------------------- helpers


def repairing(
    compute: ComputeManagementClient, resources: ResourceManagementClient, group: str, action: str
) -> dict[str, Any]:
    """A Manual scale set of 3 with repairs enabled (``action``), once every instance is Healthy; its VMs by id."""
    resources.resource_groups.create_or_update(group, {"location": "westus"})
    body: Any = scale_set_body(capacity=CAPACITY, mode="Manual")
    body["properties"]["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT10M", "repairAction": action}
    result = compute.virtual_machine_scale_sets.begin_create_or_update(group, NAME, body).result(timeout=30)
    assert result.automatic_repairs_policy.enabled and result.automatic_repairs_policy.repair_action == action
    return dict(wait_until(lambda: healthy(compute, group), timeout=30, what=f"{group}: every instance Healthy"))


def vms(compute: ComputeManagementClient, group: str) -> dict[str, Any]:
    return {vm.instance_id: vm for vm in compute.virtual_machine_scale_set_vms.list(group, NAME, expand="instanceView")}


def health(vm: Any) -> str | None:
    view = vm.instance_view
    if view is None or view.vm_health is None or view.vm_health.status is None:
        return None
    return str(view.vm_health.status.code)


def healthy(compute: ComputeManagementClient, group: str) -> dict[str, Any] | None:
    """The VMs, once there are 3 and each is Succeeded and HealthState/healthy."""
    found = vms(compute, group)
    good = [v for v in found.values() if v.provisioning_state == "Succeeded" and health(v) == "HealthState/healthy"]
    return found if len(found) == CAPACITY and len(good) == CAPACITY else None


def inject(arm: requests.Session, server: Server, group: str, ids: list[str], answer: str) -> None:
    """From now on the instances' applications answer their probes with ``answer``."""
    path = f"/_scaleset/health/{server.subscription}/{group}/{NAME}"
    answer_ = arm.post(server.url(path, None), json={"instanceIds": ids, "answer": answer}, timeout=10)
    assert answer_.status_code == 200, answer_.text
    assert answer_.json() == {"instanceIds": ids, "answer": answer}


def events(arm: requests.Session, server: Server, group: str, kind: str, **match: str) -> list[dict[str, Any]]:
    """The scale set's events of ``kind`` whose fields equal ``match``, oldest first."""
    params = {"scaleSet": server.vmss_path(group, NAME)}
    answer = arm.get(server.url("/_scaleset/events", None), params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["value"]
    return [r for r in rows if r["kind"] == kind and all(r.get(key) == value for key, value in match.items())]


def one(arm: requests.Session, server: Server, group: str, kind: str, **match: str) -> dict[str, Any] | None:
    found = events(arm, server, group, kind, **match)
    assert len(found) <= 1, found
    return found[0] if found else None


def now(arm: requests.Session, server: Server) -> float:
    """The server's virtual clock, in epoch seconds."""
    answer = arm.get(server.url("/_scaleset/clock", None), timeout=10)
    assert answer.status_code == 200, answer.text
    return datetime.fromisoformat(answer.json()["now"]).timestamp()


def past_grace(arm: requests.Session, server: Server, since: float) -> None:
    """Wait until two grace periods have passed on the virtual clock since ``since`` (two seconds)."""
    wait_until(lambda: now(arm, server) > since + 2 * GRACE, timeout=10, what="two grace periods to pass")


def injected_at(arm: requests.Session, server: Server, group: str) -> float:
    return float(events(arm, server, group, "healthInjected")[-1]["time"])


def protect(compute: ComputeManagementClient, group: str, instance_id: str, *, actions: bool) -> None:
    """Protect an instance from scale-in, and from scale-set actions too when ``actions`` (a VM PUT)."""
    policy = VirtualMachineScaleSetVMProtectionPolicy(
        protect_from_scale_in=True, protect_from_scale_set_actions=actions
    )
    model = VirtualMachineScaleSetVM(location="westus", protection_policy=policy)
    result = compute.virtual_machine_scale_set_vms.begin_update(group, NAME, instance_id, model).result(timeout=30)
    assert result.protection_policy.protect_from_scale_in is True
    assert result.protection_policy.protect_from_scale_set_actions is actions


def service_state(compute: ComputeManagementClient, group: str) -> str:
    [service] = compute.virtual_machine_scale_sets.get_instance_view(group, NAME).orchestration_services
    assert service.service_name == "AutomaticRepairs"
    return str(getattr(service.service_state, "value", service.service_state))


# ---------------------------------------------------------------------- the tests


def test_unhealthy_instance_is_replaced_by_a_new_id(
    server: Server, compute: ComputeManagementClient, resources: ResourceManagementClient, arm: requests.Session
) -> None:
    group = "repair-replace"
    before = repairing(compute, resources, group, "Replace")
    assert sorted(before) == ["0", "1", "2"]
    assert service_state(compute, group) == "Running"
    inject(arm, server, group, ["1"], "unhealthy")

    started = wait_until(
        lambda: one(arm, server, group, "repairStarted", instanceId="1"), timeout=10, what="repairStarted"
    )
    assert started["reason"] == "Unhealthy" and started["action"] == "Replace", started
    assert started["time"] >= started["gracePeriodEndedAt"]
    new_id = started["newInstanceId"]
    assert new_id not in before

    after = wait_until(lambda: healthy(compute, group), timeout=10, what="the replacement to turn Healthy")
    assert sorted(after) == sorted(["0", "2", new_id])
    succeeded = wait_until(
        lambda: one(arm, server, group, "repairSucceeded", instanceId=new_id), timeout=10, what="repairSucceeded"
    )
    assert succeeded["originalInstanceId"] == "1" and succeeded["action"] == "Replace"
    assert compute.virtual_machine_scale_sets.get(group, NAME).sku.capacity == CAPACITY
    assert events(arm, server, group, "repairFailed") == []
    assert len(events(arm, server, group, "repairStarted")) == 1


def test_reimage_keeps_the_instance_id(
    server: Server, compute: ComputeManagementClient, resources: ResourceManagementClient, arm: requests.Session
) -> None:
    """Silence under rich health reads Unknown, which triggers a repair too; Reimage gives the same id a fresh OS
    disk (the injected silence goes with the old one)."""
    group = "repair-reimage"
    before = repairing(compute, resources, group, "Reimage")
    inject(arm, server, group, ["1"], "none")
    wait_until(lambda: health(vms(compute, group)["1"]) == "HealthState/unknown", timeout=10, what="instance 1 Unknown")

    started = wait_until(
        lambda: one(arm, server, group, "repairStarted", instanceId="1"), timeout=10, what="repairStarted"
    )
    assert started["reason"] == "Unknown" and started["action"] == "Reimage", started
    assert "newInstanceId" not in started
    succeeded = wait_until(
        lambda: one(arm, server, group, "repairSucceeded", instanceId="1"), timeout=10, what="repairSucceeded"
    )
    assert succeeded["originalInstanceId"] == "1" and succeeded["action"] == "Reimage"
    after = wait_until(lambda: healthy(compute, group), timeout=10, what="every instance Healthy")
    assert sorted(after) == sorted(before)  # the same ids
    assert events(arm, server, group, "repairFailed") == []


def test_protected_instances_are_never_repaired(
    server: Server, compute: ComputeManagementClient, resources: ResourceManagementClient, arm: requests.Session
) -> None:
    """Instance 0 protected from scale-in, instance 1 from scale-set actions too, instance 2 not at all: all three
    turn Unhealthy; only 2 is repaired, the others are logged as waiting (``protected``) and stay as they are."""
    group = "repair-protected"
    repairing(compute, resources, group, "Replace")
    protect(compute, group, "0", actions=False)
    protect(compute, group, "1", actions=True)
    inject(arm, server, group, ["0", "1", "2"], "unhealthy")

    for instance_id in ("0", "1"):
        wait_until(
            lambda i=instance_id: one(arm, server, group, "repairWaiting", instanceId=i, reason="protected"),
            timeout=10,
            what=f"instance {instance_id} logged as protected",
        )
    started = wait_until(
        lambda: one(arm, server, group, "repairStarted", instanceId="2"), timeout=10, what="instance 2 repaired"
    )
    wait_until(
        lambda: one(arm, server, group, "repairSucceeded", instanceId=started["newInstanceId"]),
        timeout=10,
        what="repairSucceeded",
    )
    past_grace(arm, server, injected_at(arm, server, group))

    assert [e["instanceId"] for e in events(arm, server, group, "repairStarted")] == ["2"]
    found = vms(compute, group)
    assert sorted(found) == sorted(["0", "1", started["newInstanceId"]])
    assert health(found["0"]) == health(found["1"]) == "HealthState/unhealthy"
    assert found["0"].protection_policy.protect_from_scale_set_actions is False
    assert found["1"].protection_policy.protect_from_scale_set_actions is True


def test_suspended_repairs_wait_for_resume(
    server: Server, compute: ComputeManagementClient, resources: ResourceManagementClient, arm: requests.Session
) -> None:
    group = "repair-suspend"
    sets = compute.virtual_machine_scale_sets
    repairing(compute, resources, group, "Replace")
    sets.begin_set_orchestration_service_state(
        group, NAME, {"serviceName": "AutomaticRepairs", "action": "Suspend"}
    ).result(timeout=30)
    assert service_state(compute, group) == "Suspended"
    suspended = one(arm, server, group, "repairsSuspended")
    assert suspended is not None and suspended["by"] == "User" and suspended["state"] == "Suspended"

    inject(arm, server, group, ["1"], "unhealthy")
    wait_until(
        lambda: health(vms(compute, group)["1"]) == "HealthState/unhealthy", timeout=10, what="instance 1 Unhealthy"
    )
    past_grace(arm, server, injected_at(arm, server, group))
    assert events(arm, server, group, "repairStarted") == []
    assert sorted(vms(compute, group)) == ["0", "1", "2"]
    assert service_state(compute, group) == "Suspended"

    sets.begin_set_orchestration_service_state(
        group, NAME, {"serviceName": "AutomaticRepairs", "action": "Resume"}
    ).result(timeout=30)
    assert service_state(compute, group) == "Running"
    resumed = one(arm, server, group, "repairsResumed")
    assert resumed is not None and resumed["state"] == "Running" and resumed["previousState"] == "Suspended"
    started = wait_until(
        lambda: one(arm, server, group, "repairStarted", instanceId="1"), timeout=10, what="the repair after Resume"
    )
    assert started["reason"] == "Unhealthy" and started["action"] == "Replace"
    assert started["seq"] > resumed["seq"]
    after = wait_until(lambda: healthy(compute, group), timeout=10, what="the replacement to turn Healthy")
    assert sorted(after) == sorted(["0", "2", started["newInstanceId"]])
    assert sets.get(group, NAME).sku.capacity == CAPACITY
