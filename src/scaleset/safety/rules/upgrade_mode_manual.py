"""SS004 (table row 12, DR-001): Manual mode with model drift, or with automatic upgrades that need a manual first step.

Live: instances with ``latestModelApplied == false`` (count, ids, by image version). Static: automatic OS or
extension upgrades on a Manual set, where the instances must first be brought to the latest model by hand.
"""

from __future__ import annotations

from collections import Counter

from scaleset.domain.resources import UpgradeMode
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if target.model.upgrade_mode is not UpgradeMode.MANUAL:
        return []
    out: list[Finding] = []
    if target.instances is not None:
        stale = [i for i in target.instances if i.latest_model_applied is False]
        if stale:
            versions = Counter(i.image_version or "unknown" for i in stale)
            by_version = ", ".join(f"{facts.plural(n, 'instance')} on {v}" for v, n in sorted(versions.items()))
            out.append(
                RULE.finding(
                    target,
                    message=f"{len(stale)} of {len(target.instances)} instances "
                    f"{facts.verb(len(stale), 'is', 'are')} not on the latest model",
                    reason=(
                        "In Manual mode a model change reaches no instance until someone upgrades it; "
                        f"{facts.ids(stale)} still {facts.verb(len(stale), 'runs', 'run')} an older model "
                        f"({by_version})."
                    ),
                    fix="Upgrade them (az vmss update-instances --instance-ids ..., or manualupgrade), or move to "
                    "Rolling mode so model changes roll out in batches.",
                    path=f"{facts.UPGRADE_POLICY}.mode",
                )
            )
    automatic = []
    if facts.auto_os_enabled(target):
        automatic.append("automatic OS upgrade")
    if facts.auto_extension_upgrades(target):
        automatic.append("automatic extension upgrade")
    if automatic:
        names = " and ".join(automatic)
        out.append(
            RULE.finding(
                target,
                message=f"Manual mode with {names}: the instances must first be brought to the latest model by hand",
                reason=(
                    f"Azure documents that on a Manual set the instances must first be brought to the latest model "
                    f"by hand before {names} applies to them, and every later model change again waits for a manual "
                    "upgrade, so drift accumulates silently."
                ),
                fix="Use Rolling mode, or apply every model change to all instances (az vmss update-instances "
                "--instance-ids '*') as part of each release.",
                path=f"{facts.UPGRADE_POLICY}.mode",
            )
        )
    return out


RULE = Rule(
    id="SS004",
    severity=Severity.WARNING,
    title="Manual mode drift",
    summary="Manual mode with instances behind the model, or with automatic upgrades that need a manual first step.",
    check=check,
)
