"""SS016 (UP-016): automatic extension upgrade on a set with no health source.

Extensions with ``enableAutomaticUpgrade: true`` roll out in batches whatever the mode, and their rollback is keyed
on health; with no health source a broken extension version is judged only by provisioning state.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    positions = facts.auto_extension_upgrades(target)
    if not positions or facts.health(target) is not None:
        return []
    names = ", ".join(target.model.extensions[i].name or f"extensions[{i}]" for i in positions)
    return [
        RULE.finding(
            target,
            message=f"Automatic extension upgrade ({names}) with no health source",
            reason=(
                "Azure rolls new extension versions out by itself in batches of the rolling policy, in any upgrade "
                "mode; with neither the health extension nor an LB probe, an instance whose application breaks still "
                "counts as healthy, so nothing stops or rolls back a bad extension version."
            ),
            fix="Add the Application Health extension or an LB health probe, or turn enableAutomaticUpgrade off.",
            path=f"{facts.EXTENSIONS}[{positions[0]}].properties.enableAutomaticUpgrade",
        )
    ]


RULE = Rule(
    id="SS016",
    severity=Severity.NOTE,
    title="Automatic extension upgrade without health",
    summary="Extensions upgrade themselves in batches, but no health source judges the result.",
    check=check,
)
