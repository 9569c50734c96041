"""Scale-set resource JSON: ``az vmss show`` / ``az vmss list`` output, an ARM GET body, the Azure SDK's
``as_dict()`` (ARM JSON in azure-mgmt-compute 30+, snake_case attributes in older msrest models).

Accepted wrappers: a single object, a list, ``{"value": [...]}`` (an ARM list) and ``{"vmss": {...}}``
(``az vmss create``). A body without ``properties`` is flattened (``az`` lifts the members of ``properties`` next to
``id`` and ``name``, and does the same inside extensions and network interface configurations): it is nested
again, with ``typePropertiesType`` (the SDK's name for an extension's own ``type``) put back as ``type``.
"""

from __future__ import annotations

import re
from typing import Any

from scaleset.safety.inputs_shapes import VMSS_TYPE, InputError, ScaleSetInput, to_input

ENVELOPE_KEYS = frozenset(
    {"id", "name", "type", "location", "tags", "sku", "plan", "identity", "zones", "extendedLocation", "etag"}
)
_DROPPED = frozenset({"resourceGroup", "systemData"})
_SCALE_SET_MARKERS = frozenset(
    {"upgradePolicy", "virtualMachineProfile", "orchestrationMode", "automaticRepairsPolicy", "scaleInPolicy"}
)
_SNAKE_MARKERS = frozenset({"upgrade_policy", "virtual_machine_profile", "orchestration_mode", "scale_in_policy"})
_FREE_FORM = frozenset({"settings", "protectedSettings", "protected_settings", "tags", "userData", "user_data"})
_IRREGULAR = {
    "automatic_os_upgrade_policy": "automaticOSUpgradePolicy",
    "enable_automatic_os_upgrade": "enableAutomaticOSUpgrade",
    "disk_size_gb": "diskSizeGB",
    "prioritize_unhealthy_v_ms": "prioritizeUnhealthyVMs",
    "do_not_run_extensions_on_overprovisioned_v_ms": "doNotRunExtensionsOnOverprovisionedVMs",
    "enable_ip_forwarding": "enableIPForwarding",
    "private_ip_address_version": "privateIPAddressVersion",
    "public_ip_address_configuration": "publicIPAddressConfiguration",
    "ultra_ssd_enabled": "ultraSSDEnabled",
    "disk_iops_read_write": "diskIOPSReadWrite",
    "disk_m_bps_read_write": "diskMBpsReadWrite",
}
_GROUP_IN_ID = re.compile(r"/resourceGroups/(?P<group>[^/]+)", re.IGNORECASE)


