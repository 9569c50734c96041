"""What a what-if answers: one run (:class:`Outcome`, its :class:`Batch` plan) and a Monte Carlo over seeds
(:class:`MonteCarlo`, summarised from each run's :class:`Brief`), with the statistics they use."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Z95 = 1.959963984540054

COMPLETED, FAULTED, FAILED, NO_ROLLOUT, UNFINISHED = "Completed", "Faulted", "Failed", "NoRollout", "Unfinished"
ABORTED = frozenset({FAULTED, FAILED, UNFINISHED})
"""Verdicts that count against ``--max-abort-probability`` (NoRollout does not)."""


@dataclass(frozen=True)
class Batch:
    number: int
    zone: str | None
    instance_ids: tuple[int, ...]
    surge_ids: tuple[int, ...] = ()
    start: float = 0.0  # seconds after the change
    end: float | None = None
    succeeded: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    passed: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "batch": self.number,
            "zone": self.zone,
            "instanceIds": [str(i) for i in self.instance_ids],
            "startSeconds": round(self.start, 3),
            "endSeconds": None if self.end is None else round(self.end, 3),
            "succeededIds": [str(i) for i in self.succeeded],
            "failedIds": [str(i) for i in self.failed],
            "passed": self.passed,
        }
        if self.surge_ids:
            out["surgeInstanceIds"] = [str(i) for i in self.surge_ids]
        return out


@dataclass(frozen=True)
class Brief:
    """What a Monte Carlo keeps of one run."""

    verdict: str
    code: str | None
    after_batch: int | None
    duration: float
    lowest: int
    lowest_percent: float


@dataclass(frozen=True)
class Outcome:
    seed: int
    mode: str
    verdict: str
    duration: float
    batches: tuple[Batch, ...]
    capacity: int  # the target capacity after the change
    lowest: int  # fewest instances in service at any moment
    lowest_at: float  # seconds after the change
    highest: int
    final: int  # in service a health wait after the run ended (every instance had its chance), -1: not counted
    error: dict[str, str] | None = None
    after_batch: int | None = None  # Faulted: batches started before the fault (0: before the first)
    rolled_back: tuple[int, ...] = ()
    events: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def lowest_percent(self) -> float:
        return 100.0 * self.lowest / self.capacity if self.capacity else 100.0

    @property
    def lowest_batch(self) -> int | None:
        """The batch in flight when capacity was lowest."""
        for batch in self.batches:
            if batch.start <= self.lowest_at and (batch.end is None or self.lowest_at < batch.end):
                return batch.number
        return None

    def brief(self) -> Brief:
        code = self.error["code"] if self.error else None
        return Brief(self.verdict, code, self.after_batch, self.duration, self.lowest, self.lowest_percent)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "mode": self.mode,
            "verdict": self.verdict,
            "error": self.error,
            "faultedAfterBatch": self.after_batch,
            "durationSeconds": round(self.duration, 3),
            "batches": [b.to_json() for b in self.batches],
            "capacity": {
                "target": self.capacity,
                "lowestInService": self.lowest,
                "lowestPercent": round(self.lowest_percent, 2),
                "lowestAtSeconds": round(self.lowest_at, 3),
                "lowestDuringBatch": self.lowest_batch,
                "highestInService": self.highest,
                "finalInService": self.final,
            },
            "rolledBackIds": [str(i) for i in self.rolled_back],
        }


@dataclass(frozen=True)
class MonteCarlo:
    runs: int
    first_seed: int
    verdicts: dict[str, int]
    aborted: int
    interval: tuple[float, float]  # 95% Wilson score interval of the abort probability
    duration: tuple[float, float, float]  # p5, p50, p95 (seconds)
    lowest_percent: tuple[float, float, float]
    lowest: tuple[float, float, float]
    fault_code: tuple[str, int] | None  # the most common fault code and how many runs had it
    fault_batch: tuple[int, int] | None  # the most common "after batch" among aborted runs

    @property
    def abort_probability(self) -> float:
        return self.aborted / self.runs if self.runs else 0.0

    def to_json(self) -> dict[str, Any]:
        def triple(values: tuple[float, float, float], digits: int) -> dict[str, float]:
            return {name: round(v, digits) for name, v in zip(("p5", "p50", "p95"), values, strict=True)}

        return {
            "runs": self.runs,
            "seeds": [self.first_seed, self.first_seed + self.runs - 1],
            "verdicts": self.verdicts,
            "aborted": self.aborted,
            "abortProbability": self.abort_probability,
            "wilson95": [round(self.interval[0], 6), round(self.interval[1], 6)],
            "durationSeconds": triple(self.duration, 3),
            "lowestCapacityPercent": triple(self.lowest_percent, 2),
            "lowestInService": triple(self.lowest, 2),
            "mostCommonFault": None
            if self.fault_code is None
            else {"code": self.fault_code[0], "runs": self.fault_code[1]},
            "mostCommonFaultBatch": None
            if self.fault_batch is None
            else {"afterBatch": self.fault_batch[0], "runs": self.fault_batch[1]},
        }


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: ``wilson(0, 100)`` is about (0, 0.037)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, where rounding would show
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default): ``percentile([1, 2, 3, 4], 50) == 2.5``."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _three(values: Sequence[float]) -> tuple[float, float, float]:
    return percentile(values, 5), percentile(values, 50), percentile(values, 95)


def summarise(briefs: Sequence[Brief], *, first_seed: int) -> MonteCarlo:
    aborted = [b for b in briefs if b.verdict in ABORTED]
    codes = Counter(b.code for b in aborted if b.code)
    after = Counter(b.after_batch for b in aborted if b.after_batch is not None)
    return MonteCarlo(
        runs=len(briefs),
        first_seed=first_seed,
        verdicts=dict(sorted(Counter(b.verdict for b in briefs).items())),
        aborted=len(aborted),
        interval=wilson(len(aborted), len(briefs)),
        duration=_three([b.duration for b in briefs]),
        lowest_percent=_three([b.lowest_percent for b in briefs]),
        lowest=_three([float(b.lowest) for b in briefs]),
        fault_code=codes.most_common(1)[0] if codes else None,
        fault_batch=after.most_common(1)[0] if after else None,
    )
