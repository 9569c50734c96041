"""Every rule that rejects a scale-set request, as a :class:`DomainError` with ARM's code, target and wording.

Two steps, in this order, after :mod:`scaleset.domain.merge` has folded the request into the stored model:

1. :func:`parse_scale_set` turns the merged JSON into a :class:`VirtualMachineScaleSet`; a shape error (a
   string where an integer belongs, an unknown enum value) becomes ``InvalidParameter`` on its ARM path.
2. :func:`validate_scale_set` checks ranges, combinations and immutability, and raises the first error found.

Targets are ARM's dotted paths with list positions in brackets, as in
``properties.virtualMachineProfile.extensionProfile.extensions[0].properties.settings.port``. Messages use
Azure's text where it has been observed; the other choices are listed in ``docs/semantics.md``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from scaleset.domain.durations import parse_duration
from scaleset.domain.errors import (
    BAD_REQUEST,
    INVALID_PARAMETER,
    NOT_FOUND,
    PROPERTY_CHANGE_NOT_ALLOWED,
    DomainError,
    invalid_parameter,
    property_change_not_allowed,
)
from scaleset.domain.health import is_health_extension, probe_settings
from scaleset.domain.images import tracks_latest
from scaleset.domain.resources import OrchestrationMode, UpgradeMode, VirtualMachineScaleSet

UPGRADE_POLICY = "properties.upgradePolicy"
ROLLING_POLICY = f"{UPGRADE_POLICY}.rollingUpgradePolicy"
REPAIRS_POLICY = "properties.automaticRepairsPolicy"
PROFILE = "properties.virtualMachineProfile"
EXTENSIONS = f"{PROFILE}.extensionProfile.extensions"

ROLLING_NEEDS_HEALTH = (
    "Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a health probe or "
    "health extension was not provided."
)
AUTO_OS_UPGRADE_NEEDS_HEALTH = (
    "Automatic OS Upgrade is not supported for this Virtual Machine Scale Set because a health probe or "
    "health extension was not specified."
)
REPAIRS_NEED_HEALTH = (
    "Automatic repairs is not supported for this Virtual Machine Scale Set because a health probe or "
    "health extension was not provided."
)
AUTO_OS_UPGRADE_NEEDS_LATEST = (
    "Automatic OS Upgrade is not supported for this Virtual Machine Scale Set because the image reference does "
    "not track the latest version: set imageReference.version to 'latest', or use an Azure Compute Gallery image "
    "id without a version."
)
ORCHESTRATION_SERVICES = ("AutomaticRepairs",)
ORCHESTRATION_ACTIONS = ("Suspend", "Resume")
INSTANCE_ID_NOT_A_NUMBER = "Virtual Machine Scale Set VM instanceId must be a number"

HEALTH_PROTOCOLS = ("http", "https", "tcp")
ZONES = ("1", "2", "3")

# Fields fixed at creation; ``location`` is compared separately because Azure normalises its spelling.
IMMUTABLE_PATHS = (
    "properties.orchestrationMode",
    "properties.platformFaultDomainCount",
    f"{PROFILE}.osProfile.computerNamePrefix",
    f"{PROFILE}.osProfile.adminUsername",
    f"{PROFILE}.storageProfile.imageReference.publisher",
    f"{PROFILE}.storageProfile.imageReference.offer",
    f"{PROFILE}.storageProfile.osDisk.managedDisk.storageAccountType",
)

_EXPECTED_KIND = {
    "int": "an integer",
    "bool": "a boolean (true or false)",
    "string": "a string",
    "float": "a number",
    "list": "an array",
}


def render_value(value: object) -> str:
    """A value as a message shows it: strings quoted, JSON bare (``'x'``, ``3``, ``true``, ``null``)."""
    if isinstance(value, str):
        return f"'{value}'"
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def expected_object(target: str | None, value: object) -> DomainError:
    """``InvalidParameter`` for a non-object where a JSON object belongs (``target`` None: the whole body)."""
    if target is None:
        return DomainError(INVALID_PARAMETER, "The request body must be a JSON object.")
    return invalid_parameter(target, f"{_the_value(value, target)} is not valid. Expected a JSON object.")


def _the_value(value: object, target: str) -> str:
    return f"The value {render_value(value)} of parameter '{target}'"


def _missing(target: str) -> DomainError:
    return invalid_parameter(target, f"Required parameter '{target}' is missing (null).")


def _not_one_of(target: str, value: object, allowed: Iterable[str]) -> DomainError:
    choices = ", ".join(allowed)
    return invalid_parameter(target, f"{_the_value(value, target)} is not valid. Allowed values: {choices}.")


def _out_of_range(target: str, value: object, low: object, high: object) -> DomainError:
    limits = f"The value must be between {low} and {high}, inclusive."
    return invalid_parameter(target, f"{_the_value(value, target)} is out of range. {limits}")


def _not_allowed(target: str) -> DomainError:
    return invalid_parameter(target, f"Parameter '{target}' is not allowed.")


def _bad_request(target: str, message: str) -> DomainError:
    return DomainError(BAD_REQUEST, message, target)


def parse_scale_set(body: dict[str, Any]) -> VirtualMachineScaleSet:
    """The merged request as a model; the first shape error becomes ``InvalidParameter`` on its ARM path."""
    if not isinstance(body, dict):
        raise expected_object(None, body)
    try:
        return VirtualMachineScaleSet.model_validate(body)
    except ValidationError as exc:
        raise _from_pydantic(exc.errors(include_url=False)[0]) from None


def _from_pydantic(error: Any) -> DomainError:
    target = arm_path(error["loc"])
    kind: str = error["type"]
    value = error.get("input")
    if kind == "missing":
        return _missing(target)
    if kind == "enum":
        return _not_one_of(target, value, re.findall(r"'([^']*)'", error["ctx"]["expected"]))
    if kind.startswith(("dict", "model")):
        return expected_object(target, value)
    expected = next((text for prefix, text in _EXPECTED_KIND.items() if kind.startswith(prefix)), None)
    suffix = f" Expected {expected}." if expected else ""
    return invalid_parameter(target, f"{_the_value(value, target)} is not valid.{suffix}")


def arm_path(loc: Sequence[str | int]) -> str:
    """A pydantic location as ARM writes it: ``("properties", "zones", 0)`` -> ``properties.zones[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


AZURE_CAPACITY_LIMIT = 1000
"""Azure's ceiling for one Uniform scale set. Simulations may lift it (``capacity_limit``) to rehearse fleets
larger than one real scale set can hold; the API server keeps Azure's."""


def validate_scale_set(
    new: VirtualMachineScaleSet, *, old: VirtualMachineScaleSet | None, capacity_limit: int = AZURE_CAPACITY_LIMIT
) -> None:
    """Raise the first rule ``new`` breaks; ``old`` is the stored model on update, None on create.

    Immutability comes first (a change to a fixed field is the most precise complaint), then field ranges,
    then the combinations that need a health source.
    """
    if old is not None:
        _check_unchanged(new, old)
    _check_envelope(new, creating=old is None, capacity_limit=capacity_limit)
    _check_upgrade_policy(new)
    _check_repairs_policy(new)
    _check_os_profile(new)
    _check_data_disks(new)
    _check_extensions(new)
    _check_health_requirements(new)
    _check_automatic_os_upgrade(new)


def _check_automatic_os_upgrade(new: VirtualMachineScaleSet) -> None:
    """Automatic OS upgrades need an image that can move: ``latest``, or a gallery image id with no version."""
    if not new.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade:
        return
    if new.image is not None and not tracks_latest(new.image):
        raise _bad_request(f"{PROFILE}.storageProfile.imageReference.version", AUTO_OS_UPGRADE_NEEDS_LATEST)


def validate_orchestration_request(body: object) -> tuple[str, str]:
    """The body of ``setOrchestrationServiceState``: ``serviceName`` and ``action``, both required (§5.3).

    Returns the canonical spellings; any case is accepted, as for other enums.
    """
    if not isinstance(body, dict):
        raise expected_object(None, body)
    found: list[str] = []
    for field_name, allowed in (("serviceName", ORCHESTRATION_SERVICES), ("action", ORCHESTRATION_ACTIONS)):
        value = body.get(field_name)
        if value is None:
            raise _missing(field_name)
        canonical = next((a for a in allowed if isinstance(value, str) and a.lower() == value.lower()), None)
        if canonical is None:
            raise _not_one_of(field_name, value, allowed)
        found.append(canonical)
    return found[0], found[1]


def _lookup(vmss: VirtualMachineScaleSet, path: str) -> object:
    node: object = vmss
    for name in path.split("."):
        node = getattr(node, name, None)
        if node is None:
            return None
    return node


def _location_key(location: str | None) -> str | None:
    """``"East US"`` and ``"eastus"`` name the same region."""
    return "".join(location.split()).lower() if location is not None else None


def _case_folded(value: object) -> object:
    """Azure compares names without regard to letter case: ``Premium_LRS`` is ``premium_lrs``."""
    return value.lower() if isinstance(value, str) else value


def _check_unchanged(new: VirtualMachineScaleSet, old: VirtualMachineScaleSet) -> None:
    if _location_key(new.location) != _location_key(old.location):
        raise property_change_not_allowed("location")
    for path in IMMUTABLE_PATHS:
        if _case_folded(_lookup(new, path)) != _case_folded(_lookup(old, path)):
            raise property_change_not_allowed(path)
    if old.properties.singlePlacementGroup is False and new.properties.singlePlacementGroup is True:
        target = "properties.singlePlacementGroup"
        raise DomainError(
            PROPERTY_CHANGE_NOT_ALLOWED,
            f"Changing property '{target}' is not allowed. It may change from true to false, "
            "but not from false to true.",
            target,
        )
    removed = sorted(set(old.zones or ()) - set(new.zones or ()))
    if removed:
        raise DomainError(
            PROPERTY_CHANGE_NOT_ALLOWED,
            "Changing property 'zones' is not allowed. Zones can be added to a scale set but not removed "
            f"(removed: {', '.join(removed)}).",
            "zones",
        )


def _check_envelope(new: VirtualMachineScaleSet, *, creating: bool, capacity_limit: int) -> None:
    if new.properties.orchestrationMode is OrchestrationMode.FLEXIBLE:
        raise _bad_request(
            "properties.orchestrationMode",
            "Orchestration mode 'Flexible' is not supported by this emulator. Use 'Uniform'.",
        )
    if creating and not new.location:
        raise _missing("location")
    if creating and not new.sku.name:
        raise _missing("sku.name")
    _check_range("sku.capacity", new.sku.capacity, 0, capacity_limit)
    zones = new.zones or []
    for index, zone in enumerate(zones):
        if zone not in ZONES:
            raise _not_one_of(f"zones[{index}]", zone, ZONES)
        if zone in zones[:index]:
            raise invalid_parameter(f"zones[{index}]", f"Zone '{zone}' is listed more than once in 'zones'.")
    if new.properties.zoneBalance and len(zones) < 2:
        raise invalid_parameter("properties.zoneBalance", "The value of parameter zoneBalance is invalid.")


def _check_upgrade_policy(new: VirtualMachineScaleSet) -> None:
    rolling = new.rolling_policy
    _check_range(f"{ROLLING_POLICY}.maxBatchInstancePercent", rolling.maxBatchInstancePercent, 5, 100)
    _check_range(f"{ROLLING_POLICY}.maxUnhealthyInstancePercent", rolling.maxUnhealthyInstancePercent, 5, 100)
    _check_range(
        f"{ROLLING_POLICY}.maxUnhealthyUpgradedInstancePercent",
        rolling.maxUnhealthyUpgradedInstancePercent,
        0,
        100,
    )
    _check_duration(f"{ROLLING_POLICY}.pauseTimeBetweenBatches", rolling.pauseTimeBetweenBatches)


def _check_repairs_policy(new: VirtualMachineScaleSet) -> None:
    repairs = new.properties.automaticRepairsPolicy
    if repairs is not None:
        _check_duration(f"{REPAIRS_POLICY}.gracePeriod", repairs.gracePeriod, between=("PT10M", "PT90M"))


def _check_os_profile(new: VirtualMachineScaleSet) -> None:
    os_profile = new.profile.osProfile
    prefix = os_profile.computerNamePrefix if os_profile else None
    if prefix is not None and not 1 <= len(prefix) <= 15:
        target = f"{PROFILE}.osProfile.computerNamePrefix"
        raise invalid_parameter(
            target, f"{_the_value(prefix, target)} is not valid. It must be 1 to 15 characters long."
        )


def _check_data_disks(new: VirtualMachineScaleSet) -> None:
    storage = new.profile.storageProfile
    seen: set[int] = set()
    for index, disk in enumerate((storage.dataDisks if storage else None) or []):
        target = f"{PROFILE}.storageProfile.dataDisks[{index}].lun"
        _check_range(target, disk.lun, 0, 63)
        if disk.lun in seen:
            raise invalid_parameter(target, f"Lun {disk.lun} is used by more than one data disk.")
        seen.add(disk.lun)


def _check_extensions(new: VirtualMachineScaleSet) -> None:
    profile = new.profile.extensionProfile
    if profile is not None and profile.extensionsTimeBudget is not None:
        _check_duration(
            f"{PROFILE}.extensionProfile.extensionsTimeBudget",
            profile.extensionsTimeBudget,
            between=("PT15M", "PT2H"),
        )
    names: dict[str, int] = {}
    health_at: int | None = None
    for index, extension in enumerate(new.extensions):
        at = f"{EXTENSIONS}[{index}]"
        if extension.name is not None:
            first = names.setdefault(extension.name.lower(), index)
            if first != index:
                raise invalid_parameter(
                    f"{at}.name",
                    f"Extension name '{extension.name}' is used by extensions[{first}] "
                    f"and extensions[{index}]. Extension names must be unique.",
                )
        if not is_health_extension(extension):
            continue
        if health_at is not None:
            raise invalid_parameter(
                f"{at}.properties.type",
                f"Only one Application Health extension is allowed; extensions[{health_at}] is one already.",
            )
        health_at = index
        _check_health_settings(extension.properties.settings, at=f"{at}.properties.settings")


def _check_health_settings(settings: dict[str, Any] | None, *, at: str) -> None:
    """The Application Health extension's ``settings``, checked here (real Azure leaves them to the agent).

    ``gracePeriod`` is a rich-health (2.x) setting; on 1.0 it is checked the same way and then ignored.
    """
    values = settings or {}
    protocol = values.get("protocol")
    if protocol is None:
        raise _missing(f"{at}.protocol")
    if not isinstance(protocol, str) or protocol.lower() not in HEALTH_PROTOCOLS:
        raise _not_one_of(f"{at}.protocol", protocol, HEALTH_PROTOCOLS)
    tcp = protocol.lower() == "tcp"
    port = values.get("port")
    if port is None and tcp:
        raise _missing(f"{at}.port")
    _check_integer(f"{at}.port", port, 1, 65535)
    request_path = values.get("requestPath")
    if tcp and request_path is not None:
        raise _not_allowed(f"{at}.requestPath")
    if not tcp and (request_path is None or request_path == ""):
        raise _missing(f"{at}.requestPath")
    if not tcp and not isinstance(request_path, str):
        raise invalid_parameter(
            f"{at}.requestPath",
            f"{_the_value(request_path, f'{at}.requestPath')} is not valid. Expected a string.",
        )
    _check_integer(f"{at}.intervalInSeconds", values.get("intervalInSeconds"), 5, 60)
    _check_integer(f"{at}.numberOfProbes", values.get("numberOfProbes"), 1, 24)
    _check_integer(f"{at}.gracePeriod", values.get("gracePeriod"), 0, 14400)


def _check_health_requirements(new: VirtualMachineScaleSet) -> None:
    if probe_settings(new) is not None:
        return
    if new.upgrade_mode is UpgradeMode.ROLLING:
        raise _bad_request(f"{UPGRADE_POLICY}.mode", ROLLING_NEEDS_HEALTH)
    if new.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade:
        raise _bad_request(
            f"{UPGRADE_POLICY}.automaticOSUpgradePolicy.enableAutomaticOSUpgrade",
            AUTO_OS_UPGRADE_NEEDS_HEALTH,
        )
    repairs = new.properties.automaticRepairsPolicy
    if repairs is not None and repairs.enabled:
        raise _bad_request(f"{REPAIRS_POLICY}.enabled", REPAIRS_NEED_HEALTH)


def _check_range(target: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise _out_of_range(target, value, low, high)


def _check_integer(target: str, value: object, low: int, high: int) -> None:
    """An optional JSON integer within ``low..high``; ``true`` and ``80.0`` are not integers here."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_parameter(target, f"{_the_value(value, target)} is not valid. Expected an integer.")
    _check_range(target, value, low, high)


def _check_duration(target: str, text: str, *, between: tuple[str, str] | None = None) -> None:
    """A valid, non-negative ISO 8601 duration, optionally within ``between`` (inclusive).

    Worked example: ``between=("PT10M", "PT90M")`` accepts ``"PT1H"`` (3600 s lies in 600..5400 s) and
    rejects ``"PT5M"`` (300 s) and ``"PT2H"`` (7200 s). A sign is not part of the grammar, so ``"-PT5M"`` is
    rejected as malformed, which is how negative pauses are refused.
    """
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise invalid_parameter(
            target, f"{_the_value(text, target)} is not a valid ISO 8601 duration (for example 'PT5M')."
        ) from None
    if between is not None and not parse_duration(between[0]) <= seconds <= parse_duration(between[1]):
        raise _out_of_range(target, text, *between)


def validate_instance_ids(ids: object, *, existing: set[int]) -> list[int] | Literal["*"]:
    """The ``instanceIds`` of a scale-set action, as numbers in request order without repeats, or ``"*"``.

    ``["*"]`` means every instance. A missing list is an error here: the actions where an omitted list means
    "all instances" decide that before calling. Every id is checked for form before any is looked up, so a
    malformed list is a 400 even when it also names instances that do not exist (404).
    """
    target = "instanceIds"
    if ids is None:
        raise _missing(target)
    if not isinstance(ids, list):
        raise invalid_parameter(target, f"{_the_value(ids, target)} is not valid. Expected an array of ids.")
    if not ids:
        raise invalid_parameter(target, "Parameter 'instanceIds' must name at least one instance.")
    if ids == ["*"]:
        return "*"
    if "*" in ids:
        raise invalid_parameter(target, "'*' must be the only entry of 'instanceIds'.")
    parsed = [_instance_number(item) for item in ids]
    numbers = list(dict.fromkeys(number for number in parsed if number is not None))
    if len(numbers) < len(set(parsed)):
        raise invalid_parameter(target, INSTANCE_ID_NOT_A_NUMBER)
    unknown = [str(number) for number in numbers if number not in existing]
    if unknown:
        raise DomainError(
            NOT_FOUND,
            f"The Virtual Machine Scale Set has no VM with instanceId {', '.join(unknown)}.",
            target,
            status=404,
        )
    return numbers


def _instance_number(item: object) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item if item >= 0 else None
    if isinstance(item, str) and item.isascii() and item.isdigit():
        try:
            return int(item)
        except ValueError:  # thousands of digits, more than int() converts: not an id
            return None
    return None


def validate_protection_policy(
    protect_from_scale_in: bool | None,
    protect_from_scale_set_actions: bool | None,
) -> None:
    """Protection from scale-set actions includes protection from scale-in: (false, true) is refused."""
    if protect_from_scale_set_actions and not protect_from_scale_in:
        target = "properties.protectionPolicy.protectFromScaleIn"
        raise invalid_parameter(
            target,
            "protectFromScaleSetActions can only be true when protectFromScaleIn is also true: "
            "protection from scale-set actions includes protection from scale-in.",
        )
