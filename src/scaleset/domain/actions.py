"""What a planner asks the engine to do to instances, and what it records about why.

Planners return these as data; the engine applies them through a backend. Nothing here does anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class UpgradeReason(StrEnum):
    ROLLING = "rolling"
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    ROLLBACK = "rollback"
    EXTENSION = "extension"  # extension versions only: the image stays


class PowerAction(StrEnum):
    START = "start"
    RESTART = "restart"
    POWER_OFF = "powerOff"
    DEALLOCATE = "deallocate"


@dataclass(frozen=True, slots=True)
class Upgrade:
    """Bring an instance to model ``to_version`` in place (update, or OS disk swap for an image change)."""

    instance_id: int
    to_version: int
    reason: UpgradeReason


@dataclass(frozen=True, slots=True)
class Reimage:
    """A fresh OS disk from the current model's image; the instance ends on ``to_version``."""

    instance_id: int
    to_version: int
    data_disks: bool = False


@dataclass(frozen=True, slots=True)
class Create:
    instance_id: int
    zone: str | None
    fault_domain: int
    version: int
    reason: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove an instance. ``force`` skips the graceful shutdown (``forceDeletion``)."""

    instance_id: int
    reason: str
    force: bool = False


@dataclass(frozen=True, slots=True)
class Power:
    instance_id: int
    action: PowerAction


Action = Upgrade | Reimage | Create | Delete | Power


@dataclass(frozen=True, slots=True)
class Event:
    """One decision, for the activity log: ``kind`` is a stable name, ``data`` its facts."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
