"""Automatic instance repairs of real processes: an instance's application is killed, its health probe notices, and
after the grace period the repair service replaces (or restarts) it; everything seen through the official SDK and
``/_scaleset/events``.

A VM whose application died is still a running VM whose health probe fails (provisioning Succeeded, power
running), so it is a repair candidate. The server runs with ``--repairs-grace`` (the rehearsal override of every
scale set's grace period), chosen from the probe's rhythm: the first probe is sent as the process is spawned and
finds nothing listening, the next one an interval (5 s, the least the extension allows) later, so an instance is
Healthy about 5 s after it starts, and its application, killed then, is found dead by the probe at about 10 s.
12 s of grace lets the test see it Unhealthy (or Unknown) before the repair starts, and gives a repaired instance
time to prove healthy (its own grace period). A grace under 5 s would judge every repair failed (and, under binary
health, repair each new instance again until the platform suspends repairs).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient
from tests.process.conftest import (
    Api,
    Rig,
    checked,
    health_extension,
    instance_home,
    rig_serving,
    scale_set,
    wait_for,
)

GROUP = "repairs"
CAPACITY = 3
GRACE = 12.0  # --repairs-grace, in seconds (see above)
VICTIM = "1"
APP = b"scaleset.demo.app"  # in the demo application's command line (and the guard shell's arguments)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with rig_serving(tmp_path_factory.mktemp("repairs-serve"), ("--repairs-grace", f"PT{GRACE:g}S")) as serving_rig:
        yield serving_rig


@pytest.fixture
def sdk(rig: Rig) -> Iterator[ComputeManagementClient]:
    yield from checked(rig)


# ---------------------------------------------------------------------- helpers


def binary_health() -> dict[str, Any]:
    """Binary Application Health (extension 1.0) on ``/health``: any answer but a 200, or none, is Unhealthy."""
    return {
        "name": "HealthExtension",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "ApplicationHealthLinux",
            "typeHandlerVersion": "1.0",
            "settings": {
                "protocol": "http",
                "port": 8080,
                "requestPath": "/health",
                "intervalInSeconds": 5,
                "numberOfProbes": 1,
            },
        },
    }


def repairing_set(action: str, extension: dict[str, Any]) -> dict[str, Any]:
    body = scale_set(capacity=CAPACITY, mode="Manual", extensions=[extension])
    # the server's --repairs-grace overrides this grace period (PT10M is Azure's least)
    body["properties"]["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT10M", "repairAction": action}
    return body


def code(value: Any) -> str:
    return str(getattr(value, "value", value))


def vms(compute: ComputeManagementClient, name: str) -> dict[str, Any]:
    """The scale set's VMs with their instance views, by instance id."""
    found = compute.virtual_machine_scale_set_vms.list(GROUP, name, expand="instanceView")
    return {vm.instance_id: vm for vm in found}


def health(vm: Any) -> str | None:
    view = vm.instance_view
    if view is None or view.vm_health is None or view.vm_health.status is None:
        return None
    return str(view.vm_health.status.code)


def power(vm: Any) -> str | None:
    statuses = vm.instance_view.statuses if vm.instance_view is not None else None
    return next((s.code for s in statuses or [] if s.code.startswith("PowerState/")), None)


def healthy(compute: ComputeManagementClient, name: str, count: int = CAPACITY) -> dict[str, Any] | None:
    """The VMs, once there are ``count``, each Succeeded, running and HealthState/healthy."""
    found = vms(compute, name)
    good = [
        vm
        for vm in found.values()
        if vm.provisioning_state == "Succeeded"
        and power(vm) == "PowerState/running"
        and health(vm) == "HealthState/healthy"
    ]
    return found if len(found) == count and len(good) == count else None


def app_pid(data_dir: Path, name: str, instance_id: str) -> int:
    """The pid of an instance's application: the member of its process group (the pid file names the group's
    leader, the guard shell) that runs the demo application."""
    pgid = int((instance_home(data_dir, name, instance_id) / "pid").read_text())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        member = int(entry.name) != pgid and fields[2] == str(pgid) and fields[0] not in ("Z", "X")
        if member and APP in cmdline:
            found.append(int(entry.name))
    assert len(found) == 1, (name, instance_id, pgid, found)
    return found[0]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def events(api: Api, name: str, kind: str, **match: str) -> list[dict[str, Any]]:
    """The events of ``kind`` whose fields equal ``match``, oldest first."""
    rows = api.events(GROUP, name)
    return [r for r in rows if r["kind"] == kind and all(r.get(key) == value for key, value in match.items())]


def event(api: Api, name: str, kind: str, **match: str) -> dict[str, Any] | None:
    """The first event of ``kind`` whose fields equal ``match``, or None."""
    return next(iter(events(api, name, kind, **match)), None)


def waited_for_grace(api: Api, name: str, started: dict[str, Any]) -> None:
    """The repair waited for its grace period: the victim's last ``repairWaiting`` (gracePeriod) before the repair
    names when the grace period ends, and the repair started then or later."""
    waits = [w for w in events(api, name, "repairWaiting", instanceId=VICTIM) if w["seq"] < started["seq"]]
    assert waits and waits[-1]["reason"] == "gracePeriod", waits
    assert started["time"] >= waits[-1]["until"] == started["gracePeriodEndedAt"], (waits[-1], started)


def starts(data_dir: Path, name: str, instance_id: str) -> int:
    """How many times the instance's application has started (the demo app's ``starts`` file)."""
    return len((instance_home(data_dir, name, instance_id) / "data" / "starts").read_text().splitlines())


