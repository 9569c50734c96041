"""``scaleset load``: what a scale set's rollouts did and when, rebuilt from its activity-log events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BEFORE, BETWEEN, ROLLBACK, AFTER, BATCH = "before rollout", "between batches", "rollback", "after rollout", "batch"

# ---------------------------------------------------------------------------------------------- the rollout timeline


@dataclass
class Span:
    start: float
    end: float | None = None
    instance_ids: list[str] = field(default_factory=list)

    def holds(self, when: float) -> bool:
        return self.start <= when and (self.end is None or when < self.end)


@dataclass
class RolloutSpan:
    rollout_id: str
    start: float
    end: float | None = None
    outcome: str | None = None
    batches: dict[int, Span] = field(default_factory=dict)
    rollback: Span | None = None

    def close(self, when: float, outcome: str | None = None) -> None:
        for span in self.batches.values():
            if span.end is None:
                span.end = when
        if self.rollback is not None and self.rollback.end is None:
            self.rollback.end = when
        if self.end is None:
            self.end = when
        if outcome is not None:
            self.outcome = outcome


Key = tuple[str, str | None, int | None]  # (bucket, rollout id, batch number)

_OUTCOMES = {"rolloutCompleted": "Completed", "rolloutCancelled": "Cancelled", "rolloutFaulted": "Faulted"}


class Timeline:
    """What a scale set's rollouts did and when (virtual time), from its activity-log events in order."""

    def __init__(self) -> None:
        self.rollouts: list[RolloutSpan] = []
        self.since: float | None = None  # rollouts over by then are not this run's

    def _find(self, event: dict[str, Any]) -> RolloutSpan | None:
        rollout_id = event.get("rolloutId")
        if rollout_id is not None:
            for rollout in reversed(self.rollouts):
                if rollout.rollout_id == rollout_id:
                    return rollout
        return self.rollouts[-1] if self.rollouts else None

    def apply(self, event: dict[str, Any]) -> None:
        kind, when = event.get("kind"), event.get("time")
        if not isinstance(when, int | float) or isinstance(when, bool):
            return
        when = float(when)
        if kind == "rolloutStarted":
            for earlier in self.rollouts:
                if earlier.end is None:  # superseded: closed where the new one starts
                    earlier.close(when)
            rollout_id = str(event.get("rolloutId") or f"rollout-{len(self.rollouts) + 1}")
            self.rollouts.append(RolloutSpan(rollout_id, when))
            return
        rollout = self._find(event)
        if rollout is None:
            return
        ids = [str(i) for i in event.get("instanceIds") or []]
        if kind == "batchStarted" and isinstance(event.get("batch"), int):
            rollout.batches[int(event["batch"])] = Span(when, None, ids)
        elif kind == "batchCompleted" and isinstance(event.get("batch"), int):
            span = rollout.batches.get(int(event["batch"]))
            if span is not None and span.end is None:
                span.end = when
        elif kind in _OUTCOMES:
            rollout.close(when, _OUTCOMES[str(kind)])
        elif kind == "rollbackStarted":
            rollout.rollback, rollout.end = Span(when, None, ids), None
        elif kind == "rollbackCompleted":
            rollout.close(when)
        elif kind in ("scaleSetDeleting", "scaleSetDeleted"):
            for each in self.rollouts:
                if each.end is None:
                    each.close(when)

    def relevant(self) -> list[RolloutSpan]:
        return [r for r in self.rollouts if self.since is None or r.end is None or r.end > self.since]

    def locate(self, when: float) -> Key:
        current: RolloutSpan | None = None
        for rollout in self.relevant():
            if rollout.start <= when:
                current = rollout
        if current is None:
            return (BEFORE, None, None)
        if current.end is not None and when >= current.end:
            return (AFTER, None, None)
        for number, span in current.batches.items():
            if span.holds(when):
                return (BATCH, current.rollout_id, number)
        if current.rollback is not None and current.rollback.holds(when):
            return (ROLLBACK, current.rollout_id, None)
        return (BETWEEN, current.rollout_id, None)
