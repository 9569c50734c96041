"""SS002 (table row 2): the scale set has no health signal at all, neither the extension nor a load-balancer probe.

Advisor 3b587048 accepts either source; APRL 94794d2a only looks for the extension and so flags every probe-based set.
This rule accepts both. When Rolling mode, repairs or automatic OS upgrade are on, SS001 reports the stronger error.
"""

from __future__ import annotations

from scaleset.domain.resources import UpgradeMode
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if facts.health(target) is not None:
        return []
    repairs = target.model.properties.automaticRepairsPolicy
    if (
        target.model.upgrade_mode is UpgradeMode.ROLLING
        or (repairs is not None and repairs.enabled)
        or facts.auto_os_enabled(target)
    ):
        return []  # SS001's error says it
    mode = target.model.upgrade_mode.value
    return [
        RULE.finding(
            target,
            message="No application health signal: neither the Application Health extension nor a load-balancer probe",
            reason=(
                f"In {mode} mode with no health source, Azure judges an instance healthy when it runs and its "
                "extensions provisioned, so a broken application counts as healthy; Rolling mode, automatic "
                "repairs and automatic OS upgrade are all unavailable until a health source exists."
            ),
            fix="Add the Application Health extension (protocol http/https with a requestPath that checks the "
            "application) or point networkProfile.healthProbe.id at a load-balancer probe.",
            path=facts.PROFILE,
        )
    ]


RULE = Rule(
    id="SS002",
    severity=Severity.WARNING,
    title="No application health signal",
    summary="The scale set has neither the Application Health extension nor a load-balancer health probe.",
    check=check,
)
