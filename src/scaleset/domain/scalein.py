"""Scale-out placement and scale-in choice.

Scale-in (reference §5.5): ``Default`` balances zones (deleting from the zone with the most instances), then fault
domains, then removes the highest instance id; ``NewestVM`` / ``OldestVM`` balance zones and then remove the newest
(highest id) / oldest (lowest id) instance. Instances protected from scale-in (or from scale-set actions) are never
chosen. ``prioritizeUnhealthyVMs`` removes unhealthy instances first.

Worked example (Default, zones 1/2/3 holding 3/2/2 instances, scale in by 2): the first removal comes from zone 1
(3 instances), leaving 2/2/2; the second from the zone whose highest id is largest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scaleset.domain.instances import InstanceView, ProvisioningState
from scaleset.domain.resources import ScaleInPolicy, ScaleInRule


def choose_scale_in(
    instances: Sequence[InstanceView], count: int, *, policy: ScaleInPolicy, exclude: frozenset[int] = frozenset()
) -> list[int]:
    """The ids to delete to remove ``count`` instances (fewer when protection leaves too few candidates)."""
    alive = [v for v in instances if v.provisioning is not ProvisioningState.DELETING]
    zone_counts = Counter(v.zone for v in alive)
    fd_counts = Counter((v.zone, v.fault_domain) for v in alive)
    rule = policy.rules[0] if policy.rules else ScaleInRule.DEFAULT
    candidates = [
        v
        for v in alive
        if not v.protect_from_scale_in and not v.protect_from_scale_set_actions and v.instance_id not in exclude
    ]
    chosen: list[int] = []
    for _ in range(count):
        if not candidates:
            break

        def key(v: InstanceView) -> tuple[int, int, int, int]:
            unhealthy_first = 0 if policy.prioritizeUnhealthyVMs and v.is_unhealthy else 1
            if rule is ScaleInRule.DEFAULT:
                return (unhealthy_first, -zone_counts[v.zone], -fd_counts[(v.zone, v.fault_domain)], -v.instance_id)
            age = v.instance_id if rule is ScaleInRule.OLDEST_VM else -v.instance_id
            return (unhealthy_first, -zone_counts[v.zone], 0, age)

        victim = min(candidates, key=key)
        candidates.remove(victim)
        zone_counts[victim.zone] -= 1
        fd_counts[(victim.zone, victim.fault_domain)] -= 1
        chosen.append(victim.instance_id)
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
