"""The facade that every edge calls (the ARM API, the scenario runner): one method per user-visible operation.

Each method validates with the domain, changes engine state, persists, and asks for a reconcile pass. Errors are
:class:`scaleset.domain.errors.DomainError`; the edges render them. Conflicts while a rolling upgrade runs are
refused with 409 ``OperationNotAllowed`` rather than interleaved (docs/semantics.md, "Concurrency").
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from scaleset.domain import errors
from scaleset.domain.actions import Delete, Event, Power, PowerAction
from scaleset.domain.health import Answer
from scaleset.domain.instances import InstanceView, ProvisioningState
from scaleset.domain.merge import merge_patch, merge_put
from scaleset.domain.records import Operation, ScaleSetRecord
from scaleset.domain.resources import UpgradeMode, VirtualMachineScaleSet
from scaleset.domain.upgrade.manual import plan_manual_upgrade, plan_reimage
from scaleset.domain.upgrade.rolling import request_cancel
from scaleset.domain.upgrade.status import RollingStatusCode, Rollout
from scaleset.domain.validation import (
    parse_scale_set,
    validate_protection_policy,
    validate_scale_set,
)
from scaleset.engine.clock import render_time
from scaleset.engine.lookups import RESOURCE_TYPE, _key, arm_id, scale_set_id
from scaleset.engine.operations import CANCEL_OPERATION
from scaleset.engine.platform import PlatformServices
from scaleset.engine.state import ScaleSetState, model_hash

__all__ = ["RESOURCE_TYPE", "Services", "scale_set_id"]

WRITE_ONLY = (("osProfile", "adminPassword"),)


def _normalise_location(location: str | None) -> str | None:
    return location.replace(" ", "").lower() if location else location


class Services(PlatformServices):
    """Every user-visible operation; the lookups and the platform's own operations come from the bases."""

    # ------------------------------------------------------------------ scale set CRUD

    def put_scale_set(
        self, subscription: str, resource_group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], Operation, bool]:
        """Create (True) or update (False) a scale set; returns the body to answer with and its operation."""
        state = self.engine.state(_key(scale_set_id(subscription, resource_group, name)))
        if state is None:
            return self._create(subscription, resource_group, name, body)
        rendered, op = self._update(state, merge_put(state.record.body, body), "PUT")
        return rendered, op, False

    def patch_scale_set(
        self, subscription: str, resource_group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], Operation]:
        state = self._state(subscription, resource_group, name)
        return self._update(state, merge_patch(state.record.body, body), "PATCH")

    def _create(
        self, subscription: str, resource_group: str, name: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], Operation, bool]:
        merged = merge_put(None, body)
        vmss = parse_scale_set(merged)
        validate_scale_set(vmss, old=None, capacity_limit=self.capacity_limit)
        vmss.location = _normalise_location(vmss.location)
        if vmss.sku.tier is None:
            vmss.sku.tier = "Standard"
        stored = vmss.model_dump(mode="json", exclude_none=True)
        engine = self.engine
        now = engine.clock.now()
        set_id = scale_set_id(subscription, resource_group, name)
        record = ScaleSetRecord(
            set_id=_key(set_id),
            subscription=subscription,
            resource_group=resource_group,
            name=name,
            body=stored,
            model_hash=model_hash(stored),
            created_at=now,
            unique_id=engine.new_id(),
            quiet_since=now,
        )
        state = ScaleSetState(record=record, vmss=vmss)
        with engine.store.transaction():
            engine.store.put_scale_set(record.set_id, record.to_dict())
            engine.store.put_model(record.set_id, 1, stored)
        engine.add_state(state)
        op = engine.start_operation(state, "create")
        engine.emit(state, Event("scaleSetCreated", {"capacity": vmss.capacity, "mode": vmss.upgrade_mode.value}))
        engine.persist(state)
        engine.wake(state.set_id)
        return self.render(state), op, True

    def _update(self, state: ScaleSetState, merged: dict[str, Any], verb: str) -> tuple[dict[str, Any], Operation]:
        engine = self.engine
        self._not_deleting(state, "update")
        vmss = parse_scale_set(merged)
        validate_scale_set(vmss, old=state.vmss, capacity_limit=self.capacity_limit)
        vmss.location = _normalise_location(vmss.location)
        stored = vmss.model_dump(mode="json", exclude_none=True)
        new_hash = model_hash(stored)
        record = state.record
        model_changed = new_hash != record.model_hash
        if model_changed:
            self._no_rollout(state, "update")
        now = engine.clock.now()
        old_capacity = state.vmss.capacity
        with engine.store.transaction():
            if model_changed:
                record.model_version += 1
                record.model_hash = new_hash
                engine.store.put_model(record.set_id, record.model_version, stored)
            record.body = stored
            record.etag += 1
            state.vmss = vmss
            rollout_active = state.rollout is not None and state.rollout.active
            if vmss.upgrade_mode is UpgradeMode.ROLLING and not rollout_active:
                record.rollout_requested = True
            op = engine.start_operation(state, "update")
            engine.mark_set_change(state)
            engine.emit(
                state,
                Event(
                    "scaleSetUpdated",
                    {
                        "verb": verb,
                        "modelChanged": model_changed,
                        "modelVersion": record.model_version,
                        "mode": vmss.upgrade_mode.value,
                        "capacity": {"from": old_capacity, "to": vmss.capacity},
                    },
                ),
            )
            engine.persist(state)
        engine.wake(state.set_id, now)
        return self.render(state), op

    def delete_scale_set(self, subscription: str, resource_group: str, name: str, *, force: bool = False) -> Operation:
        """``DELETE {vmss}``: the scale set's pass deletes every instance, then the set. With ``force``
        (``forceDeletion=true``) the instances not yet being deleted are force-deleted here and now."""
        state = self._state(subscription, resource_group, name)
        engine = self.engine
        if state.record.provisioning_state != "Deleting":
            state.record.provisioning_state = "Deleting"
            if state.rollout is not None and state.rollout.active:
                state.rollout = (
                    request_cancel(state.rollout, now=engine.clock.now())
                    if state.rollout.code is RollingStatusCode.ROLLING_FORWARD
                    else state.rollout
                )
                state.rollout_dirty = True
        if force:
            now = engine.clock.now()
            for view in self._views(state):
                if view.provisioning is not ProvisioningState.DELETING:
                    engine.apply(state, Delete(view.instance_id, reason="scaleSetDeleted", force=True), now)
        op = engine.start_operation(state, "delete", pending=False)
        engine.emit(state, Event("scaleSetDeleting", {"instances": len(state.instances), "forceDeletion": force}))
        engine.persist(state)
        engine.wake(state.set_id)
        return op

    def get_scale_set(self, subscription: str, resource_group: str, name: str) -> dict[str, Any]:
        return self.render(self._state(subscription, resource_group, name))

    def list_scale_sets(self, subscription: str, resource_group: str | None = None) -> list[dict[str, Any]]:
        out = []
        for state in self.engine.states():
            record = state.record
            if record.subscription.lower() != subscription.lower():
                continue
            if resource_group is not None and record.resource_group.lower() != resource_group.lower():
                continue
            out.append(self.render(state))
        return out

    def render(self, state: ScaleSetState) -> dict[str, Any]:
        record = state.record
        body = copy.deepcopy(record.body)
        profile = body.setdefault("properties", {}).get("virtualMachineProfile") or {}
        for path in WRITE_ONLY:
            node: Any = profile
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
        for ext in (profile.get("extensionProfile") or {}).get("extensions") or []:
            (ext.get("properties") or {}).pop("protectedSettings", None)
        properties = body["properties"]
        properties["provisioningState"] = self._provisioning_state(state)
        properties["uniqueId"] = record.unique_id
        properties["timeCreated"] = render_time(record.created_at)
        return {
            "id": arm_id(state),
            "name": record.name,
            "type": RESOURCE_TYPE,
            **body,
            "etag": f'"{record.etag}"',
        }

    def _provisioning_state(self, state: ScaleSetState) -> str:
        if state.record.provisioning_state == "Deleting":
            return "Deleting"
        kinds = {op.kind for op in state.operations.values() if not op.done}
        if "create" in kinds:
            return "Creating"
        if "update" in kinds:
            return "Updating"
        return "Succeeded"

    # ------------------------------------------------------------------ instance actions

    def update_instances(self, subscription: str, resource_group: str, name: str, ids: object) -> Operation:
        """``manualupgrade``: bring the named instances (or ``"*"``) to the latest model."""
        state = self._state(subscription, resource_group, name)
        self._not_deleting(state, "manualUpgrade")
        self._no_rollout(state, "manualUpgrade")
        chosen = self._ids(state, ids)
        plan = plan_manual_upgrade(self._views(state), chosen, target_version=state.record.model_version)
        return self._run_instance_plan(state, "manualUpgrade", plan.actions, plan.events, plan.instance_ids)

    def reimage(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        ids: object | None,
        *,
        data_disks: bool = False,
        scale_set_action: bool = True,
    ) -> Operation:
        state = self._state(subscription, resource_group, name)
        self._not_deleting(state, "reimage")
        if scale_set_action:
            self._no_rollout(state, "reimage")
        chosen = "*" if ids is None else self._ids(state, ids)
        plan = plan_reimage(
            self._views(state),
            chosen,
            target_version=state.record.model_version,
            data_disks=data_disks,
            scale_set_action=scale_set_action,
        )
        return self._run_instance_plan(state, "reimage", plan.actions, plan.events, plan.instance_ids)

    def power(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        ids: object | None,
        action: PowerAction,
        *,
        scale_set_action: bool = True,
    ) -> Operation:
        state = self._state(subscription, resource_group, name)
        self._not_deleting(state, action.value)
        chosen = "*" if ids is None else self._ids(state, ids)
        views = [v for v in self._views(state) if chosen == "*" or v.instance_id in chosen]
        skipped = [v.instance_id for v in views if scale_set_action and v.protect_from_scale_set_actions]
        targets = [v.instance_id for v in views if v.instance_id not in skipped]
        actions = [Power(i, action) for i in targets]
        event = Event(
            action.value, {"instanceIds": [str(i) for i in targets], "skippedProtected": [str(i) for i in skipped]}
        )
        return self._run_instance_plan(state, action.value, actions, [event], targets)

    def delete_instances(
        self, subscription: str, resource_group: str, name: str, ids: object, *, force: bool = False
    ) -> Operation:
        """``POST delete`` (and a VM's ``DELETE``): remove the named instances; the capacity drops by as many.

        A user operation on the instances: protection does not apply (reference §5.4). ``force``
        (``forceDeletion=true``) skips the graceful shutdown."""
        state = self._state(subscription, resource_group, name)
        self._not_deleting(state, "deleteInstances")
        chosen = self._ids(state, ids)
        views = self._views(state)
        targets = [
            v.instance_id
            for v in views
            if (chosen == "*" or v.instance_id in chosen) and v.provisioning is not ProvisioningState.DELETING
        ]
        rollout = state.rollout
        if rollout is not None and rollout.active:
            busy = set(rollout.batch) | set(rollout.surge_pairs.values())
            clash = sorted(busy & set(targets))
            if clash:
                raise errors.operation_not_allowed(
                    f"Instances {', '.join(map(str, clash))} are being upgraded by the rolling upgrade in progress "
                    "and cannot be deleted until their batch finishes."
                )
        body = copy.deepcopy(state.record.body)
        body.setdefault("sku", {})["capacity"] = max(0, state.vmss.capacity - len(targets))
        state.record.body = body
        state.vmss = VirtualMachineScaleSet.model_validate(body)
        actions = [Delete(i, reason="deleteInstances", force=force) for i in targets]
        event = Event(
            "deleteInstances",
            {"instanceIds": [str(i) for i in targets], "capacity": state.vmss.capacity, "forceDeletion": force},
        )
        return self._run_instance_plan(state, "deleteInstances", list(actions), [event], targets)

    def _run_instance_plan(
        self,
        state: ScaleSetState,
        kind: str,
        actions: Sequence[Any],
        events: Sequence[Event],
        instance_ids: Sequence[int],
    ) -> Operation:
        engine = self.engine
        now = engine.clock.now()
        for action in actions:
            engine.apply(state, action, now)
        for event in events:
            engine.emit(state, event)
        op = engine.start_operation(state, kind, instance_ids=instance_ids, pending=False)
        engine.mark_set_change(state)
        engine.persist(state)
        engine.wake(state.set_id, now)
        return op

    # ------------------------------------------------------------------ rolling upgrades

    def cancel_rolling_upgrade(self, subscription: str, resource_group: str, name: str) -> Operation:
        state = self._state(subscription, resource_group, name)
        engine = self.engine
        now = engine.clock.now()
        cancelled = request_cancel(state.rollout, now=now)
        state.rollout = cancelled
        state.rollout_dirty = True
        engine.emit(
            state,
            Event(
                "cancelRequested",
                {"rolloutId": cancelled.rollout_id, "batchInFlight": [str(i) for i in cancelled.batch]},
            ),
        )
        op = engine.start_operation(state, CANCEL_OPERATION, rollout_id=cancelled.rollout_id, pending=False)
        engine.mark_set_change(state)
        engine.persist(state)
        engine.wake(state.set_id, now)
        return op

    def latest_rolling_upgrade(self, subscription: str, resource_group: str, name: str) -> Rollout:
        state = self._state(subscription, resource_group, name)
        if state.rollout is None:
            raise errors.not_found(
                f"No rolling upgrade has run on Virtual Machine Scale Set '{name}'.", code=errors.NOT_FOUND
            )
        return state.rollout

    # ------------------------------------------------------------------ VMs

    def instances(self, subscription: str, resource_group: str, name: str) -> list[InstanceView]:
        return self._views(self._state(subscription, resource_group, name))

    def set_protection(
        self,
        subscription: str,
        resource_group: str,
        name: str,
        instance_id: object,
        *,
        protect_from_scale_in: bool,
        protect_from_scale_set_actions: bool,
    ) -> None:
        state = self._state(subscription, resource_group, name)
        ids = self._ids(state, [instance_id])
        validate_protection_policy(protect_from_scale_in, protect_from_scale_set_actions)
        assert ids != "*"
        record = state.instances[ids[0]]
        record.protect_from_scale_in = protect_from_scale_in
        record.protect_from_scale_set_actions = protect_from_scale_set_actions
        state.touch(record.instance_id)
        self.engine.emit(
            state,
            Event(
                "protectionChanged",
                {
                    "instanceId": str(record.instance_id),
                    "protectFromScaleIn": protect_from_scale_in,
                    "protectFromScaleSetActions": protect_from_scale_set_actions,
                },
            ),
        )
        self.engine.persist(state)
        self.engine.wake(state.set_id)  # a scale-in that protection held back may go on now

    def set_health(self, subscription: str, resource_group: str, name: str, ids: object, answer: Answer) -> list[int]:
        """Fault injection: from now on the named instances' applications answer probes with ``answer``."""
        state = self._state(subscription, resource_group, name)
        chosen = self._ids(state, ids)
        targets = sorted(state.instances) if chosen == "*" else list(chosen)
        self.engine.inject_health(state, targets, answer)
        self.engine.emit(
            state, Event("healthInjected", {"instanceIds": [str(i) for i in targets], "answer": answer.value})
        )
        self.engine.persist(state)
        self.engine.wake(state.set_id)
        return targets

    # ------------------------------------------------------------------ operations

    def operation(self, operation_id: str) -> Operation:
        for state in self.engine.states():
            op = state.operations.get(operation_id)
            if op is not None:
                return op
        data = self.engine.store.get_operation(operation_id)
        if data is None:
            raise errors.not_found(f"Operation '{operation_id}' was not found.")
        return Operation.model_validate(data)
