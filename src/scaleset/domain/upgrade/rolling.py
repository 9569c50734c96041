"""The rolling-upgrade planner: one pure pass of Azure's batch loop.

Each call looks at the rollout record, the instances as observed now, and the time, and returns the next record,
the actions to take now, the decisions made (events), and when to look again. It keeps no state of its own, so a
rollout interrupted anywhere resumes from its record and ends as an uninterrupted one would.

The loop (reference §2.5, choices in docs/semantics.md):

1. Before each batch, count unhealthy instances in the whole set; more than ``maxUnhealthyInstancePercent``
   faults the rollout (``...ExceededBeforeRollingUpgrade`` before the first batch, ``...InRollingUpgrade`` later).
2. Pick the batch: stale, unprotected instances not yet attempted; unhealthy first when
   ``prioritizeUnhealthyInstances``; one zone at a time unless ``enableCrossZoneUpgrade``; ascending instance id.
   Size ``floor(N * maxBatchInstancePercent / 100)``, at least 1, shrunk in place so the set stays within
   ``maxUnhealthyInstancePercent``.
3. Upgrade in place, or with ``maxSurge`` create new instances on the new model first.
4. Wait for each upgraded instance to turn healthy, up to the health-wait timeout after its update finished.
5. After the batch, more than ``maxUnhealthyUpgradedInstancePercent`` of the instances upgraded so far being
   unhealthy faults the rollout; with ``rollbackFailedInstancesOnPolicyBreach`` the failed ones go back to the
   model they had.
6. Pause ``pauseTimeBetweenBatches``; a cancel stops the loop once the batch in flight has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scaleset.domain import errors, fenceposts
from scaleset.domain.actions import Action, Create, Delete, Event, Upgrade, UpgradeReason
from scaleset.domain.durations import parse_duration
from scaleset.domain.health import ProbeSettings
from scaleset.domain.instances import POLL_SECONDS, InstanceView, ProvisioningState, done_by, next_look
from scaleset.domain.resources import RollingUpgradePolicy
from scaleset.domain.upgrade.status import MODEL_UPGRADE, Phase, Progress, RollingStatusCode, Rollout

HEALTH_WAIT_SECONDS = 300.0
"""How long an upgraded instance has to turn healthy after its update finished (or the rich-health grace period,
when that is longer). Azure documents 5 minutes for automatic OS upgrades; we use it for every rolling upgrade."""

UNREACHABLE_DETAIL = "Instance found to be unhealthy or unreachable."


@dataclass(frozen=True, slots=True)
class Target:
    """What the rollout drives towards, and the facts of the scale set it needs."""

    version: int
    next_instance_id: int
    probe: ProbeSettings | None = None
    wait_seconds: float = HEALTH_WAIT_SECONDS
    image_version: str | None = None  # OS upgrades: the exact image every instance should run
    same_model_only: bool = False  # OS upgrades in Manual mode: instances on an older model are left to the operator
    only: frozenset[int] | None = None  # extension upgrades: the instances whose extensions are out of date
    reason: UpgradeReason = UpgradeReason.ROLLING

    def stale(self, view: InstanceView) -> bool:
        """Whether the rollout has work on ``view``: an older model, another image version (OS upgrades), or
        out-of-date extensions (extension upgrades)."""
        if self.only is not None:
            return view.instance_id in self.only
        if self.image_version is None:
            return view.model_version != self.version
        if self.same_model_only and view.model_version != self.version:
            return False
        return view.image_version != self.image_version

    @property
    def health_wait(self) -> float:
        """``wait_seconds`` (5 minutes unless the server was told otherwise), or the rich grace period if longer."""
        grace = self.probe.grace if self.probe is not None and self.probe.rich else 0.0
        return max(self.wait_seconds, grace)


@dataclass(slots=True)
class RollingPass:
    rollout: Rollout
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: float | None = None


def start_rollout(
    rollout_id: str,
    set_id: str,
    *,
    policy: RollingUpgradePolicy,
    target_version: int,
    now: float,
    operation_id: str | None = None,
    kind: str = MODEL_UPGRADE,
) -> Rollout:
    return Rollout(
        rollout_id=rollout_id,
        set_id=set_id,
        kind=kind,
        policy=policy.model_dump(mode="json"),
        target_version=target_version,
        started_at=now,
        last_action_at=now,
        operation_id=operation_id,
    )


def request_cancel(rollout: Rollout | None, *, now: float) -> Rollout:
    """Cancel a rollout that is rolling forward; the batch in flight still finishes.

    Raises 409 ``OperationNotAllowed`` "There is no ongoing Rolling Upgrade to cancel." otherwise.
    """
    if rollout is None or rollout.code is not RollingStatusCode.ROLLING_FORWARD:
        raise errors.operation_not_allowed("There is no ongoing Rolling Upgrade to cancel.")
    cancelled = rollout.clone()
    cancelled.cancel_requested = True
    cancelled.code = RollingStatusCode.CANCELLED
    cancelled.last_action = "Cancel"
    cancelled.last_action_at = now
    return cancelled


def plan_rolling(rollout: Rollout, *, instances: Sequence[InstanceView], target: Target, now: float) -> RollingPass:
    """One pass of the batch loop at ``now``."""
    out = RollingPass(rollout.clone())
    r = out.rollout
    by_id = {view.instance_id: view for view in instances}
    policy = RollingUpgradePolicy.model_validate(r.policy)

    if r.reverting:
        _watch_reverting(out, by_id, target, now)
    if r.phase is Phase.DONE:
        _update_progress(r, instances, target)
        return out
    if r.phase is Phase.ROLLING_BACK:
        _watch_rollback(out, by_id, target, now)
        return out
    if r.phase is Phase.BATCH:
        if not _judge_batch(out, by_id, target, now):
            _update_progress(r, instances, target)
            return out
        if not _finish_batch(out, by_id, policy, now):
            _update_progress(r, instances, target)
            return out
        pause = parse_duration(policy.pauseTimeBetweenBatches)
        if pause > 0 and not r.cancel_requested and _work_set(r, instances, target):
            r.phase, r.pause_until = Phase.PAUSE, now + pause
            out.events.append(Event("pause", {"seconds": pause, "until": r.pause_until}))
            out.wake_at = r.pause_until
            _update_progress(r, instances, target)
            return out
    if r.phase is Phase.PAUSE:
        if r.pause_until is not None and now < r.pause_until and not r.cancel_requested:
            out.wake_at = r.pause_until
            return out
        r.phase, r.pause_until = Phase.IDLE, None
    if r.phase is Phase.IDLE:
        if r.cancel_requested:
            _end(out, now, Event("rolloutCancelled", {"batchesCompleted": r.batch_number}))
        else:
            # Instances this pass is deleting (a surge batch's old instances) are gone for the next batch.
            leaving = {a.instance_id for a in out.actions if isinstance(a, Delete)}
            remaining = [v for v in instances if v.instance_id not in leaving] if leaving else instances
            _start_batch(out, remaining, policy, target, now)
    _update_progress(r, instances, target)
    return out


def _work_set(r: Rollout, instances: Sequence[InstanceView], target: Target) -> list[InstanceView]:
    attempted = set(r.attempted)
    deleting = ProvisioningState.DELETING  # once, not per instance: an enum member lookup costs
    return [
        view
        for view in instances
        if target.stale(view)
        and not view.protect_from_scale_set_actions
        and view.instance_id not in attempted
        and view.provisioning is not deleting
        and view.instance_id not in r.surge_pairs
    ]


def _population(r: Rollout, instances: Sequence[InstanceView]) -> list[InstanceView]:
    """The instances that count as the scale set: surge instances in flight and deletions do not."""
    deleting = ProvisioningState.DELETING
    return [v for v in instances if v.provisioning is not deleting and v.instance_id not in r.surge_pairs]


def _order(work: list[InstanceView], *, prioritize_unhealthy: bool, cross_zone: bool) -> list[InstanceView]:
    """Batch order. Zone by zone: the whole batch comes from the first zone in order (zones holding unhealthy
    work first when prioritising, then by zone name). Cross-zone: zones interleaved, so a batch spreads its
    impact over every zone. Unhealthy first when prioritising; ascending instance id otherwise."""

    def rank(view: InstanceView) -> tuple[int, int]:
        return (0 if prioritize_unhealthy and view.is_unhealthy else 1, view.instance_id)

    zones = sorted({v.zone or "" for v in work})
    per_zone = {zone: sorted((v for v in work if (v.zone or "") == zone), key=rank) for zone in zones}
    if not cross_zone:

        def zone_rank(zone: str) -> tuple[int, str]:
            has_unhealthy = any(v.is_unhealthy for v in per_zone[zone])
            return (0 if prioritize_unhealthy and has_unhealthy else 1, zone)

        return per_zone[min(zones, key=zone_rank)] if zones else []
    interleaved = [(rank(v)[0], position, zone, v) for zone in zones for position, v in enumerate(per_zone[zone])]
    interleaved.sort(key=lambda item: (item[0], item[1], item[2]))
    return [item[3] for item in interleaved]


def _start_batch(
    out: RollingPass,
    instances: Sequence[InstanceView],
    policy: RollingUpgradePolicy,
    target: Target,
    now: float,
) -> None:
    r = out.rollout
    work = _work_set(r, instances, target)
    if not work:
        _end(out, now, Event("rolloutCompleted", {"batches": r.batch_number, "succeeded": len(r.succeeded)}))
        r.code = RollingStatusCode.COMPLETED
        return
    if r.deferral:
        work = _approved_work(out, work)
        if not work:
            return
    population = _population(r, instances)
    total = len(population)
    unhealthy = sum(1 for v in population if v.is_unhealthy)
    threshold = policy.maxUnhealthyInstancePercent
    breached = fenceposts.exceeds(unhealthy, total, threshold)
    out.events.append(
        Event(
            "preBatchCheck",
            {
                "batch": r.batch_number + 1,
                "unhealthy": unhealthy,
                "total": total,
                "thresholdPercent": threshold,
                "tolerated": fenceposts.tolerated(total, threshold),
                "passed": not breached,
            },
        )
    )
    if breached:
        shown = fenceposts.shown_percent(unhealthy, total)
        if r.batch_number == 0:
            error = errors.DomainError(
                errors.MAX_UNHEALTHY_BEFORE,
                "Rolling Upgrade could not start because the MaxUnhealthyInstancePercent value defined in the "
                f"RollingUpgradePolicy is exceeded. {shown}% of instances are in an unhealthy state - more than "
                f"the threshold of {threshold}%. To apply upgrades, consider increasing the "
                "MaxUnhealthyInstancePercent value.",
            )
        else:
            error = errors.DomainError(
                errors.MAX_UNHEALTHY_IN,
                "Rolling Upgrade failed after exceeding the MaxUnhealthyInstancePercent value defined in the "
                f"RollingUpgradePolicy. {shown}% of instances are in an unhealthy state - more than the threshold "
                f"of {threshold}%. To apply upgrades, consider increasing the MaxUnhealthyInstancePercent value.",
            )
        _fault(out, error, policy, now)
        return
    ready = [v for v in work if not v.busy]
    if not ready:
        # Every remaining instance is busy with an operator's action: wait for them.
        out.wake_at = _earliest(work, now)
        return
    ordered = _order(
        ready,
        prioritize_unhealthy=policy.prioritizeUnhealthyInstances,
        cross_zone=policy.enableCrossZoneUpgrade,
    )
    if policy.maxSurge:
        size = fenceposts.batch_size(total, policy.maxBatchInstancePercent)
    else:
        size = fenceposts.shrunk_batch_size(
            total=total,
            max_batch_percent=policy.maxBatchInstancePercent,
            max_unhealthy_percent=threshold,
            unhealthy=unhealthy,
        )
    chosen = ordered[:size]
    r.batch_number += 1
    r.phase, r.batch_started_at = Phase.BATCH, now
    r.batch_zone = None if policy.enableCrossZoneUpgrade else chosen[0].zone
    r.attempted.extend(v.instance_id for v in chosen)
    if policy.maxSurge:
        r.batch = []
        for offset, old in enumerate(chosen):
            new_id = target.next_instance_id + offset
            r.surge_pairs[new_id] = old.instance_id
            r.batch.append(new_id)
            out.actions.append(Create(new_id, old.zone, old.fault_domain, target.version, reason="maxSurge"))
    else:
        r.batch = [v.instance_id for v in chosen]
        for view in chosen:
            r.previous_versions[view.instance_id] = view.model_version
            out.actions.append(Upgrade(view.instance_id, target.version, target.reason))
    out.events.append(
        Event(
            "batchStarted",
            {
                "batch": r.batch_number,
                "size": len(chosen),
                "plannedSize": fenceposts.batch_size(total, policy.maxBatchInstancePercent),
                "zone": r.batch_zone,
                "instanceIds": [str(v.instance_id) for v in chosen],
                **({"surgeInstanceIds": [str(i) for i in r.batch]} if policy.maxSurge else {}),
            },
        )
    )
    out.wake_at = now  # look again at once, with the actions applied


def _approved_work(out: RollingPass, work: list[InstanceView]) -> list[InstanceView]:
    """Deferral: the instances approved so far; the others are announced (once) as waiting for approval."""
    r = out.rollout
    approved = set(r.approved)
    ready = [v for v in work if r.approve_all or v.instance_id in approved]
    waiting = sorted(v.instance_id for v in work if not (r.approve_all or v.instance_id in approved))
    if waiting != r.awaiting_approval:
        r.awaiting_approval = waiting
        if waiting:
            out.events.append(Event("approvalRequested", {"instanceIds": [str(i) for i in waiting]}))
    return ready


def _judge_batch(out: RollingPass, by_id: dict[int, InstanceView], target: Target, now: float) -> bool:
    """Record members that became healthy or failed; True once every member is decided."""
    r = out.rollout
    decided = set(r.succeeded) | set(r.failed)
    waits: list[float] = []
    for instance_id in r.batch:
        if instance_id in decided:
            continue
        view = by_id.get(instance_id)
        if view is None or view.provisioning is ProvisioningState.FAILED:
            r.failed.append(instance_id)
            continue
        if view.busy:
            waits.append(done_by(view, now))
            continue
        if view.is_healthy:
            r.succeeded.append(instance_id)
            continue
        started = view.ready_at if view.ready_at is not None else (r.batch_started_at or now)
        deadline = started + target.health_wait
        if now >= deadline:
            r.failed.append(instance_id)
            continue
        waits.append(next_look(view, now, deadline))
    if waits:
        out.wake_at = max(now, *waits)
        return False
    return True


def _finish_batch(out: RollingPass, by_id: dict[int, InstanceView], policy: RollingUpgradePolicy, now: float) -> bool:
    """Close the batch: surge deletions, the upgraded-unhealthy check, cancel. True when the loop goes on."""
    r = out.rollout
    batch = set(r.batch)
    ok = [i for i in r.succeeded if i in batch]
    bad = [i for i in r.failed if i in batch]
    if policy.maxSurge:
        for new_id in ok:
            out.actions.append(Delete(r.surge_pairs[new_id], reason="replacedBySurge"))
        for new_id in bad:
            out.actions.append(Delete(new_id, reason="surgeInstanceFailed"))
        for new_id in r.batch:
            r.surge_pairs.pop(new_id, None)
    if r.revert_failed and not policy.maxSurge:
        _revert(out, [i for i in bad if i in by_id], by_id, now)
    upgraded = len(r.succeeded) + len(r.failed)
    failed_now = set(r.failed) | {i for i in r.succeeded if i in by_id and by_id[i].is_unhealthy}
    threshold = policy.maxUnhealthyUpgradedInstancePercent
    breached = fenceposts.exceeds(len(failed_now), upgraded, threshold)
    out.events.append(
        Event(
            "batchCompleted",
            {
                "batch": r.batch_number,
                "succeededIds": [str(i) for i in sorted(ok)],
                "failedIds": [str(i) for i in sorted(bad)],
                "upgradedUnhealthy": len(failed_now),
                "upgraded": upgraded,
                "thresholdPercent": threshold,
                "passed": not breached,
            },
        )
    )
    r.batch, r.batch_zone, r.phase = [], None, Phase.IDLE
    if breached and not r.cancel_requested:
        first = min(failed_now, key=lambda i: (i not in r.failed, r.failed.index(i) if i in r.failed else i))
        view = by_id.get(first)
        detail = view.error_message if view is not None and view.error_message else UNREACHABLE_DETAIL
        error = errors.DomainError(
            errors.MAX_UNHEALTHY_UPGRADED,
            "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value defined in the "
            f"RollingUpgradePolicy. {fenceposts.shown_percent(len(failed_now), upgraded)}% of instances are in an "
            f"unhealthy state after being upgraded - more than the threshold of {threshold}%. The most impactful "
            f"error is: {detail}. First failed instance ID is: {first}.",
        )
        _fault(out, error, policy, now, failed=sorted(failed_now), by_id=by_id)
        return False
    if r.cancel_requested:
        _end(out, now, Event("rolloutCancelled", {"batchesCompleted": r.batch_number}))
        return False
    return True


def _fault(
    out: RollingPass,
    error: errors.DomainError,
    policy: RollingUpgradePolicy,
    now: float,
    *,
    failed: list[int] | None = None,
    by_id: dict[int, InstanceView] | None = None,
) -> None:
    """Fault the rollout; with ``rollbackFailedInstancesOnPolicyBreach``, send the failed instances that are
    still there, not being deleted and not protected from scale-set actions back to their previous model."""
    r = out.rollout
    r.code = RollingStatusCode.FAULTED
    r.error = {"code": error.code, "message": error.message}
    out.events.append(Event("rolloutFaulted", {"code": error.code, "message": error.message}))
    present = by_id or {}
    back = [
        i
        for i in (failed or [])
        if policy.rollbackFailedInstancesOnPolicyBreach
        and i in r.previous_versions
        and i in present
        and i not in r.reverting
        and present[i].provisioning is not ProvisioningState.DELETING
        and not present[i].protect_from_scale_set_actions
    ]
    if back and not policy.maxSurge:
        for instance_id in back:
            out.actions.append(Upgrade(instance_id, r.previous_versions[instance_id], UpgradeReason.ROLLBACK))
        r.rolling_back = back
        r.phase, r.ended_at = Phase.ROLLING_BACK, now
        out.events.append(Event("rollbackStarted", {"instanceIds": [str(i) for i in back]}))
        out.wake_at = now
        return
    r.phase, r.ended_at = Phase.DONE, now


def _watch_rollback(out: RollingPass, by_id: dict[int, InstanceView], target: Target, now: float) -> None:
    """The rollback is done when every rolled-back instance is healthy again, failed, gone, or out of time
    (the same health wait an upgrade gets)."""
    r = out.rollout
    waits: list[float] = []
    for instance_id in r.rolling_back:
        view = by_id.get(instance_id)
        if view is None or view.provisioning is ProvisioningState.FAILED or view.is_healthy:
            continue
        if view.busy:
            waits.append(done_by(view, now))
            continue
        deadline = (view.ready_at if view.ready_at is not None else (r.ended_at or now)) + target.health_wait
        if now >= deadline:
            continue
        waits.append(next_look(view, now, deadline))
    if waits:
        out.wake_at = max(now, *waits)
        return
    out.events.append(
        Event(
            "rollbackCompleted",
            {
                "instanceIds": [str(i) for i in r.rolling_back],
                "healthyIds": [str(i) for i in r.rolling_back if i in by_id and by_id[i].is_healthy],
            },
        )
    )
    healthy = sum(1 for i in r.rolling_back if i in by_id and by_id[i].is_healthy)
    r.rollback_succeeded += healthy
    r.rollback_failed += len(r.rolling_back) - healthy
    r.rolled_back.extend(r.rolling_back)
    r.rolling_back = []
    r.phase = Phase.DONE


def _revert(out: RollingPass, ids: list[int], by_id: dict[int, InstanceView], now: float) -> None:
    """Automatic OS-upgrade rollback: each instance that failed its health wait gets its previous image back."""
    r = out.rollout
    back = [
        i
        for i in ids
        if i in r.previous_versions
        and by_id[i].provisioning is not ProvisioningState.DELETING
        and not by_id[i].protect_from_scale_set_actions
    ]
    for instance_id in back:
        out.actions.append(Upgrade(instance_id, r.previous_versions[instance_id], UpgradeReason.ROLLBACK))
        r.reverting.append(instance_id)
        r.revert_started[instance_id] = now
    if back:
        out.events.append(Event("instanceRollbackStarted", {"instanceIds": [str(i) for i in back]}))
        out.wake_at = now


def _watch_reverting(out: RollingPass, by_id: dict[int, InstanceView], target: Target, now: float) -> None:
    """Settle per-instance rollbacks: healthy again counts as rolled back; failed, gone or out of time does not."""
    r = out.rollout
    waits: list[float] = []
    still: list[int] = []
    for instance_id in r.reverting:
        view = by_id.get(instance_id)
        started = r.revert_started.get(instance_id, now)
        outcome: str | None = None
        if view is None or view.provisioning is ProvisioningState.FAILED:
            outcome = "failed"
        elif view.busy:
            waits.append(done_by(view, now))
        elif view.is_healthy:
            outcome = "succeeded"
        else:
            deadline = (view.ready_at if view.ready_at is not None else started) + target.health_wait
            if now >= deadline:
                outcome = "failed"
            else:
                waits.append(next_look(view, now, deadline))
        if outcome is None:
            still.append(instance_id)
            continue
        r.revert_started.pop(instance_id, None)
        if outcome == "succeeded":
            r.rollback_succeeded += 1
        else:
            r.rollback_failed += 1
            detail = view.error_message if view is not None and view.error_message else UNREACHABLE_DETAIL
            r.rollback_error = {
                "code": "OSUpgradeRollbackFailed",
                "message": f"Instance {instance_id} did not return to a healthy state after its rollback: {detail}",
            }
        out.events.append(Event("instanceRollbackCompleted", {"instanceId": str(instance_id), "outcome": outcome}))
    r.reverting = still
    if waits:
        wake = max(now, min(waits))
        out.wake_at = wake if out.wake_at is None else min(out.wake_at, wake)


def _end(out: RollingPass, now: float, event: Event) -> None:
    r = out.rollout
    r.phase, r.ended_at = Phase.DONE, now
    r.batch, r.batch_zone = [], None
    out.events.append(event)


def _earliest(views: Sequence[InstanceView], now: float) -> float:
    return min((done_by(v, now) for v in views), default=now + POLL_SECONDS)


def _update_progress(r: Rollout, instances: Sequence[InstanceView], target: Target) -> None:
    decided = set(r.succeeded) | set(r.failed)
    in_progress = sum(1 for i in r.batch if i not in decided)
    pending = (
        0 if r.phase is Phase.DONE and r.code is RollingStatusCode.COMPLETED else len(_work_set(r, instances, target))
    )
    r.progress = Progress(
        successfulInstanceCount=len(r.succeeded),
        failedInstanceCount=len(r.failed),
        inProgressInstanceCount=in_progress,
        pendingInstanceCount=pending,
    )
