"""Per-command table layouts for ``--output table`` (used only without ``--query``, as in ``az``)."""

from __future__ import annotations

from typing import Any


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _status(statuses: Any, prefix: str) -> str | None:
    for status in statuses or []:
        if isinstance(status, dict) and str(status.get("code", "")).startswith(prefix):
            display = status.get("displayStatus")
            return str(display) if display is not None else str(status.get("code"))
    return None


def scale_sets(value: Any) -> list[dict[str, Any]]:
    """``az vmss list -o table``'s columns."""
    rows = []
    for vmss in _items(value):
        rows.append(
            {
                "Name": _get(vmss, "name"),
                "ResourceGroup": _get(vmss, "resourceGroup"),
                "Location": _get(vmss, "location"),
                "Zones": ",".join(_get(vmss, "zones") or []),
                "Capacity": _get(vmss, "sku", "capacity"),
                "UpgradePolicy": _get(vmss, "upgradePolicy", "mode"),
                "ProvisioningState": _get(vmss, "provisioningState"),
            }
        )
    return rows


def created(value: Any) -> list[dict[str, Any]]:
    return scale_sets(_get(value, "vmss"))


def instances(value: Any) -> list[dict[str, Any]]:
    rows = []
    for vm in _items(value):
        row: dict[str, Any] = {
            "InstanceId": _get(vm, "instanceId"),
            "Name": _get(vm, "name"),
            "ResourceGroup": _get(vm, "resourceGroup"),
            "Location": _get(vm, "location"),
            "Zones": ",".join(_get(vm, "zones") or []),
            "ProvisioningState": _get(vm, "provisioningState"),
            "LatestModelApplied": _get(vm, "latestModelApplied"),
            "Image": _get(vm, "storageProfile", "imageReference", "exactVersion"),
        }
        view = _get(vm, "instanceView")
        if isinstance(view, dict):
            row["PowerState"] = _status(view.get("statuses"), "PowerState/")
            row["Health"] = _get(view, "vmHealth", "status", "displayStatus")
        rows.append(row)
    return rows


def instance_views(value: Any) -> Any:
    """A VM's instance view (one or ``*``): provisioning and power state, as ``az``; a set's view: its summary."""
    items = _items(value)
    if items and isinstance(items[0], dict) and "virtualMachine" in items[0]:
        summary = _get(items[0], "virtualMachine", "statusesSummary") or []
        return [{"Code": s.get("code"), "Count": s.get("count")} for s in summary if isinstance(s, dict)]
    return [
        {
            "ComputerName": _get(view, "computerName"),
            "ProvisioningState": _status(_get(view, "statuses"), "ProvisioningState/"),
            "PowerState": _status(_get(view, "statuses"), "PowerState/"),
            "Health": _get(view, "vmHealth", "status", "displayStatus"),
        }
        for view in items
    ]


def rolling_status(value: Any) -> list[dict[str, Any]]:
    rows = []
    for status in _items(value):
        rows.append(
            {
                "Status": _get(status, "runningStatus", "code"),
                "StartTime": _get(status, "runningStatus", "startTime"),
                "LastAction": _get(status, "runningStatus", "lastAction"),
                "Successful": _get(status, "progress", "successfulInstanceCount"),
                "Failed": _get(status, "progress", "failedInstanceCount"),
                "InProgress": _get(status, "progress", "inProgressInstanceCount"),
                "Pending": _get(status, "progress", "pendingInstanceCount"),
                "Error": _get(status, "error", "code"),
            }
        )
    return rows


def _target_version(reference: Any) -> Any:
    """The image version an OS upgrade went to: the exact version, else the reference's version or image id."""
    if not isinstance(reference, dict):
        return None
    version = reference.get("exactVersion") or reference.get("version")
    if version is None and isinstance(reference.get("id"), str):
        return reference["id"].rstrip("/").rsplit("/", 1)[-1]
    return version


def os_upgrade_history(value: Any) -> list[dict[str, Any]]:
    """``get-os-upgrade-history``: when, how it ended, who started it, to which version, progress and rollback."""
    rows = []
    for entry in _items(value):
        rows.append(
            {
                "StartTime": _get(entry, "runningStatus", "startTime"),
                "EndTime": _get(entry, "runningStatus", "endTime"),
                "Status": _get(entry, "runningStatus", "code"),
                "StartedBy": _get(entry, "startedBy"),
                "TargetVersion": _target_version(_get(entry, "targetImageReference")),
                "Successful": _get(entry, "progress", "successfulInstanceCount"),
                "Failed": _get(entry, "progress", "failedInstanceCount"),
                "InProgress": _get(entry, "progress", "inProgressInstanceCount"),
                "Pending": _get(entry, "progress", "pendingInstanceCount"),
                "RolledBack": _get(entry, "rollbackInfo", "successfullyRolledbackInstanceCount"),
                "RollbackFailed": _get(entry, "rollbackInfo", "failedRolledbackInstanceCount"),
                "Error": _get(entry, "error", "code"),
            }
        )
    return rows


def groups(value: Any) -> list[dict[str, Any]]:
    """``az group list -o table``'s columns."""
    return [
        {
            "Name": _get(group, "name"),
            "Location": _get(group, "location"),
            "Status": _get(group, "properties", "provisioningState"),
        }
        for group in _items(value)
    ]


def faults(value: Any) -> list[dict[str, Any]]:
    rows = []
    for fault in _items(value):
        if not isinstance(fault, dict):
            continue
        match = {k: fault[k] for k in ("image_version", "extension", "instances", "zone") if fault.get(k) is not None}
        rows.append(
            {
                "Id": fault.get("id"),
                "Kind": fault.get("kind"),
                "Matches": " ".join(f"{k}={v}" for k, v in match.items()) or "every instance",
                "Fraction": fault.get("fraction", 1.0),
            }
        )
    return rows
