"""One queue of wake-ups, ordered by time, then kind, then key; and the virtual-time driver that drains it.

Each scale set has at most one pending wake-up (its ``wake_at``); a later request for an earlier time replaces it.
Entries that were replaced stay in the heap and are skipped when popped. Ordering by ``(time, priority, key)``
rather than by insertion makes a run independent of the order in which wake-ups were requested, which is what
lets a run stopped and reopened from the store end exactly as an uninterrupted one.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

PRIORITY_TIMELINE = 0
PRIORITY_PASS = 1


@dataclass(order=True, frozen=True, slots=True)
class Wake:
    time: float
    priority: int
    key: str


@dataclass(slots=True)
class Scheduler:
    _heap: list[Wake] = field(default_factory=list)
    _pending: dict[tuple[int, str], float] = field(default_factory=dict)

    def request(self, key: str, at: float, *, priority: int = PRIORITY_PASS) -> None:
        """Wake ``key`` at ``at``, unless it is already due earlier."""
        current = self._pending.get((priority, key))
        if current is not None and current <= at:
            return
        self._pending[(priority, key)] = at
        heapq.heappush(self._heap, Wake(at, priority, key))

    def set(self, key: str, at: float | None, *, priority: int = PRIORITY_PASS) -> None:
        """Replace ``key``'s wake-up with ``at`` (None: no wake-up)."""
        self._pending.pop((priority, key), None)
        if at is not None:
            self.request(key, at, priority=priority)

    def peek(self) -> Wake | None:
        self._drop_stale()
        return self._heap[0] if self._heap else None

    def pop(self) -> Wake | None:
        self._drop_stale()
        if not self._heap:
            return None
        wake = heapq.heappop(self._heap)
        del self._pending[(wake.priority, wake.key)]
        return wake

    def _drop_stale(self) -> None:
        while self._heap:
            top = self._heap[0]
            if self._pending.get((top.priority, top.key)) == top.time:
                return
            heapq.heappop(self._heap)
