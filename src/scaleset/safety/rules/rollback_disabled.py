"""SS008 (UP-005): nothing stops or reverts a bad rollout.

The post-batch gate is at 100 (SS007), ``rollbackFailedInstancesOnPolicyBreach`` is false, and, when automatic OS
upgrade is on, ``disableAutomaticRollback`` is true. Failed instances then stay on the new model in a failed state.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    governing = facts.governing_policy(target)
    if governing is None or not governing.own:
        return []
    policy = governing.policy
    auto_os = facts.auto_os_enabled(target)
    os_rollback_off = target.model.properties.upgradePolicy.automaticOSUpgradePolicy.disableAutomaticRollback
    if policy.maxUnhealthyUpgradedInstancePercent != 100 or policy.rollbackFailedInstancesOnPolicyBreach:
        return []
    if auto_os and not os_rollback_off:
        return []
    also = " and automatic OS upgrade's disableAutomaticRollback is true" if auto_os else ""
    return [
        RULE.finding(
            target,
            message="Rollback is off end to end: a bad model reaches every instance and stays there",
            reason=(
                "maxUnhealthyUpgradedInstancePercent 100 never breaches after a batch, "
                f"rollbackFailedInstancesOnPolicyBreach is false{also}; failed instances keep the new model in a "
                f"failed state and nothing reverts them, on all {target.capacity} instances."
            ),
            fix="Lower maxUnhealthyUpgradedInstancePercent below 100 and set rollbackFailedInstancesOnPolicyBreach "
            "true (Uniform), or keep automatic OS rollback on.",
            path=facts.ROLLING,
        )
    ]


RULE = Rule(
    id="SS008",
    severity=Severity.ERROR,
    title="No rollback",
    summary="The post-batch gate is at 100 and every rollback mechanism is off.",
    check=check,
)
