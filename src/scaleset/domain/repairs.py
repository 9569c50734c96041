"""Automatic instance repairs: which unhealthy instances to repair now, and how each repair turned out.

One pure pass, like the upgrade planners: the repair book (persisted on the scale-set record), the instances as
observed now, the policy and the time in; the next book, the actions to take now, the decisions made (events) and
when to look again out. Reference §5.2 and §5.3; the choices where Azure is unconfirmed are marked *(ours)*.

A pass first follows every attempt in the book to its outcome (always, even while repairs are off, suspended or
held), then, when the service is running, starts new repairs:

* **Candidates.** Provisioning Succeeded, power running, not busy, and health Unhealthy, or Unknown under rich
  health only. Instances without a health source (health None), busy, deleting, stopped or whose provisioning
  failed are not repaired (Azure excludes VMs unhealthy because provisioning failed). Instances protected from
  scale-in or from scale-set actions are never repaired. An instance that is the subject of an attempt still in the
  book is not a candidate.
* **Grace period** (``gracePeriod``, default ``PT10M``). A candidate is repairable from
  ``max(quiet_since, last_change) + grace``, where ``last_change`` is when its last action finished (``ready_at``,
  else ``created_at``) and ``quiet_since`` the last scale-set-level change (PUT/PATCH/POST, or a rollout's end).
  Example: grace 10 min, the set last changed at t=100, instance 3 became ready at t=400 -> repairable at t=1000.
* **Batching.** At most ``max(1, floor(N * 5 / 100))`` attempts in the book at once, which is 1
  whenever N < 20: 19 instances -> 1, 40 -> 2, 100 -> 5, 1000 -> 50. A repair counts until it is decided
  (its instance healthy, or the repair failed), not only while its action runs *(ours: the safer reading of
  "repaired at once")*. Candidates are taken in ascending instance id.
* **Actions** (``repairAction``, default Replace). Replace: delete the instance and create one with a new id on the
  latest model in its zone and fault domain, together (the new VM is created without waiting). Reimage: a fresh OS
  disk on the instance's own model; id and data disks kept. Restart: restart it.
* **Outcome.** The subject of an attempt is the instance whose health decides it (for Replace the new instance).
  Once its action has finished, it has the grace period to turn healthy: healthy -> ``repairSucceeded`` and the
  failure count goes back to 0; provisioning Failed, the subject gone, or still not healthy at the deadline (and no
  longer Initializing: a health source still in its own grace period is waited for) ->
  ``repairFailed``. After ``REPAIR_FAILURE_LIMIT`` consecutive failures the platform suspends the service.

Choices *(ours)*:

* N, the batch denominator, is the set's size: instances not deleting, where an in-flight Replace counts once, as
  the instance it replaces (its old VM is deleting, its new VM still creating), so 40 instances allow 2 repairs at
  once whether or not one Replace is already running.
* While a rolling upgrade is running, new repairs are held (the reference calls this reasonable, Azure does not say).
* Consecutive failures are counted across the whole set, not per instance; a success anywhere resets the count.
  A platform suspension is reported as ``Suspended`` until the user resumes; Resume resets the count.
* A subject that is deleting or gone counts as a failed repair (``instanceDeleted``).
* A subject whose action is never seen (missing from the views, or not busy with its last action finished before
  the attempt started) is in flight for at most the grace period after the attempt started, then a failed repair
  (``actionNotObserved``), so a lost action cannot hold a batch slot forever.
* A subject whose deadline passes while still unhealthy is a candidate again in the same pass (its own grace has
  run out at the deadline); the failure limit stops endless loops.
* The first pass after repairs start asks to be woken at once (``wake_at = now``), as the rolling planner does, so
  the next pass sees the actions applied.
* ``setOrchestrationServiceState`` on a set without an enabled policy is 409 ``OperationNotAllowed``; an unknown
  action is 400 ``InvalidParameter`` (target ``action``), checked first. Suspend when suspended and Resume when
  running succeed and change nothing (a Suspend keeps a platform suspension's reason). Resume also forgets the
  waiting reasons already logged, so they are logged again.

Events (``Event.kind``): ``repairWaiting`` (once per instance and reason: ``gracePeriod`` with ``until``,
``batchLimit``, ``protected``, ``heldByRollingUpgrade``), ``repairStarted``, ``repairSucceeded``, ``repairFailed``,
``repairsSuspended``, ``repairsResumed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scaleset.domain import errors, fenceposts
from scaleset.domain.actions import Action, Create, Delete, Event, Power, PowerAction, Reimage
from scaleset.domain.durations import parse_duration
from scaleset.domain.health import HealthState
from scaleset.domain.instances import POLL_SECONDS, InstanceView, PowerState, ProvisioningState, done_by, next_look
from scaleset.domain.resources import AutomaticRepairsPolicy, RepairAction

REPAIR_FAILURE_LIMIT = 3
"""Consecutive failed repairs after which the platform suspends the service."""

_BATCH_PERCENT = 5
DEFAULT_GRACE_SECONDS = 600.0  # PT10M

_REASON = "automaticRepair"


class ServiceState(StrEnum):
    NOT_RUNNING = "NotRunning"
    RUNNING = "Running"
    SUSPENDED = "Suspended"


class RepairAttempt(BaseModel):
    """One repair: in flight while ``deadline`` is None, then watched until its subject is healthy or the deadline."""

    model_config = ConfigDict(extra="forbid")

    original_id: int
    instance_id: int
    action: str
    started_at: float
    deadline: float | None = None


class RepairBook(BaseModel):
    """What the repair service remembers between passes, persisted on the scale-set record."""

    model_config = ConfigDict(extra="forbid")

    suspended: bool = False
    suspended_by: str | None = None
    suspended_reason: str | None = None
    attempts: dict[int, RepairAttempt] = Field(default_factory=dict)
    consecutive_failures: int = 0
    noted: dict[int, str] = Field(default_factory=dict)

    def clone(self) -> RepairBook:
        """A copy whose containers are its own. Attempts are shared: the planner replaces an attempt it changes
        (:func:`_track`) rather than changing it, so neither book sees the other's changes."""
        copied = self.model_copy()
        copied.attempts = dict(self.attempts)
        copied.noted = dict(self.noted)
        return copied


