"""Simulated instances in virtual time, with seeded faults.

Nothing runs: when the engine starts an action, the backend draws how long it takes and how the instance's
application will answer health probes afterwards (a short list of :class:`Segment` values), and stores that on the
record. Observing an instance at any ``now`` is then a closed-form evaluation (:func:`scaleset.domain.health.evaluate`),
so ten thousand instances over hours cost no more than the handful of passes that look at them.

Every draw comes from a random generator seeded by ``(seed, scale set, instance id, action generation)``, so the
same scenario and seed give the same run event for event, whatever order passes run in and across a restart.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaleset.backends import base
from scaleset.domain.durations import parse_duration
from scaleset.domain.health import Answer, Segment, evaluate
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.records import InstanceRecord

FLAP_LIMIT = 400
"""Most answer changes generated for a flapping instance (at the default 60 s period: over six hours)."""


def _seconds(value: Any) -> Any:
    """Durations in scenario files: ISO 8601 strings (``PT30S``) or plain seconds."""
    if isinstance(value, str):
        return parse_duration(value)
    return value


class Range(BaseModel):
    """A duration drawn uniformly from ``[min, max]`` seconds; written ``[30, 90]``, ``PT45S`` or ``45``."""

    model_config = ConfigDict(extra="forbid")
    min: float = Field(ge=0)
    max: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_short_forms(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and len(value) == 2:
            return {"min": _seconds(value[0]), "max": _seconds(value[1])}
        if isinstance(value, int | float | str):
            seconds = _seconds(value)
            return {"min": seconds, "max": seconds}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError(f"max ({self.max:g}) is less than min ({self.min:g})")
        return self

    def draw(self, rng: random.Random) -> float:
        return self.min if self.max == self.min else rng.uniform(self.min, self.max)


FaultKind = Literal["never_healthy", "crash", "slow_boot", "flapping", "unknown", "extension_failure", "zone_outage"]


class Fault(BaseModel):
    """One fault, matched against the model an instance is deployed with and against the instance.

    Kinds: ``never_healthy`` (the app never answers, or answers Unhealthy with ``respond: unhealthy``); ``crash``
    (healthy, then silent ``after`` seconds later); ``slow_boot`` (healthy only ``delay`` after provisioning);
    ``flapping`` (alternates healthy / unhealthy every ``period``); ``unknown`` (rich health: answers without a
    valid state); ``extension_failure`` (provisioning fails on ``extension``); ``zone_outage`` (every instance in
    ``zone`` stops answering from ``at`` for ``duration``).
    """

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    image_version: str | None = None
    extension: str | None = None
    instances: list[int] | None = None
    zone: str | None = None
    fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    respond: Literal["none", "unhealthy"] = "none"
    after: float = 60.0
    delay: float = 900.0
    period: float = 60.0
    at: float = 0.0
    duration: float | None = None

    _durations = field_validator("after", "delay", "period", "at", "duration", mode="before")(
        lambda cls, v: _seconds(v)
    )

    @model_validator(mode="after")
    def _complete(self) -> Fault:
        if self.kind == "zone_outage" and self.zone is None:
            raise ValueError("a zone_outage fault needs 'zone'")
        if self.kind == "extension_failure" and self.extension is None:
            raise ValueError("an extension_failure fault needs 'extension'")
        if self.period <= 0:
            raise ValueError("'period' must be positive")
        return self

    def matches(self, record: InstanceRecord, model: base.InstanceModel) -> bool:
        if self.image_version is not None and self.image_version != model.image_version:
            return False
        if self.extension is not None and self.extension not in model.extensions:
            return False
        if self.instances is not None and record.instance_id not in self.instances:
            return False
        return self.zone is None or self.zone == record.zone


class SimulationConfig(BaseModel):
    """How simulated instances behave. Every field has a default, so ``simulation: {}`` is a healthy fleet."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    start: float = 0.0  # the clock reading that fault times (``at``) count from
    provision: Range = Field(default_factory=lambda: Range(min=30, max=90))
    app_start: Range = Field(default_factory=lambda: Range(min=5, max=15))
    delete: Range = Field(default_factory=lambda: Range(min=10, max=30))
    restart: Range = Field(default_factory=lambda: Range(min=20, max=40))
    stop: Range = Field(default_factory=lambda: Range(min=10, max=20))
    images: list[str] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)


def _rng(seed: int, set_id: str, record: InstanceRecord) -> random.Random:
    return random.Random(f"{seed}/{set_id.lower()}/{record.instance_id}/{record.generation}")


_BUSY_PROVISIONING = {
    base.CREATE: ProvisioningState.CREATING,
    base.DELETE: ProvisioningState.DELETING,
}
_BUSY_POWER = {
    base.POWER_OFF: PowerState.STOPPING,
    base.DEALLOCATE: PowerState.DEALLOCATING,
    base.DELETE: PowerState.STOPPING,
}


