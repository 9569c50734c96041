"""Instance health from probe observations, as the Application Health extension and a load-balancer probe report it.

A health source probes an instance every ``intervalInSeconds``. Each answer is a :class:`Reading`; a state is
adopted once ``numberOfProbes`` consecutive readings agree. An instance starts ``Initializing``.

* Binary health (extension 1.0, and a load-balancer probe): a 200 (or a completed TCP handshake) reads Healthy,
  anything else Unhealthy.
* Rich health (extension 2.0): a 2xx with ``{"ApplicationHealthState": "Healthy"|"Unhealthy"}`` reads that state;
  a non-2xx, a timeout, no answer or a missing field reads Unknown, except over TCP, which never reads Unknown.
* If the state has not settled when the grace period ends, it becomes Unknown (rich http/https) or Unhealthy
  (everything else). Binary sources have no grace setting; theirs is ``intervalInSeconds * numberOfProbes``.

Two ways to compute the same thing, tested against each other:

* :class:`HealthTracker`, fed one probe answer at a time (the real prober of the process backend);
* :func:`evaluate`, a closed form over a piecewise-constant answer timeline (the simulated backend), which costs
  the number of segments, not the number of probes, so thousands of instances over hours stay cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from scaleset.domain.resources import Extension, VirtualMachineScaleSet

HEALTH_EXTENSION_PUBLISHER = "microsoft.managedservices"
HEALTH_EXTENSION_TYPES = ("applicationhealthlinux", "applicationhealthwindows")
LB_PROBE_INTERVAL = 5.0
LB_PROBE_COUNT = 2
_EPS = 1e-9


class HealthState(StrEnum):
    INITIALIZING = "Initializing"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"

    @property
    def code(self) -> str:
        """The ``vmHealth`` status code: ``HealthState/healthy``."""
        return f"HealthState/{self.value.lower()}"


class Answer(StrEnum):
    """What the application answered to one probe."""

    HEALTHY = "healthy"  # 200 / rich "Healthy" / tcp handshake
    UNHEALTHY = "unhealthy"  # rich "Unhealthy" / binary non-200
    INVALID = "invalid"  # rich: 2xx without a valid state, or non-2xx
    NONE = "none"  # no answer: refused, timed out, process gone


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How one instance is probed. ``source`` is ``"extension"`` or ``"loadBalancer"``."""

    source: str
    protocol: str = "http"
    port: int | None = None
    request_path: str | None = None
    interval: float = 5.0
    probes: int = 1
    grace: float = 5.0
    rich: bool = False

    def reading(self, answer: Answer) -> HealthState:
        """The state one answer points to, under this source's rules."""
        if answer is Answer.HEALTHY:
            return HealthState.HEALTHY
        if self.rich and self.protocol != "tcp" and answer is not Answer.UNHEALTHY:
            return HealthState.UNKNOWN
        return HealthState.UNHEALTHY

    def settles_initializing(self, answer: Answer) -> bool:
        """Whether this answer can end ``Initializing`` before the grace period does.

        Under rich health only an explicit state (Healthy, or Unhealthy from the application) can; silence and
        invalid answers leave the instance Initializing until the grace period runs out. A binary source has no
        grace to give: every answer counts.
        """
        return not self.rich or answer in (Answer.HEALTHY, Answer.UNHEALTHY)

    @property
    def expired_state(self) -> HealthState:
        """The state of an instance whose grace period ran out before it settled."""
        if self.rich and self.protocol != "tcp":
            return HealthState.UNKNOWN
        return HealthState.UNHEALTHY


def is_health_extension(extension: Extension) -> bool:
    """The Application Health extension (Linux or Windows), publisher and type in any case."""
    props = extension.properties
    publisher, kind = (props.publisher or "").lower(), (props.type or "").lower()
    return publisher == HEALTH_EXTENSION_PUBLISHER and kind in HEALTH_EXTENSION_TYPES


def health_extension_index(vmss: VirtualMachineScaleSet) -> int | None:
    return next((index for index, ext in enumerate(vmss.extensions) if is_health_extension(ext)), None)


def probe_settings(vmss: VirtualMachineScaleSet) -> ProbeSettings | None:
    """The scale set's health source, or None when it has neither the extension nor an LB probe.

    When both are configured the extension wins (see docs/semantics.md): it is the richer signal and the one
    Azure recommends for rolling upgrades.
    """
    index = health_extension_index(vmss)
    if index is not None:
        props = vmss.extensions[index].properties
        settings = props.settings or {}
        rich = (props.typeHandlerVersion or "1.0").strip().startswith("2")
        interval = float(settings.get("intervalInSeconds", 5))
        probes = int(settings.get("numberOfProbes", 1))
        grace = float(settings.get("gracePeriod", interval * probes)) if rich else interval * probes
        port = settings.get("port")
        return ProbeSettings(
            source="extension",
            protocol=str(settings.get("protocol", "http")).lower(),
            port=int(port) if port is not None else None,
            request_path=settings.get("requestPath"),
            interval=interval,
            probes=probes,
            grace=grace,
            rich=rich,
        )
    network = vmss.profile.networkProfile
    if network and network.healthProbe and network.healthProbe.id:
        return ProbeSettings(
            source="loadBalancer",
            protocol="tcp",
            interval=LB_PROBE_INTERVAL,
            probes=LB_PROBE_COUNT,
            grace=LB_PROBE_INTERVAL * LB_PROBE_COUNT,
        )
    return None


