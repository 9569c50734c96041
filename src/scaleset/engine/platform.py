"""The platform's own operations of the services facade: OS image and extension upgrades started by a user,
their history and approval, and the orchestration services (automatic repairs)."""

from __future__ import annotations

from scaleset.domain import errors
from scaleset.domain.actions import Event
from scaleset.domain.records import Operation
from scaleset.domain.repairs import set_service_state
from scaleset.domain.upgrade.os_upgrade import USER
from scaleset.domain.upgrade.status import OS_UPGRADE, Rollout
from scaleset.domain.validation import validate_orchestration_request
from scaleset.engine.lookups import ServicesBase, arm_id

HISTORY_LENGTH = 5
HISTORY_SECONDS = 60 * 86400.0  # "the last five OS upgrade attempts from the past two months"


class PlatformServices(ServicesBase):
    def catalogue_changed(self, announce: Event | None = None) -> tuple[list[str], list[str]]:
        """An image or extension version was published or removed: every scale set looks again. Returns the ARM ids
        of the scale sets that start an automatic OS upgrade, and of those that start an extension upgrade; with
        ``announce``, the change goes to every scale set's activity log (with the first list)."""
        engine = self.engine
        os_upgrades = [arm_id(state) for state in engine.catalogue_changed()]
        extension_upgrades = [arm_id(state) for state in engine.extension_upgrades_due()]
        if announce is not None:
            for state in engine.states():
                engine.emit(state, Event(announce.kind, {**announce.data, "automaticOSUpgrades": os_upgrades}))
                engine.persist(state)
        return os_upgrades, extension_upgrades

    def start_os_upgrade(self, subscription: str, resource_group: str, name: str) -> Operation:
        """``POST osRollingUpgrade``: roll every instance to the newest image version, no automatic rollback."""
        return self._request_upgrade(subscription, resource_group, name, "osRollingUpgrade")

    def start_extension_upgrade(self, subscription: str, resource_group: str, name: str) -> Operation:
        """``POST extensionRollingUpgrade``: bring extensions with ``enableAutomaticUpgrade`` to their newest
        published versions, batch by batch under the scale set's rolling policy."""
        return self._request_upgrade(subscription, resource_group, name, "extensionRollingUpgrade")

    def _request_upgrade(self, subscription: str, resource_group: str, name: str, kind: str) -> Operation:
        """Record a user's request for an OS or extension upgrade; the next pass starts it (engine/starts.py)."""
        state = self._state(subscription, resource_group, name)
        self._not_deleting(state, kind)
        self._no_rollout(state, kind)  # also refuses while another user-requested upgrade waits for its pass
        record = state.record
        if record.rollout_requested:
            raise errors.operation_not_allowed(
                f"Operation '{kind}' is not allowed on Virtual Machine Scale Set '{name}' while another rolling "
                "upgrade is starting."
            )
        engine = self.engine
        op = engine.start_operation(state, kind)
        if kind == "osRollingUpgrade":
            record.os_upgrade_requested, record.os_upgrade_operation = USER, op.operation_id
        else:
            record.extension_upgrade_requested, record.extension_upgrade_operation = USER, op.operation_id
        engine.mark_set_change(state)
        engine.emit(state, Event(f"{kind.removesuffix('RollingUpgrade')}UpgradeRequested", {"startedBy": USER}))
        engine.persist(state)
        engine.wake(state.set_id)
        return op

    def os_upgrade_history(self, subscription: str, resource_group: str, name: str) -> list[Rollout]:
        """The last five OS upgrades of the past 60 days, newest first (reference §5.1)."""
        state = self._state(subscription, resource_group, name)
        now = self.engine.clock.now()
        found = []
        for rollout_id, data in reversed(self.engine.store.list_rollouts(state.set_id)):
            if state.rollout is not None and rollout_id == state.rollout.rollout_id:
                rollout = state.rollout
            else:
                rollout = Rollout.model_validate(data)
            if rollout.kind != OS_UPGRADE or rollout.started_at < now - HISTORY_SECONDS:
                continue
            found.append(rollout)
            if len(found) == HISTORY_LENGTH:
                break
        return found

    def approve_rolling_upgrade(
        self, subscription: str, resource_group: str, name: str, ids: object | None
    ) -> Operation:
        """``approveRollingUpgrade``: let deferred instances of the running OS upgrade go ahead (all when no ids)."""
        state = self._state(subscription, resource_group, name)
        rollout = state.rollout
        if rollout is None or not rollout.active or rollout.kind != OS_UPGRADE or not rollout.deferral:
            raise errors.operation_not_allowed(
                f"There is no OS rolling upgrade waiting for approval on Virtual Machine Scale Set '{name}'."
            )
        chosen = "*" if ids is None else self._ids(state, ids)
        approved = rollout.clone()
        if chosen == "*":
            approved.approve_all = True
        else:
            approved.approved = sorted(set(approved.approved) | set(chosen))
        state.rollout = approved
        state.rollout_dirty = True
        engine = self.engine
        engine.emit(
            state,
            Event(
                "rollingUpgradeApproved",
                {"instanceIds": "*" if chosen == "*" else [str(i) for i in chosen]},
            ),
        )
        op = engine.start_operation(state, "approveRollingUpgrade", pending=False)
        engine.persist(state)
        engine.wake(state.set_id)
        return op

    def set_orchestration_service_state(
        self, subscription: str, resource_group: str, name: str, body: object
    ) -> Operation:
        """``setOrchestrationServiceState``: suspend or resume automatic repairs."""
        state = self._state(subscription, resource_group, name)
        self._not_deleting(state, "setOrchestrationServiceState")
        service, action = validate_orchestration_request(body)
        engine = self.engine
        changed, event = set_service_state(
            state.vmss.properties.automaticRepairsPolicy, state.repairs(), action, now=engine.clock.now()
        )
        state.set_repairs(changed)
        engine.emit(state, Event(event.kind, {"serviceName": service, **event.data}))
        op = engine.start_operation(state, "setOrchestrationServiceState", pending=False)
        engine.persist(state)
        engine.wake(state.set_id)
        return op
