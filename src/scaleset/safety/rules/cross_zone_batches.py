"""SS023 (ZN-002): cross-zone batches big enough to take a whole zone's instances at once.

Without ``enableCrossZoneUpgrade`` Azure upgrades one zone at a time; with it, a batch may draw from several zones. When
the batch is at least as large as the smallest zone, one batch can hit every instance of a zone together with others.
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    spread = facts.per_zone(target)
    if governing is None or not governing.own or not governing.policy.enableCrossZoneUpgrade or len(spread) < 2:
        return []
    n = target.capacity
    size = fenceposts.batch_size(n, governing.policy.maxBatchInstancePercent)
    smallest = min(spread.values())
    if size < smallest or size == 0:
        return []
    return [
        RULE.finding(
            target,
            message=f"Cross-zone batches of {size} can take a whole zone ({smallest} in the smallest) at once",
            reason=(
                f"enableCrossZoneUpgrade lets a batch span zones; at maxBatchInstancePercent "
                f"{governing.policy.maxBatchInstancePercent} a batch is {size} of {n} instances, at least the "
                f"{smallest} of the smallest zone, so the zone-at-a-time guarantee is gone."
            ),
            fix="Turn enableCrossZoneUpgrade off, or lower maxBatchInstancePercent so a batch is smaller than a zone.",
            path=f"{facts.ROLLING}.enableCrossZoneUpgrade",
        )
    ]


RULE = Rule(
    id="SS023",
    severity=Severity.WARNING,
    title="Cross-zone batches span a zone",
    summary="enableCrossZoneUpgrade with batches at least as large as the smallest zone.",
    check=check,
)