@dataclass(slots=True)
class HealthTracker:
    """The health state machine, fed one probe answer at a time, in time order.

    A probe exactly at the end of the grace period still counts before the grace period expires.

    >>> t = HealthTracker(ProbeSettings("extension", probes=2, interval=5, grace=10), started_at=0)
    >>> t.observe(Answer.HEALTHY, 0).value, t.observe(Answer.HEALTHY, 5).value
    ('Initializing', 'Healthy')
    """

    settings: ProbeSettings
    started_at: float
    state: HealthState = HealthState.INITIALIZING
    since: float = field(default=0.0)
    _streak_state: HealthState | None = None
    _streak: int = 0

    def __post_init__(self) -> None:
        self.since = self.started_at

    @property
    def grace_end(self) -> float:
        return self.started_at + self.settings.grace

    def expire(self, now: float) -> HealthState:
        """Apply the grace period up to ``now``, once every probe up to ``now`` has been observed."""
        if self.state is HealthState.INITIALIZING and now >= self.grace_end - _EPS:
            self.state, self.since = self.settings.expired_state, self.grace_end
        return self.state

    def observe(self, answer: Answer, at: float) -> HealthState:
        if self.state is HealthState.INITIALIZING and at > self.grace_end + _EPS:
            self.state, self.since = self.settings.expired_state, self.grace_end
        reading = self.settings.reading(answer)
        if reading is self._streak_state:
            self._streak += 1
        else:
            self._streak_state, self._streak = reading, 1
        if self.state is HealthState.INITIALIZING and not self.settings.settles_initializing(answer):
            return self.state
        if self._streak >= self.settings.probes and reading is not self.state:
            self.state, self.since = reading, at
        return self.state


@dataclass(frozen=True, slots=True)
class Segment:
    """From ``start`` on (until the next segment), every probe gets ``answer``."""

    start: float
    answer: Answer


@dataclass(frozen=True, slots=True)
class Evaluation:
    state: HealthState
    since: float
    next_change: float | None  # earliest time after ``now`` the state could change; None when it never can


def evaluate(settings: ProbeSettings, *, started_at: float, segments: Sequence[Segment], now: float) -> Evaluation:
    """Health at ``now`` of an instance probed from ``started_at`` whose answers follow ``segments``.

    Probes run at ``started_at + k * interval`` (k = 0, 1, ...). Before the first segment the instance does not
    answer. The result equals feeding every tick's answer up to ``now`` to a :class:`HealthTracker` and calling
    ``expire(now)``.

    Worked example: two probes 5 s apart, healthy from t=12: the ticks at 15 and 20 read Healthy, so the state is
    Healthy from t=20.
    """
    interval, need = settings.interval, settings.probes
    grace_end = started_at + settings.grace
    state, since = HealthState.INITIALIZING, started_at
    streak_state: HealthState | None = None
    streak = 0
    # Answers from started_at on: the segment in force at started_at, then the later ones.
    timeline = [Segment(started_at, Answer.NONE)]
    for segment in sorted(segments, key=lambda s: s.start):
        if segment.start <= started_at + _EPS:
            timeline[0] = Segment(started_at, segment.answer)
        else:
            timeline.append(segment)
    upcoming: float | None = None
    for index, segment in enumerate(timeline):
        if segment.start > now + _EPS:
            upcoming = segment.start
            break
        is_last = index + 1 == len(timeline) or timeline[index + 1].start > now + _EPS
        first = max(0, math.ceil((segment.start - started_at) / interval - _EPS))
        if is_last:
            last = math.floor((now - started_at) / interval + _EPS)
        else:
            last = math.ceil((timeline[index + 1].start - started_at) / interval - _EPS) - 1
        if last < first:
            continue
        reading = settings.reading(segment.answer)
        before = streak if reading is streak_state else 0
        streak_state, streak = reading, before + last - first + 1
        if state is HealthState.INITIALIZING and not settings.settles_initializing(segment.answer):
            continue
        if streak >= need and reading is not state:
            settled_at = started_at + (first + max(0, need - before - 1)) * interval
            if state is HealthState.INITIALIZING and settled_at > grace_end + _EPS:
                state, since = settings.expired_state, grace_end
            if reading is not state:
                state, since = reading, settled_at
    if state is HealthState.INITIALIZING and now >= grace_end - _EPS:
        state, since = settings.expired_state, grace_end
    in_force = [s for s in timeline if s.start <= now + _EPS]
    current = settings.reading(in_force[-1].answer) if in_force else None
    streak_now = streak if current is streak_state else 0
    return Evaluation(state, since, _next_change(settings, started_at, now, state, current, streak_now, upcoming))


def _next_change(  # noqa: PLR0917 - private helper, every argument is one part of the evaluation state
    settings: ProbeSettings,
    started_at: float,
    now: float,
    state: HealthState,
    current: HealthState | None,
    streak: int,
    upcoming: float | None,
) -> float | None:
    """A time after ``now`` no later than the next change of state (it may be earlier, never later).

    ``current`` is the reading the answer in force at ``now`` gives, ``streak`` how many ticks have read it.
    """
    candidates: list[float] = [] if upcoming is None else [upcoming]
    if now < started_at:
        candidates.append(started_at)
    elif current is not None and current is not state:
        remaining = max(1, settings.probes - streak)
        tick = math.floor((now - started_at) / settings.interval + _EPS) + remaining
        candidates.append(started_at + tick * settings.interval)
    if state is HealthState.INITIALIZING:
        candidates.append(started_at + settings.grace)
    later = [c for c in candidates if c > now + _EPS]
    return min(later) if later else None
