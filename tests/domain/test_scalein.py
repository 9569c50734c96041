"""Scale-in choice (reference §5.5) and placement of new instances."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleset.domain.health import HealthState
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.resources import ScaleInPolicy
from scaleset.domain.scalein import choose_fault_domain, choose_scale_in, choose_zone, place_new


def vm(
    instance_id: int,
    zone: str | None = None,
    fault_domain: int = 0,
    **fields: Any,
) -> InstanceView:
    base: dict[str, Any] = {
        "instance_id": instance_id,
        "zone": zone,
        "fault_domain": fault_domain,
        "model_version": 1,
        "created_at": float(instance_id),
        "provisioning": ProvisioningState.SUCCEEDED,
        "power": PowerState.RUNNING,
        "health": HealthState.HEALTHY,
        "ready_at": 0.0,
    }
    return InstanceView(**{**base, **fields})


def flat(count: int, fault_domains: list[int] | None = None) -> list[InstanceView]:
    fds = fault_domains or [0] * count
    return [vm(i, None, fds[i]) for i in range(count)]


def zones_of(layout: dict[str, list[int]], fault_domain: int = 0) -> list[InstanceView]:
    return sorted((vm(i, zone, fault_domain) for zone, ids in layout.items() for i in ids), key=lambda v: v.instance_id)


def with_fields(views: list[InstanceView], ids: list[int], **fields: Any) -> list[InstanceView]:
    return [dataclasses.replace(v, **fields) if v.instance_id in ids else v for v in views]


DEFAULT = ScaleInPolicy()
NEWEST = ScaleInPolicy(rules=["NewestVM"])
OLDEST = ScaleInPolicy(rules=["OldestVM"])

# Zones unbalanced 4/3/3 (zone 1 holds 0, 3, 6, 9) and balanced 2/2/2.
UNBALANCED = zones_of({"1": [0, 3, 6, 9], "2": [1, 4, 7], "3": [2, 5, 8]})
BALANCED = zones_of({"1": [0, 3], "2": [1, 4], "3": [2, 5]})
# Non-zonal, fault domain 0 holds 0-3 and fault domain 1 holds the highest ids 4-5.
FD_SKEWED = flat(6, [0, 0, 0, 0, 1, 1])


@pytest.mark.parametrize(
    ("views", "policy", "count", "expected"),
    [
        # Default: highest id when nothing to balance.
        pytest.param(flat(6), DEFAULT, 2, [5, 4], id="default-highest-id"),
        # Default: zone balance first. 4/3/3 -> the highest of zone 1 (9); then 3/3/3 -> highest overall (8).
        pytest.param(UNBALANCED, DEFAULT, 1, [9], id="default-zone-with-most"),
        pytest.param(UNBALANCED, DEFAULT, 3, [9, 8, 7], id="default-then-highest-across-balanced-zones"),
        pytest.param(BALANCED, DEFAULT, 2, [5, 4], id="default-balanced-zones"),
        # Default: fault domains before ids. fd 0 has 4, fd 1 has 2: 3 then 2; then 2/2 -> highest id, 5.
        pytest.param(FD_SKEWED, DEFAULT, 1, [3], id="default-fault-domain-with-most"),
        pytest.param(FD_SKEWED, DEFAULT, 3, [3, 2, 5], id="default-fault-domains-then-id"),
        # The module docstring's worked example: zones 3/2/2, scale in by 2.
        pytest.param(
            zones_of({"1": [0, 1, 2], "2": [3, 4], "3": [5, 6]}), DEFAULT, 2, [2, 6], id="default-docstring-example"
        ),
        # NewestVM: zone balance, then the newest (highest id); fault domains do not matter.
        pytest.param(flat(6), NEWEST, 2, [5, 4], id="newest"),
        pytest.param(FD_SKEWED, NEWEST, 3, [5, 4, 3], id="newest-ignores-fault-domains"),
        pytest.param(UNBALANCED, NEWEST, 2, [9, 8], id="newest-unbalanced-zones"),
        pytest.param(BALANCED, NEWEST, 1, [5], id="newest-balanced-zones-newest-overall"),
        # OldestVM: zone balance, then the oldest (lowest id).
        pytest.param(flat(6), OLDEST, 2, [0, 1], id="oldest"),
        pytest.param(FD_SKEWED, OLDEST, 2, [0, 1], id="oldest-ignores-fault-domains"),
        pytest.param(UNBALANCED, OLDEST, 2, [0, 1], id="oldest-unbalanced-zones-first-from-zone-1"),
        pytest.param(BALANCED, OLDEST, 3, [0, 1, 2], id="oldest-balanced"),
        # Edge counts.
        pytest.param(flat(3), DEFAULT, 0, [], id="zero"),
        pytest.param(flat(3), DEFAULT, 5, [2, 1, 0], id="more-than-there-are"),
        pytest.param([], DEFAULT, 1, [], id="empty"),
    ],
)
def test_choose_scale_in(views: list[InstanceView], policy: ScaleInPolicy, count: int, expected: list[int]) -> None:
    assert choose_scale_in(views, count, policy=policy) == expected


def test_zone_balance_beats_fault_domain_balance() -> None:
    # Zone 2's fault domain 0 holds two instances, more than any fault domain of zone 1, but zone 1 is the larger
    # zone: its highest id goes.
    views = [vm(0, "1", 0), vm(1, "1", 1), vm(2, "1", 2), vm(3, "2", 0), vm(4, "2", 0)]
    assert choose_scale_in(views, 1, policy=DEFAULT) == [2]


def test_fault_domains_are_balanced_within_the_zone() -> None:
    # Zones 2/2; zone 1 has both in fd 0, zone 2 spreads over fd 0 and 1: zone 1's fd 0 is the fullest.
    views = [vm(0, "1", 0), vm(1, "1", 0), vm(2, "2", 0), vm(3, "2", 1)]
    assert choose_scale_in(views, 1, policy=DEFAULT) == [1]


@pytest.mark.parametrize(
    ("prioritize", "expected"),
    [
        pytest.param(True, [3, 1], id="on"),  # both unhealthy: then the Default order, highest id first
        pytest.param(False, [5, 4], id="off"),
        pytest.param(None, [5, 4], id="unset"),
    ],
)
def test_prioritize_unhealthy_vms(prioritize: bool | None, expected: list[int]) -> None:
    views = with_fields(flat(6), [1, 3], health=HealthState.UNHEALTHY)
    policy = ScaleInPolicy(prioritizeUnhealthyVMs=prioritize)
    assert choose_scale_in(views, 2, policy=policy) == expected


def test_prioritize_unhealthy_vms_beats_zone_balance() -> None:
    views = with_fields(UNBALANCED, [1], power=PowerState.DEALLOCATED)  # zone 2, the smaller
    assert choose_scale_in(views, 2, policy=ScaleInPolicy(prioritizeUnhealthyVMs=True)) == [1, 9]


@pytest.mark.parametrize(
    ("fields", "chosen_first"),
    [
        ({"health": HealthState.UNKNOWN}, True),
        ({"power": PowerState.STOPPED}, True),
        ({"provisioning": ProvisioningState.FAILED}, True),
        ({"health": HealthState.INITIALIZING}, False),
        ({"provisioning": ProvisioningState.UPDATING, "health": HealthState.UNHEALTHY}, False),
    ],
)
def test_prioritize_unhealthy_vms_kinds(fields: dict[str, Any], chosen_first: bool) -> None:
    views = with_fields(flat(6), [2], **fields)
    got = choose_scale_in(views, 1, policy=ScaleInPolicy(prioritizeUnhealthyVMs=True))
    assert got == ([2] if chosen_first else [5])


@pytest.mark.parametrize(
    "flag",
    ["protect_from_scale_in", "protect_from_scale_set_actions"],
)
@pytest.mark.parametrize("policy", [DEFAULT, NEWEST, OLDEST, ScaleInPolicy(prioritizeUnhealthyVMs=True)])
def test_protected_instances_are_never_chosen(flag: str, policy: ScaleInPolicy) -> None:
    protected = [0, 2, 5]
    views = with_fields(flat(6), protected, **{flag: True}, health=HealthState.UNHEALTHY)
    got = choose_scale_in(views, 6, policy=policy)
    assert sorted(got) == [1, 3, 4]
    assert not set(got) & set(protected)


def test_fewer_candidates_than_requested() -> None:
    views = with_fields(flat(4), [0, 1, 2], protect_from_scale_in=True)
    assert choose_scale_in(views, 3, policy=DEFAULT) == [3]
    assert choose_scale_in(with_fields(flat(2), [0, 1], protect_from_scale_in=True), 1, policy=DEFAULT) == []


def test_excluded_instances_are_never_chosen() -> None:
    assert choose_scale_in(flat(6), 3, policy=DEFAULT, exclude=frozenset({5, 3})) == [4, 2, 1]


def test_instances_being_deleted_are_neither_chosen_nor_counted() -> None:
    # Zone 1 holds 0, 1, 2 but 1 and 2 are already being deleted: zone 2 (3, 4) is the larger.
    views = with_fields(zones_of({"1": [0, 1, 2], "2": [3, 4]}), [1, 2], provisioning=ProvisioningState.DELETING)
    assert choose_scale_in(views, 1, policy=DEFAULT) == [4]
    assert choose_scale_in(views, 5, policy=DEFAULT) == [4, 3, 0]


def test_protected_instances_still_count_for_zone_balance() -> None:
    # Zone 1: 0, 1, 2 (0 and 1 protected); zone 2: 3, 4. Zone 1 is the larger, so 2 goes.
    views = with_fields(zones_of({"1": [0, 1, 2], "2": [3, 4]}), [0, 1], protect_from_scale_in=True)
    assert choose_scale_in(views, 1, policy=DEFAULT) == [2]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param([], [5], id="no-rule-is-default"),
        pytest.param(["newestvm"], [5], id="any-case"),
        pytest.param(["OldestVM", "NewestVM"], [0], id="first-rule-wins"),
    ],
)
def test_rule_selection(rules: list[str], expected: list[int]) -> None:
    assert choose_scale_in(flat(6), 1, policy=ScaleInPolicy(rules=rules)) == expected


def test_input_order_does_not_matter() -> None:
    views = list(reversed(UNBALANCED))
    assert choose_scale_in(views, 3, policy=DEFAULT) == [9, 8, 7]


# ------------------------------------------------------------------------------------------------------ placement


@pytest.mark.parametrize(
    ("views", "zones", "expected"),
    [
        pytest.param([], None, None, id="not-zonal"),
        pytest.param([], [], None, id="empty-zone-list"),
        pytest.param([], ["1", "2", "3"], "1", id="empty-set-lowest-name"),
        pytest.param(zones_of({"1": [0], "2": [1]}), ["1", "2", "3"], "3", id="fewest"),
        pytest.param(zones_of({"1": [0], "2": [1], "3": [2]}), ["3", "2", "1"], "1", id="tie-lowest-name"),
        pytest.param(zones_of({"1": [0, 1], "2": [2, 3], "3": [4]}), ["1", "2", "3"], "3", id="one-short"),
        pytest.param(
            with_fields(zones_of({"1": [0], "2": [1, 2]}), [1, 2], provisioning=ProvisioningState.DELETING),
            ["1", "2"],
            "2",
            id="deleting-not-counted",
        ),
    ],
)
def test_choose_zone(views: list[InstanceView], zones: list[str] | None, expected: str | None) -> None:
    assert choose_zone(views, zones) == expected


@pytest.mark.parametrize(
    ("views", "zone", "fault_domains", "expected"),
    [
        pytest.param([], None, 5, 0, id="empty"),
        pytest.param(flat(3, [0, 1, 2]), None, 5, 3, id="least-used"),
        pytest.param(flat(5, [0, 1, 2, 3, 4]), None, 5, 0, id="tie-lowest"),
        pytest.param(flat(4, [0, 0, 1, 2]), None, 3, 1, id="one-short"),
        pytest.param(flat(3, [0, 1, 2]), None, 1, 0, id="single-domain"),
        pytest.param(flat(3, [0, 1, 2]), None, 0, 0, id="zero-means-one"),
        pytest.param([vm(0, "1", 0), vm(1, "2", 1), vm(2, "2", 0)], "1", 2, 1, id="within-the-zone"),
        pytest.param(
            with_fields(flat(3, [0, 0, 1]), [0, 1], provisioning=ProvisioningState.DELETING),
            None,
            2,
            0,
            id="deleting-not-counted",
        ),
    ],
)
def test_choose_fault_domain(views: list[InstanceView], zone: str | None, fault_domains: int, expected: int) -> None:
    assert choose_fault_domain(views, zone, fault_domains=fault_domains) == expected


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    layout=st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(0, 2)), max_size=20),
    zonal=st.booleans(),
    fault_domains=st.integers(1, 3),
    count=st.integers(0, 12),
)
def test_place_new_equals_choosing_one_at_a_time(
    layout: list[tuple[str, int]], zonal: bool, fault_domains: int, count: int
) -> None:
    zones = ["1", "2", "3"] if zonal else None
    views = [vm(i, zone if zonal else None, fd % fault_domains) for i, (zone, fd) in enumerate(layout)]
    expected: list[tuple[str | None, int]] = []
    grown = list(views)
    for k in range(count):
        zone = choose_zone(grown, zones)
        fd = choose_fault_domain(grown, zone, fault_domains=fault_domains)
        expected.append((zone, fd))
        grown.append(vm(1000 + k, zone, fd))
    assert place_new(views, count, zones=zones, fault_domains=fault_domains) == expected


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    layout=st.lists(
        st.tuples(st.sampled_from([None, "1", "2"]), st.integers(0, 2), st.booleans(), st.booleans()), max_size=20
    ),
    rule=st.sampled_from(["Default", "NewestVM", "OldestVM"]),
    prioritize=st.booleans(),
    count=st.integers(0, 25),
)
def test_scale_in_choice_invariants(
    layout: list[tuple[str | None, int, bool, bool]], rule: str, prioritize: bool, count: int
) -> None:
    views = [
        vm(i, zone, fd, protect_from_scale_in=protected, health=HealthState.UNHEALTHY if sick else HealthState.HEALTHY)
        for i, (zone, fd, protected, sick) in enumerate(layout)
    ]
    policy = ScaleInPolicy(rules=[rule], prioritizeUnhealthyVMs=prioritize)
    got = choose_scale_in(views, count, policy=policy)
    candidates = {v.instance_id for v in views if not v.protect_from_scale_in}
    assert len(got) == len(set(got)) == min(count, len(candidates))
    assert set(got) <= candidates
    # Choosing k then one more is the same as choosing k + 1: the choice is greedy and deterministic.
    assert choose_scale_in(views, count + 1, policy=policy)[: len(got)] == got
    if prioritize:
        sick = [i for i in got if next(v for v in views if v.instance_id == i).is_unhealthy]
        assert got[: len(sick)] == sick, "an unhealthy instance was chosen after a healthy one"


# ------------------------------------------------------------------------------- the definition, one at a time


def reference_scale_in(
    views: list[InstanceView], count: int, *, policy: ScaleInPolicy, exclude: frozenset[int] = frozenset()
) -> list[int]:
    """§5.5 as its plainest greedy reading: every removal takes the smallest remaining candidate by
    (unhealthy first, largest zone, fullest fault domain of its zone [Default only], highest id / lowest id for
    OldestVM), the counts taken after the removals before it. Quadratic; :func:`choose_scale_in` must agree."""
    alive = [v for v in views if v.provisioning is not ProvisioningState.DELETING]
    zones = Counter(v.zone for v in alive)
    domains = Counter((v.zone, v.fault_domain) for v in alive)
    rule = policy.rules[0].value if policy.rules else "Default"
    left = [
        v
        for v in alive
        if not (v.protect_from_scale_in or v.protect_from_scale_set_actions or v.instance_id in exclude)
    ]
    out: list[int] = []
    while left and len(out) < count:

        def key(v: InstanceView) -> tuple[int, int, int, int]:
            first = 0 if policy.prioritizeUnhealthyVMs and v.is_unhealthy else 1
            domain = -domains[(v.zone, v.fault_domain)] if rule == "Default" else 0
            return (first, -zones[v.zone], domain, v.instance_id if rule == "OldestVM" else -v.instance_id)

        victim = min(left, key=key)
        left.remove(victim)
        zones[victim.zone] -= 1
        domains[(victim.zone, victim.fault_domain)] -= 1
        out.append(victim.instance_id)
    return out


_ROW = st.tuples(
    st.sampled_from([None, "1", "2", "3"]),
    st.integers(0, 4),  # fault domain
    st.sampled_from(["none"] * 6 + ["scaleIn", "both"]),  # protection, mostly none
    st.sampled_from(["healthy"] * 4 + ["unhealthy", "stopped", "deleting", "initializing"]),
    st.integers(0, 7).map(lambda k: k == 0),  # excluded (in the rolling batch in flight), now and then
)
# Sizes drawn first: Hypothesis keeps lists short otherwise, and short fleets rarely need balancing.
_FLEET = st.integers(0, 60).flatmap(lambda n: st.lists(_ROW, min_size=n, max_size=n))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    fleet=_FLEET,
    zonal=st.booleans(),
    policy=st.builds(
        lambda rule, prioritize: ScaleInPolicy(rules=[rule], prioritizeUnhealthyVMs=prioritize),
        st.sampled_from(["Default", "NewestVM", "OldestVM"]),
        st.sampled_from([None, False, True]),
    ),
    count=st.integers(0, 65),
    shuffle=st.randoms(use_true_random=False),
)
def test_choose_scale_in_equals_the_one_at_a_time_definition(
    fleet: list[tuple[str | None, int, str, str, bool]], zonal: bool, policy: ScaleInPolicy, count: int, shuffle: Any
) -> None:
    states: dict[str, dict[str, Any]] = {
        "healthy": {},
        "unhealthy": {"health": HealthState.UNHEALTHY},
        "stopped": {"power": PowerState.STOPPED},
        "deleting": {"provisioning": ProvisioningState.DELETING},
        "initializing": {"health": HealthState.INITIALIZING},
    }
    ids = shuffle.sample(range(1000), len(fleet))  # ids with gaps, in any order
    views = [
        vm(
            ids[k],
            (zone or "1") if zonal else None,
            fd,
            protect_from_scale_in=protection != "none",
            protect_from_scale_set_actions=protection == "both",
            **states[state],
        )
        for k, (zone, fd, protection, state, _) in enumerate(fleet)
    ]
    exclude = frozenset(ids[k] for k, row in enumerate(fleet) if row[4])
    got = choose_scale_in(views, count, policy=policy, exclude=exclude)
    assert got == reference_scale_in(views, count, policy=policy, exclude=exclude)


def test_default_balances_zones_then_fault_domains_then_takes_the_highest_id() -> None:
    # Zone 1: fd 0 holds 0, 3, 6; fd 1 holds 9. Zone 2: fd 0 holds 1, 4; fd 1 holds 7, 10. Zone 3: 2, 5 (fd 0).
    views = [
        vm(0, "1", 0),
        vm(3, "1", 0),
        vm(6, "1", 0),
        vm(9, "1", 1),
        vm(1, "2", 0),
        vm(4, "2", 0),
        vm(7, "2", 1),
        vm(10, "2", 1),
        vm(2, "3", 0),
        vm(5, "3", 0),
    ]
    # 4/4/2: zones 1 and 2 tie; zone 1's fd 0 (3 instances) is the fullest fault domain: its highest id, 6.
    # 3/4/2: zone 2; its fault domains tie at 2/2: the highest id, 10.
    # 3/3/2: zones 1 and 2 tie again, and so do their fullest fault domains (fd 0, 2 each): the highest id, 4.
    # 3/2/2: zone 1, whose fd 0 (0, 3) is fuller than its fd 1 (9): 3.
    assert choose_scale_in(views, 4, policy=DEFAULT) == [6, 10, 4, 3]


def test_oldest_and_newest_choose_across_the_largest_zones_only() -> None:
    # Zones 3/3/1: NewestVM takes the newest of zones 1 and 2, never 9 (zone 3, the newest overall), until the
    # zones are level again.
    views = zones_of({"1": [0, 1, 2], "2": [3, 4, 5], "3": [9]})
    assert choose_scale_in(views, 4, policy=NEWEST) == [5, 2, 4, 1]
    assert choose_scale_in(views, 5, policy=NEWEST)[4] == 9  # 1/1/1 now: the newest overall
    assert choose_scale_in(views, 4, policy=OLDEST) == [0, 3, 1, 4]


def test_a_large_scale_in_is_not_quadratic() -> None:
    # 30,000 candidates removed at once: the old one-scan-per-removal choice took minutes; this takes well under a
    # second (the bound is loose, for slow machines).
    views = [vm(i, str(i % 3 + 1), i % 5, health=HealthState.HEALTHY) for i in range(30_000)]
    started = time.perf_counter()
    got = choose_scale_in(views, 29_990, policy=ScaleInPolicy(prioritizeUnhealthyVMs=True))
    assert len(got) == 29_990
    assert time.perf_counter() - started < 10
