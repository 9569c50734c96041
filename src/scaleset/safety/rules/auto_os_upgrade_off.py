"""SS012 (table row 9): automatic OS image upgrade is off.

Azure Policy 465f0161 denies such sets outright, without checking what makes the feature work. This rule is a note and
its fix lists the preconditions for this set: an image ``version`` of ``latest`` (or a gallery id without a version),
a health source, and on Windows ``enableAutomaticUpdates`` false. SS013 checks them when the feature is on.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.auto_os_preconditions import pinned_image
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if facts.auto_os_enabled(target):
        return []
    needed = []
    pinned = pinned_image(target)
    if pinned is not None:
        needed.append(
            f"the image is pinned ({pinned}); it would need version 'latest' or a gallery id without a version"
        )
    if facts.health(target) is None:
        needed.append("a health probe or the Application Health extension")
    if facts.os_family(target) == "Windows":
        needed.append("windowsConfiguration.enableAutomaticUpdates false (Azure forces it when the feature is on)")
    extra = ("; first: " + "; ".join(needed)) if needed else ""
    return [
        RULE.finding(
            target,
            message="Automatic OS image upgrade is off",
            reason=(
                "Without it, new OS image versions reach the instances only when you change the model or reimage "
                f"them, so security fixes in the base image wait for your next release{extra}."
            ),
            fix="Set upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade true with "
            "useRollingUpgradePolicy true, or keep it off if releases pin and test every image (then suppress with "
            "that reason).",
            path=f"{facts.AUTO_OS}.enableAutomaticOSUpgrade",
        )
    ]


RULE = Rule(
    id="SS012",
    severity=Severity.NOTE,
    title="Automatic OS image upgrade off",
    summary="Automatic OS image upgrade is off; the fix names the preconditions this set still lacks.",
    check=check,
)
