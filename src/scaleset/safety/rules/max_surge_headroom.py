"""SS019 (UP-013): MaxSurge needs headroom: each batch creates new instances before deleting old ones.

The extra instances per batch equal the batch size; they need free private IPs in the subnet and regional core quota.
When the quota check fails Azure quietly falls back to an in-place batch. The subnet and quota are not in the inputs,
so this rule reports the numbers to check.
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    if governing is None or not governing.own or not governing.policy.maxSurge:
        return []
    n = target.capacity
    size = fenceposts.batch_size(n, governing.policy.maxBatchInstancePercent)
    if size == 0:
        return []
    sku = target.model.sku.name or "the set's VM size"
    return [
        RULE.finding(
            target,
            message=f"maxSurge adds {facts.plural(size, 'instance')} per batch: {n + size} instances at the peak",
            reason=(
                f"Each batch creates {size} new {sku} instances before deleting the old ones, so the rollout needs "
                f"{size} free private IPs in the subnet and quota for {size} more instances; if the quota check fails "
                "Azure upgrades that batch in place, taking capacity down after all."
            ),
            fix=f"Check the subnet's free addresses and the regional vCPU quota for {size} more {sku}, or lower "
            "maxBatchInstancePercent.",
            path=f"{facts.ROLLING}.maxSurge",
        )
    ]


RULE = Rule(
    id="SS019",
    severity=Severity.NOTE,
    title="MaxSurge headroom",
    summary="maxSurge needs free IPs and quota for one extra batch of instances.",
    check=check,
)
