"""Percent-to-instance-count arithmetic for rolling upgrades.

Azure states its rolling thresholds as percentages of the scale set. These functions turn them into instance
counts, with the choices written down in ``docs/semantics.md``:

* a batch is ``floor(N * p / 100)`` instances, never fewer than one;
* a threshold is breached when the unhealthy share is *strictly more* than the percentage, compared exactly in
  integers (``count * 100 > percent * total``), so no float rounding decides a verdict;
* the percentage printed in an error message is rounded *up*, so a breach never reads "20% ... more than the
  threshold of 20%".
"""

from __future__ import annotations


def batch_size(total: int, max_batch_percent: int) -> int:
    """Instances upgraded together in one batch.

    >>> batch_size(10, 20)   # the docs' example: 20% of 10 instances -> 2 per batch
    2
    >>> batch_size(7, 20)    # 1.4 rounds down to 1
    1
    >>> batch_size(3, 20)    # 0.6 rounds down to 0, raised to the minimum of 1
    1
    >>> batch_size(10_000, 20)
    2000
    """
    if total <= 0:
        return 0
    return max(1, total * max_batch_percent // 100)


def tolerated(total: int, percent: int) -> int:
    """The most instances that may be unhealthy without breaching ``percent`` of ``total``.

    >>> tolerated(10, 20)    # "more than 2 unhealthy" breaches 20% of 10
    2
    >>> tolerated(3, 20)     # 3 instances at 20% tolerate none: one failure breaches
    0
    >>> tolerated(5, 100)
    5
    """
    if total <= 0:
        return 0
    return total * percent // 100


def exceeds(count: int, total: int, percent: int) -> bool:
    """Whether ``count`` of ``total`` is strictly more than ``percent``.

    >>> exceeds(2, 10, 20), exceeds(3, 10, 20)
    (False, True)
    >>> exceeds(1, 1, 0)     # maxUnhealthyUpgradedInstancePercent 0: one failure breaches
    True
    >>> exceeds(0, 0, 20)    # nothing counted, nothing breached
    False
    """
    if total <= 0:
        return False
    return count * 100 > percent * total


def shown_percent(count: int, total: int) -> int:
    """The share printed in messages, rounded up: ``shown_percent(1, 3) == 34``, ``shown_percent(3, 3) == 100``."""
    if total <= 0:
        return 0
    return -(-count * 100 // total)


def shrunk_batch_size(*, total: int, max_batch_percent: int, max_unhealthy_percent: int, unhealthy: int) -> int:
    """Batch size after Azure's "a batch may be smaller" rule for in-place upgrades.

    Instances in an in-place batch are down while they upgrade, so the batch is shrunk until the instances already
    unhealthy plus the batch stay within ``maxUnhealthyInstancePercent``. It never shrinks below one instance: the
    check before the batch has already said the set may proceed.

    >>> shrunk_batch_size(total=10, max_batch_percent=50, max_unhealthy_percent=20, unhealthy=0)
    2
    >>> shrunk_batch_size(total=10, max_batch_percent=20, max_unhealthy_percent=20, unhealthy=1)
    1
    >>> shrunk_batch_size(total=100, max_batch_percent=20, max_unhealthy_percent=100, unhealthy=30)
    20
    """
    size = batch_size(total, max_batch_percent)
    room = tolerated(total, max_unhealthy_percent) - unhealthy
    return max(1, min(size, room)) if size else 0
