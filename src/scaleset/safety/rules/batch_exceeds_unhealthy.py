"""SS006 (UP-003): ``maxBatchInstancePercent`` above ``maxUnhealthyInstancePercent``.

An in-place batch is down while it upgrades, so it counts against the unhealthy budget: Azure shrinks the batch to
what the budget leaves (its "a batch may be smaller" rule), and the rollout is slower than the batch percentage says.
The Azure Batch SDK's RollingUpgradePolicy reference says the batch should not exceed the unhealthy limit.
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    if governing is None or not governing.own:
        return []
    policy = governing.policy
    batch_pct, unhealthy_pct = policy.maxBatchInstancePercent, policy.maxUnhealthyInstancePercent
    if batch_pct <= unhealthy_pct:
        return []
    n = target.capacity
    if n <= 0:
        return []
    size = fenceposts.batch_size(n, batch_pct)
    room = fenceposts.tolerated(n, unhealthy_pct)
    shrunk = fenceposts.shrunk_batch_size(
        total=n, max_batch_percent=batch_pct, max_unhealthy_percent=unhealthy_pct, unhealthy=0
    )
    effect = (
        f"at {n} instances a batch of {size} is shrunk to {shrunk} (the unhealthy budget is {room}), so the rollout "
        f"takes {facts.batches(n, shrunk)} batches, not {facts.batches(n, size)}"
        if shrunk < size
        else f"at {n} instances the batch of {size} still fits the unhealthy budget of {room}, but it will not once "
        "the set grows or an instance is unhealthy"
    )
    if policy.maxSurge:
        effect += " (maxSurge keeps old instances serving, but Azure may fall back to in-place batches on quota)"
    return [
        RULE.finding(
            target,
            message=f"maxBatchInstancePercent {batch_pct} exceeds maxUnhealthyInstancePercent {unhealthy_pct}",
            reason=f"Instances in an in-place batch count as unhealthy while they upgrade; {effect}.",
            fix=f"Set maxBatchInstancePercent to at most {unhealthy_pct}, or raise maxUnhealthyInstancePercent to at "
            f"least {batch_pct}.",
            path=f"{facts.ROLLING}.maxBatchInstancePercent",
        )
    ]


RULE = Rule(
    id="SS006",
    severity=Severity.WARNING,
    title="Batch larger than the unhealthy budget",
    summary="maxBatchInstancePercent exceeds maxUnhealthyInstancePercent, so batches shrink or the pre-check trips.",
    check=check,
)
