"""Merge rules: PUT and PATCH keep what the body leaves out, null keeps, arrays and tags replace whole,
read-only fields are ignored, and neither input is ever changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleset.domain.errors import DomainError
from scaleset.domain.merge import merge_patch, merge_put

STORED: dict[str, Any] = {
    "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web",
    "name": "web",
    "location": "eastus",
    "tags": {"team": "web", "tier": "front"},
    "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": 3},
    "zones": ["1", "2", "3"],
    "properties": {
        "provisioningState": "Succeeded",
        "uniqueId": "0b4f",
        "upgradePolicy": {
            "mode": "Rolling",
            "rollingUpgradePolicy": {"maxBatchInstancePercent": 50, "pauseTimeBetweenBatches": "PT10S"},
        },
        "automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT35M"},
        "virtualMachineProfile": {
            "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser"},
            "storageProfile": {
                "imageReference": {
                    "publisher": "Canonical",
                    "offer": "jammy",
                    "sku": "22_04",
                    "version": "latest",
                },
                "dataDisks": [{"lun": 0, "createOption": "Empty"}, {"lun": 1, "createOption": "Empty"}],
            },
            "extensionProfile": {
                "extensions": [{"name": "HealthExtension", "properties": {"settings": {"port": 80}}}],
            },
            "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic1"}, {"name": "nic2"}]},
        },
    },
}

MERGES = [pytest.param(merge_put, id="put"), pytest.param(merge_patch, id="patch")]


@pytest.mark.parametrize("merge", MERGES)
def test_only_mode_sent_keeps_the_rolling_policy_and_the_repairs_policy(merge: Any) -> None:
    merged = merge(STORED, {"properties": {"upgradePolicy": {"mode": "Manual"}}})
    assert merged["properties"]["upgradePolicy"] == {
        "mode": "Manual",
        "rollingUpgradePolicy": {"maxBatchInstancePercent": 50, "pauseTimeBetweenBatches": "PT10S"},
    }
    assert merged["properties"]["automaticRepairsPolicy"] == {"enabled": True, "gracePeriod": "PT35M"}


def test_scale_put_with_only_location_and_sku_keeps_the_model() -> None:
    merged = merge_put(STORED, {"location": "eastus", "sku": {"capacity": 5}})
    assert merged["sku"] == {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": 5}
    assert merged["properties"] == STORED["properties"]


@pytest.mark.parametrize("merge", MERGES)
def test_null_keeps_the_stored_value(merge: Any) -> None:
    merged = merge(
        STORED,
        {
            "properties": {
                "automaticRepairsPolicy": None,
                "virtualMachineProfile": {"storageProfile": {"imageReference": None, "dataDisks": None}},
                "upgradePolicy": {"rollingUpgradePolicy": {"maxBatchInstancePercent": None}},
            },
            "zones": None,
        },
    )
    assert merged == STORED


def test_null_on_create_means_the_default() -> None:
    body = {"location": "eastus", "zones": None, "properties": {"upgradePolicy": {"mode": None}}}
    merged = merge_put(None, body)
    assert merged == {"location": "eastus", "properties": {"upgradePolicy": {}}}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("zones",), ["1"]),
        (
            ("properties", "virtualMachineProfile", "storageProfile", "dataDisks"),
            [{"lun": 5, "createOption": "Empty"}],
        ),
        (("properties", "virtualMachineProfile", "extensionProfile", "extensions"), [{"name": "Other"}]),
        (("properties", "virtualMachineProfile", "networkProfile", "networkInterfaceConfigurations"), []),
        (("tags",), {"team": "api"}),
    ],
    ids=["zones", "dataDisks", "extensions", "networkInterfaceConfigurations", "tags"],
)
@pytest.mark.parametrize("merge", MERGES)
def test_arrays_and_tags_replace_whole(merge: Any, path: tuple[str, ...], value: object) -> None:
    body: dict[str, Any] = {}
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    merged = merge(STORED, body)
    for key in path:
        merged = merged[key]
    assert merged == value


def test_nulls_inside_a_replacing_array_mean_defaults() -> None:
    merged = merge_put(None, {"zones": ["1"], "tags": {"a": None, "b": "x"}, "extras": [{"k": None, "v": 1}]})
    assert merged == {"zones": ["1"], "tags": {"b": "x"}, "extras": [{"v": 1}]}


@pytest.mark.parametrize("merge", MERGES)
def test_read_only_fields_are_ignored(merge: Any) -> None:
    body = {
        "id": "/other",
        "name": "other",
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "etag": '"9"',
        "properties": {
            "provisioningState": "Failed",
            "uniqueId": "ffff",
            "timeCreated": "2020-01-01T00:00:00Z",
            "virtualMachineProfile": {"storageProfile": {"imageReference": {"exactVersion": "1.2.3"}}},
        },
    }
    assert merge(STORED, body) == STORED


def test_read_only_fields_are_dropped_on_create() -> None:
    merged = merge_put(None, {"id": "/x", "etag": "1", "location": "eastus", "properties": {"uniqueId": "u"}})
    assert merged == {"location": "eastus", "properties": {}}


def test_healthprobe_id_is_not_read_only() -> None:
    probe = {"healthProbe": {"id": "/lb/probes/p"}}
    merged = merge_patch(STORED, {"properties": {"virtualMachineProfile": {"networkProfile": probe}}})
    network = merged["properties"]["virtualMachineProfile"]["networkProfile"]
    assert network["healthProbe"] == {"id": "/lb/probes/p"}


def test_unknown_fields_merge_like_known_ones() -> None:
    stored = {"properties": {"additionalCapabilities": {"ultraSSDEnabled": True}}}
    merged = merge_patch(stored, {"properties": {"additionalCapabilities": {"hibernationEnabled": False}}})
    capabilities = merged["properties"]["additionalCapabilities"]
    assert capabilities == {"ultraSSDEnabled": True, "hibernationEnabled": False}


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"properties": 5}, "properties"),
        ({"sku": "Standard_D2s_v3"}, "sku"),
        ({"properties": {"upgradePolicy": "Rolling"}}, "properties.upgradePolicy"),
        (
            {"properties": {"upgradePolicy": {"rollingUpgradePolicy": []}}},
            "properties.upgradePolicy.rollingUpgradePolicy",
        ),
        ({"properties": {"automaticRepairsPolicy": True}}, "properties.automaticRepairsPolicy"),
        ({"tags": ["a"]}, "tags"),
    ],
    ids=["properties", "sku", "upgradePolicy", "rollingUpgradePolicy", "automaticRepairsPolicy", "tags"],
)
@pytest.mark.parametrize("existing", [STORED, None], ids=["update", "create"])
def test_a_non_object_where_an_object_belongs(body: dict[str, Any], target: str, existing: Any) -> None:
    with pytest.raises(DomainError) as caught:
        merge_put(existing, body)
    assert (caught.value.code, caught.value.target, caught.value.status) == ("InvalidParameter", target, 400)


def test_an_unknown_stored_object_cannot_become_a_scalar() -> None:
    with pytest.raises(DomainError) as caught:
        merge_patch({"properties": {"extra": {"a": 1}}}, {"properties": {"extra": 2}})
    assert caught.value.target == "properties.extra"


@pytest.mark.parametrize("body", [[], "x", 3, None], ids=["list", "string", "number", "null"])
def test_a_body_that_is_not_an_object(body: Any) -> None:
    with pytest.raises(DomainError) as caught:
        merge_patch(STORED, body)
    assert (caught.value.code, caught.value.target) == ("InvalidParameter", None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.sampled_from("abc"), json_values, max_size=3)


@settings(max_examples=200, deadline=None)
@given(existing=json_objects, body=json_objects)
def test_inputs_are_never_changed_nor_shared(existing: dict[str, Any], body: dict[str, Any]) -> None:
    before = (copy.deepcopy(existing), copy.deepcopy(body))
    try:
        merged = merge_patch(existing, body)
    except DomainError:
        assert (existing, body) == before
        return
    assert (existing, body) == before
    _scribble(merged)
    assert (existing, body) == before


def _scribble(value: object) -> None:
    """Change every container in ``value`` in place, to show it shares none with the inputs."""
    if isinstance(value, dict):
        for item in value.values():
            _scribble(item)
        value["scribbled"] = True
    elif isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append("scribbled")


@settings(max_examples=200, deadline=None)
@given(existing=json_objects, body=json_objects)
def test_merging_twice_changes_nothing_more(existing: dict[str, Any], body: dict[str, Any]) -> None:
    try:
        once = merge_patch(existing, body)
    except DomainError:
        return
    assert merge_patch(once, body) == once
