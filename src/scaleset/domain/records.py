"""The persisted records: what the store keeps for each scale set, instance and operation.

Plain dataclasses with explicit (de)serialisation: instance records are written by the thousand, so they avoid
per-record validation cost. Rollouts and operations are pydantic models (a handful per scale set).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


@dataclass(slots=True)
class InstanceRecord:
    """One VM instance. ``action`` is the last thing asked of it; the backend decides how it unfolds."""

    instance_id: int
    zone: str | None
    fault_domain: int
    model_version: int
    created_at: float
    image_version: str | None = None
    previous_image_version: str | None = None
    protect_from_scale_in: bool = False
    protect_from_scale_set_actions: bool = False
    power_goal: str = "running"
    action: str = "create"
    action_started_at: float = 0.0
    action_reason: str = ""
    force: bool = False  # the current delete skips the graceful shutdown (forceDeletion)
    extension_versions: dict[str, str] = field(default_factory=dict)  # extension name -> exact version it runs
    generation: int = 0
    backend: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies recursively and dominated large runs. The store serialises the
        # result at once, so sharing ``backend`` with the record is safe.
        return {name: getattr(self, name) for name in _INSTANCE_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceRecord:
        return cls(**data)


_INSTANCE_FIELDS = tuple(f.name for f in fields(InstanceRecord))


@dataclass(slots=True)
class ScaleSetRecord:
    """A scale set: its ARM identity, the stored body (as the client sent it, merged), and the engine's bookkeeping.

    ``model_version`` increments whenever the instance-relevant part of the model changes; ``models`` in the store
    keeps every version so instances on an old one (and rollbacks to it) can be described.
    """

    set_id: str
    subscription: str
    resource_group: str
    name: str
    body: dict[str, Any]
    model_version: int = 1
    model_hash: str = ""
    next_instance_id: int = 0
    etag: int = 1
    created_at: float = 0.0
    unique_id: str = ""
    rollout_requested: bool = False
    active_rollout: str | None = None
    wake_at: float | None = None
    provisioning_state: str = "Succeeded"
    os_upgrade_requested: str | None = None  # "User" after POST osRollingUpgrade, until the next pass starts it
    os_upgrade_operation: str | None = None
    os_upgrade_attempted: str | None = None  # the image version the last platform OS upgrade targeted
    extension_upgrade_requested: str | None = None  # "User" after POST extensionRollingUpgrade
    extension_upgrade_operation: str | None = None
    extension_upgrade_attempted: dict[str, str] = field(default_factory=dict)  # the last platform extension targets
    quiet_since: float = 0.0  # the last scale-set-level change (request or rollout end): repairs' grace counts from it
    repairs: dict[str, Any] = field(default_factory=dict)  # the automatic-repairs book (domain/repairs.py)

    def to_dict(self) -> dict[str, Any]:
        # Shallow, as InstanceRecord.to_dict: every pass persists the record, and a deep copy of ``body`` was most
        # of a pass's cost. The store serialises the result at once.
        return {name: getattr(self, name) for name in _SET_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScaleSetRecord:
        return cls(**data)


_SET_FIELDS = tuple(f.name for f in fields(ScaleSetRecord))


class OperationStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class Operation(BaseModel):
    """A long-running operation as ARM reports it through ``Azure-AsyncOperation``.

    It finishes when everything it waits for has: the instances it touched are idle, and its rollout (if any) has
    ended. ``pending`` operations have not yet been given their instances: the next pass of the scale set does so.
    """

    model_config = ConfigDict(extra="forbid")

    operation_id: str
    kind: str
    set_id: str
    status: OperationStatus = OperationStatus.IN_PROGRESS
    started_at: float
    ended_at: float | None = None
    error: dict[str, str] | None = None
    pending: bool = True
    instance_ids: list[int] = Field(default_factory=list)
    rollout_id: str | None = None

    @property
    def done(self) -> bool:
        return self.status is not OperationStatus.IN_PROGRESS
