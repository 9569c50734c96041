"""SS015 (UP-011): a tuned ``rollingUpgradePolicy`` on a Manual or Automatic set is live after all.

Automatic extension upgrades, and automatic OS upgrades with ``useRollingUpgradePolicy``, batch by the rolling policy
whatever the mode, so a policy the author may think inert decides how those rollouts go.
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.domain.resources import UpgradeMode
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    mode = target.model.upgrade_mode
    governing = facts.governing_policy(target)
    if mode is UpgradeMode.ROLLING or governing is None or not governing.own:
        return []
    tuned = facts.tuned_rolling_fields(target)
    if not tuned:
        return []
    policy, n = governing.policy, target.capacity
    size = fenceposts.batch_size(n, policy.maxBatchInstancePercent)
    fields = ", ".join(f"{k} {facts.shown(v)}" for k, v in tuned.items())
    return [
        RULE.finding(
            target,
            message=f"The rollingUpgradePolicy of this {mode.value}-mode set is used by {governing.trigger}",
            reason=(
                f"{facts.sentence(governing.trigger)} batches by rollingUpgradePolicy whatever the mode, so your "
                f"{fields} apply: {facts.plural(facts.batches(n, size), 'batch')} of {size} of {n} instances, "
                f"{fenceposts.tolerated(n, policy.maxUnhealthyInstancePercent)} unhealthy tolerated before a batch."
            ),
            fix="Review the policy as a live setting (see SS005-SS010), or remove the values you did not mean.",
            path=facts.ROLLING,
        )
    ]


RULE = Rule(
    id="SS015",
    severity=Severity.NOTE,
    title="Rolling policy is live outside Rolling mode",
    summary="Automatic OS or extension upgrades use the rollingUpgradePolicy of a Manual or Automatic set.",
    check=check,
)
