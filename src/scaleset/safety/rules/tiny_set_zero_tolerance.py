"""SS005 (UP-002): a small scale set whose rolling thresholds tolerate no unhealthy instance at all.

With N instances a threshold of p% tolerates floor(N * p / 100) unhealthy instances (the check is a strict "more
than"). At the default 20%, every set of 2 to 4 instances tolerates 0: a single unhealthy instance, already broken
or failing to allocate, aborts the rollout. A threshold the author set to 0 on purpose is SS009's note, not this.
"""

from __future__ import annotations

import math

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def minimum_percent(total: int) -> int:
    """The smallest percentage that tolerates one unhealthy instance among ``total``."""
    return min(100, math.ceil(100 / total))


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    n = target.capacity
    if governing is None or n < 2:
        return []
    policy = governing.policy
    before, after = policy.maxUnhealthyInstancePercent, policy.maxUnhealthyUpgradedInstancePercent
    problems = []
    if fenceposts.tolerated(n, before) == 0:
        problems.append(
            f"{n} instances at maxUnhealthyInstancePercent {before} tolerate 0 unhealthy "
            f"(1 of {n} is {fenceposts.shown_percent(1, n)}% > {before}%): one unhealthy instance, already broken or "
            "failing to allocate, aborts the rollout before or between batches"
        )
    if after > 0 and fenceposts.tolerated(n, after) == 0:
        problems.append(
            f"{n} instances at maxUnhealthyUpgradedInstancePercent {after} tolerate 0 unhealthy after upgrade: "
            "one failed boot aborts the rollout"
        )
    if not problems:
        return []
    size = fenceposts.batch_size(n, policy.maxBatchInstancePercent)
    plan = (
        f"Batches: {facts.plural(size, 'instance')} each (maxBatchInstancePercent {policy.maxBatchInstancePercent}), "
        f"{facts.plural(facts.batches(n, size), 'batch')}; rollouts come from {governing.trigger}."
    )
    raise_to = minimum_percent(n)
    fix = (
        f"Raise the thresholds that tolerate 0 to at least {raise_to} (tolerates 1 of {n}), or grow the set."
        if governing.own
        else f"Set automaticOSUpgradePolicy.useRollingUpgradePolicy true with thresholds of at least {raise_to} "
        f"(the built-in policy is fixed at 20), or grow the set."
    )
    return [
        RULE.finding(
            target,
            message=f"{n} instances tolerate 0 unhealthy during a rollout: one failure aborts it",
            reason="; ".join(problems) + ". " + plan,
            fix=fix,
            path=governing.path,
        )
    ]


RULE = Rule(
    id="SS005",
    severity=Severity.WARNING,
    title="Small set tolerates no unhealthy instance",
    summary="The rolling thresholds, turned into instance counts for this set, tolerate 0 unhealthy instances.",
    check=check,
)
