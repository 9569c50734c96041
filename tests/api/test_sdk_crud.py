"""Scale set and resource group lifecycles through the official SDKs, unchanged, against a live server."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Server, scale_set_body

READ_ONLY = ("id", "name", "type", "etag")
READ_ONLY_PROPERTIES = ("provisioningState", "uniqueId", "timeCreated")


def without_read_only(body: dict[str, Any]) -> dict[str, Any]:
    """What ``az vmss scale`` / ``az vmss update --set`` PUT back: the GET result minus read-only fields."""
    out = {k: v for k, v in copy.deepcopy(body).items() if k not in READ_ONLY}
    for key in READ_ONLY_PROPERTIES:
        out["properties"].pop(key, None)
    return out


def test_resource_groups(resources: ResourceManagementClient) -> None:
    groups = resources.resource_groups
    created = groups.create_or_update("crud-groups", {"location": "West US", "tags": {"team": "web"}})
    assert created.name == "crud-groups" and created.location == "westus" and created.tags == {"team": "web"}
    assert created.id.endswith("/resourceGroups/crud-groups")
    assert groups.check_existence("crud-groups") is True
    assert groups.check_existence("crud-groups-missing") is False
    again = groups.create_or_update("CRUD-GROUPS", {"location": "westus"})  # names are case-insensitive
    assert again.name == "crud-groups" and again.tags is None
    assert groups.get("crud-groups").location == "westus"
    assert "crud-groups" in {g.name for g in groups.list()}
    with pytest.raises(ResourceNotFoundError) as missing:
        groups.get("crud-groups-missing")
    assert missing.value.error is not None and missing.value.error.code == "ResourceGroupNotFound"
    groups.begin_delete("crud-groups").result()
    assert groups.check_existence("crud-groups") is False
    assert "crud-groups" not in {g.name for g in groups.list()}


def test_scale_set_in_a_missing_group_is_resource_group_not_found(compute: ComputeManagementClient) -> None:
    sets = compute.virtual_machine_scale_sets
    for attempt in (
        lambda: sets.get("crud-nowhere", "web"),
        lambda: sets.begin_create_or_update("crud-nowhere", "web", scale_set_body()),
        lambda: list(sets.list("crud-nowhere")),
        lambda: sets.begin_update("crud-nowhere", "web", {"sku": {"capacity": 1}}),
    ):
        with pytest.raises(ResourceNotFoundError) as missing:
            attempt()
        assert missing.value.status_code == 404
        assert missing.value.error is not None and missing.value.error.code == "ResourceGroupNotFound"


def test_create_get_list_patch_put_delete(
    compute: ComputeManagementClient, resources: ResourceManagementClient, server: Server, arm: requests.Session
) -> None:
    resources.resource_groups.create_or_update("crud-sets", {"location": "westus"})
    resources.resource_groups.create_or_update("crud-other", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    body = scale_set_body(capacity=2, mode="Manual")
    body["tags"] = {"env": "test"}
    created = sets.begin_create_or_update("crud-sets", "web", body).result()
    assert created.provisioning_state == "Succeeded" and created.sku.capacity == 2
    assert created.upgrade_policy.mode == "Manual" and created.tags == {"env": "test"}
    assert (
        created.id == server.vmss_path("crud-sets", "web")
        and created.type == "Microsoft.Compute/virtualMachineScaleSets"
    )
    assert created.unique_id and created.time_created is not None
    sets.begin_create_or_update("crud-other", "api", scale_set_body(capacity=1, mode="Manual")).result()

    fetched = sets.get("crud-sets", "web")
    assert fetched.virtual_machine_profile.storage_profile.image_reference.version == "1.0.0"
    assert [e.name for e in fetched.virtual_machine_profile.extension_profile.extensions] == ["HealthExtension"]
    assert [s.name for s in sets.list("crud-sets")] == ["web"]
    mine = {("crud-sets", "web"), ("crud-other", "api")}
    assert mine <= {(s.id.split("/")[4], s.name) for s in sets.list_all()}
    assert mine <= {(s.id.split("/")[4], s.name) for s in sets.list_by_location("West US")}
    assert not mine & {(s.id.split("/")[4], s.name) for s in sets.list_by_location("eastus")}
    assert len(list(compute.virtual_machine_scale_set_vms.list("crud-sets", "web"))) == 2

    patched = sets.begin_update("crud-sets", "web", {"sku": {"capacity": 3}, "tags": {"env": "prod"}}).result()
    assert patched.sku.capacity == 3 and patched.tags == {"env": "prod"}
    assert patched.virtual_machine_profile.extension_profile.extensions[0].name == "HealthExtension"
    assert len(list(compute.virtual_machine_scale_set_vms.list("crud-sets", "web"))) == 3

    # az vmss scale: GET, then a full-object PUT of everything but the read-only fields; nothing else may change
    before = arm.get(server.url(server.vmss_path("crud-sets", "web"))).json()
    full = without_read_only(before)
    full["sku"]["capacity"] = 4
    scaled = sets.begin_create_or_update("crud-sets", "web", full).result()
    assert scaled.sku.capacity == 4
    after = arm.get(server.url(server.vmss_path("crud-sets", "web"))).json()
    expected = copy.deepcopy(before)
    expected["sku"]["capacity"] = 4
    for volatile in ("etag",):
        expected.pop(volatile), after.pop(volatile)
    assert after == expected
    assert len(list(compute.virtual_machine_scale_set_vms.list("crud-sets", "web"))) == 4

    # the SDK's own model object round-trips the same way (what newer az versions send)
    model = sets.get("crud-sets", "web")
    model.sku.capacity = 2
    assert sets.begin_create_or_update("crud-sets", "web", model).result().sku.capacity == 2
    assert sets.get("crud-sets", "web").tags == {"env": "prod"}

    poller = sets.begin_delete("crud-sets", "web")
    poller.result()
    assert poller.status() == "Succeeded"
    with pytest.raises(ResourceNotFoundError) as gone:
        sets.get("crud-sets", "web")
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"
    assert list(sets.list("crud-sets")) == []
    sets.begin_delete("crud-sets", "web").result()  # deleting what is not there is not an error (204)
    resources.resource_groups.begin_delete("crud-other").result()
    with pytest.raises(ResourceNotFoundError):
        sets.get("crud-other", "api")


def test_conditional_writes_with_etags(compute: ComputeManagementClient, resources: ResourceManagementClient) -> None:
    resources.resource_groups.create_or_update("crud-etag", {"location": "westus"})
    sets = compute.virtual_machine_scale_sets
    body = scale_set_body(capacity=1, mode="Manual")
    with pytest.raises(ResourceNotFoundError):  # If-Match: * on nothing
        sets.begin_create_or_update("crud-etag", "web", body, match_condition=MatchConditions.IfPresent)
    sets.begin_create_or_update("crud-etag", "web", body, match_condition=MatchConditions.IfMissing).result()
    with pytest.raises(ResourceExistsError) as exists:  # If-None-Match: * on a scale set that is there
        sets.begin_create_or_update("crud-etag", "web", body, match_condition=MatchConditions.IfMissing)
    assert exists.value.status_code == 412

    etag = sets.get("crud-etag", "web").etag
    assert etag
    sets.begin_update(
        "crud-etag", "web", {"tags": {"v": "1"}}, etag=etag, match_condition=MatchConditions.IfNotModified
    ).result()
    with pytest.raises(ResourceModifiedError) as stale:  # the etag changed with the write just made
        sets.begin_update(
            "crud-etag", "web", {"tags": {"v": "2"}}, etag=etag, match_condition=MatchConditions.IfNotModified
        )
    assert stale.value.status_code == 412
    assert stale.value.error is not None and stale.value.error.code == "PreconditionFailed"
    assert sets.get("crud-etag", "web").tags == {"v": "1"}


def test_deleting_a_group_deletes_its_scale_sets_first(
    compute: ComputeManagementClient, resources: ResourceManagementClient, server: Server, arm: requests.Session
) -> None:
    groups, sets = resources.resource_groups, compute.virtual_machine_scale_sets
    groups.create_or_update("crud-rg-delete", {"location": "westus"})
    sets.begin_create_or_update("crud-rg-delete", "web", scale_set_body(capacity=3, mode="Manual")).result()

    deleting = arm.delete(server.url(server.group_path("crud-rg-delete")), timeout=10)
    assert deleting.status_code == 202 and deleting.content == b""
    assert deleting.headers["Location"].startswith(f"{server.base}/subscriptions/{server.subscription}/")
    assert int(deleting.headers["retry-after-ms"]) > 0
    deadline = time.monotonic() + 30
    while (result := arm.get(deleting.headers["Location"], timeout=10)).status_code == 202:
        assert time.monotonic() < deadline, "the group deletion did not finish"
        group = arm.get(server.url(server.group_path("crud-rg-delete")), timeout=10)  # gone or still Deleting
        assert group.status_code == 404 or group.json()["properties"]["provisioningState"] == "Deleting"
        again = arm.put(server.url(server.group_path("crud-rg-delete")), json={"location": "westus"}, timeout=10)
        assert again.status_code in (201, 409)
        if again.status_code == 201:
            break
        assert again.json()["error"]["code"] == "ResourceGroupBeingDeleted"
        time.sleep(0.05)
    else:
        assert result.status_code == 200
    assert arm.get(server.url(server.vmss_path("crud-rg-delete", "web")), timeout=10).status_code == 404

    # through the SDK: the poller ends when the group and everything in it are gone; the name is free at once
    groups.create_or_update("crud-rg-delete", {"location": "westus"})
    sets.begin_create_or_update("crud-rg-delete", "web", scale_set_body(capacity=2, mode="Manual")).result()
    groups.begin_delete("crud-rg-delete").result()
    assert groups.check_existence("crud-rg-delete") is False
    groups.create_or_update("crud-rg-delete", {"location": "westus"})
    recreated = sets.begin_create_or_update("crud-rg-delete", "web", scale_set_body(capacity=1, mode="Manual"))
    assert recreated.result().sku.capacity == 1
    assert len(list(compute.virtual_machine_scale_set_vms.list("crud-rg-delete", "web"))) == 1
