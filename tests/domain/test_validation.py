"""Validation: one table of rejected requests (code, target, status, and Azure's text where it is known),
the requests that must pass, instance-id lists, protection flags, and a property: nothing but a DomainError
ever escapes, whatever JSON lands in the model."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scaleset.domain.errors import DomainError
from scaleset.domain.merge import merge_put
from scaleset.domain.resources import UpgradeMode, VirtualMachineScaleSet
from scaleset.domain.validation import (
    parse_scale_set,
    validate_instance_ids,
    validate_protection_policy,
    validate_scale_set,
)

DROP = object()
"""An edit value that removes the key."""
TOKEN = re.compile(r"[^.\[\]]+|\[\d+\]")
Edits = dict[str, object]

PROFILE = "properties.virtualMachineProfile"
EXT = f"{PROFILE}.extensionProfile.extensions"
HEALTH = f"{EXT}[0].properties.settings"
ROLLING = "properties.upgradePolicy.rollingUpgradePolicy"

HEALTH_EXTENSION: dict[str, Any] = {
    "name": "HealthExtension",
    "properties": {
        "publisher": "Microsoft.ManagedServices",
        "type": "ApplicationHealthLinux",
        "typeHandlerVersion": "2.0",
        "settings": {
            "protocol": "http",
            "port": 80,
            "requestPath": "/health",
            "intervalInSeconds": 5,
            "numberOfProbes": 1,
            "gracePeriod": 600,
        },
    },
}
SCRIPT_EXTENSION: dict[str, Any] = {
    "name": "CustomScript",
    "properties": {
        "publisher": "Microsoft.Azure.Extensions",
        "type": "CustomScript",
        "typeHandlerVersion": "2.1",
    },
}


def base() -> dict[str, Any]:
    """A valid zonal Rolling scale set with the health extension and automatic repairs."""
    return {
        "location": "eastus",
        "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": 3},
        "zones": ["1", "2", "3"],
        "properties": {
            "upgradePolicy": {
                "mode": "Rolling",
                "rollingUpgradePolicy": {
                    "maxBatchInstancePercent": 20,
                    "maxUnhealthyInstancePercent": 20,
                    "maxUnhealthyUpgradedInstancePercent": 20,
                    "pauseTimeBetweenBatches": "PT0S",
                },
            },
            "automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT30M"},
            "singlePlacementGroup": False,
            "platformFaultDomainCount": 1,
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser"},
                "storageProfile": {
                    "imageReference": {
                        "publisher": "Canonical",
                        "offer": "0001-com-ubuntu-server-jammy",
                        "sku": "22_04-lts-gen2",
                        "version": "latest",
                    },
                    "osDisk": {
                        "createOption": "FromImage",
                        "managedDisk": {"storageAccountType": "Premium_LRS"},
                    },
                    "dataDisks": [{"lun": 0, "createOption": "Empty", "diskSizeGB": 128}],
                },
                "extensionProfile": {
                    "extensions": [copy.deepcopy(HEALTH_EXTENSION), copy.deepcopy(SCRIPT_EXTENSION)],
                    "extensionsTimeBudget": "PT1H30M",
                },
            },
        },
    }


def edited(edits: Edits) -> dict[str, Any]:
    """``base()`` with each dotted path (``a.b[0].c``) set to its value, or removed for ``DROP``."""
    body = base()
    for path, value in edits.items():
        tokens = [int(token[1:-1]) if token.startswith("[") else token for token in TOKEN.findall(path)]
        node: Any = body
        for token in tokens[:-1]:
            node = node.setdefault(token, {}) if isinstance(token, str) else node[token]
        if value is DROP:
            del node[tokens[-1]]
        else:
            node[tokens[-1]] = copy.deepcopy(value)
    return body


def check(new: dict[str, Any], old: dict[str, Any] | None = None) -> VirtualMachineScaleSet:
    model = parse_scale_set(new)
    validate_scale_set(model, old=parse_scale_set(old) if old is not None else None)
    return model


@dataclass(frozen=True)
class Bad:
    id: str
    edits: Edits
    code: str
    target: str | None
    message: str | None = None
    status: int = 400
    old: Edits | None = field(default=None)
    """Edits of ``base()`` that make the stored model; None means the request creates the scale set."""


NO_HEALTH: Edits = {EXT: [SCRIPT_EXTENSION]}
MANUAL_NO_HEALTH: Edits = {
    **NO_HEALTH,
    "properties.upgradePolicy.mode": "Manual",
    "properties.automaticRepairsPolicy": DROP,
}
IP = "InvalidParameter"
BATCH = f"{ROLLING}.maxBatchInstancePercent"
UP_TO_1000 = "The value must be between 0 and 1000, inclusive."

BAD = [
    # shapes, caught while parsing
    Bad(
        "mode-unknown",
        {"properties.upgradePolicy.mode": "Sometimes"},
        IP,
        "properties.upgradePolicy.mode",
        "The value 'Sometimes' of parameter 'properties.upgradePolicy.mode' is not valid. "
        "Allowed values: Manual, Automatic, Rolling.",
    ),
    Bad(
        "batch-percent-not-a-number",
        {BATCH: "lots"},
        IP,
        BATCH,
        f"The value 'lots' of parameter '{BATCH}' is not valid. Expected an integer.",
    ),
    Bad("capacity-fractional", {"sku.capacity": 2.5}, IP, "sku.capacity"),
    Bad("extension-name-not-a-string", {f"{EXT}[1].name": 5}, IP, f"{EXT}[1].name"),
    Bad(
        "data-disk-without-lun",
        {f"{PROFILE}.storageProfile.dataDisks": [{"createOption": "Empty"}]},
        IP,
        f"{PROFILE}.storageProfile.dataDisks[0].lun",
        f"Required parameter '{PROFILE}.storageProfile.dataDisks[0].lun' is missing (null).",
    ),
    Bad("properties-not-an-object", {"properties": 5}, IP, "properties"),
    Bad(
        "upgrade-policy-not-an-object",
        {"properties.upgradePolicy": "Rolling"},
        IP,
        "properties.upgradePolicy",
    ),
    Bad("zones-not-an-array", {"zones": "1"}, IP, "zones"),
    Bad(
        "scale-in-rule-unknown",
        {"properties.scaleInPolicy": {"rules": ["Random"]}},
        IP,
        "properties.scaleInPolicy.rules[0]",
        "The value 'Random' of parameter 'properties.scaleInPolicy.rules[0]' is not valid. "
        "Allowed values: Default, OldestVM, NewestVM.",
    ),
    Bad(
        "repair-action-unknown",
        {"properties.automaticRepairsPolicy.repairAction": "Explode"},
        IP,
        "properties.automaticRepairsPolicy.repairAction",
    ),
    Bad(
        "boolean-garbage",
        {"properties.automaticRepairsPolicy.enabled": "perhaps"},
        IP,
        "properties.automaticRepairsPolicy.enabled",
    ),
    Bad("tag-not-a-string", {"tags": {"env": 1}}, IP, "tags.env"),
    # the envelope
    Bad(
        "location-missing",
        {"location": DROP},
        IP,
        "location",
        "Required parameter 'location' is missing (null).",
    ),
    Bad("sku-name-missing", {"sku.name": DROP}, IP, "sku.name"),
    Bad("capacity-negative", {"sku.capacity": -1}, IP, "sku.capacity"),
    Bad(
        "capacity-over-1000",
        {"sku.capacity": 1001},
        IP,
        "sku.capacity",
        f"The value 1001 of parameter 'sku.capacity' is out of range. {UP_TO_1000}",
    ),
    Bad("zone-unknown", {"zones": ["1", "4"]}, IP, "zones[1]"),
    Bad("zone-twice", {"zones": ["1", "2", "1"]}, IP, "zones[2]"),
    Bad(
        "zone-balance-one-zone",
        {"zones": ["1"], "properties.zoneBalance": True},
        IP,
        "properties.zoneBalance",
        "The value of parameter zoneBalance is invalid.",
    ),
    Bad(
        "flexible",
        {"properties.orchestrationMode": "flexible"},
        "BadRequest",
        "properties.orchestrationMode",
        "Orchestration mode 'Flexible' is not supported by this emulator. Use 'Uniform'.",
    ),
    # rolling upgrade policy
    Bad(
        "batch-percent-3",
        {BATCH: 3},
        IP,
        BATCH,
        f"The value 3 of parameter '{ROLLING}.maxBatchInstancePercent' is out of range. "
        "The value must be between 5 and 100, inclusive.",
    ),
    Bad(
        "batch-percent-101",
        {BATCH: 101},
        IP,
        BATCH,
    ),
    Bad(
        "unhealthy-percent-4",
        {f"{ROLLING}.maxUnhealthyInstancePercent": 4},
        IP,
        f"{ROLLING}.maxUnhealthyInstancePercent",
    ),
    Bad(
        "upgraded-unhealthy-negative",
        {f"{ROLLING}.maxUnhealthyUpgradedInstancePercent": -1},
        IP,
        f"{ROLLING}.maxUnhealthyUpgradedInstancePercent",
    ),
    Bad(
        "upgraded-unhealthy-101",
        {f"{ROLLING}.maxUnhealthyUpgradedInstancePercent": 101},
        IP,
        f"{ROLLING}.maxUnhealthyUpgradedInstancePercent",
    ),
    Bad(
        "pause-not-iso8601",
        {f"{ROLLING}.pauseTimeBetweenBatches": "5m"},
        IP,
        f"{ROLLING}.pauseTimeBetweenBatches",
        f"The value '5m' of parameter '{ROLLING}.pauseTimeBetweenBatches' is not a valid ISO 8601 duration "
        "(for example 'PT5M').",
    ),
    Bad(
        "pause-negative",
        {f"{ROLLING}.pauseTimeBetweenBatches": "-PT5S"},
        IP,
        f"{ROLLING}.pauseTimeBetweenBatches",
    ),
    # automatic repairs
    Bad(
        "repairs-grace-5-minutes",
        {"properties.automaticRepairsPolicy.gracePeriod": "PT5M"},
        IP,
        "properties.automaticRepairsPolicy.gracePeriod",
        "The value 'PT5M' of parameter 'properties.automaticRepairsPolicy.gracePeriod' is out of range. "
        "The value must be between PT10M and PT90M, inclusive.",
    ),
    Bad(
        "repairs-grace-2-hours",
        {"properties.automaticRepairsPolicy.gracePeriod": "PT2H"},
        IP,
        "properties.automaticRepairsPolicy.gracePeriod",
    ),
    Bad(
        "repairs-grace-prose",
        {"properties.automaticRepairsPolicy.gracePeriod": "ten minutes"},
        IP,
        "properties.automaticRepairsPolicy.gracePeriod",
    ),
    # health source
    Bad(
        "rolling-without-health",
        NO_HEALTH,
        "BadRequest",
        "properties.upgradePolicy.mode",
        "Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a health probe or "
        "health extension was not provided.",
    ),
    Bad(
        "auto-os-upgrade-without-health",
        {
            **MANUAL_NO_HEALTH,
            "properties.upgradePolicy.automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True},
        },
        "BadRequest",
        "properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade",
        "Automatic OS Upgrade is not supported for this Virtual Machine Scale Set because a health probe or "
        "health extension was not specified.",
    ),
    Bad(
        "repairs-without-health",
        {**MANUAL_NO_HEALTH, "properties.automaticRepairsPolicy": {"enabled": True}},
        "BadRequest",
        "properties.automaticRepairsPolicy.enabled",
    ),
    Bad(
        "probe-without-id-is-no-health",
        {**NO_HEALTH, f"{PROFILE}.networkProfile": {"healthProbe": {}}},
        "BadRequest",
        "properties.upgradePolicy.mode",
    ),
    # application health extension settings
    Bad(
        "health-protocol-udp",
        {f"{HEALTH}.protocol": "udp"},
        IP,
        f"{HEALTH}.protocol",
        f"The value 'udp' of parameter '{HEALTH}.protocol' is not valid. Allowed values: http, https, tcp.",
    ),
    Bad("health-protocol-missing", {f"{HEALTH}.protocol": DROP}, IP, f"{HEALTH}.protocol"),
    Bad("health-settings-missing", {f"{EXT}[0].properties.settings": DROP}, IP, f"{HEALTH}.protocol"),
    Bad("health-port-0", {f"{HEALTH}.port": 0}, IP, f"{HEALTH}.port"),
    Bad("health-port-65536", {f"{HEALTH}.port": 65536}, IP, f"{HEALTH}.port"),
    Bad("health-port-string", {f"{HEALTH}.port": "80"}, IP, f"{HEALTH}.port"),
    Bad(
        "health-tcp-without-port",
        {f"{HEALTH}.protocol": "tcp", f"{HEALTH}.port": DROP, f"{HEALTH}.requestPath": DROP},
        IP,
        f"{HEALTH}.port",
    ),
    Bad(
        "health-tcp-with-request-path",
        {f"{HEALTH}.protocol": "TCP"},
        IP,
        f"{HEALTH}.requestPath",
        f"Parameter '{HEALTH}.requestPath' is not allowed.",
    ),
    Bad("health-http-without-request-path", {f"{HEALTH}.requestPath": DROP}, IP, f"{HEALTH}.requestPath"),
    Bad("health-interval-4", {f"{HEALTH}.intervalInSeconds": 4}, IP, f"{HEALTH}.intervalInSeconds"),
    Bad("health-interval-61", {f"{HEALTH}.intervalInSeconds": 61}, IP, f"{HEALTH}.intervalInSeconds"),
    Bad("health-probes-0", {f"{HEALTH}.numberOfProbes": 0}, IP, f"{HEALTH}.numberOfProbes"),
    Bad("health-probes-25", {f"{HEALTH}.numberOfProbes": 25}, IP, f"{HEALTH}.numberOfProbes"),
    Bad("health-grace-14401", {f"{HEALTH}.gracePeriod": 14401}, IP, f"{HEALTH}.gracePeriod"),
    Bad("health-grace-bool", {f"{HEALTH}.gracePeriod": True}, IP, f"{HEALTH}.gracePeriod"),
    Bad(
        "two-health-extensions",
        {f"{EXT}[1]": {**HEALTH_EXTENSION, "name": "Second"}},
        IP,
        f"{EXT}[1].properties.type",
    ),
    Bad("extension-name-twice", {f"{EXT}[1].name": "healthextension"}, IP, f"{EXT}[1].name"),
    Bad(
        "time-budget-10-minutes",
        {f"{PROFILE}.extensionProfile.extensionsTimeBudget": "PT10M"},
        IP,
        f"{PROFILE}.extensionProfile.extensionsTimeBudget",
    ),
    Bad(
        "time-budget-3-hours",
        {f"{PROFILE}.extensionProfile.extensionsTimeBudget": "PT3H"},
        IP,
        f"{PROFILE}.extensionProfile.extensionsTimeBudget",
    ),
    # os profile and disks
    Bad(
        "name-prefix-16-chars",
        {f"{PROFILE}.osProfile.computerNamePrefix": "a" * 16},
        IP,
        f"{PROFILE}.osProfile.computerNamePrefix",
    ),
    Bad(
        "name-prefix-empty",
        {f"{PROFILE}.osProfile.computerNamePrefix": ""},
        IP,
        f"{PROFILE}.osProfile.computerNamePrefix",
    ),
    Bad(
        "lun-64",
        {f"{PROFILE}.storageProfile.dataDisks[0].lun": 64},
        IP,
        f"{PROFILE}.storageProfile.dataDisks[0].lun",
    ),
    Bad(
        "lun-twice",
        {f"{PROFILE}.storageProfile.dataDisks": [{"lun": 1, "createOption": "Empty"}] * 2},
        IP,
        f"{PROFILE}.storageProfile.dataDisks[1].lun",
    ),
    # fixed at creation (update: the stored model is base())
    *(
        Bad(
            f"change-{path.rsplit('.', 1)[-1]}",
            {path: value},
            "PropertyChangeNotAllowed",
            path,
            f"Changing property '{path}' is not allowed.",
            old={},
        )
        for path, value in [
            ("location", "westus"),
            ("properties.orchestrationMode", "Flexible"),
            ("properties.platformFaultDomainCount", 5),
            (f"{PROFILE}.osProfile.computerNamePrefix", "api"),
            (f"{PROFILE}.osProfile.adminUsername", "root"),
            (f"{PROFILE}.storageProfile.imageReference.publisher", "MicrosoftWindowsServer"),
            (f"{PROFILE}.storageProfile.imageReference.offer", "WindowsServer"),
            (f"{PROFILE}.storageProfile.osDisk.managedDisk.storageAccountType", "Standard_LRS"),
        ]
    ),
    Bad(
        "single-placement-false-to-true",
        {"properties.singlePlacementGroup": True},
        "PropertyChangeNotAllowed",
        "properties.singlePlacementGroup",
        old={},
    ),
    Bad("zone-removed", {"zones": ["1", "2"]}, "PropertyChangeNotAllowed", "zones", old={}),
]


def test_the_table_is_large_and_its_ids_are_unique() -> None:
    assert len(BAD) >= 35
    assert len({case.id for case in BAD}) == len(BAD)


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_rejects(case: Bad) -> None:
    old = edited(case.old) if case.old is not None else None
    with pytest.raises(DomainError) as caught:
        check(edited(case.edits), old)
    error = caught.value
    assert (error.code, error.target, error.status) == (case.code, case.target, case.status)
    if case.message is not None:
        assert error.message == case.message
    assert "Input should" not in error.message  # pydantic's wording never reaches a client


GOOD: dict[str, Edits] = {
    "base": {},
    "mode-lower-case": {"properties.upgradePolicy.mode": "rolling"},
    "booleans-as-strings": {
        "properties.upgradePolicy.automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": "true"},
        "properties.zoneBalance": "True",
        "properties.automaticRepairsPolicy.enabled": "false",
    },
    "load-balancer-probe-instead": {
        EXT: [SCRIPT_EXTENSION],
        f"{PROFILE}.networkProfile": {"healthProbe": {"id": "/subscriptions/s/providers/lb/probes/p"}},
    },
    "health-extension-any-case": {
        f"{EXT}[0].properties.publisher": "microsoft.managedservices",
        f"{EXT}[0].properties.type": "APPLICATIONHEALTHWINDOWS",
    },
    "manual-without-health": {**MANUAL_NO_HEALTH},
    "automatic-without-health": {**MANUAL_NO_HEALTH, "properties.upgradePolicy.mode": "Automatic"},
    "tcp-probe": {f"{HEALTH}.protocol": "tcp", f"{HEALTH}.requestPath": DROP},
    "https-without-port": {f"{HEALTH}.protocol": "https", f"{HEALTH}.port": DROP},
    "binary-health-with-grace": {f"{EXT}[0].properties.typeHandlerVersion": "1.0"},
    "lowest-bounds": {
        "sku.capacity": 0,
        BATCH: 5,
        f"{ROLLING}.maxUnhealthyInstancePercent": 5,
        f"{ROLLING}.maxUnhealthyUpgradedInstancePercent": 0,
        "properties.automaticRepairsPolicy.gracePeriod": "PT10M",
        f"{PROFILE}.extensionProfile.extensionsTimeBudget": "PT15M",
        f"{HEALTH}.intervalInSeconds": 5,
        f"{HEALTH}.numberOfProbes": 1,
        f"{HEALTH}.gracePeriod": 0,
        f"{HEALTH}.port": 1,
        f"{PROFILE}.osProfile.computerNamePrefix": "w",
    },
    "highest-bounds": {
        "sku.capacity": 1000,
        BATCH: 100,
        f"{ROLLING}.maxUnhealthyInstancePercent": 100,
        f"{ROLLING}.maxUnhealthyUpgradedInstancePercent": 100,
        "properties.automaticRepairsPolicy.gracePeriod": "PT1H30M",
        f"{PROFILE}.extensionProfile.extensionsTimeBudget": "PT2H",
        f"{HEALTH}.intervalInSeconds": 60,
        f"{HEALTH}.numberOfProbes": 24,
        f"{HEALTH}.gracePeriod": 14400,
        f"{HEALTH}.port": 65535,
        f"{PROFILE}.osProfile.computerNamePrefix": "a" * 15,
        f"{PROFILE}.storageProfile.dataDisks[0].lun": 63,
    },
    "zone-balance-false-without-zones": {"zones": DROP, "properties.zoneBalance": False},
    "no-zones": {"zones": DROP},
}


@pytest.mark.parametrize("edits", GOOD.values(), ids=GOOD.keys())
def test_accepts_on_create(edits: Edits) -> None:
    check(edited(edits))


UPDATES: dict[str, Edits] = {
    "same-region-other-spelling": {"location": "East US"},
    "zone-added": {"zones": ["1", "2", "3"]},
    "single-placement-true-to-false": {"properties.singlePlacementGroup": False},
    "model-and-capacity-change": {
        "sku.capacity": 10,
        f"{PROFILE}.storageProfile.imageReference.version": "1.2.3",
    },
    "letter-case-only": {
        f"{PROFILE}.storageProfile.imageReference.publisher": "canonical",
        f"{PROFILE}.storageProfile.osDisk.managedDisk.storageAccountType": "premium_lrs",
        "properties.orchestrationMode": "uniform",
    },
}
UPDATE_OLD: dict[str, Edits] = {
    "zone-added": {"zones": ["1", "2"]},
    "single-placement-true-to-false": {"properties.singlePlacementGroup": True},
}


@pytest.mark.parametrize("name", UPDATES)
def test_accepts_on_update(name: str) -> None:
    check(edited(UPDATES[name]), edited(UPDATE_OLD.get(name, {})))


def test_enums_are_stored_in_azures_spelling_and_strings_become_booleans() -> None:
    model = check(edited(GOOD["booleans-as-strings"] | {"properties.upgradePolicy.mode": "rolling"}))
    assert model.upgrade_mode is UpgradeMode.ROLLING
    assert model.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade is True
    assert model.properties.zoneBalance is True


def test_unknown_fields_are_echoed_back() -> None:
    body = edited(
        {
            "plan": {"name": "p", "publisher": "x", "product": "y"},
            "properties.additionalCapabilities": {"ultraSSDEnabled": True},
            f"{HEALTH}.customSetting": "kept",
        }
    )
    dumped = check(body).model_dump(exclude_none=True)
    assert dumped["plan"] == {"name": "p", "publisher": "x", "product": "y"}
    assert dumped["properties"]["additionalCapabilities"] == {"ultraSSDEnabled": True}
    extension = dumped["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"][0]
    assert extension["properties"]["settings"]["customSetting"] == "kept"


def test_body_that_is_not_an_object() -> None:
    with pytest.raises(DomainError) as caught:
        parse_scale_set([1, 2])  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.target) == ("InvalidParameter", None)


# instance ids


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["0", "2"], [0, 2]),
        ([2, "2", "0", 0], [2, 0]),
        (["*"], "*"),
        ([3], [3]),
    ],
    ids=["strings", "duplicates-collapse", "star", "integers"],
)
def test_instance_ids_accepted(ids: object, expected: object) -> None:
    assert validate_instance_ids(ids, existing={0, 1, 2, 3}) == expected


NOT_A_NUMBER = "Virtual Machine Scale Set VM instanceId must be a number"


@pytest.mark.parametrize(
    ("ids", "code", "status", "message"),
    [
        (["abc"], "InvalidParameter", 400, NOT_A_NUMBER),
        (["1", "-1"], "InvalidParameter", 400, NOT_A_NUMBER),
        ([-1], "InvalidParameter", 400, NOT_A_NUMBER),
        ([1.0], "InvalidParameter", 400, NOT_A_NUMBER),
        ([True], "InvalidParameter", 400, NOT_A_NUMBER),
        (["٣"], "InvalidParameter", 400, NOT_A_NUMBER),
        (["*", "1"], "InvalidParameter", 400, None),
        ([], "InvalidParameter", 400, None),
        ("0", "InvalidParameter", 400, None),
        (None, "InvalidParameter", 400, None),
        (
            ["1", "7", "9", "7"],
            "NotFound",
            404,
            "The Virtual Machine Scale Set has no VM with instanceId 7, 9.",
        ),
        (["abc", "7"], "InvalidParameter", 400, NOT_A_NUMBER),
    ],
    ids=[
        "word",
        "negative-string",
        "negative-int",
        "float",
        "bool",
        "non-ascii-digit",
        "star-with-others",
        "empty",
        "not-a-list",
        "missing",
        "unknown-ids",
        "form-before-existence",
    ],
)
def test_instance_ids_rejected(ids: object, code: str, status: int, message: str | None) -> None:
    with pytest.raises(DomainError) as caught:
        validate_instance_ids(ids, existing={0, 1, 2})
    assert (caught.value.code, caught.value.target, caught.value.status) == (code, "instanceIds", status)
    if message is not None:
        assert caught.value.message == message


# protection policy


@pytest.mark.parametrize(("scale_in", "actions"), [(False, True), (None, True)])
def test_protection_from_actions_needs_protection_from_scale_in(scale_in: bool | None, actions: bool) -> None:
    with pytest.raises(DomainError) as caught:
        validate_protection_policy(scale_in, actions)
    assert (caught.value.code, caught.value.target) == (
        "InvalidParameter",
        "properties.protectionPolicy.protectFromScaleIn",
    )


@pytest.mark.parametrize(("scale_in", "actions"), [(True, True), (True, False), (False, False), (None, None)])
def test_protection_combinations_accepted(scale_in: bool | None, actions: bool | None) -> None:
    validate_protection_policy(scale_in, actions)


# whatever JSON lands anywhere, only a DomainError comes out

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
json_values = st.recursive(
    scalars | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
BAD_PATHS = {path for case in BAD for path in case.edits}
PATHS = sorted(BAD_PATHS.union(*GOOD.values()))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(PATHS), json_values, max_size=3))
def test_only_domain_errors_escape(edits: Edits) -> None:
    try:
        body = edited(edits)
    except (KeyError, IndexError, TypeError, AttributeError):
        assume(False)  # the test's own editor cannot apply an edit below a value another edit reshaped
    for old in (None, base()):
        try:
            check(merge_put(old, body), old)
        except DomainError as error:
            assert error.code and error.message