@dataclass(slots=True)
class RepairPass:
    book: RepairBook
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wake_at: float | None = None


def service_state(policy: AutomaticRepairsPolicy | None, book: RepairBook) -> ServiceState | None:
    """The ``AutomaticRepairs`` entry of ``orchestrationServices``; None when the set has no repairs policy."""
    if policy is None:
        return None
    if not policy.enabled:
        return ServiceState.NOT_RUNNING
    return ServiceState.SUSPENDED if book.suspended else ServiceState.RUNNING


def set_service_state(
    policy: AutomaticRepairsPolicy | None, book: RepairBook, action: str, *, now: float
) -> tuple[RepairBook, Event]:
    """``setOrchestrationServiceState`` for ``AutomaticRepairs``: Suspend or Resume (any letter case)."""
    verb = action.strip().lower() if isinstance(action, str) else ""
    if verb not in {"suspend", "resume"}:
        raise errors.invalid_parameter(
            "action", f"The value '{action}' of parameter 'action' is not valid. Allowed values are Suspend, Resume."
        )
    done = "suspended" if verb == "suspend" else "resumed"
    if policy is None:
        raise errors.operation_not_allowed(
            f"Automatic repairs cannot be {done} because the scale set has no automaticRepairsPolicy. "
            "Set automaticRepairsPolicy.enabled to true first."
        )
    if not policy.enabled:
        raise errors.operation_not_allowed(
            f"Automatic repairs cannot be {done} because automaticRepairsPolicy is not enabled on the scale set. "
            "Set automaticRepairsPolicy.enabled to true first."
        )
    before = service_state(policy, book)
    out = book.clone()
    if verb == "suspend":
        if not out.suspended:
            out.suspended, out.suspended_by = True, "User"
            out.suspended_reason = "Automatic repairs were suspended by the user."
        data: dict[str, Any] = {"by": "User", "reason": out.suspended_reason}
        kind = "repairsSuspended"
    else:
        out.suspended, out.suspended_by, out.suspended_reason = False, None, None
        out.consecutive_failures = 0
        out.noted = {}
        data = {"by": "User"}
        kind = "repairsResumed"
    after = service_state(policy, out)
    data |= {"previousState": str(before), "state": str(after), "changed": before != after, "at": now}
    return out, Event(kind, data)


