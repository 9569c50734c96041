"""SS018 (UP-012): Uniform-only rolling features set on a Flexible scale set.

``rollbackFailedInstancesOnPolicyBreach`` works on Uniform only, and automatic OS upgrade with ``maxSurge`` is not
supported on Flexible: the author relies on a safety net that is not there.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if not facts.is_flexible(target):
        return []
    policy = target.model.rolling_policy
    out = []
    if policy.rollbackFailedInstancesOnPolicyBreach:
        out.append(
            RULE.finding(
                target,
                message="rollbackFailedInstancesOnPolicyBreach is set on a Flexible scale set, where it does nothing",
                reason="Rolling back failed instances to the previous model on a policy breach is a Uniform-only "
                "feature; on Flexible the failed instances keep the new model.",
                fix="Plan the rollback yourself (redeploy the previous model), or use Uniform orchestration.",
                path=f"{facts.ROLLING}.rollbackFailedInstancesOnPolicyBreach",
            )
        )
    if policy.maxSurge and facts.auto_os_enabled(target):
        out.append(
            RULE.finding(
                target,
                message="maxSurge with automatic OS upgrade on a Flexible scale set, which does not support it",
                reason="Automatic OS upgrade with MaxSurge is supported on Uniform only; on Flexible the OS "
                "rollouts do not surge, so capacity drops by each batch.",
                fix="Expect in-place OS rollouts (size maxBatchInstancePercent for that), or use Uniform.",
                path=f"{facts.ROLLING}.maxSurge",
            )
        )
    return out


RULE = Rule(
    id="SS018",
    severity=Severity.WARNING,
    title="Uniform-only feature on Flexible",
    summary="rollbackFailedInstancesOnPolicyBreach, or maxSurge with automatic OS upgrade, on Flexible orchestration.",
    check=check,
)
