"""The seam between the engine and wherever instances run.

The engine records *what* was asked of an instance on its :class:`InstanceRecord` (the action, the model version,
the image) and then calls :meth:`InstanceBackend.apply`; the backend makes it happen and keeps what it needs in
``record.backend``. :meth:`InstanceBackend.observe` reports the instance at ``now`` as an :class:`InstanceView`, or
None once a delete has finished. Every backend passes ``tests/backends/conformance.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from scaleset.domain.health import Answer, HealthState, ProbeSettings
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.records import InstanceRecord
from scaleset.domain.resources import ImageReference

# Action kinds the engine puts in ``InstanceRecord.action``.
CREATE = "create"
UPGRADE = "upgrade"
REIMAGE = "reimage"
DELETE = "delete"
START = "start"
RESTART = "restart"
POWER_OFF = "powerOff"
DEALLOCATE = "deallocate"


@dataclass(frozen=True, slots=True)
class InstanceModel:
    """The parts of a scale-set model version that decide how an instance behaves."""

    version: int
    image_version: str | None
    extensions: tuple[str, ...]
    probe: ProbeSettings | None
    image: ImageReference | None = None
    body: Mapping[str, Any] | None = field(default=None, compare=False)  # the model version's scale-set body


class InstanceBackend(Protocol):
    def apply(self, record: InstanceRecord, *, set_id: str, model: InstanceModel, now: float) -> None:
        """Start ``record.action`` on the instance (its record already says what and to which model)."""

    def observe(self, record: InstanceRecord, *, set_id: str, model: InstanceModel, now: float) -> InstanceView | None:
        """The instance at ``now``; None once it has been deleted."""

    def inject_health(self, record: InstanceRecord, answer: Answer, *, now: float) -> None:
        """From ``now`` on, the instance's application answers probes with ``answer`` (fault injection)."""

    def close(self) -> None:
        """Release everything the backend holds (processes, sockets)."""


def instance_view(
    record: InstanceRecord,
    *,
    provisioning: ProvisioningState,
    power: PowerState,
    health: HealthState | None,
    ready_at: float | None = None,
    eta: float | None = None,
    stable_until: float | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> InstanceView:
    """An :class:`InstanceView` of ``record``: its facts from the record, its state as the backend observes it."""
    return InstanceView(
        instance_id=record.instance_id,
        zone=record.zone,
        fault_domain=record.fault_domain,
        model_version=record.model_version,
        created_at=record.created_at,
        provisioning=provisioning,
        power=power,
        health=health,
        ready_at=ready_at,
        eta=eta,
        stable_until=stable_until,
        error_code=error_code,
        error_message=error_message,
        protect_from_scale_in=record.protect_from_scale_in,
        protect_from_scale_set_actions=record.protect_from_scale_set_actions,
        image_version=record.image_version,
    )
