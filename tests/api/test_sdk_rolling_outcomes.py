"""Rolling upgrades through the official SDK: the happy path's counts, a bad image (fault injection) that faults
the rollout, a cancel mid-rollout, and the 409s of ``OperationNotAllowed``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceIDs
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Server, image_patch, scale_set_body, wait_until

MAX_UNHEALTHY_UPGRADED = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
STALE = "properties/latestModelApplied eq false"


@pytest.fixture
def faults(server: Server) -> Iterator[requests.Session]:
    """The fault admin routes, with a bearer token from the token endpoint; every fault is cleared afterwards."""
    admin = server.session()
    yield admin
    admin.delete(f"{server.base}/_scaleset/faults", timeout=10).raise_for_status()


def follow(compute: ComputeManagementClient, group: str, name: str, poller: Any, *, timeout: float = 30.0) -> list[Any]:
    """Every ``rollingUpgrades/latest`` seen while the PATCH poller runs (bounded)."""
    seen = []
    deadline = time.monotonic() + timeout
    while not poller.done():
        assert time.monotonic() < deadline, "the rollout did not finish in time"
        seen.append(compute.virtual_machine_scale_set_rolling_upgrades.get_latest(group, name))
        time.sleep(0.05)
    return seen


def test_rollout_goes_rolling_forward_then_completed_with_consistent_counts(
    compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    resources.resource_groups.create_or_update("roll-happy", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    rolling = {"maxBatchInstancePercent": 40, "pauseTimeBetweenBatches": "PT2M", "maxUnhealthyInstancePercent": 40}
    sets.begin_create_or_update("roll-happy", "web", scale_set_body(capacity=5, rolling=rolling)).result()

    poller = sets.begin_update("roll-happy", "web", image_patch("1.1.0"))
    assert sets.get("roll-happy", "web").provisioning_state == "Updating"  # the PATCH runs as long as the rollout
    seen = follow(compute, "roll-happy", "web", poller)
    assert poller.result().provisioning_state == "Succeeded"
    assert poller.status() == "Succeeded"

    forward = [s for s in seen if s.running_status.code == "RollingForward"]
    assert forward, "never saw the rollout rolling forward"
    successes = [s.progress.successful_instance_count for s in forward]
    assert successes == sorted(successes)
    for status in forward:
        progress = status.progress
        counted = (
            progress.successful_instance_count
            + progress.failed_instance_count
            + progress.in_progress_instance_count
            + progress.pending_instance_count
        )
        assert counted == 5 and progress.failed_instance_count == 0
        assert progress.in_progress_instance_count <= 2  # 40 % of 5
        assert status.running_status.last_action == "Start"
        assert status.policy.max_batch_instance_percent == 40
    assert any(s.progress.in_progress_instance_count > 0 for s in forward)

    final = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("roll-happy", "web")
    assert final.running_status.code == "Completed" and final.running_status.last_action == "Start"
    assert final.running_status.start_time <= final.running_status.last_action_time
    assert (
        final.progress.successful_instance_count,
        final.progress.failed_instance_count,
        final.progress.in_progress_instance_count,
        final.progress.pending_instance_count,
    ) == (5, 0, 0, 0)
    assert final.error is None
    vms = list(compute.virtual_machine_scale_set_vms.list("roll-happy", "web"))
    assert {vm.storage_profile.image_reference.exact_version for vm in vms} == {"1.1.0"}
    assert all(vm.latest_model_applied for vm in vms)


def test_a_bad_image_faults_the_rollout_and_the_patch_poller_raises_it(
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    server: Server,
    faults: requests.Session,
) -> None:
    resources.resource_groups.create_or_update("roll-bad", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    rolling = {"maxBatchInstancePercent": 20, "maxUnhealthyUpgradedInstancePercent": 20}
    sets.begin_create_or_update("roll-bad", "web", scale_set_body(capacity=5, rolling=rolling)).result()

    added = faults.post(
        f"{server.base}/_scaleset/faults", json={"kind": "never_healthy", "image_version": "2.0.0"}, timeout=10
    )
    assert added.status_code == 201, added.text
    listed = faults.get(f"{server.base}/_scaleset/faults", timeout=10).json()["value"]
    assert [(f["id"], f["kind"], f["image_version"]) for f in listed] == [
        (added.json()["id"], "never_healthy", "2.0.0")
    ]

    poller = sets.begin_update("roll-bad", "web", image_patch("2.0.0"))
    with pytest.raises(HttpResponseError) as failed:
        poller.result(timeout=30)
    assert failed.value.error is not None and failed.value.error.code == MAX_UNHEALTHY_UPGRADED
    assert "MaxUnhealthyUpgradedInstancePercent" in failed.value.error.message
    assert poller.status() == "Failed"

    latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("roll-bad", "web")
    assert latest.running_status.code == "Faulted"
    assert latest.error is not None and latest.error.code == MAX_UNHEALTHY_UPGRADED
    assert latest.progress.failed_instance_count >= 1
    assert latest.progress.successful_instance_count == 0
    stale = list(compute.virtual_machine_scale_set_vms.list("roll-bad", "web", filter=STALE))
    assert len(stale) >= 4  # the rollout stopped after its first batch

    cleared = faults.delete(f"{server.base}/_scaleset/faults", timeout=10)
    assert cleared.status_code == 200 and cleared.json() == {"removed": 1}
    assert faults.get(f"{server.base}/_scaleset/faults", timeout=10).json() == {"value": []}


def test_cancel_mid_rollout(compute: ComputeManagementClient, resources: ResourceManagementClient) -> None:
    resources.resource_groups.create_or_update("roll-cancel", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    upgrades = compute.virtual_machine_scale_set_rolling_upgrades
    rolling = {"maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT10M"}
    sets.begin_create_or_update("roll-cancel", "web", scale_set_body(capacity=5, rolling=rolling)).result()

    poller = sets.begin_update("roll-cancel", "web", image_patch("3.0.0"))
    wait_until(
        lambda: upgrades.get_latest("roll-cancel", "web").progress.successful_instance_count >= 1,
        what="the first batch to finish",
    )
    cancel = upgrades.begin_cancel("roll-cancel", "web")
    assert cancel.result(timeout=30) is None
    assert cancel.status() == "Succeeded"

    latest = upgrades.get_latest("roll-cancel", "web")
    assert latest.running_status.code == "Cancelled" and latest.running_status.last_action == "Cancel"
    assert latest.progress.in_progress_instance_count == 0
    assert 1 <= latest.progress.successful_instance_count < 5
    assert latest.progress.pending_instance_count == 5 - latest.progress.successful_instance_count

    # the model change's own operation ends Canceled; azure-core raises HttpResponseError for it
    with pytest.raises(HttpResponseError) as canceled:
        poller.result(timeout=30)
    assert poller.status() == "Canceled"
    assert canceled.value.error is not None and canceled.value.error.code == "RollingUpgradeCanceled"
    stale = list(compute.virtual_machine_scale_set_vms.list("roll-cancel", "web", filter=STALE))
    assert len(stale) == latest.progress.pending_instance_count

    with pytest.raises(ResourceExistsError) as nothing:  # cancelled already: nothing runs any more
        upgrades.begin_cancel("roll-cancel", "web")
    assert nothing.value.status_code == 409


def test_operation_not_allowed_is_409_resource_exists_error(
    compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    resources.resource_groups.create_or_update("roll-409", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    upgrades = compute.virtual_machine_scale_set_rolling_upgrades
    rolling = {"maxBatchInstancePercent": 20, "pauseTimeBetweenBatches": "PT10M"}
    sets.begin_create_or_update("roll-409", "web", scale_set_body(capacity=3, rolling=rolling)).result()

    with pytest.raises(ResourceExistsError) as idle:
        upgrades.begin_cancel("roll-409", "web")
    assert idle.value.status_code == 409
    assert idle.value.error is not None and idle.value.error.code == "OperationNotAllowed"
    assert idle.value.error.message == "There is no ongoing Rolling Upgrade to cancel."

    poller = sets.begin_update("roll-409", "web", image_patch("4.0.0"))
    wait_until(lambda: upgrades.get_latest("roll-409", "web").running_status.code == "RollingForward")
    with pytest.raises(ResourceExistsError) as busy:
        sets.begin_update("roll-409", "web", image_patch("4.1.0"))
    assert busy.value.status_code == 409
    assert busy.value.error is not None and busy.value.error.code == "OperationNotAllowed"
    with pytest.raises(ResourceExistsError) as manual:
        sets.begin_update_instances("roll-409", "web", VirtualMachineScaleSetVMInstanceIDs(instance_ids=["0"]))
    assert manual.value.error is not None and manual.value.error.code == "OperationNotAllowed"
    # a change that is not a model change (capacity only) is allowed while the rollout runs
    assert sets.begin_update("roll-409", "web", {"tags": {"note": "busy"}}).result().tags == {"note": "busy"}

    upgrades.begin_cancel("roll-409", "web").result(timeout=30)
    with pytest.raises(HttpResponseError):
        poller.result(timeout=30)
    assert sets.get("roll-409", "web").virtual_machine_profile.storage_profile.image_reference.version == "4.0.0"
