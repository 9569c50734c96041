"""Automatic OS image upgrades of real processes: a publish to the image catalogue makes the platform roll the new
version through a scale set tracking ``latest`` (Manual mode), one instance a batch (Azure's default 20% of 3),
under loopback traffic through the scale set's load balancer; a version that never turns Healthy faults the
upgrade after its first batch and the failed instance gets its previous image back, as a new, Healthy process.
Everything is seen through the official SDK, the load balancer and the instances' own files.

The server runs with ``--health-wait PT10S``: an upgraded instance turns Healthy about 5 s after it starts (its
second probe), so a healthy release passes with room to spare and a broken one is judged failed 10 s after its
batch started. The two tests share one scale set and run in order: the second starts where the first ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient
from tests.process.conftest import (
    Api,
    Load,
    Rig,
    checked,
    demo_command,
    get,
    health_extension,
    instance_home,
    rig_serving,
    wait_for,
)

GROUP = "osupgrades"
NAME = "web"
CAPACITY = 3
HEALTH_WAIT = 10.0  # --health-wait, in seconds
IMAGE = {"publisher": "osupgrade", "offer": "process", "sku": "app"}
MAX_UNHEALTHY_UPGRADED = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
IDS = [str(i) for i in range(CAPACITY)]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with rig_serving(
        tmp_path_factory.mktemp("os-upgrade-serve"), ("--health-wait", f"PT{HEALTH_WAIT:g}S")
    ) as serving_rig:
        yield serving_rig


@pytest.fixture
def sdk(rig: Rig) -> Iterator[ComputeManagementClient]:
    yield from checked(rig)


# ---------------------------------------------------------------------- helpers


def publish(api: Api, version: str, *flags: str) -> dict[str, Any]:
    where = "/_scaleset/images/{publisher}/{offer}/{sku}/".format(**IMAGE) + version
    body = {"command": demo_command(*flags), "env": {"PYTHONUNBUFFERED": "1"}}
    return dict(api.ok("PUT", where, body, api=None))


def tracking_latest() -> dict[str, Any]:
    return {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": CAPACITY},
        "properties": {
            "upgradePolicy": {"mode": "Manual", "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True}},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "osup", "adminUsername": "azureuser"},
                "storageProfile": {"imageReference": {**IMAGE, "version": "latest"}},
                "extensionProfile": {"extensions": [health_extension()]},
            },
        },
    }


def health(vm: Any) -> str | None:
    view = vm.instance_view
    if view is None or view.vm_health is None or view.vm_health.status is None:
        return None
    return str(view.vm_health.status.code)


def power(vm: Any) -> str | None:
    statuses = vm.instance_view.statuses if vm.instance_view is not None else None
    return next((s.code for s in statuses or [] if s.code.startswith("PowerState/")), None)


def vms(compute: ComputeManagementClient) -> dict[str, Any]:
    return {
        str(vm.instance_id): vm for vm in compute.virtual_machine_scale_set_vms.list(GROUP, NAME, expand="instanceView")
    }


def images(compute: ComputeManagementClient) -> dict[str, str]:
    return {i: vm.storage_profile.image_reference.exact_version for i, vm in vms(compute).items()}


def healthy_on(compute: ComputeManagementClient, version: str) -> dict[str, Any] | None:
    """The VMs, once there are three, each Succeeded, running, Healthy and on ``version``."""
    found = vms(compute)
    good = [
        vm
        for vm in found.values()
        if vm.provisioning_state == "Succeeded"
        and power(vm) == "PowerState/running"
        and health(vm) == "HealthState/healthy"
        and vm.storage_profile.image_reference.exact_version == version
    ]
    return found if sorted(found) == IDS and len(good) == CAPACITY else None


def history(compute: ComputeManagementClient) -> list[Any]:
    return list(compute.virtual_machine_scale_sets.get_os_upgrade_history(GROUP, NAME))


def settled(compute: ComputeManagementClient, count: int, *, timeout: float) -> list[Any]:
    """The history once it holds ``count`` upgrades and the newest one has ended."""

    def done() -> list[Any] | None:
        entries = history(compute)
        if len(entries) == count and entries[0].properties.running_status.code != "RollingForward":
            return entries
        return None

    return list(wait_for(done, timeout=timeout, what=f"{count} finished OS upgrade(s)"))


def ready(api: Api) -> int:
    """Every instance in the load balancer's pool; its port."""
    wait_for(lambda: len(api.balancer(GROUP, NAME)["pool"]) == CAPACITY, timeout=3, what="every instance in the pool")
    return int(api.balancer(GROUP, NAME)["port"])


def answers(port: int) -> dict[str, dict[str, Any]]:
    """What each instance answers on ``GET /`` through the load balancer (round robin: twice around the pool)."""
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(2 * CAPACITY):
        status, body = get(port)
        assert status == 200, body
        answer = json.loads(body)
        seen[str(answer["instanceId"])] = answer
    assert sorted(seen) == IDS, seen
    return seen


def starts(data_dir: Path, instance_id: str) -> list[str]:
    """The image versions an instance's application started as, in order (the demo app's ``starts`` file, kept in
    the data dir across every reimage)."""
    lines = (instance_home(data_dir, NAME, instance_id) / "data" / "starts").read_text().splitlines()
    return [line.split()[1] for line in lines]


# ---------------------------------------------------------------------- the tests


