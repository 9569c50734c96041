"""What every operation of the services facade starts with: finding the scale set, and refusing what its state
does not allow (a deletion under way, a rolling upgrade in progress)."""

from __future__ import annotations

from typing import Literal

from scaleset.domain import errors
from scaleset.domain.instances import InstanceView
from scaleset.domain.validation import AZURE_CAPACITY_LIMIT, validate_instance_ids
from scaleset.engine.engine import Engine
from scaleset.engine.state import ScaleSetState

RESOURCE_TYPE = "Microsoft.Compute/virtualMachineScaleSets"


def scale_set_id(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{RESOURCE_TYPE}/{name}"


def _key(set_id: str) -> str:
    return set_id.lower()


def arm_id(state: ScaleSetState) -> str:
    """The scale set's ARM id as clients spell it (the engine keys sets by the lower-cased id)."""
    record = state.record
    return scale_set_id(record.subscription, record.resource_group, record.name)


class ServicesBase:
    def __init__(self, engine: Engine, *, capacity_limit: int = AZURE_CAPACITY_LIMIT) -> None:
        self.engine = engine
        self.capacity_limit = capacity_limit

    # ------------------------------------------------------------------ lookups

    def _state(self, subscription: str, resource_group: str, name: str) -> ScaleSetState:
        state = self.engine.state(_key(scale_set_id(subscription, resource_group, name)))
        if state is None:
            raise errors.not_found(
                f"The Resource '{RESOURCE_TYPE}/{name}' under resource group '{resource_group}' was not found.",
                code=errors.RESOURCE_NOT_FOUND,
            )
        return state

    def _not_deleting(self, state: ScaleSetState, operation: str) -> None:
        if state.record.provisioning_state == "Deleting":
            raise errors.operation_not_allowed(
                f"Operation '{operation}' is not allowed on Virtual Machine Scale Set '{state.record.name}' "
                "since it is marked for deletion."
            )

    def _no_rollout(self, state: ScaleSetState, operation: str) -> None:
        rollout, record = state.rollout, state.record
        starting = record.os_upgrade_requested is not None or record.extension_upgrade_requested is not None
        if (rollout is not None and rollout.active) or starting:
            raise errors.operation_not_allowed(
                f"Operation '{operation}' is not allowed on Virtual Machine Scale Set '{state.record.name}' while a "
                "rolling upgrade is in progress. Cancel it with rollingUpgrades/cancel or wait for it to finish."
            )

    def _views(self, state: ScaleSetState) -> list[InstanceView]:
        return self.engine.observe(state, self.engine.clock.now())

    def _ids(self, state: ScaleSetState, ids: object) -> list[int] | Literal["*"]:
        return validate_instance_ids(ids, existing=set(state.instances))