def plan_repairs(
    views: Sequence[InstanceView],
    *,
    policy: AutomaticRepairsPolicy | None,
    book: RepairBook,
    now: float,
    quiet_since: float,
    rich: bool,
    held: bool,
    next_instance_id: int,
    model_version: int,
    grace: float | None = None,
) -> RepairPass:
    """One pass of the repair service at ``now``; ``grace`` (seconds) overrides the policy's grace period."""
    out = RepairPass(book.clone())
    if grace is None:
        grace = parse_duration(policy.gracePeriod) if policy is not None else DEFAULT_GRACE_SECONDS
    waits: list[float] = []
    if book.attempts:  # most passes follow no repair: spare them a map of every instance
        _track(out, {view.instance_id: view for view in views}, grace=grace, now=now, waits=waits)
    b = out.book
    if policy is None or not policy.enabled or b.suspended:
        out.wake_at = _tick(min(waits, default=None), now)
        return out

    subjects = b.attempts
    waiting: dict[int, tuple[str, dict[str, Any]]] = {}
    candidates: list[tuple[InstanceView, str]] = []
    watch: float | None = None  # the earliest time an instance that is not a candidate may change
    # Every pass runs this loop over every instance: the common case (healthy, or no health source) is decided
    # first, with module constants rather than enum lookups.
    for view in views:
        health = view.health
        if health is None or view.instance_id in subjects or view.provisioning is _DELETING:
            continue
        trigger = None if health is _HEALTHY or health is _INITIALIZING else _trigger(view, rich=rich)
        protected = view.protect_from_scale_in or view.protect_from_scale_set_actions
        if trigger is None:
            until = view.stable_until
            if not protected and until is not None and until > now and (watch is None or until < watch):
                watch = until
        elif protected:
            waiting[view.instance_id] = ("protected", {})
        else:
            candidates.append((view, trigger))

    candidates.sort(key=lambda candidate: candidate[0].instance_id)  # repaired in ascending instance id
    if held:
        for view, _ in candidates:
            waiting[view.instance_id] = ("heldByRollingUpgrade", {})
    else:
        if watch is not None:
            waits.append(watch)
        ready: list[tuple[InstanceView, str, float]] = []
        for view, trigger in candidates:
            last_change = view.ready_at if view.ready_at is not None else view.created_at
            ends = max(quiet_since, last_change) + grace
            if now < ends:
                waiting[view.instance_id] = ("gracePeriod", {"until": ends})
                waits.append(ends)
            else:
                ready.append((view, trigger, ends))
        in_flight = len(b.attempts)  # a repair counts until it is decided: its instance healthy, or failed
        limit = _batch_limit(_population(views, b)) if ready else 0
        room = max(0, limit - in_flight)
        for view, _, _ in ready[room:]:
            waiting[view.instance_id] = ("batchLimit", {"limit": limit, "inFlight": in_flight})
        action = policy.repairAction  # canonical already: the resource model spells it
        new_id = next_instance_id
        for view, trigger, ends in ready[:room]:
            new_id = _start(
                out,
                view,
                action,
                trigger=trigger,
                grace_ended_at=ends,
                now=now,
                new_id=new_id,
                model_version=model_version,
            )
        if ready[:room]:
            waits.append(now)

    _note(out, waiting)
    out.wake_at = _tick(min(waits, default=None), now)
    return out


