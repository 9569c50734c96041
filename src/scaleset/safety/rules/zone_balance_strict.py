"""SS022 (table row 6): strict zone balance (``zoneBalance: true``).

Strict balance refuses a scale-out that would unbalance the zones, including during a zone outage, exactly when
capacity is needed elsewhere. Best effort (false or absent, the default) is what PSRule Azure.VMSS.ZoneBalance and APRL
b5a63aa0 recommend; absent passes.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if target.model.properties.zoneBalance is not True:
        return []
    names = facts.zones(target)
    return [
        RULE.finding(
            target,
            message="Strict zone balance: scale-out is blocked while a zone is unavailable",
            reason=f"With zoneBalance true over {facts.plural(len(names), 'zone')}, Azure refuses to add instances "
            "that would unbalance the zones, so during a zone outage the set cannot grow in the healthy zones.",
            fix="Set properties.zoneBalance false or remove it (best-effort balance).",
            path="properties.zoneBalance",
        )
    ]


RULE = Rule(
    id="SS022",
    severity=Severity.WARNING,
    title="Strict zone balance",
    summary="zoneBalance true blocks scale-out during a zone outage.",
    check=check,
)
