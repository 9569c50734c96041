"""The engine: reconcile passes over scale sets, driven by one scheduler and one clock.

A pass reads ``now`` once, observes every instance through the backend, asks the pure planners what to do
(rolling upgrade, automatic upgrade, capacity), applies their actions through the backend, settles operations,
records the decisions in the activity log, persists everything in one transaction, and sets the scale set's next
wake-up. Nothing that matters lives only in memory: a new engine over the same store carries on exactly.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from scaleset.backends import base
from scaleset.backends.base import InstanceBackend
from scaleset.domain.actions import Action, Create, Delete, Event, Power, PowerAction, Reimage, Upgrade, UpgradeReason
from scaleset.domain.capacity import plan_capacity
from scaleset.domain.extensions import EXTENSION_UPGRADE, ExtensionCatalogue, deployed_versions
from scaleset.domain.health import Answer
from scaleset.domain.instances import POLL_SECONDS, InstanceView, ProvisioningState, done_by
from scaleset.domain.records import InstanceRecord, Operation, OperationStatus
from scaleset.domain.repairs import RepairPass, plan_repairs
from scaleset.domain.resources import ImageReference, UpgradeMode
from scaleset.domain.upgrade.automatic import plan_automatic
from scaleset.domain.upgrade.os_upgrade import platform_upgrade_due
from scaleset.domain.upgrade.rolling import HEALTH_WAIT_SECONDS, Target, plan_rolling
from scaleset.domain.upgrade.status import OS_UPGRADE
from scaleset.engine.clock import Clock, VirtualClock
from scaleset.engine.operations import settle_operations
from scaleset.engine.scheduler import PRIORITY_TIMELINE, Scheduler
from scaleset.engine.starts import extension_upgrade_due, outdated_instances, start_due_rollout
from scaleset.engine.state import CachedView, Catalogue, ScaleSetState
from scaleset.store.base import Store

MAX_PASSES_AT_ONE_INSTANT = 64


class EngineError(RuntimeError):
    """An internal invariant broke; never a user error (those are DomainError)."""


class Engine:
    def __init__(
        self,
        *,
        store: Store,
        backend: InstanceBackend,
        clock: Clock,
        catalogue: Catalogue | None = None,
        health_wait: float = HEALTH_WAIT_SECONDS,
        id_namespace: str | None = None,
        extension_catalogue: ExtensionCatalogue | None = None,
        repairs_grace: float | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.clock = clock
        self.scheduler = Scheduler()
        self._image_catalogue: Catalogue = catalogue or (lambda _image: [])
        self._image_cache: dict[tuple[str | None, ...], list[str]] = {}
        self._extension_catalogue: ExtensionCatalogue = extension_catalogue or (lambda _publisher, _type: [])
        self._extension_cache: dict[tuple[str, str], list[str]] = {}
        self.health_wait = health_wait  # how long an upgraded instance has to turn healthy (docs/semantics.md)
        self.repairs_grace = repairs_grace  # overrides the repairs grace period of every scale set (rehearsals)
        self._sets: dict[str, ScaleSetState] = {}
        self._timeline_handler: Callable[[str], None] | None = None
        namespace = id_namespace or store.get_meta("id_namespace")
        if namespace is None:
            namespace = str(uuid.uuid4())
            store.set_meta("id_namespace", namespace)
        self._namespace = namespace
        self._id_counter = int(store.get_meta("id_counter") or 0)
        self._events: list[dict[str, Any]] = []
        self.passes = 0
        self.notify: Callable[[], None] | None = None  # told whenever a wake-up is requested (real-time driver)
        self._load()

    # ----------------------------------------------------------------- loading and ids

    def _load(self) -> None:
        for set_id, data in self.store.list_scale_sets():
            state = ScaleSetState.load(self.store, set_id, data)
            self._sets[set_id] = state
            if state.record.wake_at is not None:
                self.scheduler.request(set_id, state.record.wake_at)
        for op_id, data in self.store.list_operations():
            op = Operation.model_validate(data)
            if not op.done and op.set_id in self._sets:
                self._sets[op.set_id].operations[op_id] = op

    def new_id(self) -> str:
        """A GUID that is unique in this store and the same on every run of the same scenario."""
        self._id_counter += 1
        self.store.set_meta("id_counter", str(self._id_counter))
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"scaleset:{self._namespace}:{self._id_counter}"))

    def catalogue(self) -> Catalogue:
        return self._catalogue

    def _catalogue(self, image: ImageReference | None) -> list[str]:
        """The image versions ``image`` can resolve to, cached until :meth:`catalogue_changed` (models tracking
        ``latest`` ask on every call)."""
        key = (
            (
                image.publisher,
                image.offer,
                image.sku,
                image.id,
                image.sharedGalleryImageId,
                image.communityGalleryImageId,
            )
            if image is not None
            else ()
        )
        found = self._image_cache.get(key)
        if found is None:
            found = self._image_cache[key] = list(self._image_catalogue(image))
        return found

    def extension_versions(self, publisher: str, kind: str) -> list[str]:
        """The published versions of an extension (cached until :meth:`catalogue_changed`)."""
        key = (publisher.lower(), kind.lower())
        found = self._extension_cache.get(key)
        if found is None:
            found = self._extension_cache[key] = list(self._extension_catalogue(publisher, kind))
        return found

    # ----------------------------------------------------------------- access

    def state(self, set_id: str) -> ScaleSetState | None:
        return self._sets.get(set_id)

    def states(self) -> list[ScaleSetState]:
        return [self._sets[k] for k in sorted(self._sets)]

    def add_state(self, state: ScaleSetState) -> None:
        self._sets[state.set_id] = state

    def forget_state(self, set_id: str) -> None:
        self._sets.pop(set_id, None)
        self.scheduler.set(set_id, None)

    def observe(self, state: ScaleSetState, now: float) -> list[InstanceView]:
        """Every live instance at ``now``; instances whose delete finished are dropped from the state."""
        views: list[InstanceView] = []
        catalogue = self.catalogue()
        instances, cache = state.instances, state.views  # every pass runs this loop over every instance
        for instance_id in sorted(instances):
            record = instances[instance_id]
            cached = cache.get(instance_id)
            if (
                cached is not None
                and cached.generation == record.generation
                and now >= cached.observed_at
                and (cached.valid_until is None or now < cached.valid_until)
            ):
                view = cached.view
            else:
                model = state.model(self.store, record.model_version, catalogue)
                view = self.backend.observe(record, set_id=state.set_id, model=model, now=now)
                valid = view.stable_until if view is not None else None
                state.views[instance_id] = CachedView(view, valid, record.generation, now)
            if view is None:
                state.revision += 1
                del state.instances[instance_id]
                state.views.pop(instance_id, None)
                state.removed.add(instance_id)
                state.dirty.discard(instance_id)
                continue
            views.append(view)
        return views

    # ----------------------------------------------------------------- scheduling

    def wake(self, set_id: str, at: float | None = None) -> None:
        self.scheduler.request(set_id, self.clock.now() if at is None else at)
        if self.notify is not None:
            self.notify()

    def run_due(self) -> float | None:
        """Run every pass due by the clock's ``now`` (a real or scaled clock); return the next wake-up time."""
        now = self.clock.now()
        budget = MAX_PASSES_AT_ONE_INSTANT * max(1, len(self._sets))
        while (wake := self.scheduler.peek()) is not None and wake.time <= now and budget > 0:
            self.scheduler.pop()
            budget -= 1
            if wake.priority == PRIORITY_TIMELINE:
                if self._timeline_handler is not None:
                    self._timeline_handler(wake.key)
                continue
            self.run_pass(wake.key)
        upcoming = self.scheduler.peek()
        return upcoming.time if upcoming is not None else None

    def on_timeline(self, handler: Callable[[str], None]) -> None:
        self._timeline_handler = handler

    def run_until(self, until: float | None = None, *, advance: bool = True) -> None:
        """Drain the scheduler in virtual time up to ``until`` (everything, when None).

        With ``advance`` the clock ends at ``until``; without, it stays at the last wake-up processed.
        """
        if not isinstance(self.clock, VirtualClock):
            raise EngineError("run_until drives a virtual clock only")
        passes_here: dict[str, int] = {}
        last_time: float | None = None
        while (wake := self.scheduler.peek()) is not None:
            if until is not None and wake.time > until:
                break
            self.scheduler.pop()
            if wake.time > self.clock.now():
                self.clock.advance_to(wake.time)
            if wake.time != last_time:
                passes_here.clear()
                last_time = wake.time
            if wake.priority == PRIORITY_TIMELINE:
                if self._timeline_handler is None:
                    raise EngineError(f"timeline entry {wake.key} with no handler")
                self._timeline_handler(wake.key)
                continue
            passes_here[wake.key] = passes_here.get(wake.key, 0) + 1
            if passes_here[wake.key] > MAX_PASSES_AT_ONE_INSTANT:
                raise EngineError(
                    f"scale set {wake.key} asked for more than {MAX_PASSES_AT_ONE_INSTANT} passes "
                    f"at one instant; a planner is not making progress"
                )
            self.run_pass(wake.key)
        if advance and until is not None and until > self.clock.now():
            self.clock.advance_to(until)
        self.store.set_meta("now", repr(self.clock.now()))

    def request_timeline(self, key: str, at: float) -> None:
        self.scheduler.request(key, at, priority=PRIORITY_TIMELINE)

    # ----------------------------------------------------------------- the pass

    def run_pass(self, set_id: str) -> None:
        state = self._sets.get(set_id)
        if state is None:
            return
        self.passes += 1
        now = self.clock.now()
        views = self.observe(state, now)
        record = state.record
        vmss = state.vmss
        target_version = record.model_version
        waits: list[float] = []
        attach: list[int] = []

        if record.provisioning_state == "Deleting":
            self._pass_deleting(state, views, now)
            return

        # 1. rolling upgrade: a model change's, an OS image or an extension upgrade (user- or platform-started)
        rollout = state.rollout if state.rollout is not None and state.rollout.active else None
        if rollout is None:
            rollout = start_due_rollout(self, state, views, now)
        actions: list[Action] = []
        if rollout is not None:
            model = state.model(self.store, target_version, self.catalogue())
            step = plan_rolling(
                rollout,
                instances=views,
                target=Target(
                    target_version,
                    record.next_instance_id,
                    model.probe,
                    self.health_wait,
                    image_version=rollout.target_image_version if rollout.kind == OS_UPGRADE else None,
                    same_model_only=vmss.upgrade_mode is UpgradeMode.MANUAL,
                    only=outdated_instances(self, state, rollout),
                    reason=UpgradeReason.EXTENSION if rollout.kind == EXTENSION_UPGRADE else UpgradeReason.ROLLING,
                ),
                now=now,
            )
            if step.rollout != rollout:  # most passes only look: write the rollout when it changed
                state.rollout_dirty = True
            state.rollout = step.rollout
            for event in step.events:
                self.emit_at(state, now, event, rollout_id=rollout.rollout_id)
            actions.extend(step.actions)
            if step.wake_at is not None:
                waits.append(step.wake_at)
            if not step.rollout.active:
                record.active_rollout = None
                record.quiet_since = now  # repairs wait a grace period after a rollout, too

        # 2. automatic mode
        if vmss.upgrade_mode is UpgradeMode.AUTOMATIC:
            plan = plan_automatic(views, target_version=target_version)
            actions.extend(plan.actions)
            attach.extend(plan.instance_ids)
            for event in plan.events:
                self.emit_at(state, now, event)

        # 3. automatic repairs (held while a rolling upgrade runs); applied at once, so capacity sees them
        repairs = self._plan_repairs(state, views, actions, now)
        if repairs is not None:
            for action in repairs.actions:
                self.apply(state, action, now)
            for event in repairs.events:
                self.emit_at(state, now, event)
            if repairs.actions:
                views = self.observe(state, now)
            if repairs.wake_at is not None:
                waits.append(repairs.wake_at)  # backends that cannot predict health wake the set when it changes

        # 4. capacity
        sizing = plan_capacity(
            views,
            capacity=vmss.capacity,
            model_version=target_version,
            next_instance_id=record.next_instance_id,
            zones=vmss.zones,
            fault_domains=vmss.properties.platformFaultDomainCount,
            scale_in_policy=vmss.properties.scaleInPolicy,
            rollout=state.rollout,
            deleting=frozenset(a.instance_id for a in actions if isinstance(a, Delete)),
        )
        actions.extend(sizing.actions)
        attach.extend(a.instance_id for a in sizing.actions)
        for event in sizing.events:
            self.emit_at(state, now, event)

        for action in actions:
            self.apply(state, action, now)
        if actions:
            views = self.observe(state, now)
        for op in state.operations.values():
            if op.pending:
                op.pending = False
                op.instance_ids = sorted(set(op.instance_ids) | set(attach))
        settle_operations(self, state, views, now, waits)
        # Look again once every instance busy now has finished (one pass, not one per instance), so finished
        # deletions leave the store and the state settles even when no operation or rollout waits on them.
        busy = [done_by(v, now) for v in views if v.busy]
        if busy:
            waits.append(max(busy))
        self._commit(state, waits, now)

    def _plan_repairs(
        self, state: ScaleSetState, views: Sequence[InstanceView], planned: Sequence[Action], now: float
    ) -> RepairPass | None:
        record, vmss = state.record, state.vmss
        policy = vmss.properties.automaticRepairsPolicy
        if (policy is None or not policy.enabled) and not record.repairs:
            return None
        book = state.repairs()
        probe = state.model(self.store, record.model_version, self.catalogue()).probe
        created = [a.instance_id for a in planned if isinstance(a, Create)]
        rollout = state.rollout
        result = plan_repairs(
            views,
            policy=policy,
            book=book,
            now=now,
            quiet_since=record.quiet_since,
            rich=probe is not None and probe.rich,
            held=rollout is not None and rollout.active,
            next_instance_id=max([record.next_instance_id, *(i + 1 for i in created)]),
            model_version=record.model_version,
            grace=self.repairs_grace,
        )
        if result.book != book:
            state.set_repairs(result.book)
        return result

    def mark_set_change(self, state: ScaleSetState) -> None:
        """A PUT/PATCH/POST changed the scale set: automatic repairs wait a grace period from now."""
        state.record.quiet_since = self.clock.now()

    def catalogue_changed(self) -> list[ScaleSetState]:
        """An image or extension version was published or removed: wake every scale set; return those that will
        start an automatic OS upgrade because of it."""
        starting: list[ScaleSetState] = []
        now = self.clock.now()
        self._extension_cache.clear()
        self._image_cache.clear()
        for state in self.states():
            if state.record.provisioning_state == "Deleting":
                continue
            latest = state.model(self.store, state.record.model_version, self.catalogue()).image_version
            busy = state.rollout is not None and state.rollout.active
            if not busy and platform_upgrade_due(
                state.vmss,
                self.observe(state, now),
                latest=latest,
                attempted=state.record.os_upgrade_attempted,
                model_version=state.record.model_version,
            ):
                starting.append(state)
            self.wake(state.set_id, now)
        return starting

    def extension_upgrades_due(self) -> list[ScaleSetState]:
        """The scale sets whose next pass starts a platform extension upgrade (after a publish)."""
        due = []
        for state in self.states():
            busy = state.rollout is not None and state.rollout.active
            if state.record.provisioning_state != "Deleting" and not busy and extension_upgrade_due(self, state):
                due.append(state)
        return due

    def _pass_deleting(self, state: ScaleSetState, views: Sequence[InstanceView], now: float) -> None:
        for view in views:
            if view.provisioning is not ProvisioningState.DELETING:
                self.apply(state, Delete(view.instance_id, reason="scaleSetDeleted"), now)
        if not state.instances:
            for op in state.operations.values():
                op.status, op.ended_at, op.pending = OperationStatus.SUCCEEDED, now, False
            self.emit_at(state, now, Event("scaleSetDeleted", {}))
            with self.store.transaction():
                self._flush_events()
                for op in state.operations.values():
                    self.store.put_operation(op.operation_id, op.model_dump(mode="json"))
                self.store.delete_scale_set(state.set_id)
            self.forget_state(state.set_id)
            return
        waits = [v.eta if v.eta is not None else now + POLL_SECONDS for v in views] or [now + POLL_SECONDS]
        self._commit(state, [max(waits)], now)

    # ----------------------------------------------------------------- applying actions

    def apply(self, state: ScaleSetState, action: Action, now: float) -> None:
        """Record the action on the instance and hand it to the backend."""
        catalogue = self.catalogue()
        if isinstance(action, Create):
            model = state.model(self.store, action.version, catalogue)
            record = InstanceRecord(
                instance_id=action.instance_id,
                zone=action.zone,
                fault_domain=action.fault_domain,
                model_version=action.version,
                created_at=now,
                image_version=model.image_version,
                action=base.CREATE,
                action_started_at=now,
                action_reason=action.reason,
                extension_versions=self._deployed_extensions(state, action.version),
            )
            state.instances[action.instance_id] = record
            state.record.next_instance_id = max(state.record.next_instance_id, action.instance_id + 1)
            state.removed.discard(action.instance_id)
        else:
            existing = state.instances.get(action.instance_id)
            if existing is None:
                raise EngineError(f"action on unknown instance {action.instance_id} of {state.set_id}")
            record = existing
            record.generation += 1
            record.action_started_at = now
            if isinstance(action, Upgrade):
                model = state.model(self.store, action.to_version, catalogue)
                if action.reason is UpgradeReason.ROLLBACK:
                    # The previous image comes back, and the one rolled back from becomes the previous one.
                    restored = record.previous_image_version or model.image_version
                    record.previous_image_version, record.image_version = record.image_version, restored
                elif action.reason is UpgradeReason.EXTENSION:
                    record.previous_image_version = record.image_version  # the image stays: updated in place
                    record.extension_versions = self._deployed_extensions(state, action.to_version)
                else:
                    record.previous_image_version = record.image_version
                    record.image_version = model.image_version
                    record.extension_versions = self._deployed_extensions(state, action.to_version)
                record.model_version = action.to_version
                record.action, record.action_reason = base.UPGRADE, action.reason.value
            elif isinstance(action, Reimage):
                record.model_version = action.to_version
                record.image_version = state.model(self.store, action.to_version, catalogue).image_version
                record.extension_versions = self._deployed_extensions(state, action.to_version)
                record.action, record.action_reason = base.REIMAGE, "reimageAll" if action.data_disks else "reimage"
                record.power_goal = "running"
            elif isinstance(action, Delete):
                record.action, record.action_reason = base.DELETE, action.reason
                record.force = action.force
            elif isinstance(action, Power):
                record.action, record.action_reason = _POWER_ACTIONS[action.action], action.action.value
                if action.action in (PowerAction.START, PowerAction.RESTART):
                    record.power_goal = "running"
                elif action.action is PowerAction.POWER_OFF:
                    record.power_goal = "stopped"
                else:
                    record.power_goal = "deallocated"
        model = state.model(self.store, record.model_version, catalogue)
        if record.image_version is not None and model.image_version != record.image_version:
            # A model tracking ``latest`` resolves to the newest image; this instance runs (or goes back to) its own.
            model = dataclasses.replace(model, image_version=record.image_version)
        self.backend.apply(record, set_id=state.set_id, model=model, now=now)
        state.touch(record.instance_id)

    def _deployed_extensions(self, state: ScaleSetState, version: int) -> dict[str, str]:
        extensions = state.extensions(self.store, version)
        return deployed_versions(extensions, self.extension_versions) if extensions else {}

    def inject_health(self, state: ScaleSetState, instance_ids: Iterable[int], answer: Answer) -> None:
        now = self.clock.now()
        for instance_id in instance_ids:
            record = state.instances[instance_id]
            self.backend.inject_health(record, answer, now=now)
            state.touch(instance_id)

    # ----------------------------------------------------------------- operations

    def start_operation(
        self,
        state: ScaleSetState,
        kind: str,
        *,
        instance_ids: Sequence[int] = (),
        pending: bool = True,
        rollout_id: str | None = None,
    ) -> Operation:
        op = Operation(
            operation_id=self.new_id(),
            kind=kind,
            set_id=state.set_id,
            started_at=self.clock.now(),
            pending=pending,
            instance_ids=list(instance_ids),
            rollout_id=rollout_id,
        )
        state.operations[op.operation_id] = op
        return op

    # ----------------------------------------------------------------- persistence

    def emit_at(self, state: ScaleSetState, now: float, event: Event, *, rollout_id: str | None = None) -> None:
        """Add ``event`` to the activity log at ``now`` (written with the next persist)."""
        row: dict[str, Any] = {"time": now, "scaleSet": state.set_id, "kind": event.kind}
        if rollout_id is not None:
            row["rolloutId"] = rollout_id
        row.update(event.data)
        self._events.append(row)

    def emit(self, state: ScaleSetState, event: Event) -> None:
        self.emit_at(state, self.clock.now(), event)

    def _flush_events(self) -> None:
        if self._events:
            self.store.append_events(self._events)
            self._events = []

    def _commit(self, state: ScaleSetState, waits: Sequence[float], now: float) -> None:
        record = state.record
        wake = min(waits) if waits else None
        if wake is not None and wake < now:
            wake = now
        if wake != record.wake_at:
            record.wake_at = wake
        self.persist(state)
        self.scheduler.set(state.set_id, wake)

    def persist(self, state: ScaleSetState) -> None:
        """Write everything the state changed, in one transaction."""
        state.revision += 1
        with self.store.transaction():
            self.store.put_scale_set(state.set_id, state.record.to_dict())
            if state.dirty:
                self.store.put_instances(
                    state.set_id,
                    [(i, state.instances[i].to_dict()) for i in sorted(state.dirty) if i in state.instances],
                )
            if state.removed:
                self.store.delete_instances(state.set_id, sorted(state.removed))
            if state.rollout is not None and state.rollout_dirty:
                self.store.put_rollout(state.rollout.rollout_id, state.set_id, state.rollout.model_dump(mode="json"))
            for op in state.operations.values():
                self.store.put_operation(op.operation_id, op.model_dump(mode="json"))
            self._flush_events()
            self.store.set_meta("now", repr(self.clock.now()))
        state.dirty.clear()
        state.removed.clear()
        state.rollout_dirty = False
        for op_id in [k for k, op in state.operations.items() if op.done]:
            del state.operations[op_id]


_POWER_ACTIONS = {
    PowerAction.START: base.START,
    PowerAction.RESTART: base.RESTART,
    PowerAction.POWER_OFF: base.POWER_OFF,
    PowerAction.DEALLOCATE: base.DEALLOCATE,
}


__all__ = ["Engine", "EngineError"]
