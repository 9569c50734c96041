"""SS017 (table row 24): Windows instances with in-guest automatic updates off and nothing else patching them.

Checkov CKV_AZURE_177 wants ``enableAutomaticUpdates`` true; Azure forces it false when automatic OS upgrade is on,
so CKV_AZURE_177 and Azure Policy 465f0161 cannot both pass. This rule passes false when automatic OS image upgrade or
platform-orchestrated patching is on, and passes a set that does not write the field (Azure's default is true).
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if facts.os_family(target) != "Windows" or facts.auto_os_enabled(target):
        return []
    windows = f"{facts.OS_PROFILE}.windowsConfiguration"
    if facts.unresolved(target, windows):
        return []
    if facts.dig(target.body, f"{windows}.enableAutomaticUpdates") not in (False, "false", "False"):
        return []
    if facts.dig(target.body, f"{windows}.patchSettings.patchMode") in ("AutomaticByPlatform", "AutomaticByOS"):
        return []
    return [
        RULE.finding(
            target,
            message="Windows automatic updates are off and automatic OS image upgrade is off: nothing patches the "
            "instances",
            reason="enableAutomaticUpdates false stops Windows Update in the guest, and with neither automatic OS "
            "image upgrade nor platform-orchestrated patching, fixes arrive only with your next image release.",
            fix="Turn on automatic OS image upgrade (then false is correct and required), or set patchMode "
            "AutomaticByPlatform, or enableAutomaticUpdates true.",
            path=f"{windows}.enableAutomaticUpdates",
        )
    ]


RULE = Rule(
    id="SS017",
    severity=Severity.WARNING,
    title="Windows instances unpatched",
    summary="Windows automatic updates are off with no automatic OS upgrade or platform patching in their place.",
    check=check,
)
