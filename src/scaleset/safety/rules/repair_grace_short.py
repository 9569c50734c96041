"""SS025 (RP-001): the repair grace period is shorter than the time the health source allows an instance to settle.

Repairs wait ``gracePeriod`` after any operation before acting on health. If the health source may keep a new
instance unsettled longer (the rich extension's grace, or ``intervalInSeconds x numberOfProbes``), a slow but good
instance is repaired before it could report Healthy, and a repair loop follows.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    repairs = target.model.properties.automaticRepairsPolicy
    probe = facts.health(target)
    if repairs is None or not repairs.enabled or probe is None:
        return []
    grace = facts.duration_seconds(repairs.gracePeriod)
    if grace is None or grace >= probe.grace:
        return []
    return [
        RULE.finding(
            target,
            message=f"Repair gracePeriod {repairs.gracePeriod} is shorter than the {probe.grace:g} s the health "
            "source allows an instance to settle",
            reason=(
                f"Repairs start judging an instance {facts.seconds_text(grace)} after an operation, but the health "
                f"source may keep it unsettled for {facts.seconds_text(probe.grace)}; a good instance that is slow "
                "to start is replaced before it can report Healthy, and the replacement starts the same loop."
            ),
            fix=f"Set automaticRepairsPolicy.gracePeriod to at least {facts.seconds_text(probe.grace)} (Azure allows "
            "PT10M to PT90M), or make the instance settle faster.",
            path=f"{facts.REPAIRS}.gracePeriod",
        )
    ]


RULE = Rule(
    id="SS025",
    severity=Severity.WARNING,
    title="Repair grace shorter than health settling",
    summary="automaticRepairsPolicy.gracePeriod is shorter than the health source's time to settle.",
    check=check,
)
