"""Fencepost arithmetic: every expected value below was worked out by hand, not by calling the code under test.

Columns of ``TABLE``, for ``N`` instances and a percentage ``p``:

* ``batch``     = batch_size(N, p)  = max(1, floor(N * p / 100))
* ``tol``       = tolerated(N, p)   = floor(N * p / 100), the most unhealthy instances that do not breach ``p``
* ``shown``     = shown_percent(tol + 1, N), the share printed for the first breaching count, rounded up
                  (None for p = 100, where no count up to N breaches)
* ``shrunk20``  = shrunk_batch_size(total=N, max_batch_percent=p, max_unhealthy_percent=20, unhealthy=0)
"""

from __future__ import annotations

import doctest
import importlib
from typing import NamedTuple

import pytest

from scaleset.domain.fenceposts import batch_size, exceeds, shown_percent, shrunk_batch_size, tolerated

SIZES = (1, 2, 3, 5, 7, 10, 11, 99, 100, 1000, 10000)
PERCENTS = (5, 20, 33, 50, 100)


class Row(NamedTuple):
    n: int
    p: int
    batch: int
    tol: int
    shown: int | None
    shrunk20: int


#  Row(N, p, batch, tol, shown, shrunk20)
_RAW: list[tuple[int, int, int, int, int | None, int]] = [
    # p = 5
    (1, 5, 1, 0, 100, 1),  # 0.05 -> 0 -> min 1; 1/1 = 100%
    (2, 5, 1, 0, 50, 1),  # 0.1; 1/2 = 50%
    (3, 5, 1, 0, 34, 1),  # 0.15; 1/3 = 33.3 -> 34
    (5, 5, 1, 0, 20, 1),  # 0.25; 1/5 = 20%; tolerated(5, 20) = 1
    (7, 5, 1, 0, 15, 1),  # 0.35; 1/7 = 14.29 -> 15
    (10, 5, 1, 0, 10, 1),  # 0.5; 1/10 = 10%
    (11, 5, 1, 0, 10, 1),  # 0.55; 1/11 = 9.09 -> 10
    (99, 5, 4, 4, 6, 4),  # 4.95 -> 4; 5/99 = 5.05 -> 6; min(4, 19) = 4
    (100, 5, 5, 5, 6, 5),  # 5; 6/100; min(5, 20)
    (1000, 5, 50, 50, 6, 50),  # 50; 51/1000 = 5.1 -> 6
    (10000, 5, 500, 500, 6, 500),  # 500; 501/10000 = 5.01 -> 6
    # p = 20
    (1, 20, 1, 0, 100, 1),
    (2, 20, 1, 0, 50, 1),  # 0.4
    (3, 20, 1, 0, 34, 1),  # 0.6
    (5, 20, 1, 1, 40, 1),  # 1; 2/5 = 40%
    (7, 20, 1, 1, 29, 1),  # 1.4 -> 1; 2/7 = 28.57 -> 29
    (10, 20, 2, 2, 30, 2),  # the docs' example; 3/10
    (11, 20, 2, 2, 28, 2),  # 2.2 -> 2; 3/11 = 27.27 -> 28
    (99, 20, 19, 19, 21, 19),  # 19.8 -> 19; 20/99 = 20.2 -> 21
    (100, 20, 20, 20, 21, 20),
    (1000, 20, 200, 200, 21, 200),  # 201/1000 = 20.1 -> 21
    (10000, 20, 2000, 2000, 21, 2000),  # 2001/10000 = 20.01 -> 21
    # p = 33
    (1, 33, 1, 0, 100, 1),  # 0.33
    (2, 33, 1, 0, 50, 1),  # 0.66
    (3, 33, 1, 0, 34, 1),  # 0.99 -> 0 -> min 1; 1/3 = 33.3 > 33
    (5, 33, 1, 1, 40, 1),  # 1.65 -> 1; 2/5
    (7, 33, 2, 2, 43, 1),  # 2.31 -> 2; 3/7 = 42.86 -> 43; min(2, tolerated(7, 20) = 1)
    (10, 33, 3, 3, 40, 2),  # 3.3 -> 3; 4/10; min(3, 2)
    (11, 33, 3, 3, 37, 2),  # 3.63 -> 3; 4/11 = 36.36 -> 37; min(3, 2)
    (99, 33, 32, 32, 34, 19),  # 32.67 -> 32; 33/99 = 33.3 -> 34; min(32, 19)
    (100, 33, 33, 33, 34, 20),
    (1000, 33, 330, 330, 34, 200),  # 331/1000 = 33.1 -> 34
    (10000, 33, 3300, 3300, 34, 2000),  # 3301/10000 = 33.01 -> 34
    # p = 50
    (1, 50, 1, 0, 100, 1),  # 0.5
    (2, 50, 1, 1, 100, 1),  # 1; 2/2
    (3, 50, 1, 1, 67, 1),  # 1.5 -> 1; 2/3 = 66.67 -> 67
    (5, 50, 2, 2, 60, 1),  # 2.5 -> 2; 3/5; min(2, 1)
    (7, 50, 3, 3, 58, 1),  # 3.5 -> 3; 4/7 = 57.14 -> 58; min(3, 1)
    (10, 50, 5, 5, 60, 2),  # 6/10; min(5, 2)
    (11, 50, 5, 5, 55, 2),  # 5.5 -> 5; 6/11 = 54.55 -> 55
    (99, 50, 49, 49, 51, 19),  # 49.5 -> 49; 50/99 = 50.51 -> 51
    (100, 50, 50, 50, 51, 20),
    (1000, 50, 500, 500, 51, 200),
    (10000, 50, 5000, 5000, 51, 2000),
    # p = 100: every instance at once, and nothing up to N breaches
    (1, 100, 1, 1, None, 1),
    (2, 100, 2, 2, None, 1),  # shrunk: tolerated(2, 20) = 0 -> min 1
    (3, 100, 3, 3, None, 1),
    (5, 100, 5, 5, None, 1),
    (7, 100, 7, 7, None, 1),
    (10, 100, 10, 10, None, 2),
    (11, 100, 11, 11, None, 2),
    (99, 100, 99, 99, None, 19),
    (100, 100, 100, 100, None, 20),
    (1000, 100, 1000, 1000, None, 200),
    (10000, 100, 10000, 10000, None, 2000),
]

