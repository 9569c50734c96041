"""Manual upgrade mode and the instance actions through the official SDK: drift, ``manualupgrade``, power and
reimage of the set and of one VM, instance views, SKUs, instance protection, and deleting instances."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetReimageParameters, VirtualMachineScaleSetVMInstanceIDs
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import image_patch, scale_set_body, wait_until

STALE = "properties/latestModelApplied eq false"
LATEST = "properties/latestModelApplied eq true"


def power_states(compute: ComputeManagementClient, group: str, name: str) -> dict[str, str]:
    """Instance id -> ``PowerState/...`` code, read from the VM list with ``$expand=instanceView``."""
    vms = compute.virtual_machine_scale_set_vms.list(group, name, expand="instanceView")
    return {vm.instance_id: vm.instance_view.statuses[1].code for vm in vms}


def chosen(*instance_ids: str) -> VirtualMachineScaleSetVMInstanceIDs:
    return VirtualMachineScaleSetVMInstanceIDs(instance_ids=list(instance_ids))


def ids(compute: ComputeManagementClient, group: str, name: str, query: str | None = None) -> list[str]:
    return sorted(vm.instance_id for vm in compute.virtual_machine_scale_set_vms.list(group, name, filter=query))


@pytest.fixture(scope="module")
def manual_set(compute: ComputeManagementClient, resources: ResourceManagementClient) -> tuple[str, str]:
    resources.resource_groups.create_or_update("manual", {"location": "westus"})
    compute.virtual_machine_scale_sets.begin_create_or_update(
        "manual", "web", scale_set_body(capacity=3, mode="Manual")
    ).result()
    return "manual", "web"


def test_model_change_leaves_instances_stale_until_update_instances(
    compute: ComputeManagementClient, manual_set: tuple[str, str]
) -> None:
    group, name = manual_set
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    assert ids(compute, group, name, LATEST) == ["0", "1", "2"]
    updated = sets.begin_update(group, name, image_patch("1.5.0")).result()
    assert updated.virtual_machine_profile.storage_profile.image_reference.version == "1.5.0"
    assert ids(compute, group, name, STALE) == ["0", "1", "2"]  # Manual: nothing moves by itself
    assert ids(compute, group, name, LATEST) == []
    assert vms.get(group, name, "0").storage_profile.image_reference.exact_version == "1.0.0"

    assert sets.begin_update_instances(group, name, chosen("0", "1")).result() is None
    assert ids(compute, group, name, STALE) == ["2"]
    upgraded = vms.get(group, name, "0")
    assert upgraded.latest_model_applied and upgraded.storage_profile.image_reference.exact_version == "1.5.0"
    assert sets.begin_update_instances(group, name, chosen("*")).result() is None
    assert ids(compute, group, name, STALE) == []


def test_instance_views_and_skus(compute: ComputeManagementClient, manual_set: tuple[str, str]) -> None:
    group, name = manual_set
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    healthy = wait_until(
        lambda: (
            (view := vms.get_instance_view(group, name, "1")).vm_health is not None
            and view.vm_health.status.code == "HealthState/healthy"
            and view
        ),
        what="instance 1 to report healthy",
    )
    assert healthy.statuses[0].code == "ProvisioningState/succeeded"
    assert healthy.statuses[1].code == "PowerState/running"
    assert healthy.computer_name and healthy.platform_fault_domain is not None

    expanded = vms.get(group, name, "1", expand="instanceView")
    assert expanded.instance_view is not None
    assert [s.code for s in expanded.instance_view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert vms.get(group, name, "1").instance_view is None  # only with $expand
    listed = list(vms.list(group, name, expand="instanceView"))
    assert all(vm.instance_view is not None and len(vm.instance_view.statuses) == 2 for vm in listed)

    set_view = sets.get_instance_view(group, name)
    assert set_view.statuses[0].code == "ProvisioningState/succeeded"
    summary = {s.code: s.count for s in set_view.virtual_machine.statuses_summary}
    assert sum(summary.values()) == len(listed)
    assert [e.name for e in set_view.extensions] == ["HealthExtension"]

    skus = list(sets.list_skus(group, name))
    assert {s.resource_type for s in skus} == {"Microsoft.Compute/virtualMachineScaleSets"}
    assert "Standard_D2s_v3" in {s.sku.name for s in skus}
    assert all(s.capacity.minimum == 0 and s.capacity.maximum >= 1 for s in skus)


def test_power_and_reimage_of_one_vm(compute: ComputeManagementClient, manual_set: tuple[str, str]) -> None:
    group, name = manual_set
    vms = compute.virtual_machine_scale_set_vms
    vms.begin_power_off(group, name, "2").result()
    assert power_states(compute, group, name)["2"] == "PowerState/stopped"
    vms.begin_start(group, name, "2").result()
    assert power_states(compute, group, name)["2"] == "PowerState/running"
    vms.begin_deallocate(group, name, "2").result()
    assert power_states(compute, group, name)["2"] == "PowerState/deallocated"
    vms.begin_start(group, name, "2").result()
    vms.begin_restart(group, name, "2").result()
    assert power_states(compute, group, name)["2"] == "PowerState/running"
    vms.begin_reimage(group, name, "2").result()
    view = vms.get_instance_view(group, name, "2")
    assert view.statuses[0].code == "ProvisioningState/succeeded" and view.statuses[1].code == "PowerState/running"
    vms.begin_reimage_all(group, name, "2").result()
    assert vms.get(group, name, "2").provisioning_state == "Succeeded"


def test_power_and_reimage_of_the_set(compute: ComputeManagementClient, manual_set: tuple[str, str]) -> None:
    group, name = manual_set
    sets = compute.virtual_machine_scale_sets
    sets.begin_power_off(group, name).result()  # no instance ids: every instance
    assert set(power_states(compute, group, name).values()) == {"PowerState/stopped"}
    sets.begin_start(group, name).result()
    assert set(power_states(compute, group, name).values()) == {"PowerState/running"}
    sets.begin_deallocate(group, name, chosen("0")).result()
    assert power_states(compute, group, name) == {
        "0": "PowerState/deallocated",
        "1": "PowerState/running",
        "2": "PowerState/running",
    }
    sets.begin_start(group, name, chosen("0")).result()
    sets.begin_restart(group, name).result()
    assert set(power_states(compute, group, name).values()) == {"PowerState/running"}

    sets.begin_update(group, name, image_patch("1.6.0")).result()
    assert ids(compute, group, name, STALE) == ["0", "1", "2"]
    sets.begin_reimage(group, name, VirtualMachineScaleSetReimageParameters(instance_ids=["1"])).result()
    assert compute.virtual_machine_scale_set_vms.get(group, name, "1").provisioning_state == "Succeeded"
    sets.begin_reimage_all(group, name).result()
    sets.begin_update_instances(group, name, chosen("*")).result()
    assert ids(compute, group, name, STALE) == []


def test_instance_protection(compute: ComputeManagementClient, manual_set: tuple[str, str]) -> None:
    group, name = manual_set
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    both = {"protectFromScaleIn": True, "protectFromScaleSetActions": True}
    protected = vms.begin_update(group, name, "0", {"location": "westus", "properties": {"protectionPolicy": both}})
    result = protected.result()
    assert result.protection_policy.protect_from_scale_in and result.protection_policy.protect_from_scale_set_actions
    assert vms.get(group, name, "0").protection_policy.protect_from_scale_set_actions is True

    with pytest.raises(HttpResponseError) as refused:
        vms.begin_update(
            group,
            name,
            "1",
            {
                "location": "westus",
                "properties": {"protectionPolicy": {"protectFromScaleIn": False, "protectFromScaleSetActions": True}},
            },
        )
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "InvalidParameter"
    assert vms.get(group, name, "1").protection_policy.protect_from_scale_set_actions is False

    # a scale-set action passes the protected instance by; the same action on the VM itself does not
    sets.begin_power_off(group, name).result()
    assert power_states(compute, group, name) == {
        "0": "PowerState/running",
        "1": "PowerState/stopped",
        "2": "PowerState/stopped",
    }
    vms.begin_power_off(group, name, "0").result()
    assert power_states(compute, group, name)["0"] == "PowerState/stopped"
    sets.begin_start(group, name, chosen("1", "2")).result()
    vms.begin_start(group, name, "0").result()
    assert set(power_states(compute, group, name).values()) == {"PowerState/running"}
    off = {"protectFromScaleIn": False, "protectFromScaleSetActions": False}
    vms.begin_update(group, name, "0", {"location": "westus", "properties": {"protectionPolicy": off}}).result()
    assert vms.get(group, name, "0").protection_policy.protect_from_scale_in is False


def test_delete_one_vm_and_delete_instances(compute: ComputeManagementClient, manual_set: tuple[str, str]) -> None:
    group, name = manual_set
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    sets.begin_update(group, name, {"sku": {"capacity": 5}}).result()
    assert ids(compute, group, name) == ["0", "1", "2", "3", "4"]

    poller = vms.begin_delete(group, name, "1")
    poller.result()
    assert poller.status() == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        vms.get(group, name, "1")
    assert sets.get(group, name).sku.capacity == 4
    assert ids(compute, group, name) == ["0", "2", "3", "4"]

    sets.begin_delete_instances(group, name, chosen("3", "4")).result()
    assert ids(compute, group, name) == ["0", "2"]
    assert sets.get(group, name).sku.capacity == 2
    with pytest.raises(ResourceNotFoundError) as unknown:
        sets.begin_delete_instances(group, name, chosen("3"))
    assert unknown.value.error is not None and unknown.value.error.code == "NotFound"
