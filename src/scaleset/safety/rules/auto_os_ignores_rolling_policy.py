"""SS014 (UP-010): automatic OS upgrade ignores a tuned ``rollingUpgradePolicy``.

Without ``useRollingUpgradePolicy: true`` automatic OS upgrade uses its built-in policy (20% batches, 20% unhealthy
before and after, no pause), whatever the author tuned. Only fields that differ from Azure's defaults count as tuned,
since ``az vmss show`` echoes a default policy on every set.
"""

from __future__ import annotations

from scaleset.domain import fenceposts
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    auto_os = target.model.properties.upgradePolicy.automaticOSUpgradePolicy
    if not facts.auto_os_enabled(target) or auto_os.useRollingUpgradePolicy:
        return []
    tuned = facts.tuned_rolling_fields(target)
    if not tuned:
        return []
    n = target.capacity
    fields = ", ".join(f"{k} {facts.shown(v)}" for k, v in tuned.items())
    return [
        RULE.finding(
            target,
            message="Automatic OS upgrade ignores the tuned rollingUpgradePolicy (useRollingUpgradePolicy is false)",
            reason=(
                f"You set {fields}, but OS image rollouts use the built-in policy: batches of "
                f"{fenceposts.batch_size(n, 20)} of {n}, {fenceposts.tolerated(n, 20)} unhealthy tolerated, no pause."
            ),
            fix="Set upgradePolicy.automaticOSUpgradePolicy.useRollingUpgradePolicy true.",
            path=f"{facts.AUTO_OS}.useRollingUpgradePolicy",
        )
    ]


RULE = Rule(
    id="SS014",
    severity=Severity.NOTE,
    title="Automatic OS upgrade ignores the rolling policy",
    summary="A tuned rollingUpgradePolicy exists but automatic OS upgrade does not use it.",
    check=check,
)
