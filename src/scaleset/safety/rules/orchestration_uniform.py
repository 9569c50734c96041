"""SS031 (table row 13): Uniform orchestration, where Microsoft now recommends Flexible.

A note, since Uniform still has features Flexible lacks (rolling upgrades driven by an LB probe, rollback on policy
breach, MaxSurge for automatic OS upgrade); the orchestration mode is fixed at creation.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if facts.is_flexible(target):
        return []
    written = facts.dig(target.body, "properties.orchestrationMode")
    how = "set to Uniform" if written else "Uniform (the default when orchestrationMode is left out)"
    return [
        RULE.finding(
            target,
            message=f"Orchestration mode is {how}",
            reason="The Well-Architected guide and APRL e7495e1c recommend Flexible orchestration: instances are "
            "full VMs spread over fault domains, and new platform features arrive there first.",
            fix="Create new scale sets with orchestrationMode Flexible (it cannot change on an existing set); keep "
            "Uniform where you rely on its Uniform-only features, and suppress with that reason.",
            path="properties.orchestrationMode",
        )
    ]


RULE = Rule(
    id="SS031",
    severity=Severity.NOTE,
    title="Uniform orchestration",
    summary="The scale set uses Uniform orchestration; Flexible is recommended for new sets.",
    check=check,
)
