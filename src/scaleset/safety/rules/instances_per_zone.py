"""SS021 (ZN-001, table row 5): a zonal set with fewer than 2 instances in a zone, or an uneven spread.

Azure updates one fault domain per zone at a time during maintenance, so a zone needs at least 2 instances to keep
serving (the WAF's "at least 6 for 3 zones"). Azure Policy d3903bdf counts only the total. Static inputs spread the
capacity as Azure balances it; live inputs count the instances in each zone.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    spread = facts.per_zone(target)
    n = target.capacity
    if not spread or n == 0:
        return []
    thin = [zone for zone, count in spread.items() if count < 2]
    uneven = max(spread.values()) - min(spread.values()) > (0 if target.instances is None else 1)
    if not thin and not uneven:
        return []
    shown = ", ".join(f"zone {zone}: {count}" for zone, count in spread.items())
    problems = []
    if thin:
        problems.append(
            f"{', '.join('zone ' + z for z in thin)} {'has' if len(thin) == 1 else 'have'} fewer than 2, "
            "so maintenance of one fault domain can leave the zone with no serving instance"
        )
    if uneven:
        problems.append("the zones are uneven, so losing the largest zone costs more than its share")
    return [
        RULE.finding(
            target,
            message=f"{n} instances over {len(spread)} zones ({shown}): "
            + ("fewer than 2 in a zone" if thin else "uneven"),
            reason=facts.sentence("; ".join(problems)) + ".",
            fix=f"Use a capacity that is a multiple of {len(spread)} with at least 2 per zone "
            f"(at least {2 * len(spread)}).",
            path="sku.capacity",
        )
    ]


RULE = Rule(
    id="SS021",
    severity=Severity.WARNING,
    title="Fewer than 2 instances per zone",
    summary="A zonal set with a zone holding fewer than 2 instances, or capacity not divisible across its zones.",
    check=check,
)
