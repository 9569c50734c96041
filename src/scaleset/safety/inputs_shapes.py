"""The shapes every safety command shares: a scale set as an input (:class:`ScaleSetInput`), its instances
(:class:`InstanceFacts`) and the error an unreadable input raises (:class:`InputError`).

They are defined here, below the readers (``inputs_arm``, ``inputs_terraform``, ``inputs_resource``, ``inputs_live``),
and re-exported by :mod:`scaleset.safety.inputs`, which is where the commands import them from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scaleset.domain.errors import DomainError
from scaleset.domain.resources import VirtualMachineScaleSet
from scaleset.domain.validation import parse_scale_set

VMSS_TYPE = "Microsoft.Compute/virtualMachineScaleSets"

# The parts of a scale set the safety commands read: what decides how a change reaches the instances (the upgrade,
# repair and scale-in policies, the health source, zones, capacity) and what a change of the model consists of
# (image, disks, extensions, custom data, size). Template expressions anywhere else may stay unresolved.
RELEVANT_PATHS = (
    "sku",
    "zones",
    "properties.upgradePolicy",
    "properties.automaticRepairsPolicy",
    "properties.scaleInPolicy",
    "properties.orchestrationMode",
    "properties.overprovision",
    "properties.singlePlacementGroup",
    "properties.platformFaultDomainCount",
    "properties.zoneBalance",
    "properties.virtualMachineProfile.storageProfile",
    "properties.virtualMachineProfile.extensionProfile",
    "properties.virtualMachineProfile.networkProfile.healthProbe",
    "properties.virtualMachineProfile.osProfile.customData",
)


def is_relevant(path: str) -> bool:
    """Whether a dotted ARM path (``properties.upgradePolicy.mode``, ``zones[0]``) is one the commands read."""
    return any(path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")) for prefix in RELEVANT_PATHS)


def on_relevant_path(path: str) -> bool:
    """Whether ``path`` is relevant or holds relevant paths (the root, ``properties``, ``...virtualMachineProfile``)."""
    return not path or is_relevant(path) or any(p.startswith(f"{path}.") for p in RELEVANT_PATHS)


class InputError(Exception):
    """An input that cannot be read; the message names the file and the key or line."""


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    zone: str | None = None
    image_version: str | None = None
    latest_model_applied: bool | None = None
    health: str | None = None  # "Initializing" | "Healthy" | "Unhealthy" | "Unknown", None when not reported
    provisioning_state: str | None = None
    power_state: str | None = None  # "running", "stopped", "deallocated", ...
    protect_from_scale_in: bool = False
    protect_from_scale_set_actions: bool = False
    fault_domain: int | None = None  # instanceView.platformFaultDomain, when the source has it
    statuses: tuple[str, ...] = ()  # every instance-view status code, e.g. ("ProvisioningState/succeeded", ...)


@dataclass(frozen=True)
class ScaleSetInput:
    name: str
    origin: str  # e.g. "ARM template main.json", "Terraform plan plan.json", "live (emulator)", "live (azure)"
    body: dict[str, Any]  # ARM JSON: location, sku, zones, properties...
    model: VirtualMachineScaleSet  # the body parsed, with Azure's defaults
    instances: tuple[InstanceFacts, ...] | None = None  # None when the source has no instances (files)
    resource_group: str | None = None
    kind: str = ""  # "arm-template" | "resource-json" | "terraform-plan" | "live"
    # Dotted ARM paths whose value in ``body`` is a placeholder, with what it stands for: a template expression
    # that cannot be evaluated offline (outside RELEVANT_PATHS) or a Terraform value known only after apply.
    unresolved: dict[str, str] = field(default_factory=dict)

    @property
    def capacity(self) -> int:
        if self.instances is not None:
            return len(self.instances)
        return self.model.capacity


def lookup(body: Any, path: str) -> tuple[bool, Any]:
    """``(present, value)`` of a dotted path (no list indexes) in raw JSON; present is False for a missing key."""
    node = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def to_input(
    body: dict[str, Any],
    *,
    name: str,
    origin: str,
    kind: str,
    resource_group: str | None = None,
    instances: tuple[InstanceFacts, ...] | None = None,
    unresolved: dict[str, str] | None = None,
) -> ScaleSetInput:
    """Parse ``body`` with Azure's defaults (shape errors only: no range or combination checks, so an audit still
    sees the bad values) into a :class:`ScaleSetInput`."""
    try:
        model = parse_scale_set(body)
    except DomainError as exc:
        where = f" at {exc.target}" if exc.target else ""
        raise InputError(f"{origin}: scale set '{name}'{where}: {exc.message}") from None
    return ScaleSetInput(
        name=name,
        origin=origin,
        body=body,
        model=model,
        instances=instances,
        resource_group=resource_group,
        kind=kind,
        unresolved=dict(unresolved or {}),
    )