def test_a_publish_upgrades_every_instance_under_load(rig: Rig, sdk: ComputeManagementClient) -> None:
    """1.0.0 is published and the set created on ``latest``; publishing 1.1.0 starts a Platform upgrade by itself,
    one instance a batch, each instance's application replaced by a new process of 1.1.0, under 40 requests a
    second through the load balancer."""
    api = rig.api
    api.group(GROUP)
    publish(api, "1.0.0")
    result = sdk.virtual_machine_scale_sets.begin_create_or_update(GROUP, NAME, tracking_latest()).result(timeout=15)
    assert result.provisioning_state == "Succeeded"
    assert result.virtual_machine_profile.storage_profile.image_reference.version == "latest"
    wait_for(lambda: healthy_on(sdk, "1.0.0"), timeout=15, what="every instance Healthy on 1.0.0")
    assert history(sdk) == []
    port = ready(api)
    before = answers(port)
    assert {a["version"] for a in before.values()} == {"1.0.0"}

    with Load(port, rps=40) as load:
        published = publish(api, "1.1.0")
        assert [s.lower() for s in published["automaticOSUpgrades"]] == [api.path(GROUP, NAME).lower()]
        [upgrade] = settled(sdk, 1, timeout=40)
        wait_for(lambda: len(api.balancer(GROUP, NAME)["pool"]) == CAPACITY, timeout=3, what="all in the pool")
    print(f"load during the 1.0.0 -> 1.1.0 upgrade: {load.summary()}")

    props = upgrade.properties
    assert props.started_by == "Platform"
    assert props.running_status.code == "Completed", props.error
    assert props.target_image_reference.exact_version == "1.1.0"
    assert props.target_image_reference.version == "latest"
    assert props.progress.successful_instance_count == CAPACITY
    assert props.progress.failed_instance_count == 0
    assert props.running_status.end_time >= props.running_status.start_time

    after = wait_for(lambda: healthy_on(sdk, "1.1.0"), timeout=5, what="every instance Healthy on 1.1.0")
    assert {i: vm.storage_profile.image_reference.exact_version for i, vm in after.items()} == dict.fromkeys(
        IDS, "1.1.0"
    )
    now = answers(port)
    for instance_id in IDS:
        assert now[instance_id]["version"] == "1.1.0"
        assert now[instance_id]["pid"] != before[instance_id]["pid"], instance_id  # a new process
        assert starts(rig.data_dir, instance_id) == ["1.0.0", "1.1.0"], instance_id

    assert load.sent >= 200, load.summary()
    assert load.failures == [], load.summary()  # each instance leaves the pool (drained) before it is stopped
    assert load.versions["1.0.0"] > 0 and load.versions["1.1.0"] > 0, load.summary()
    stats = api.balancer(GROUP, NAME)["stats"]
    assert stats["refusedEmptyPool"] == 0, stats


def test_a_never_healthy_version_faults_and_rolls_back(rig: Rig, sdk: ComputeManagementClient) -> None:
    """1.2.0 never turns Healthy: the first batch's instance fails after the health wait, the upgrade faults with
    Azure's code, and that instance gets 1.1.0 back as a new process that turns Healthy; the others never leave
    1.1.0, and the broken version never answers a request through the load balancer."""
    api = rig.api
    wait_for(lambda: healthy_on(sdk, "1.1.0"), timeout=5, what="every instance Healthy on 1.1.0 (the first test)")
    port = ready(api)
    before = answers(port)

    with Load(port, rps=40) as load:
        publish(api, "1.2.0", "--mode", "never")
        newest, older = settled(sdk, 2, timeout=HEALTH_WAIT + 20)
        props = newest.properties
        assert props.started_by == "Platform"
        assert props.target_image_reference.exact_version == "1.2.0"
        assert props.running_status.code == "Faulted", props
        assert props.error.code == MAX_UNHEALTHY_UPGRADED, props.error
        assert props.progress.failed_instance_count == 1  # one instance a batch: the first batch breaches 20%
        assert props.progress.successful_instance_count == 0
        assert older.properties.target_image_reference.exact_version == "1.1.0"

        events = api.events(GROUP, NAME)
        failed_batches = [e for e in events if e["kind"] == "batchCompleted" and e["passed"] is False]
        assert len(failed_batches) == 1, failed_batches
        [failed] = failed_batches[0]["failedIds"]
        failed = str(failed)

        def rolled_back() -> Any:
            entry = history(sdk)[0]
            info = entry.properties.rollback_info
            return entry if info is not None and info.successfully_rolledback_instance_count == 1 else None

        entry = wait_for(rolled_back, timeout=HEALTH_WAIT + 5, what="the failed instance's rollback")
        assert entry.properties.rollback_info.failed_rolledback_instance_count == 0
        after = wait_for(lambda: healthy_on(sdk, "1.1.0"), timeout=5, what="every instance Healthy on 1.1.0 again")
        wait_for(lambda: len(api.balancer(GROUP, NAME)["pool"]) == CAPACITY, timeout=3, what="all in the pool")
    print(f"load during the 1.1.0 -> 1.2.0 upgrade and rollback: {load.summary()}")

    assert {i: vm.storage_profile.image_reference.exact_version for i, vm in after.items()} == dict.fromkeys(
        IDS, "1.1.0"
    )
    assert starts(rig.data_dir, failed) == ["1.0.0", "1.1.0", "1.2.0", "1.1.0"]
    for instance_id in set(IDS) - {failed}:
        assert starts(rig.data_dir, instance_id) == ["1.0.0", "1.1.0"], instance_id
    now = answers(port)
    assert {a["version"] for a in now.values()} == {"1.1.0"}
    assert now[failed]["pid"] != before[failed]["pid"]  # the rolled-back instance runs a new 1.1.0 process
    for instance_id in set(IDS) - {failed}:
        assert now[instance_id]["pid"] == before[instance_id]["pid"], instance_id  # untouched

    assert load.sent >= 200, load.summary()
    assert load.failures == [], load.summary()  # 1.2.0 never joins the pool
    assert set(load.versions) == {"1.1.0"}, load.summary()
