"""Clocks. Time is injected everywhere; the engine reads it once per pass.

Times are seconds since the Unix epoch as floats. :class:`VirtualClock` only moves when told to (simulation,
tests, what-if); :class:`SystemClock` is the wall clock; :class:`ScaledClock` runs ``scale`` times faster than the
wall clock from a starting point, for demos where a PT5M pause should pass in seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class Clock(Protocol):
    def now(self) -> float: ...


class VirtualClock:
    """A clock that stands still until :meth:`advance_to` moves it forward (never backwards)."""

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        if when < self._now:
            raise ValueError(f"a virtual clock cannot go back from {self._now} to {when}")
        self._now = when


class SystemClock:
    def now(self) -> float:
        return time.time()


class ScaledClock:
    """Virtual time that runs ``scale`` times as fast as the wall clock, starting at ``start``."""

    def __init__(self, scale: float, *, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        self.scale = scale
        self._origin_wall = time.monotonic()
        self._origin = time.time() if start is None else start

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._origin_wall) * self.scale


def render_time(when: float) -> str:
    """ARM's date-time spelling: ``2026-01-01T00:00:30.5000000+00:00`` style, shortened to milliseconds."""
    stamp = datetime.fromtimestamp(when, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
