"""The official Azure SDK (azure-mgmt-compute), unchanged, against a live scaleset server."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import scale_set_body


def test_rolling_upgrade_through_the_sdk(compute: ComputeManagementClient, resources: ResourceManagementClient) -> None:
    resources.resource_groups.create_or_update("sdk-rolling", {"location": "westus"})
    created = compute.virtual_machine_scale_sets.begin_create_or_update(
        "sdk-rolling", "web", scale_set_body(capacity=5, rolling={"pauseTimeBetweenBatches": "PT30S"})
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert created.upgrade_policy.mode == "Rolling"
    vms = list(compute.virtual_machine_scale_set_vms.list("sdk-rolling", "web"))
    assert len(vms) == 5 and all(vm.latest_model_applied for vm in vms)

    poller = compute.virtual_machine_scale_sets.begin_update(
        "sdk-rolling",
        "web",
        {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "2.0.0"}}}}},
    )
    seen = set()
    deadline = time.monotonic() + 60
    while not poller.done() and time.monotonic() < deadline:
        status = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("sdk-rolling", "web")
        seen.add(status.running_status.code)
        time.sleep(0.05)
    assert poller.result().provisioning_state == "Succeeded"
    final = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("sdk-rolling", "web")
    assert "RollingForward" in seen
    assert final.running_status.code == "Completed"
    assert final.progress.successful_instance_count == 5 and final.progress.pending_instance_count == 0
    stale = list(
        compute.virtual_machine_scale_set_vms.list(
            "sdk-rolling", "web", filter="properties/latestModelApplied eq false"
        )
    )
    assert stale == []


def test_errors_map_to_sdk_exceptions(compute: ComputeManagementClient, resources: ResourceManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        compute.virtual_machine_scale_sets.get("no-such-group", "web")
    assert missing.value.error is not None and missing.value.error.code == "ResourceGroupNotFound"
    resources.resource_groups.create_or_update("sdk-errors", {"location": "westus"})
    with pytest.raises(ResourceNotFoundError) as gone:
        compute.virtual_machine_scale_sets.get("sdk-errors", "nope")
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"
    bad = scale_set_body(rolling={"maxBatchInstancePercent": 3})
    with pytest.raises(HttpResponseError) as invalid:
        compute.virtual_machine_scale_sets.begin_create_or_update("sdk-errors", "web", bad)
    assert invalid.value.status_code == 400 and invalid.value.error is not None
    assert invalid.value.error.code == "InvalidParameter"
