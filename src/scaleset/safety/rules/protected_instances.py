"""SS029 (UP-015, live): instances protected from scale-set actions, which every upgrade and repair skips.

``protectFromScaleSetActions`` keeps an instance out of rolling, automatic and OS upgrades, set-wide reimage and
repairs, so it stays on its model until someone upgrades it by hand.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if target.instances is None:
        return []
    protected = [i for i in target.instances if i.protect_from_scale_set_actions]
    if not protected:
        return []
    stale = [i for i in protected if i.latest_model_applied is False]
    behind = f"; {len(stale)} of them {facts.verb(len(stale), 'is', 'are')} already behind the model" if stale else ""
    return [
        RULE.finding(
            target,
            message=f"{facts.plural(len(protected), 'instance')} protected from scale-set actions: upgrades and "
            f"repairs skip {facts.verb(len(protected), 'it', 'them')}",
            reason=f"{facts.sentence(facts.ids(protected))} {facts.verb(len(protected), 'has', 'have')} "
            "protectFromScaleSetActions, so rollouts and automatic repairs leave "
            f"{facts.verb(len(protected), 'it', 'them')} on the current model{behind}.",
            fix="Remove the protection when the reason for it has passed, or upgrade those instances by hand "
            "(az vmss update-instances --instance-ids ...).",
            path="instances",
        )
    ]


RULE = Rule(
    id="SS029",
    severity=Severity.NOTE,
    title="Protected instances skip upgrades",
    summary="Live: instances with protectFromScaleSetActions stay on their model through every rollout.",
    check=check,
)
