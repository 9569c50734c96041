"""Scale-in policy, instance protection and ``forceDeletion`` through the official SDK against a live server
(``--backend simulated``); every Microsoft.Compute answer is checked against the official specification by the
``official_schema`` fixture. docs/semantics.md, "Scale-in, protection and forceDeletion"."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceRequiredIDs
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Server, assert_arm_error, scale_set_body, wait_until

ZONES = ["1", "2", "3"]


def make_set(
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    group: str,
    *,
    capacity: int,
    scale_in: dict[str, Any] | None = None,
    zones: list[str] | None = None,
) -> tuple[str, str]:
    resources.resource_groups.create_or_update(group, {"location": "westus"})
    body: dict[str, Any] = scale_set_body(capacity=capacity, mode="Manual", zones=zones)
    if scale_in is not None:
        body["properties"]["scaleInPolicy"] = scale_in
    compute.virtual_machine_scale_sets.begin_create_or_update(group, "web", body).result(timeout=60)
    return group, "web"


def ids(compute: ComputeManagementClient, group: str, name: str) -> list[int]:
    return sorted(int(vm.instance_id) for vm in compute.virtual_machine_scale_set_vms.list(group, name))


def zones_of(compute: ComputeManagementClient, group: str, name: str) -> dict[int, str]:
    return {int(vm.instance_id): vm.zones[0] for vm in compute.virtual_machine_scale_set_vms.list(group, name)}


def protect(
    compute: ComputeManagementClient, group: str, name: str, instance: int, *, scale_in: bool, set_actions: bool
) -> None:
    policy = {"protectFromScaleIn": scale_in, "protectFromScaleSetActions": set_actions}
    compute.virtual_machine_scale_set_vms.begin_update(
        group, name, str(instance), {"location": "westus", "properties": {"protectionPolicy": policy}}
    ).result(timeout=60)


def events(arm: requests.Session, server: Server, group: str, kind: str) -> list[dict[str, Any]]:
    answer = arm.get(
        server.url("/_scaleset/events", None), params={"scaleSet": server.vmss_path(group, "web")}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return [row for row in answer.json()["value"] if row["kind"] == kind]


# ---------------------------------------------------------------------------------------------------- §5.5 rules


@pytest.mark.parametrize(
    ("rule", "kept"),
    [
        # Zones get 0, 3 / 1, 4 / 2, 5. Balanced 2/2/2: the highest id (5, zone 3); then zones 1 and 2 tie (their
        # fault domains too): the highest id of theirs, 4.
        pytest.param("Default", [0, 1, 2, 3], id="Default"),
        # NewestVM: the same here (zone balance, then the newest).
        pytest.param("NewestVM", [0, 1, 2, 3], id="NewestVM"),
        # OldestVM: the oldest overall (0, zone 1); then only zones 2 and 3 hold the most: their oldest, 1.
        pytest.param("OldestVM", [2, 3, 4, 5], id="OldestVM"),
    ],
)
def test_scale_in_follows_the_scale_in_policy(
    compute: ComputeManagementClient, resources: ResourceManagementClient, rule: str, kept: list[int]
) -> None:
    group, name = make_set(
        compute, resources, f"scalein-{rule.lower()}", capacity=6, scale_in={"rules": [rule]}, zones=ZONES
    )
    assert zones_of(compute, group, name) == {0: "1", 1: "2", 2: "3", 3: "1", 4: "2", 5: "3"}
    sets = compute.virtual_machine_scale_sets
    updated = sets.begin_update(group, name, {"sku": {"capacity": 4}}).result(timeout=60)
    assert updated.sku.capacity == 4
    assert updated.scale_in_policy.rules == [rule]
    assert ids(compute, group, name) == kept  # the PATCH operation waited for the deletes


def test_default_takes_the_highest_id_when_nothing_is_unbalanced(
    compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-flat", capacity=5)  # no policy: Default
    compute.virtual_machine_scale_sets.begin_update(group, name, {"sku": {"capacity": 2}}).result(timeout=60)
    assert ids(compute, group, name) == [0, 1]
    policy = compute.virtual_machine_scale_sets.get(group, name).scale_in_policy
    assert policy is None or policy.rules in (None, ["Default"])


# ---------------------------------------------------------------------------------------------------- §5.4


def test_scale_in_keeps_protected_instances_until_their_protection_is_lifted(
    compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-protected", capacity=5)
    protect(compute, group, name, 4, scale_in=True, set_actions=False)
    protect(compute, group, name, 3, scale_in=True, set_actions=True)
    sets = compute.virtual_machine_scale_sets
    assert sets.begin_update(group, name, {"sku": {"capacity": 1}}).result(timeout=60).sku.capacity == 1
    assert ids(compute, group, name) == [3, 4]  # both protected: the set stays above its capacity
    assert sets.get(group, name).sku.capacity == 1

    protect(compute, group, name, 4, scale_in=False, set_actions=False)
    wait_until(lambda: ids(compute, group, name) == [3], what="the unprotected instance to be scaled in")


def test_explicit_deletes_remove_protected_instances(
    compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-explicit", capacity=4)
    protect(compute, group, name, 1, scale_in=True, set_actions=True)
    protect(compute, group, name, 2, scale_in=True, set_actions=False)
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    sets.begin_delete_instances(group, name, VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=["1"])).result(
        timeout=60
    )
    vms.begin_delete(group, name, "2").result(timeout=60)
    assert ids(compute, group, name) == [0, 3]
    assert sets.get(group, name).sku.capacity == 2


def test_protect_from_scale_set_actions_alone_is_refused(
    server: Server, arm: requests.Session, compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-invalid", capacity=1)
    body = {"properties": {"protectionPolicy": {"protectFromScaleIn": False, "protectFromScaleSetActions": True}}}
    answer = arm.put(server.url(server.vmss_path(group, name) + "/virtualMachines/0"), json=body, timeout=10)
    error = assert_arm_error(answer, 400, "InvalidParameter")
    assert error["target"] == "properties.protectionPolicy.protectFromScaleIn"


# ---------------------------------------------------------------------------------------------------- forceDeletion


def test_delete_instances_and_a_vm_with_force_deletion(
    server: Server, arm: requests.Session, compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-force", capacity=5)
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    chosen = VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=["3", "4"])
    sets.begin_delete_instances(group, name, chosen, force_deletion=True).result(timeout=60)
    vms.begin_delete(group, name, "2", force_deletion=True).result(timeout=60)
    vms.begin_delete(group, name, "1", force_deletion=False).result(timeout=60)
    assert ids(compute, group, name) == [0]
    assert sets.get(group, name).sku.capacity == 1
    assert [(e["instanceIds"], e["forceDeletion"]) for e in events(arm, server, group, "deleteInstances")] == [
        (["3", "4"], True),
        (["2"], True),
        (["1"], False),
    ]


def test_scale_in_policy_force_deletion_forces_scale_in_deletes(
    server: Server, arm: requests.Session, compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-policy-force", capacity=3)
    sets = compute.virtual_machine_scale_sets
    update = {"sku": {"capacity": 1}, "properties": {"scaleInPolicy": {"rules": ["Default"], "forceDeletion": True}}}
    updated = sets.begin_update(group, name, update).result(timeout=60)
    assert updated.scale_in_policy.force_deletion is True
    assert ids(compute, group, name) == [0]
    (scale_in,) = events(arm, server, group, "scaleIn")
    assert (scale_in["instanceIds"], scale_in["forceDeletion"]) == (["2", "1"], True)


def test_delete_a_scale_set_with_force_deletion(
    server: Server, arm: requests.Session, compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    group, name = make_set(compute, resources, "scalein-delete-force", capacity=3)
    compute.virtual_machine_scale_sets.begin_delete(group, name, force_deletion=True).result(timeout=60)
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(group, name)
    (deleting,) = events(arm, server, group, "scaleSetDeleting")
    assert deleting["forceDeletion"] is True


@pytest.mark.parametrize(
    "spelling", [("TRUE", "scalein-upper"), ("False", "scalein-title"), ("true", "scalein-lower")], ids=str
)
def test_force_deletion_is_read_in_any_case(
    server: Server,
    arm: requests.Session,
    compute: ComputeManagementClient,
    resources: ResourceManagementClient,
    spelling: tuple[str, str],
) -> None:
    value, group = spelling
    group, name = make_set(compute, resources, group, capacity=2)
    answer = arm.delete(server.url(server.vmss_path(group, name) + "/virtualMachines/1") + f"&forceDeletion={value}")
    assert answer.status_code == 202, answer.text
    wait_until(lambda: ids(compute, group, name) == [0], what="the VM to go")
    (deleted,) = events(arm, server, group, "deleteInstances")
    assert deleted["forceDeletion"] is (value.lower() == "true")


@pytest.fixture(scope="module")
def two_instances(compute: ComputeManagementClient, resources: ResourceManagementClient) -> tuple[str, str]:
    return make_set(compute, resources, "scalein-bad-force", capacity=2)


@pytest.mark.parametrize(
    "request_",
    [(value, where) for value in ("yes", "1", "", "truee") for where in ("delete-instances", "vm", "set")],
    ids=lambda pair: f"{pair[1]}-{pair[0] or 'empty'}",
)
def test_a_force_deletion_that_is_not_a_boolean_is_refused(
    server: Server,
    arm: requests.Session,
    compute: ComputeManagementClient,
    two_instances: tuple[str, str],
    request_: tuple[str, str],
) -> None:
    value, where = request_
    group, name = two_instances
    path = server.vmss_path(group, name)
    query = f"&forceDeletion={value}"
    if where == "delete-instances":
        answer = arm.post(server.url(path + "/delete") + query, json={"instanceIds": ["0"]}, timeout=10)
    elif where == "vm":
        answer = arm.delete(server.url(path + "/virtualMachines/0") + query, timeout=10)
    else:
        answer = arm.delete(server.url(path) + query, timeout=10)
    error = assert_arm_error(answer, 400, "InvalidParameter")
    assert error["target"] == "forceDeletion"
    assert ids(compute, group, name) == [0, 1]  # nothing was deleted