def _tick(when: float | None, now: float) -> float | None:
    """When to look again: at once if due, else at the next multiple of ``POLL_SECONDS`` from ``when`` on.

    The repair service polls, as Azure's does, rather than waking for each instance's every change: in a big set
    hundreds of repairs finish at scattered moments, and one pass per moment would cost a pass over every instance
    each time. Decisions come at most ``POLL_SECONDS`` late.

    >>> _tick(12.0, 10.0), _tick(15.0, 10.0), _tick(9.0, 10.0), _tick(None, 10.0)
    (15.0, 15.0, 10.0, None)
    """
    if when is None or when <= now:
        return when if when is None else now
    return math.ceil(when / POLL_SECONDS) * POLL_SECONDS


_DELETING = ProvisioningState.DELETING
_HEALTHY, _INITIALIZING = HealthState.HEALTHY, HealthState.INITIALIZING


def _trigger(view: InstanceView, *, rich: bool) -> str | None:
    """Why the instance's health asks for a repair ("Unhealthy", or "Unknown" under rich health), else None."""
    if view.provisioning is not ProvisioningState.SUCCEEDED or view.power is not PowerState.RUNNING:
        return None
    if view.health is HealthState.UNHEALTHY:
        return "Unhealthy"
    if view.health is HealthState.UNKNOWN and rich:
        return "Unknown"
    return None


def _batch_limit(total: int) -> int:
    """Repairs in flight at once: 5% of the set, at least 1 (so 1 below 20 instances).

    >>> _batch_limit(19), _batch_limit(20), _batch_limit(40), _batch_limit(100), _batch_limit(0)
    (1, 1, 2, 5, 1)
    """
    return max(1, fenceposts.batch_size(total, _BATCH_PERCENT))


def _population(views: Sequence[InstanceView], book: RepairBook) -> int:
    """N for the batch limit: instances not deleting, an in-flight Replace counted once (as its old instance)."""
    replacing = {
        attempt.instance_id: attempt.original_id
        for attempt in book.attempts.values()
        if attempt.deadline is None and attempt.action == RepairAction.REPLACE.value
    }
    ids = {v.instance_id for v in views if v.provisioning is not ProvisioningState.DELETING}
    return len((ids - replacing.keys()) | set(replacing.values()))


def _start(
    out: RepairPass,
    old: InstanceView,
    action: RepairAction,
    *,
    trigger: str,
    grace_ended_at: float,
    now: float,
    new_id: int,
    model_version: int,
) -> int:
    """Start one repair; returns the next free instance id."""
    data: dict[str, Any] = {
        "instanceId": str(old.instance_id),
        "action": action.value,
        "reason": trigger,
        "gracePeriodEndedAt": grace_ended_at,
    }
    subject = old.instance_id
    if action is RepairAction.REPLACE:
        subject = new_id
        out.actions.append(Delete(old.instance_id, reason=_REASON))
        out.actions.append(Create(new_id, old.zone, old.fault_domain, model_version, reason=_REASON))
        data["newInstanceId"] = str(new_id)
        new_id += 1
    elif action is RepairAction.REIMAGE:
        out.actions.append(Reimage(old.instance_id, to_version=old.model_version))
    else:
        out.actions.append(Power(old.instance_id, PowerAction.RESTART))
    out.book.attempts[subject] = RepairAttempt(
        original_id=old.instance_id, instance_id=subject, action=action.value, started_at=now
    )
    out.events.append(Event("repairStarted", data))
    return new_id


