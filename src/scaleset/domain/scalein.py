"""Scale-out placement and scale-in choice.

Scale-in (reference §5.5): ``Default`` balances zones (deleting from the zone with the most instances), then fault
domains, then removes the highest instance id; ``NewestVM`` / ``OldestVM`` balance zones and then remove the newest
(highest id) / oldest (lowest id) instance. Instances protected from scale-in (or from scale-set actions) are never
chosen. ``prioritizeUnhealthyVMs`` removes unhealthy instances first.

Worked example (Default, zones 1/2/3 holding 3/2/2 instances, scale in by 2): the first removal comes from zone 1
(3 instances), leaving 2/2/2; the second from the zone whose highest id is largest.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Sequence

from scaleset.domain.instances import InstanceView, ProvisioningState
from scaleset.domain.resources import ScaleInPolicy, ScaleInRule

_Group = tuple[int, str | None, int]  # (0 unhealthy first / 1, zone, fault domain or 0): candidates alike but for id


def choose_scale_in(
    instances: Sequence[InstanceView], count: int, *, policy: ScaleInPolicy, exclude: frozenset[int] = frozenset()
) -> list[int]:
    """The ids to delete to remove ``count`` instances (fewer when protection leaves too few candidates), in order.

    One removal at a time, each the smallest candidate by ``(unhealthy first, most instances in its zone, most
    instances in its zone's fault domain, highest id)`` for ``Default``, and ``(unhealthy first, most instances in
    its zone, oldest/newest id)`` for ``OldestVM``/``NewestVM``, the counts taken after the removals before it. The
    counts include protected and excluded instances (they are there; they just cannot go), not instances already
    being deleted. Ties between zones of equal size fall to the fuller fault domain (Default), then to the id.

    The greedy choice is computed without rescanning every candidate per removal: candidates that agree on
    everything but the id form a group (sorted once); each zone keeps a heap of its groups and one heap holds the
    zones. A removal changes the counts of one zone and one of its fault domains only, so only that zone's entry and
    that fault domain's groups go stale: O(n log n) for n candidates. ``tests/domain/test_scalein.py`` checks it
    against the one-removal-at-a-time definition above.
    """
    deleting = ProvisioningState.DELETING
    alive = [v for v in instances if v.provisioning is not deleting]
    rule = policy.rules[0] if policy.rules else ScaleInRule.DEFAULT
    by_fault_domain = rule is ScaleInRule.DEFAULT
    oldest = rule is ScaleInRule.OLDEST_VM
    prioritize = bool(policy.prioritizeUnhealthyVMs)
    zone_counts = Counter(v.zone for v in alive)
    fd_counts = Counter((v.zone, v.fault_domain) for v in alive)
    groups: defaultdict[_Group, list[int]] = defaultdict(list)
    for v in alive:
        if v.protect_from_scale_in or v.protect_from_scale_set_actions or v.instance_id in exclude:
            continue
        unhealthy_first = 0 if prioritize and v.is_unhealthy else 1
        groups[(unhealthy_first, v.zone, v.fault_domain if by_fault_domain else 0)].append(v.instance_id)
    for ids in groups.values():
        ids.sort(reverse=oldest)  # pop() gives the next to go: the highest id, or the lowest for OldestVM

    def group_key(group: _Group) -> tuple[int, int, int]:
        unhealthy_first, zone, fd = group
        head = groups[group][-1]
        return (unhealthy_first, -fd_counts[(zone, fd)] if by_fault_domain else 0, head if oldest else -head)

    # Per zone: a heap of (key, sequence, group), one entry per non-empty group; an entry goes stale when its fault
    # domain's count drops and is refreshed when it reaches the top (keys only ever grow, so the top, once fresh,
    # is the zone's minimum).
    zone_heaps: dict[str | None, list[tuple[tuple[int, int, int], int, _Group]]] = defaultdict(list)
    for sequence, group in enumerate(groups):
        zone_heaps[group[1]].append((group_key(group), sequence, group))
    for heap in zone_heaps.values():
        heapq.heapify(heap)

    def zone_best(zone: str | None) -> tuple[int, int, int] | None:
        heap = zone_heaps[zone]
        while heap:
            stored, seq, group = heap[0]
            current = group_key(group)
            if current == stored:
                return current
            heapq.heapreplace(heap, (current, seq, group))
        return None

    def zone_entry(zone: str | None, best: tuple[int, int, int], seq: int) -> tuple[tuple[int, ...], int, str | None]:
        return ((best[0], -zone_counts[zone], best[1], best[2]), seq, zone)

    # The zones: a zone's entry changes only when one of its instances is chosen, so it is never stale.
    zones: list[tuple[tuple[int, ...], int, str | None]] = []
    for seq, zone in enumerate(zone_heaps):
        best = zone_best(zone)
        if best is not None:
            zones.append(zone_entry(zone, best, seq))
    heapq.heapify(zones)
    chosen: list[int] = []
    while zones and len(chosen) < count:
        _, zone_seq, zone = heapq.heappop(zones)
        _, seq, group = heapq.heappop(zone_heaps[zone])  # fresh: zone_best just looked at it
        ids = groups[group]
        chosen.append(ids.pop())
        zone_counts[zone] -= 1
        if by_fault_domain:  # only Default groups by fault domain (group[2] is 0 otherwise)
            fd_counts[(zone, group[2])] -= 1
        if ids:
            heapq.heappush(zone_heaps[zone], (group_key(group), seq, group))
        best = zone_best(zone)
        if best is not None:
            heapq.heappush(zones, zone_entry(zone, best, zone_seq))
    return chosen


def choose_zone(instances: Sequence[InstanceView], zones: Sequence[str] | None) -> str | None:
    """Where a new instance goes: the zone with the fewest instances, the lowest zone name on a tie."""
    if not zones:
        return None
    counts = Counter(v.zone for v in instances if v.provisioning is not ProvisioningState.DELETING)
    return min(sorted(zones), key=lambda z: counts[z])


def choose_fault_domain(instances: Sequence[InstanceView], zone: str | None, *, fault_domains: int) -> int:
    """The least used fault domain within the zone, the lowest number on a tie."""
    counts = Counter(
        v.fault_domain for v in instances if v.zone == zone and v.provisioning is not ProvisioningState.DELETING
    )
    return min(range(max(1, fault_domains)), key=lambda fd: counts[fd])


def place_new(
    instances: Sequence[InstanceView], count: int, *, zones: Sequence[str] | None, fault_domains: int
) -> list[tuple[str | None, int]]:
    """Zones and fault domains for ``count`` new instances, each placed as :func:`choose_zone` and
    :func:`choose_fault_domain` would place it after the ones before it (linear time, for large scale-outs).

    >>> place_new([], 4, zones=["1", "2"], fault_domains=2)
    [('1', 0), ('2', 0), ('1', 1), ('2', 1)]
    """
    alive = [v for v in instances if v.provisioning is not ProvisioningState.DELETING]
    zone_counts = Counter(v.zone for v in alive)
    fd_counts = Counter((v.zone, v.fault_domain) for v in alive)
    ordered_zones: list[str | None] = list(sorted(zones)) if zones else [None]
    domains = range(max(1, fault_domains))
    out: list[tuple[str | None, int]] = []
    for _ in range(count):
        zone = min(ordered_zones, key=lambda z: zone_counts[z])
        fd = min(domains, key=lambda d: fd_counts[(zone, d)])
        zone_counts[zone] += 1
        fd_counts[(zone, fd)] += 1
        out.append((zone, fd))
    return out
