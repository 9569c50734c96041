"""VM instances as the planners see them.

A planner never sees a backend: it sees :class:`InstanceView` values, what the engine knows of each instance at the
moment of one reconcile pass (its facts from the store, its state as the backend observes it ``now``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scaleset.domain.health import HealthState


class ProvisioningState(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"

    @property
    def busy(self) -> bool:
        return self in _BUSY


_BUSY = (ProvisioningState.CREATING, ProvisioningState.UPDATING, ProvisioningState.DELETING)


class PowerState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DEALLOCATING = "deallocating"
    DEALLOCATED = "deallocated"
    UNKNOWN = "unknown"


POWER_DISPLAY = {
    PowerState.STARTING: "VM starting",
    PowerState.RUNNING: "VM running",
    PowerState.STOPPING: "VM stopping",
    PowerState.STOPPED: "VM stopped",
    PowerState.DEALLOCATING: "VM deallocating",
    PowerState.DEALLOCATED: "VM deallocated",
    PowerState.UNKNOWN: "VM status unknown",
}


@dataclass(frozen=True, slots=True)
class InstanceView:
    """One instance at one instant.

    ``health`` is None when the scale set has no health source. ``ready_at`` is when the last action on the
    instance finished (None while it runs); ``eta`` is when a running action is expected to finish, if the backend
    knows; ``stable_until`` is a time before which nothing observable about the instance can change (None: never,
    as far as the backend knows; backends that cannot predict give ``now`` plus their polling interval).
    """

    instance_id: int
    zone: str | None
    fault_domain: int
    model_version: int
    created_at: float
    provisioning: ProvisioningState
    power: PowerState
    health: HealthState | None
    ready_at: float | None = None
    eta: float | None = None
    stable_until: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    protect_from_scale_in: bool = False
    protect_from_scale_set_actions: bool = False
    image_version: str | None = None  # the exact image version the instance runs

    @property
    def busy(self) -> bool:
        return self.provisioning in _BUSY

    @property
    def is_healthy(self) -> bool:
        """Serving: provisioned, running, and healthy by its health source (or running, with no source)."""
        if self.provisioning is not _SUCCEEDED or self.power is not _RUNNING:
            return False
        return self.health is None or self.health is _HEALTHY

    @property
    def is_unhealthy(self) -> bool:
        """Counted against ``maxUnhealthyInstancePercent``: failed, down, Unhealthy or Unknown.

        An instance still Initializing, or busy with an action, is neither healthy nor unhealthy.
        """
        if self.provisioning is _FAILED:
            return True
        if self.provisioning in _BUSY:
            return False
        if self.power is not _RUNNING:
            return True
        return self.health in _UNHEALTHY


POLL_SECONDS = 5.0
"""How often to look again when the backend cannot say when an instance will change."""


def done_by(view: InstanceView, now: float) -> float:
    """When the instance's running action should be over: its ``eta``, or one poll from now if it has none left."""
    return view.eta if view.eta is not None and view.eta > now else now + POLL_SECONDS


def next_look(view: InstanceView, now: float, deadline: float) -> float:
    """When to look again at an idle instance that has until ``deadline`` to turn healthy: its next predicted
    change (none predicted: the deadline; one due already, as real instances always say: one poll from now), never
    after the deadline."""
    change = view.stable_until if view.stable_until is not None else deadline
    return min(deadline, change if change > now else now + POLL_SECONDS)


# Planners ask the properties above of every instance in every pass: the enum members they compare with are module
# constants, since looking a member up on its class costs more than the comparison.
_SUCCEEDED, _FAILED, _RUNNING = ProvisioningState.SUCCEEDED, ProvisioningState.FAILED, PowerState.RUNNING
_HEALTHY, _UNHEALTHY = HealthState.HEALTHY, (HealthState.UNHEALTHY, HealthState.UNKNOWN)


def computer_name(prefix: str, instance_id: int) -> str:
    """Uniform computer names: the prefix, then the id in base 36 over six digits.

    >>> computer_name("web", 37)
    'web000011'
    """
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    value = instance_id
    while value:
        value, rem = divmod(value, 36)
        out = digits[rem] + out
    return prefix + out.rjust(6, "0")