def _track(out: RepairPass, by_id: dict[int, InstanceView], *, grace: float, now: float, waits: list[float]) -> None:
    """Follow every attempt in the book; decided ones leave it, with their event."""
    b = out.book
    for key in sorted(b.attempts):
        attempt = b.attempts[key]
        if attempt.deadline is None:  # _judge may set its deadline: change a copy, never the caller's attempt
            attempt = b.attempts[key] = attempt.model_copy()
        view = by_id.get(attempt.instance_id)
        failure = _judge(attempt, view, grace=grace, now=now, waits=waits)
        if failure is None:
            continue
        del b.attempts[key]
        data: dict[str, Any] = {
            "instanceId": str(attempt.instance_id),
            "originalInstanceId": str(attempt.original_id),
            "action": attempt.action,
        }
        if not failure:
            b.consecutive_failures = 0
            out.events.append(Event("repairSucceeded", data))
            continue
        b.consecutive_failures += 1
        data |= failure | {"consecutiveFailures": b.consecutive_failures}
        out.events.append(Event("repairFailed", data))
        if not b.suspended and b.consecutive_failures >= REPAIR_FAILURE_LIMIT:
            b.suspended, b.suspended_by = True, "Platform"
            b.suspended_reason = (
                f"Automatic repairs were suspended by the platform after {b.consecutive_failures} consecutive "
                f"failed repairs (the last on instance {attempt.instance_id}: {failure['reason']})."
            )
            out.events.append(
                Event(
                    "repairsSuspended",
                    {"by": "Platform", "reason": b.suspended_reason, "consecutiveFailures": b.consecutive_failures},
                )
            )


def _judge(
    attempt: RepairAttempt, view: InstanceView | None, *, grace: float, now: float, waits: list[float]
) -> dict[str, Any] | None:
    """None while undecided (adding when to look again to ``waits``); ``{}`` on success; the failure's facts."""
    if view is None or view.provisioning is ProvisioningState.DELETING:
        not_yet_created = attempt.deadline is None and attempt.action == RepairAction.REPLACE.value
        if view is None and not_yet_created:
            return _not_observed(attempt, grace=grace, now=now, waits=waits)
        return {"reason": "instanceDeleted"}
    if view.provisioning is ProvisioningState.FAILED:
        return {"reason": "provisioningFailed", "errorCode": view.error_code, "errorMessage": view.error_message}
    if view.busy:
        waits.append(done_by(view, now))
        return None
    finished_at = view.ready_at if view.ready_at is not None else view.created_at
    if attempt.deadline is None and finished_at < attempt.started_at:
        return _not_observed(attempt, grace=grace, now=now, waits=waits)
    if attempt.deadline is None:
        attempt.deadline = finished_at + grace
    if view.is_healthy:
        return {}
    if now >= attempt.deadline and view.health is HealthState.INITIALIZING:
        # The health source has not decided yet (the extension's own grace period): judge once it has.
        waits.append(
            view.stable_until if view.stable_until is not None and view.stable_until > now else now + POLL_SECONDS
        )
        return None
    if now >= attempt.deadline:
        return {
            "reason": "unhealthyAfterGracePeriod",
            "health": str(view.health) if view.health is not None else None,
            "power": str(view.power),
        }
    waits.append(next_look(view, now, attempt.deadline))
    return None


def _not_observed(attempt: RepairAttempt, *, grace: float, now: float, waits: list[float]) -> dict[str, Any] | None:
    """The action has not shown on its subject yet: wait, for at most the grace period after the start."""
    if now >= attempt.started_at + grace:
        return {"reason": "actionNotObserved"}
    waits.append(now + POLL_SECONDS)
    return None


def _note(out: RepairPass, waiting: dict[int, tuple[str, dict[str, Any]]]) -> None:
    """Log each instance's waiting reason when it changes; forget instances no longer waiting."""
    previous = out.book.noted
    for instance_id in sorted(waiting):
        reason, facts = waiting[instance_id]
        if previous.get(instance_id) != reason:
            out.events.append(Event("repairWaiting", {"instanceId": str(instance_id), "reason": reason, **facts}))
    out.book.noted = {instance_id: reason for instance_id, (reason, _) in waiting.items()}