TABLE = [Row(*raw) for raw in _RAW]
IDS = [f"N{row.n}-p{row.p}" for row in TABLE]


def test_table_covers_every_size_and_percent() -> None:
    assert sorted((row.n, row.p) for row in TABLE) == sorted((n, p) for n in SIZES for p in PERCENTS)


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_batch_size(row: Row) -> None:
    assert batch_size(row.n, row.p) == row.batch


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_tolerated(row: Row) -> None:
    assert tolerated(row.n, row.p) == row.tol


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_exceeds_at_the_boundary(row: Row) -> None:
    assert not exceeds(0, row.n, row.p)
    assert not exceeds(row.tol, row.n, row.p)
    if row.tol < row.n:
        assert exceeds(row.tol + 1, row.n, row.p)
        assert exceeds(row.n, row.n, row.p)
    else:
        assert not exceeds(row.n, row.n, row.p)


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_shown_percent_of_first_breach(row: Row) -> None:
    if row.shown is None:
        assert shown_percent(row.n, row.n) == 100
        return
    assert shown_percent(row.tol + 1, row.n) == row.shown
    # Rounded up, so a breach never reads "p% ... more than the threshold of p%".
    assert row.shown > row.p


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_shrunk_batch_size_within_20_percent(row: Row) -> None:
    got = shrunk_batch_size(total=row.n, max_batch_percent=row.p, max_unhealthy_percent=20, unhealthy=0)
    assert got == row.shrunk20


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_shrunk_batch_size_with_full_room_is_the_batch(row: Row) -> None:
    got = shrunk_batch_size(total=row.n, max_batch_percent=row.p, max_unhealthy_percent=100, unhealthy=0)
    assert got == row.batch


@pytest.mark.parametrize("n", SIZES)
def test_exceeds_with_zero_percent(n: int) -> None:
    # maxUnhealthyUpgradedInstancePercent may be 0: nothing unhealthy passes, one unhealthy instance breaches.
    assert not exceeds(0, n, 0)
    assert exceeds(1, n, 0)
    assert exceeds(n, n, 0)


