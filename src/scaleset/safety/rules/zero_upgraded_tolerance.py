"""SS009 (UP-006): ``maxUnhealthyUpgradedInstancePercent`` 0 with more than one instance per batch.

Zero is a legitimate strict choice; the note says what it costs: the first flaky instance of any batch aborts.
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
    policy, n = governing.policy, target.capacity
    size = fenceposts.batch_size(n, policy.maxBatchInstancePercent)
    if policy.maxUnhealthyUpgradedInstancePercent != 0 or size <= 1:
        return []
    return [
        RULE.finding(
            target,
            message="maxUnhealthyUpgradedInstancePercent 0: the first flaky instance aborts the rollout",
            reason=(
                f"Each batch upgrades {size} of {n} instances (maxBatchInstancePercent "
                f"{policy.maxBatchInstancePercent}); at 0% one unhealthy instance among them, even a transient boot "
                f"failure, faults the rollout with MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade."
            ),
            fix="Keep 0 only if any failure must stop the release; otherwise allow a few (e.g. 20% tolerates "
            f"{fenceposts.tolerated(n, 20)} of {n}).",
            path=f"{facts.ROLLING}.maxUnhealthyUpgradedInstancePercent",
        )
    ]


RULE = Rule(
    id="SS009",
    severity=Severity.NOTE,
    title="Zero tolerance after upgrade",
    summary="maxUnhealthyUpgradedInstancePercent 0 with batches of more than one instance.",
    check=check,
)
