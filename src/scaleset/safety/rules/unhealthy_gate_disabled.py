"""SS007 (UP-004): a rolling threshold at 100%, which turns that safety gate off.

``maxUnhealthyUpgradedInstancePercent`` 100 never stops a rollout after a batch; ``maxUnhealthyInstancePercent`` 100
never stops one before a batch. Raising them to 100 is the common "fix" for an aborted rollout (microsoft/AzureTRE
#1591); it ships a bad image to every instance. SS008 makes it an error when nothing rolls back either.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    if governing is None or not governing.own:
        return []
    policy, n = governing.policy, target.capacity
    out = []
    if policy.maxUnhealthyUpgradedInstancePercent == 100:
        out.append(
            RULE.finding(
                target,
                message="maxUnhealthyUpgradedInstancePercent is 100: no number of failed upgrades stops the rollout",
                reason=(
                    f"At 100% all {n} upgraded instances may be unhealthy and the post-batch check still passes, so "
                    f"a bad image rolls on through every batch ({governing.trigger})."
                ),
                fix="Set maxUnhealthyUpgradedInstancePercent to the share of failed upgrades you accept (the "
                "default 20; see SS005 for small sets).",
                path=f"{facts.ROLLING}.maxUnhealthyUpgradedInstancePercent",
            )
        )
    if policy.maxUnhealthyInstancePercent == 100:
        out.append(
            RULE.finding(
                target,
                message="maxUnhealthyInstancePercent is 100: the pre-batch health check never stops the rollout",
                reason=(
                    f"At 100% the rollout starts its next batch even with all {n} instances unhealthy, so it keeps "
                    "taking healthy instances down while the set is already failing."
                ),
                fix="Set maxUnhealthyInstancePercent to the share of the set that may be down at once (default 20).",
                path=f"{facts.ROLLING}.maxUnhealthyInstancePercent",
            )
        )
    return out


RULE = Rule(
    id="SS007",
    severity=Severity.WARNING,
    title="Rolling safety gate disabled",
    summary="maxUnhealthyUpgradedInstancePercent or maxUnhealthyInstancePercent at 100 turns a health gate off.",
    check=check,
)
