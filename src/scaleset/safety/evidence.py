"""``scaleset evidence``: the report model of a rollout, built from what a live scale set shows (pure).

Inputs: the scale set's body (the policy in force, Azure's defaults made explicit), ``rollingUpgrades/latest`` (ARM
JSON, or None when the scale set never rolled), its instances (:class:`InstanceFacts`), and the activity log (the
emulator's ``/_scaleset/events`` rows, or None where there is none: real Azure). The latest rollout of the log is
the one reported: its batches (instances, zone, timings, the check before and the verdict after), the rollback,
and a time series of in-service and healthy instance counts derived from the events:

* ``batchStarted`` takes its instances out of service (in place); with ``maxSurge`` nothing leaves (the new
  instances come on top and replace the old ones only once healthy);
* ``batchCompleted``'s ``succeededIds`` are back in service; its ``failedIds`` stay out until a rollback brings
  them back (``rollbackCompleted``'s ``healthyIds``);
* healthy = in service minus the unhealthy instances in service, known at each ``preBatchCheck`` (the check
  counts the population's unhealthy instances; those out of service are taken off, and a batch is assumed to
  take healthy ones: the lower, safer count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scaleset.domain import fenceposts
from scaleset.safety.inputs_shapes import InstanceFacts, ScaleSetInput

REPORT_VERSION = 1
FAULT_KINDS = ("healthInjected", "rolloutFaulted")


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


@dataclass
class Batch:
    number: int
    instance_ids: list[str]
    zone: str | None = None
    surge_instance_ids: list[str] | None = None
    start: float | None = None
    end: float | None = None
    succeeded_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    pre_check: dict[str, Any] | None = None  # unhealthy, total, thresholdPercent, tolerated, passed
    post_check: dict[str, Any] | None = None  # upgradedUnhealthy, upgraded, thresholdPercent, passed

    @property
    def verdict(self) -> str:
        if self.post_check is None:
            return "InProgress"
        return "Passed" if self.post_check.get("passed") else "Breached"

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "instanceIds": self.instance_ids,
            "surgeInstanceIds": self.surge_instance_ids,
            "zone": self.zone,
            "start": iso(self.start),
            "end": iso(self.end),
            "durationSeconds": (self.end - self.start) if self.start is not None and self.end is not None else None,
            "verdict": self.verdict,
            "succeededIds": self.succeeded_ids,
            "failedIds": self.failed_ids,
            "preBatchCheck": self.pre_check,
            "batchCompleted": self.post_check,
        }


@dataclass(frozen=True)
class Point:
    time: float
    in_service: int
    healthy: int


@dataclass
class Rollback:
    instance_ids: list[str]
    start: float | None
    end: float | None = None
    healthy_ids: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceIds": self.instance_ids,
            "start": iso(self.start),
            "end": iso(self.end),
            "healthyIds": self.healthy_ids,
        }


@dataclass
class Evidence:
    """Everything the three renderings show."""

    name: str
    resource_group: str | None
    source: str  # "emulator" | "azure" | anything a test says
    generated: float
    capacity: int
    policy: dict[str, Any]  # upgradePolicy, every field explicit
    status: dict[str, Any] | None  # code, startTime, endTime, lastAction, error, progress
    rollout_id: str | None
    target_model_version: str | None
    batches: list[Batch]
    rollback: Rollback | None
    outcome: dict[str, Any] | None  # the event that ended the rollout (kind, time, code, message)
    events: list[dict[str, Any]] | None  # None: no activity log (real Azure)
    series: list[Point]
    faults: list[tuple[float, str]]
    instances: list[InstanceFacts]
    notes: list[str]

    @property
    def max_unhealthy_percent(self) -> int:
        rolling = self.policy.get("rollingUpgradePolicy") or {}
        return int(rolling.get("maxUnhealthyInstancePercent", 20))

    @property
    def max_surge(self) -> bool:
        return bool((self.policy.get("rollingUpgradePolicy") or {}).get("maxSurge"))

    @property
    def min_in_service(self) -> int:
        """The fewest instances in service that maxUnhealthyInstancePercent allows."""
        return self.capacity - fenceposts.tolerated(self.capacity, self.max_unhealthy_percent)

    def to_json(self) -> dict[str, Any]:
        return {
            "reportVersion": REPORT_VERSION,
            "scaleSet": {"name": self.name, "resourceGroup": self.resource_group, "source": self.source},
            "generated": iso(self.generated),
            "capacity": self.capacity,
            "policy": self.policy,
            "thresholds": {
                "maxUnhealthyInstancePercent": self.max_unhealthy_percent,
                "minInService": self.min_in_service,
            },
            "status": self.status,
            "rollout": {
                "id": self.rollout_id,
                "targetModelVersion": self.target_model_version,
                "outcome": self.outcome,
            },
            "batches": [b.to_json() for b in self.batches],
            "rollback": self.rollback.to_json() if self.rollback is not None else None,
            "timeSeries": [{"time": iso(p.time), "inService": p.in_service, "healthy": p.healthy} for p in self.series],
            "faults": [{"time": iso(t), "label": label} for t, label in self.faults],
            "instances": [
                {
                    "instanceId": f.instance_id,
                    "zone": f.zone,
                    "imageVersion": f.image_version,
                    "latestModelApplied": f.latest_model_applied,
                    "health": f.health,
                    "provisioningState": f.provisioning_state,
                    "powerState": f.power_state,
                }
                for f in self.instances
            ],
            "activityLog": {"available": self.events is not None, "events": self.events or []},
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------- the status


def rollout_status(latest: dict[str, Any] | None) -> dict[str, Any] | None:
    """``rollingUpgrades/latest`` (ARM JSON, ``properties`` or flattened) as code, start, end, error, progress."""
    if not latest:
        return None
    inner = latest.get("properties")
    props: dict[str, Any] = inner if isinstance(inner, dict) else latest
    running = props.get("runningStatus") or {}
    error = props.get("error")
    return {
        "code": running.get("code"),
        "startTime": _text(running.get("startTime")),
        # The status document has no end time (lastActionTime is when the last Start or Cancel was asked); the
        # activity log's outcome event fills it in when there is one.
        "endTime": None,
        "lastAction": running.get("lastAction"),
        "progress": props.get("progress"),
        "error": {"code": error.get("code"), "message": error.get("message")} if isinstance(error, dict) else None,
    }


def _text(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else (str(value) if value is not None else None)


# ---------------------------------------------------------------------------------------------- the events


def latest_rollout(events: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The id of the last rollout that started, and its events (plus the fault injections during it)."""
    started = [e for e in events if e.get("kind") == "rolloutStarted"]
    if not started:
        return None, []
    first = started[-1]
    rollout_id = first.get("rolloutId")
    begin = float(first.get("time", 0.0))
    mine = [
        e
        for e in events
        if (rollout_id is not None and e.get("rolloutId") == rollout_id)
        or (e.get("kind") == "healthInjected" and float(e.get("time", 0.0)) >= begin)
        or e is first
    ]
    return (str(rollout_id) if rollout_id is not None else None), mine


