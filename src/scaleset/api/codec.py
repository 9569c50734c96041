"""Domain and engine state rendered as Microsoft.Compute JSON: VMs, instance views, SKUs, operation statuses.

Every shape here is checked against the official 2024-11-01 specification by the API tests
(``shared/tools/arm_schema.py``). Status display texts follow reference §1.11; where Azure's text is unconfirmed
the choice is recorded in ``docs/semantics.md``.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from scaleset.domain.health import HealthState
from scaleset.domain.instances import POWER_DISPLAY, InstanceView, ProvisioningState, computer_name
from scaleset.domain.records import InstanceRecord, Operation
from scaleset.domain.repairs import service_state
from scaleset.domain.resources import VirtualMachineScaleSet
from scaleset.engine.lookups import arm_id
from scaleset.engine.state import ScaleSetState

Render = Callable[[float], str]

PROVISIONING_DISPLAY = {
    ProvisioningState.CREATING: "Creating",
    ProvisioningState.UPDATING: "Updating",
    ProvisioningState.SUCCEEDED: "Provisioning succeeded",
    ProvisioningState.FAILED: "Provisioning failed",
    ProvisioningState.DELETING: "Deleting",
}
HEALTH_DISPLAY = {
    HealthState.INITIALIZING: ("Info", "The VM health is initializing"),
    HealthState.HEALTHY: ("Info", "The VM is healthy"),
    HealthState.UNHEALTHY: ("Error", "The VM is unhealthy"),
    HealthState.UNKNOWN: ("Warning", "The VM health is unknown"),
}
DEFAULT_NIC: dict[str, Any] = {  # a model without a network profile: one NIC, one IP configuration (both required)
    "name": "nic0",
    "properties": {"primary": True, "ipConfigurations": [{"name": "ipconfig1", "properties": {"primary": True}}]},
}
VM_SIZES = (
    "Standard_B2s",
    "Standard_D2s_v3",
    "Standard_D4s_v3",
    "Standard_D2s_v5",
    "Standard_D4s_v5",
    "Standard_F2s_v2",
)


def _status(code: str, level: str, display: str, when: str | None, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "level": level, "displayStatus": display}
    if message:
        out["message"] = message
    if when is not None:
        out["time"] = when
    return out


def provisioning_status(view: InstanceView, when: str) -> dict[str, Any]:
    if view.provisioning is ProvisioningState.FAILED:
        code = view.error_code or "VMProvisioningFailed"
        return _status(f"ProvisioningState/failed/{code}", "Error", "Provisioning failed", when, view.error_message)
    return _status(
        f"ProvisioningState/{view.provisioning.value.lower()}", "Info", PROVISIONING_DISPLAY[view.provisioning], when
    )


def vm_id(state: ScaleSetState, instance_id: int) -> str:
    return f"{arm_id(state)}/virtualMachines/{instance_id}"


def _vm_uuid(state: ScaleSetState, record: InstanceRecord) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{state.record.unique_id}/{record.instance_id}/{record.created_at}"))


def vm_resource(
    state: ScaleSetState,
    record: InstanceRecord,
    view: InstanceView,
    *,
    model: VirtualMachineScaleSet,
    model_body: dict[str, Any],
    render_time: Render,
    expand_instance_view: bool = False,
) -> dict[str, Any]:
    """``VirtualMachineScaleSetVM``: one instance with the model it runs (parsed, and its stored body)."""
    vmss_name = state.record.name
    profile = copy.deepcopy((model_body.get("properties") or {}).get("virtualMachineProfile") or {})
    storage = profile.get("storageProfile") or {}
    image = dict(storage.get("imageReference") or {})
    if image:
        image["exactVersion"] = record.image_version
    name = f"{vmss_name}_{record.instance_id}"
    os_disk = dict(storage.get("osDisk") or {})
    os_disk_name = f"{name}_OsDisk_1_{_vm_uuid(state, record).replace('-', '')[:32]}"
    os_disk["name"] = os_disk_name
    os_disk.setdefault("createOption", "FromImage")
    managed = dict(os_disk.get("managedDisk") or {})
    managed["id"] = (
        f"/subscriptions/{state.record.subscription}/resourceGroups/{state.record.resource_group}"
        f"/providers/Microsoft.Compute/disks/{os_disk_name}"
    )
    os_disk["managedDisk"] = managed
    os_profile_in = profile.get("osProfile") or {}
    os_profile: dict[str, Any] = {
        "computerName": computer_name(os_profile_in.get("computerNamePrefix") or vmss_name[:9], record.instance_id),
        "secrets": [],
        "allowExtensionOperations": True,
        "requireGuestProvisionSignal": True,
    }
    if os_profile_in.get("adminUsername"):
        os_profile["adminUsername"] = os_profile_in["adminUsername"]
    for key in ("linuxConfiguration", "windowsConfiguration"):
        if key in os_profile_in:
            os_profile[key] = os_profile_in[key]
    network = profile.get("networkProfile") or {}
    nics = network.get("networkInterfaceConfigurations") or [DEFAULT_NIC]
    vm_path = vm_id(state, record.instance_id)
    properties: dict[str, Any] = {
        "latestModelApplied": record.model_version == state.record.model_version,
        "modelDefinitionApplied": "VirtualMachineScaleSet",
        "vmId": _vm_uuid(state, record),
        "hardwareProfile": {},
        "storageProfile": {
            **({"imageReference": image} if image else {}),
            "osDisk": os_disk,
            "dataDisks": [dict(d) for d in storage.get("dataDisks") or []],
        },
        "osProfile": os_profile,
        "networkProfile": {
            "networkInterfaces": [{"id": f"{vm_path}/networkInterfaces/{nic.get('name', 'nic0')}"} for nic in nics]
        },
        "networkProfileConfiguration": {"networkInterfaceConfigurations": copy.deepcopy(nics)},
        "protectionPolicy": {
            "protectFromScaleIn": record.protect_from_scale_in,
            "protectFromScaleSetActions": record.protect_from_scale_set_actions,
        },
        "provisioningState": view.provisioning.value,
        "timeCreated": render_time(record.created_at),
    }
    if expand_instance_view:
        properties["instanceView"] = vm_instance_view(state, record, view, model=model, render_time=render_time)
    out: dict[str, Any] = {
        "name": name,
        "id": vm_path,
        "type": "Microsoft.Compute/virtualMachines",
        "location": state.vmss.location or "",
        "instanceId": str(record.instance_id),
        "sku": {"name": (model_body.get("sku") or {}).get("name") or "", "tier": "Standard"},
        "etag": f'"{record.generation + 1}"',
        "properties": properties,
    }
    if state.vmss.tags:
        out["tags"] = dict(state.vmss.tags)
    if record.zone is not None:
        out["zones"] = [record.zone]
    return out


def vm_instance_view(
    state: ScaleSetState,
    record: InstanceRecord,
    view: InstanceView,
    *,
    model: VirtualMachineScaleSet,
    render_time: Render,
) -> dict[str, Any]:
    """``VirtualMachineScaleSetVMInstanceView``: statuses are ``[ProvisioningState/..., PowerState/...]``."""
    when = render_time(view.ready_at if view.ready_at is not None else record.action_started_at)
    statuses = [
        provisioning_status(view, when),
        _status(f"PowerState/{view.power.value}", "Info", POWER_DISPLAY[view.power], None),
    ]
    extensions = []
    for ext in model.extensions:
        props = ext.properties
        extensions.append(
            {
                "name": ext.name,
                "type": f"{props.publisher}.{props.type}" if props.publisher else props.type,
                "typeHandlerVersion": record.extension_versions.get(ext.name or "") or props.typeHandlerVersion,
                "statuses": [provisioning_status(view, when)]
                if view.provisioning is not ProvisioningState.FAILED
                else [_status("ProvisioningState/failed", "Error", "Provisioning failed", when, view.error_message)],
            }
        )
    out: dict[str, Any] = {
        "platformUpdateDomain": record.fault_domain,
        "platformFaultDomain": record.fault_domain,
        "computerName": computer_name(
            (model.profile.osProfile.computerNamePrefix if model.profile.osProfile else None) or state.record.name[:9],
            record.instance_id,
        ),
        "vmAgent": {
            "vmAgentVersion": "2.11.1.12",
            "statuses": [_status("ProvisioningState/succeeded", "Info", "Ready", when, "Guest Agent is running")],
        },
        "disks": [
            {
                "name": f"{state.record.name}_{record.instance_id}_OsDisk_1",
                "statuses": [_status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", when)],
            }
        ],
        "extensions": extensions,
        "statuses": statuses,
        "hyperVGeneration": "V2",
    }
    latest = record.model_version == state.record.model_version
    if view.health is not None and latest:
        level, display = HEALTH_DISPLAY[view.health]
        out["vmHealth"] = {"status": _status(view.health.code, level, display, when)}
    return out


def scale_set_instance_view(
    state: ScaleSetState, views: Sequence[InstanceView], *, render_time: Render, now: float
) -> dict[str, Any]:
    """``VirtualMachineScaleSetInstanceView``: instances counted by provisioning status, per extension too."""
    summary = Counter(provisioning_status(v, "")["code"] for v in views)
    when = render_time(now)
    out: dict[str, Any] = {
        "virtualMachine": {"statusesSummary": [{"code": code, "count": n} for code, n in sorted(summary.items())]},
        "extensions": [
            {"name": ext.name, "statusesSummary": [{"code": code, "count": n} for code, n in sorted(summary.items())]}
            for ext in state.vmss.extensions
        ],
        "statuses": [
            _status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", when)
            if state.record.provisioning_state != "Deleting"
            else _status("ProvisioningState/deleting", "Info", "Deleting", when)
        ],
    }
    current = service_state(state.vmss.properties.automaticRepairsPolicy, state.repairs())
    if current is not None:
        out["orchestrationServices"] = [{"serviceName": "AutomaticRepairs", "serviceState": current.value}]
    return out


def skus(state: ScaleSetState) -> dict[str, Any]:
    """``VirtualMachineScaleSetListSkusResult``: the sizes this emulator offers."""
    return {
        "value": [
            {
                "resourceType": "Microsoft.Compute/virtualMachineScaleSets",
                "sku": {"name": size, "tier": "Standard"},
                "capacity": {"minimum": 0, "maximum": 1000, "defaultCapacity": 2, "scaleType": "Automatic"},
            }
            for size in VM_SIZES
        ]
    }


def operation_status(op: Operation, *, render_time: Render) -> dict[str, Any]:
    out: dict[str, Any] = {"name": op.operation_id, "status": op.status.value, "startTime": render_time(op.started_at)}
    if op.ended_at is not None:
        out["endTime"] = render_time(op.ended_at)
    if op.error is not None:
        out["error"] = dict(op.error)
    return out