def create(rig: Rig, compute: ComputeManagementClient, name: str, body: dict[str, Any]) -> dict[str, Any]:
    rig.api.group(GROUP)
    result = compute.virtual_machine_scale_sets.begin_create_or_update(GROUP, name, body).result(timeout=15)
    assert result.provisioning_state == "Succeeded"
    policy = result.automatic_repairs_policy
    assert policy.enabled and policy.grace_period == "PT10M"  # the override is the server's, never the model's
    return dict(wait_for(lambda: healthy(compute, name), timeout=15, what=f"{name}: every instance Healthy"))


# ---------------------------------------------------------------------- the tests


def test_dead_application_is_replaced(rig: Rig, sdk: ComputeManagementClient) -> None:
    """SIGKILL of one instance's application (not its guard shell): the VM stays provisioned and running, binary
    health reads Unhealthy, and once the grace period is over the instance is replaced by a new id that turns
    Healthy; the count stays 3 (the new VM is created as the old one is deleted) and the repair is logged as a
    success."""
    name = "replace"
    before = create(rig, sdk, name, repairing_set("Replace", binary_health()))
    assert sorted(before) == ["0", "1", "2"]
    pid = app_pid(rig.data_dir, name, VICTIM)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), timeout=2, what="the application to die")

    # The probe notices: still a running, provisioned VM, whose health is Unhealthy.
    def unhealthy() -> Any:
        view = sdk.virtual_machine_scale_set_vms.get_instance_view(GROUP, name, VICTIM)
        return view if view.vm_health is not None and view.vm_health.status.code == "HealthState/unhealthy" else None

    view = wait_for(unhealthy, timeout=7, what="the probe to find the instance Unhealthy")
    codes = [s.code for s in view.statuses]
    assert "ProvisioningState/succeeded" in codes and "PowerState/running" in codes, codes
    assert event(rig.api, name, "repairStarted") is None  # not yet: the grace period is not over

    started = wait_for(
        lambda: event(rig.api, name, "repairStarted", instanceId=VICTIM), timeout=GRACE + 7, what="repairStarted"
    )
    assert started["reason"] == "Unhealthy" and started["action"] == "Replace", started
    waited_for_grace(rig.api, name, started)
    new_id = started["newInstanceId"]
    assert new_id not in before

    counts: set[int] = set()  # the instances not being deleted, at every look while the replacement comes up

    def replaced() -> dict[str, Any] | None:
        found = vms(sdk, name)
        counts.add(sum(vm.provisioning_state != "Deleting" for vm in found.values()))
        return healthy(sdk, name)

    after = wait_for(replaced, timeout=GRACE + 5, what="the replacement to turn Healthy")
    assert sorted(after) == sorted(["0", "2", new_id])
    assert counts == {CAPACITY}, counts  # the new VM is created together with the old one's delete
    succeeded = wait_for(
        lambda: event(rig.api, name, "repairSucceeded", instanceId=new_id), timeout=GRACE, what="repairSucceeded"
    )
    assert succeeded["originalInstanceId"] == VICTIM and succeeded["action"] == "Replace"
    assert event(rig.api, name, "repairFailed") is None
    assert sdk.virtual_machine_scale_sets.get(GROUP, name).sku.capacity == CAPACITY
    assert not (instance_home(rig.data_dir, name, VICTIM)).exists()  # a replaced VM keeps no disk


def test_dead_instance_is_restarted(rig: Rig, sdk: ComputeManagementClient) -> None:
    """SIGKILL of one instance's whole process group, under rich health (no answer reads Unknown, a trigger under
    rich health): the repair restarts it, so the same id comes back Healthy with a new application process."""
    name = "restart"
    before = create(rig, sdk, name, repairing_set("Restart", health_extension()))
    old_pid = app_pid(rig.data_dir, name, VICTIM)
    assert starts(rig.data_dir, name, VICTIM) == 1
    pgid = int((instance_home(rig.data_dir, name, VICTIM) / "pid").read_text())
    os.killpg(pgid, signal.SIGKILL)
    wait_for(lambda: not alive(old_pid), timeout=2, what="the instance's processes to die")

    def unknown() -> Any:
        view = sdk.virtual_machine_scale_set_vms.get_instance_view(GROUP, name, VICTIM)
        return view if view.vm_health is not None and view.vm_health.status.code == "HealthState/unknown" else None

    view = wait_for(unknown, timeout=7, what="the probe to find the instance Unknown")
    codes = [s.code for s in view.statuses]
    assert "ProvisioningState/succeeded" in codes and "PowerState/running" in codes, codes
    assert event(rig.api, name, "repairStarted") is None  # not yet: the grace period is not over

    started = wait_for(
        lambda: event(rig.api, name, "repairStarted", instanceId=VICTIM), timeout=GRACE + 7, what="repairStarted"
    )
    assert started["reason"] == "Unknown" and started["action"] == "Restart", started
    assert "newInstanceId" not in started
    waited_for_grace(rig.api, name, started)
    succeeded = wait_for(
        lambda: event(rig.api, name, "repairSucceeded", instanceId=VICTIM), timeout=GRACE + 5, what="repairSucceeded"
    )
    assert succeeded["originalInstanceId"] == VICTIM and succeeded["action"] == "Restart"
    after = wait_for(lambda: healthy(sdk, name), timeout=2, what="every instance Healthy")
    assert sorted(after) == sorted(before)  # the same ids
    assert app_pid(rig.data_dir, name, VICTIM) != old_pid
    assert starts(rig.data_dir, name, VICTIM) == 2
    assert event(rig.api, name, "repairFailed") is None