def _scale_set_like(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if str(item.get("type", "")).lower() == VMSS_TYPE.lower():
        return True
    keys = set(item)
    return isinstance(item.get("properties"), dict) or bool(keys & _SCALE_SET_MARKERS) or bool(keys & _SNAKE_MARKERS)


def _items(document: Any) -> list[Any] | None:
    if isinstance(document, list):
        return document if document and all(_scale_set_like(i) for i in document) else None
    if isinstance(document, dict):
        if isinstance(document.get("value"), list):
            return _items(document["value"])
        if set(document) == {"vmss"} and _scale_set_like(document["vmss"]):
            return [document["vmss"]]
        if _scale_set_like(document):
            return [document]
    return None


def is_resource_json(document: Any) -> bool:
    return _items(document) is not None


def camel(key: str) -> str:
    """``max_batch_instance_percent`` -> ``maxBatchInstancePercent`` (with Compute's irregular spellings)."""
    if key in _IRREGULAR:
        return _IRREGULAR[key]
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camelise(value: Any) -> Any:
    if isinstance(value, list):
        return [camelise(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {camel(k): (v if k in _FREE_FORM else camelise(v)) for k, v in value.items()}


def strip_added_groups(value: Any) -> Any:
    """Drop the ``resourceGroup`` that ``az`` adds to every object with an id under a resource group."""
    if isinstance(value, list):
        return [strip_added_groups(v) for v in value]
    if not isinstance(value, dict):
        return value
    added = "id" in value and "resourceGroup" in value
    return {
        k: (v if k in _FREE_FORM else strip_added_groups(v))
        for k, v in value.items()
        if not (added and k == "resourceGroup")
    }


def _nest_sub_resource(item: Any) -> Any:
    """A flattened named sub-resource (extension, NIC configuration, IP configuration) nested again."""
    if not isinstance(item, dict) or isinstance(item.get("properties"), dict):
        return item
    out: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for key, value in item.items():
        if key in ("name", "id"):
            out[key] = value
        elif key == "type" and "/" in str(value):
            continue  # the sub-resource's own resource type (read-only), not an extension type
        elif key == "typePropertiesType":
            properties["type"] = value
        else:
            properties[key] = value
    out["properties"] = properties
    return out


def _nest_profile(profile: Any) -> Any:
    if not isinstance(profile, dict):
        return profile
    out = dict(profile)
    extensions = out.get("extensionProfile")
    if isinstance(extensions, dict) and isinstance(extensions.get("extensions"), list):
        out["extensionProfile"] = {
            **extensions,
            "extensions": [_nest_sub_resource(e) for e in extensions["extensions"]],
        }
    network = out.get("networkProfile")
    if isinstance(network, dict) and isinstance(network.get("networkInterfaceConfigurations"), list):
        nics = []
        for nic in network["networkInterfaceConfigurations"]:
            nested = _nest_sub_resource(nic)
            inner = nested.get("properties") if isinstance(nested, dict) else None
            if isinstance(inner, dict) and isinstance(inner.get("ipConfigurations"), list):
                inner["ipConfigurations"] = [_nest_sub_resource(ip) for ip in inner["ipConfigurations"]]
            nics.append(nested)
        out["networkProfile"] = {**network, "networkInterfaceConfigurations": nics}
    return out


def nest(item: dict[str, Any]) -> dict[str, Any]:
    """A flattened scale set (``az`` output) back in ARM's shape: every non-envelope member under ``properties``."""
    body: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for key, value in item.items():
        if key in ENVELOPE_KEYS:
            body[key] = value
        elif key not in _DROPPED:
            properties[key] = value
    if "virtualMachineProfile" in properties:
        properties["virtualMachineProfile"] = _nest_profile(properties["virtualMachineProfile"])
    body["properties"] = properties
    return body


def from_resource_json(document: Any, *, label: str) -> list[ScaleSetInput]:
    items = _items(document)
    if items is None:
        raise InputError(f"{label}: not a scale set resource")
    out = []
    for index, raw in enumerate(items):
        group = raw.get("resourceGroup")
        item = strip_added_groups(camelise(raw) if set(raw) & _SNAKE_MARKERS else raw)
        kind = str(item.get("type", ""))
        if kind and kind.lower() != VMSS_TYPE.lower():
            raise InputError(f"{label}: item {index} is a {kind}, not a {VMSS_TYPE}")
        flattened = not isinstance(item.get("properties"), dict)
        shaped = nest(item) if flattened else dict(item)
        if not flattened and isinstance(shaped["properties"].get("virtualMachineProfile"), dict):
            properties = dict(shaped["properties"])
            properties["virtualMachineProfile"] = _nest_profile(properties["virtualMachineProfile"])
            shaped["properties"] = properties
        body = {
            k: v for k, v in shaped.items() if k in ENVELOPE_KEYS - {"id", "name", "type", "etag"} or k == "properties"
        }
        found = _GROUP_IN_ID.search(str(item.get("id", "")))
        name = str(item.get("name") or (f"{label}[{index}]" if len(items) > 1 else label))
        out.append(
            to_input(
                body,
                name=name,
                origin=f"{'flattened ' if flattened else ''}scale-set JSON {label}",
                kind="resource-json",
                resource_group=str(group) if group else (found.group("group") if found else None),
            )
        )
    return out