@pytest.mark.parametrize(
    ("count", "total", "percent", "expected"),
    [
        # Exactly at the percentage is not "more than": count * 100 == percent * total.
        (1, 5, 20, False),
        (2, 10, 20, False),
        (1, 2, 50, False),
        (5, 100, 5, False),
        (6, 100, 5, True),
        (50, 100, 50, False),
        (51, 100, 50, True),
        (33, 100, 33, False),
        (1, 3, 33, True),  # 33.33% > 33%
        (33, 99, 33, True),  # 33.33% > 33%
        (3300, 10000, 33, False),
        (3301, 10000, 33, True),
        (1, 10000, 0, True),
        (0, 0, 0, False),  # nothing counted, nothing breached
        (0, 0, 20, False),
        (5, 0, 20, False),
    ],
)
def test_exceeds_table(count: int, total: int, percent: int, expected: bool) -> None:
    assert exceeds(count, total, percent) is expected


@pytest.mark.parametrize(
    ("count", "total", "expected"),
    [
        (0, 1, 0),
        (1, 1, 100),
        (1, 2, 50),
        (1, 3, 34),
        (2, 3, 67),
        (3, 3, 100),
        (1, 7, 15),  # 14.29
        (5, 7, 72),  # 71.43
        (1, 11, 10),  # 9.09
        (2, 11, 19),  # 18.18
        (1, 99, 2),  # 1.01
        (33, 99, 34),
        (1, 100, 1),
        (1, 1000, 1),  # 0.1
        (999, 1000, 100),  # 99.9 rounds up to 100
        (1, 10000, 1),
        (10000, 10000, 100),
        (0, 0, 0),
        (3, 0, 0),
    ],
)
def test_shown_percent_table(count: int, total: int, expected: int) -> None:
    assert shown_percent(count, total) == expected


@pytest.mark.parametrize(
    ("total", "batch_pct", "unhealthy_pct", "unhealthy", "expected"),
    [
        (10, 50, 20, 1, 1),  # min(5, 2 - 1)
        (10, 20, 20, 2, 1),  # no room left: never below one
        (100, 50, 20, 5, 15),  # min(50, 20 - 5)
        (100, 50, 20, 20, 1),  # min(50, 0) -> 1
        (1000, 33, 50, 100, 330),  # min(330, 500 - 100)
        (1000, 33, 50, 200, 300),  # min(330, 500 - 200)
        (10000, 100, 5, 400, 100),  # min(10000, 500 - 400)
        (10000, 100, 5, 499, 1),  # min(10000, 1)
        (99, 50, 33, 10, 22),  # min(49, 32 - 10)
        (11, 100, 100, 11, 1),  # everything already unhealthy: still one
        (0, 20, 20, 0, 0),  # an empty set has no batch
    ],
)
def test_shrunk_batch_size_with_unhealthy_instances(
    total: int, batch_pct: int, unhealthy_pct: int, unhealthy: int, expected: int
) -> None:
    got = shrunk_batch_size(
        total=total, max_batch_percent=batch_pct, max_unhealthy_percent=unhealthy_pct, unhealthy=unhealthy
    )
    assert got == expected


def test_empty_set() -> None:
    assert batch_size(0, 20) == 0
    assert tolerated(0, 20) == 0


def test_docstring_examples() -> None:
    # The examples written in prose in the docstrings (not as >>> lines).
    assert shown_percent(1, 3) == 34
    assert shown_percent(3, 3) == 100
    assert batch_size(10, 20) == 2
    assert batch_size(7, 20) == 1
    assert batch_size(3, 20) == 1
    assert batch_size(10_000, 20) == 2000
    assert tolerated(10, 20) == 2
    assert tolerated(3, 20) == 0
    assert tolerated(5, 100) == 5
    assert (exceeds(2, 10, 20), exceeds(3, 10, 20)) == (False, True)
    assert exceeds(1, 1, 0)
    assert not exceeds(0, 0, 20)


DOCTEST_MODULES = (
    "scaleset.domain.fenceposts",
    "scaleset.domain.health",
    "scaleset.domain.instances",
    "scaleset.domain.images",
    "scaleset.domain.upgrade.manual",
    "scaleset.domain.scalein",
)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_module_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, verbose=False, report=True)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
