"""``scaleset load``'s figures: latency histograms, per-bucket counts, and the recorder that files every outcome
by wall second and (once the activity log covers it) by rollout phase."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scaleset.cli.load_timeline import Key, Timeline

# ---------------------------------------------------------------------------------------------- figures


class Histogram:
    """Latencies in logarithmic buckets 1% wide: constant memory per bucket, percentiles within about 1%."""

    __slots__ = ("counts", "high", "low", "total")
    _FACTOR = 1.0 / math.log1p(0.01)
    _FLOOR = 1e-6

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.low = math.inf
        self.high = 0.0

    def add(self, seconds: float) -> None:
        value = max(seconds, self._FLOOR)
        index = round(math.log(value / self._FLOOR) * self._FACTOR)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.low, self.high = min(self.low, value), max(self.high, value)

    def percentile(self, p: float) -> float | None:
        """The nearest-rank percentile in seconds (None when empty)."""
        if self.total == 0:
            return None
        rank = max(1, math.ceil(p / 100.0 * self.total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                value = self._FLOOR * math.exp(index / self._FACTOR)
                return min(max(value, self.low), self.high)
        return self.high


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


@dataclass
class Bucket:
    """Requests, failures by kind, and latency of the requests that got an answer."""

    requests: int = 0
    failures: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)

    def add(self, latency: float | None, kind: str | None) -> None:
        self.requests += 1
        if kind is not None:
            self.failures += 1
            self.kinds[kind] += 1
        if latency is not None:
            self.latency.add(latency)

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "errorRate": round(self.failures / self.requests, 6) if self.requests else 0.0,
            "failureKinds": dict(sorted(self.kinds.items())),
            "p50Ms": _ms(self.latency.percentile(50)),
            "p95Ms": _ms(self.latency.percentile(95)),
            "p99Ms": _ms(self.latency.percentile(99)),
        }


# ---------------------------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class ClockMap:
    """Run offsets (wall seconds since the load started) to the server's virtual time."""

    virtual_start: float  # the server's clock when the load started
    scale: float

    def virtual(self, offset: float) -> float:
        return self.virtual_start + offset * self.scale

    def offset(self, virtual: float) -> float:
        return (virtual - self.virtual_start) / self.scale


class Recorder:
    """Every outcome into the totals and its wall second at once; into its rollout phase once the activity log
    covers its send time (``settle``)."""

    def __init__(self, clock: ClockMap | None) -> None:
        self.clock = clock
        self.totals = Bucket()
        self.seconds: dict[int, Bucket] = {}
        self.phases: dict[Key, Bucket] = {}
        self.pending: list[tuple[float, float | None, str | None]] = []
        self.max_lag = 0.0

    def record(self, offset: float, latency: float | None, kind: str | None) -> None:
        self.totals.add(latency, kind)
        second = max(0, int(offset))
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = Bucket()
        bucket.add(latency, kind)
        if self.clock is not None:
            self.pending.append((offset, latency, kind))

    def settle(self, timeline: Timeline, horizon: float) -> None:
        """Attribute the outcomes sent before ``horizon`` (a run offset) to what the rollout was doing then."""
        if self.clock is None or not self.pending:
            return
        keep: list[tuple[float, float | None, str | None]] = []
        for item in self.pending:
            offset, latency, kind = item
            if offset >= horizon:
                keep.append(item)
                continue
            key = timeline.locate(self.clock.virtual(offset))
            bucket = self.phases.get(key)
            if bucket is None:
                bucket = self.phases[key] = Bucket()
            bucket.add(latency, kind)
        self.pending = keep