def derive(
    events: list[dict[str, Any]], capacity: int, *, max_surge: bool
) -> tuple[list[Batch], Rollback | None, dict[str, Any] | None, list[Point], list[tuple[float, str]]]:
    """Batches, rollback, outcome, the in-service/healthy series and the fault moments of one rollout's events."""
    batches: dict[int, Batch] = {}
    checks: dict[int, dict[str, Any]] = {}
    rollback: Rollback | None = None
    outcome: dict[str, Any] | None = None
    faults: list[tuple[float, str]] = []
    out: set[str] = set()
    unhealthy_in_service = 0
    series: list[Point] = []

    def point(at: float) -> None:
        in_service = max(0, capacity - len(out))
        healthy = max(0, in_service - unhealthy_in_service)
        if series and series[-1].time == at:
            series.pop()
        series.append(Point(at, in_service, healthy))

    for event in sorted(events, key=lambda e: (float(e.get("time", 0.0)), int(e.get("seq", 0)))):
        kind = event.get("kind")
        at = float(event.get("time", 0.0))
        if kind == "rolloutStarted":
            capacity = int(event.get("instances") or capacity)
            point(at)
        elif kind == "preBatchCheck":
            number = int(event["batch"])
            checks[number] = {
                k: event.get(k) for k in ("unhealthy", "total", "thresholdPercent", "tolerated", "passed")
            }
            unhealthy_in_service = max(0, int(event.get("unhealthy", 0)) - len(out))
            point(at)
        elif kind == "batchStarted":
            number = int(event["batch"])
            ids = [str(i) for i in event.get("instanceIds") or []]
            surge = event.get("surgeInstanceIds")
            batches[number] = Batch(
                number,
                ids,
                zone=event.get("zone"),
                surge_instance_ids=[str(i) for i in surge] if surge is not None else None,
                start=at,
                pre_check=checks.get(number),
            )
            if not (max_surge or surge is not None):
                out.update(ids)  # the unhealthy ones in service are assumed to stay (the lower healthy count)
            point(at)
        elif kind == "batchCompleted":
            number = int(event["batch"])
            batch = batches.setdefault(number, Batch(number, []))
            batch.end = at
            batch.succeeded_ids = [str(i) for i in event.get("succeededIds") or []]
            batch.failed_ids = [str(i) for i in event.get("failedIds") or []]
            batch.post_check = {
                k: event.get(k) for k in ("upgradedUnhealthy", "upgraded", "thresholdPercent", "passed")
            }
            if batch.surge_instance_ids is None:
                out.difference_update(batch.succeeded_ids)
            if batch.failed_ids:
                faults.append((at, f"batch {number}: {len(batch.failed_ids)} failed"))
            point(at)
        elif kind == "rollbackStarted":
            rollback = Rollback([str(i) for i in event.get("instanceIds") or []], at)
            point(at)
        elif kind == "rollbackCompleted":
            healthy = [str(i) for i in event.get("healthyIds") or []]
            if rollback is None:
                rollback = Rollback([str(i) for i in event.get("instanceIds") or []], None)
            rollback.end, rollback.healthy_ids = at, healthy
            out.difference_update(healthy)
            point(at)
        elif kind in ("rolloutCompleted", "rolloutFaulted", "rolloutCancelled"):
            outcome = {
                "kind": kind,
                "time": iso(at),
                "code": event.get("code"),
                "message": event.get("message"),
            }
            if kind == "rolloutFaulted":
                faults.append((at, f"faulted: {event.get('code')}"))
            point(at)
        elif kind == "healthInjected":
            answer = event.get("answer")
            faults.append((at, f"injected '{answer}' on {len(event.get('instanceIds') or [])} instance(s)"))
    for number, check in checks.items():  # a check whose batch never started (the check breached)
        if number in batches:
            batches[number].pre_check = check
    return [batches[n] for n in sorted(batches)], rollback, outcome, series, sorted(faults)


