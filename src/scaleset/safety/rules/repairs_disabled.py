"""SS024 (table row 1): automatic instance repairs are off, or the policy is missing (which counts the same).

APRL's query returns only ``enabled == false`` and misses sets with no policy; PSRule checks the flag without asking
whether a health source exists, though Azure rejects repairs without one. This rule counts a missing policy as off and
its fix says to add a health source first when there is none.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    repairs = target.model.properties.automaticRepairsPolicy
    if repairs is not None and repairs.enabled:
        return []
    state = "off (no automaticRepairsPolicy)" if repairs is None else "disabled"
    fix = 'Set "automaticRepairsPolicy": {"enabled": true, "gracePeriod": "PT30M"} (a grace period that covers boot).'
    if facts.health(target) is None:
        fix = (
            "First add the Application Health extension or an LB health probe (Azure rejects repairs without one), "
            "then " + fix[0].lower() + fix[1:]
        )
    return [
        RULE.finding(
            target,
            message=f"Automatic instance repairs are {state}",
            reason=f"Instances whose application turns unhealthy stay in the set until someone acts; of "
            f"{facts.plural(target.capacity, 'instance')}, each one that fails keeps taking traffic or capacity.",
            fix=fix,
            path=facts.REPAIRS if repairs is not None else "properties",
        )
    ]


RULE = Rule(
    id="SS024",
    severity=Severity.WARNING,
    title="Automatic repairs off",
    summary="automaticRepairsPolicy is missing or disabled.",
    check=check,
)
