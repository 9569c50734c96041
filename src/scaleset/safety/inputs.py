"""One loader for every input the safety commands take (issue 6 item 1).

Sources: an ARM template (JSON), ``az vmss show`` / SDK JSON (flattened or not), a Terraform plan (JSON), or a live
scale set through the API (the emulator or real Azure), with its instances. Every input becomes a
:class:`ScaleSetInput`: the scale set as ARM JSON, parsed with Azure's defaults, and the instances when known.

The loader functions are filled in by the loader work; this module fixes the shapes the commands share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scaleset.domain.resources import VirtualMachineScaleSet


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


@dataclass(frozen=True)
class ScaleSetInput:
    name: str
    origin: str  # e.g. "ARM template main.json", "Terraform plan plan.json", "live (emulator)", "live (azure)"
    body: dict[str, Any]  # ARM JSON: location, sku, zones, properties...
    model: VirtualMachineScaleSet  # the body parsed, with Azure's defaults
    instances: tuple[InstanceFacts, ...] | None = None  # None when the source has no instances (files)
    resource_group: str | None = None

    @property
    def capacity(self) -> int:
        if self.instances is not None:
            return len(self.instances)
        return self.model.capacity