def build(
    scale_set: ScaleSetInput,
    *,
    latest: dict[str, Any] | None,
    events: list[dict[str, Any]] | None,
    source: str,
    generated: float,
) -> Evidence:
    """The report of the latest rollout of ``scale_set``; ``events`` None means no activity log (real Azure)."""
    policy = scale_set.model.properties.upgradePolicy.model_dump(mode="json")
    capacity = scale_set.capacity
    max_surge = bool(policy.get("rollingUpgradePolicy", {}).get("maxSurge"))
    notes: list[str] = []
    rollout_id: str | None = None
    target: str | None = None
    batches: list[Batch] = []
    rollback: Rollback | None = None
    outcome: dict[str, Any] | None = None
    series: list[Point] = []
    faults: list[tuple[float, str]] = []
    if events is None:
        notes.append(
            "No activity log: real Azure has no per-batch event feed here, so batches, their timings and the "
            "capacity timeline are not available; the status comes from rollingUpgrades/latest and the instances "
            "from their instance views."
        )
    else:
        rollout_id, mine = latest_rollout(events)
        if rollout_id is None and not mine:
            notes.append("The activity log has no rolling upgrade of this scale set.")
        else:
            started = next(e for e in mine if e.get("kind") == "rolloutStarted")
            target = started.get("targetModelVersion")
            capacity = int(started.get("instances") or capacity)
            batches, rollback, outcome, series, faults = derive(mine, capacity, max_surge=max_surge)
    status = rollout_status(latest)
    if status is not None and outcome is not None and status.get("code") != "RollingForward":
        status["endTime"] = outcome.get("time")
    if status is None:
        notes.append("rollingUpgrades/latest: no rolling upgrade has run on this scale set.")
    elif status.get("code") == "RollingForward":
        notes.append("The rollout is still running: this report is a snapshot.")
    return Evidence(
        name=scale_set.name,
        resource_group=scale_set.resource_group,
        source=source,
        generated=generated,
        capacity=capacity,
        policy=policy,
        status=status,
        rollout_id=rollout_id,
        target_model_version=str(target) if target is not None else None,
        batches=batches,
        rollback=rollback,
        outcome=outcome,
        events=events,
        series=series,
        faults=faults,
        instances=list(scale_set.instances or ()),
        notes=notes,
    )
