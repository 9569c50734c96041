"""The record a rolling upgrade keeps, and the ``rollingUpgrades/latest`` document made from it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RollingStatusCode(StrEnum):
    ROLLING_FORWARD = "RollingForward"
    CANCELLED = "Cancelled"
    COMPLETED = "Completed"
    FAULTED = "Faulted"


class Phase(StrEnum):
    """Where the batch loop is. ``IDLE`` before the first batch and between batches without a pause."""

    IDLE = "idle"
    BATCH = "batch"
    PAUSE = "pause"
    ROLLING_BACK = "rollingBack"
    DONE = "done"


class Progress(BaseModel):
    successfulInstanceCount: int = 0
    failedInstanceCount: int = 0
    inProgressInstanceCount: int = 0
    pendingInstanceCount: int = 0


OS_UPGRADE = "OSUpgrade"
MODEL_UPGRADE = "ModelUpgrade"


class Rollout(BaseModel):
    """One rolling upgrade, persisted whole after every pass; resuming reads it back and carries on.

    Instance ids are the scale set's. With maxSurge, ``batch`` holds the *new* instances and ``surge_pairs`` maps
    each to the old instance it replaces.

    An OS upgrade (``kind`` ``OSUpgrade``) drives instances to ``target_image_version`` rather than to a model
    version; ``revert_failed`` rolls each instance that fails its health wait back to its previous image at once
    (automatic OS upgrades, unless ``disableAutomaticRollback``), and ``deferral`` makes every instance wait for
    ``approveRollingUpgrade`` before it is upgraded.
    """

    model_config = ConfigDict(extra="forbid")

    rollout_id: str
    set_id: str
    kind: str = MODEL_UPGRADE
    policy: dict[str, Any]
    target_version: int
    started_at: float
    code: RollingStatusCode = RollingStatusCode.ROLLING_FORWARD
    last_action: str = "Start"
    last_action_at: float
    ended_at: float | None = None
    phase: Phase = Phase.IDLE
    batch_number: int = 0
    batch: list[int] = Field(default_factory=list)
    batch_zone: str | None = None
    batch_started_at: float | None = None
    surge_pairs: dict[int, int] = Field(default_factory=dict)
    pause_until: float | None = None
    attempted: list[int] = Field(default_factory=list)
    succeeded: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)
    previous_versions: dict[int, int] = Field(default_factory=dict)
    rolling_back: list[int] = Field(default_factory=list)
    rolled_back: list[int] = Field(default_factory=list)
    cancel_requested: bool = False
    error: dict[str, str] | None = None
    operation_id: str | None = None
    progress: Progress = Field(default_factory=Progress)
    started_by: str | None = None  # OS upgrades: "User" or "Platform"
    target_image: dict[str, Any] | None = None  # OS upgrades: the image reference, with exactVersion
    target_image_version: str | None = None
    revert_failed: bool = False
    reverting: list[int] = Field(default_factory=list)
    revert_started: dict[int, float] = Field(default_factory=dict)
    rollback_succeeded: int = 0
    rollback_failed: int = 0
    rollback_error: dict[str, str] | None = None
    deferral: bool = False
    approve_all: bool = False
    approved: list[int] = Field(default_factory=list)
    awaiting_approval: list[int] = Field(default_factory=list)
    target_extensions: dict[str, str] | None = None  # extension upgrades: extension name -> version

    def clone(self) -> Rollout:
        """A copy that shares nothing mutable with this one (cheaper than a generic deep copy)."""
        copied = self.model_copy()
        for name in (
            "batch",
            "attempted",
            "succeeded",
            "failed",
            "rolling_back",
            "rolled_back",
            "reverting",
            "approved",
            "awaiting_approval",
        ):
            setattr(copied, name, list(getattr(self, name)))
        copied.surge_pairs = dict(self.surge_pairs)
        copied.previous_versions = dict(self.previous_versions)
        copied.revert_started = dict(self.revert_started)
        copied.policy = dict(self.policy)
        copied.progress = self.progress.model_copy()
        copied.error = dict(self.error) if self.error is not None else None
        return copied

    @property
    def active(self) -> bool:
        """Still moving instances: rolling forward, finishing a cancelled batch, or rolling back."""
        return self.phase is not Phase.DONE or bool(self.reverting)


def status_document(rollout: Rollout, *, location: str, render_time: Any) -> dict[str, Any]:
    """``RollingUpgradeStatusInfo`` as ``GET rollingUpgrades/latest`` returns it (no ``id``/``name``, as Azure).

    ``render_time`` turns an engine timestamp into the ISO 8601 string clients see.
    """
    running: dict[str, Any] = {
        "code": rollout.code.value,
        "startTime": render_time(rollout.started_at),
        "lastAction": rollout.last_action,
        "lastActionTime": render_time(rollout.last_action_at),
    }
    properties: dict[str, Any] = {
        "policy": dict(rollout.policy),
        "runningStatus": running,
        "progress": rollout.progress.model_dump(),
    }
    if rollout.error is not None:
        properties["error"] = dict(rollout.error)
    return {
        "location": location,
        "type": "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades",
        "properties": properties,
    }


def history_entry(rollout: Rollout, *, location: str, render_time: Any) -> dict[str, Any]:
    """One ``UpgradeOperationHistoricalStatusInfo`` of ``GET osUpgradeHistory`` (reference §5.1)."""
    running: dict[str, Any] = {"code": rollout.code.value, "startTime": render_time(rollout.started_at)}
    if rollout.ended_at is not None and not rollout.active:
        running["endTime"] = render_time(rollout.ended_at)
    rollback: dict[str, Any] = {
        "successfullyRolledbackInstanceCount": rollout.rollback_succeeded,
        "failedRolledbackInstanceCount": rollout.rollback_failed,
    }
    if rollout.rollback_error is not None:
        rollback["rollbackError"] = dict(rollout.rollback_error)
    properties: dict[str, Any] = {
        "runningStatus": running,
        "progress": rollout.progress.model_dump(),
        "startedBy": rollout.started_by or "Unknown",
        "rollbackInfo": rollback,
    }
    if rollout.target_image is not None:
        properties["targetImageReference"] = dict(rollout.target_image)
    if rollout.error is not None:
        properties["error"] = dict(rollout.error)
    return {
        "properties": properties,
        "type": "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades",
        "location": location,
    }