class SimulatedBackend:
    """Instances that exist only as records, unfolding in whatever time the engine's clock says."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()

    def apply(self, record: InstanceRecord, *, set_id: str, model: base.InstanceModel, now: float) -> None:
        rng = _rng(self.config.seed, set_id, record)
        action = record.action
        state: dict[str, Any] = {"segments": [], "failed": None}
        if action == base.DELETE:
            # forceDeletion skips the graceful shutdown: the shortest delete, ``delete.min``, instead of a drawn one
            state["done"] = now + (self.config.delete.min if record.force else self.config.delete.draw(rng))
        elif action in (base.POWER_OFF, base.DEALLOCATE):
            state["done"] = now + self.config.stop.draw(rng)
        else:
            duration = self.config.restart if action in (base.START, base.RESTART) else self.config.provision
            done = now + duration.draw(rng)
            state["done"] = done
            state["probe_start"] = done
            state["failed"], state["segments"] = self._unfold(record, model, rng, done)
        record.backend = state

    def _unfold(
        self, record: InstanceRecord, model: base.InstanceModel, rng: random.Random, done: float
    ) -> tuple[dict[str, str] | None, list[list[Any]]]:
        """How provisioning ends, and the application's answers from then on."""
        ready = done + self.config.app_start.draw(rng)
        segments: list[tuple[float, Answer]] = [(ready, Answer.HEALTHY)]
        failed: dict[str, str] | None = None
        for fault in self.config.faults:
            if fault.kind == "zone_outage" or not fault.matches(record, model):
                continue
            if rng.random() >= fault.fraction:
                continue
            if fault.kind == "extension_failure":
                failed = {
                    "code": "VMExtensionProvisioningError",
                    "message": f"VM has reported a failure when processing extension '{fault.extension}'.",
                }
            elif fault.kind == "never_healthy":
                answer = Answer.UNHEALTHY if fault.respond == "unhealthy" else Answer.NONE
                segments = [(ready, answer)]
            elif fault.kind == "crash":
                segments = [(ready, Answer.HEALTHY), (ready + fault.after, Answer.NONE)]
            elif fault.kind == "slow_boot":
                segments = [(done + fault.delay, Answer.HEALTHY)]
            elif fault.kind == "unknown":
                segments = [(ready, Answer.INVALID)]
            elif fault.kind == "flapping":
                segments = [
                    (ready + k * fault.period, Answer.HEALTHY if k % 2 == 0 else Answer.UNHEALTHY)
                    for k in range(FLAP_LIMIT)
                ]
        return failed, [[t, a.value] for t, a in segments]

    def inject_health(self, record: InstanceRecord, answer: Answer, *, now: float) -> None:
        segments = [s for s in record.backend.get("segments", []) if s[0] < now]
        segments.append([now, answer.value])
        record.backend = {**record.backend, "segments": segments}

    def observe(
        self, record: InstanceRecord, *, set_id: str, model: base.InstanceModel, now: float
    ) -> InstanceView | None:
        state = record.backend
        done = float(state.get("done", record.action_started_at))
        action = record.action
        if now < done:
            return base.instance_view(
                record,
                provisioning=_BUSY_PROVISIONING.get(action, ProvisioningState.UPDATING),
                power=_BUSY_POWER.get(action, PowerState.STARTING),
                health=None,
                eta=done,
                stable_until=done,
            )
        if action == base.DELETE:
            return None
        failed = state.get("failed")
        power = PowerState(record.power_goal)
        outage = self._outage(record, now)
        health = None
        stable_until: float | None = outage[1] if outage else None
        if power is PowerState.RUNNING and model.probe is not None:
            segments = self._segments(record, state)
            evaluation = evaluate(
                model.probe, started_at=float(state.get("probe_start", done)), segments=segments, now=now
            )
            health = evaluation.state
            stable_until = _earliest(stable_until, evaluation.next_change)
        stable_until = _earliest(stable_until, self._next_outage_edge(record, now))
        if outage is not None:
            power = PowerState.UNKNOWN
        return base.instance_view(
            record,
            provisioning=ProvisioningState.FAILED if failed else ProvisioningState.SUCCEEDED,
            power=power,
            health=health,
            ready_at=done,
            stable_until=stable_until,
            error_code=failed["code"] if failed else None,
            error_message=failed["message"] if failed else None,
        )

    def _segments(self, record: InstanceRecord, state: dict[str, Any]) -> list[Segment]:
        segments = [Segment(float(t), Answer(a)) for t, a in state.get("segments", [])]
        for begin, end in self._windows(record):
            before = [s for s in segments if s.start <= begin]
            resume = before[-1].answer if before else Answer.NONE
            inside = [s for s in segments if s.start > begin and (end is None or s.start < end)]
            after = [s for s in segments if end is not None and s.start >= end]
            last_inside = inside[-1].answer if inside else resume
            segments = [*before, Segment(begin, Answer.NONE)]
            if end is not None:
                segments.append(Segment(end, last_inside))
            segments.extend(after)
        return segments

    def _windows(self, record: InstanceRecord) -> Sequence[tuple[float, float | None]]:
        """The zone outages that hit this instance, as absolute ``(begin, end)`` times (end None: for good)."""
        out = []
        for fault in self.config.faults:
            if fault.kind == "zone_outage" and fault.zone == record.zone:
                begin = self.config.start + fault.at
                out.append((begin, begin + fault.duration if fault.duration is not None else None))
        return out

    def _outage(self, record: InstanceRecord, now: float) -> tuple[float, float | None] | None:
        for begin, end in self._windows(record):
            if begin <= now and (end is None or now < end):
                return begin, end
        return None

    def _next_outage_edge(self, record: InstanceRecord, now: float) -> float | None:
        edges = [edge for window in self._windows(record) for edge in window if edge is not None and edge > now]
        return min(edges) if edges else None

    def close(self) -> None:
        """Nothing to release: simulated instances hold no resources."""


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
