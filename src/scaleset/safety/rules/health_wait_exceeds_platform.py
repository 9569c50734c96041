"""SS011 (UP-008): instances may take longer to report healthy than automatic OS/extension upgrades wait.

Automatic OS upgrade waits up to 5 minutes for an upgraded instance to turn healthy; past that the instance counts as
failed and its previous OS disk is restored. The time to settle comes from the health source
(:func:`scaleset.domain.health.probe_settings`): the rich extension's grace, else ``intervalInSeconds x
numberOfProbes``.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    automatic = []
    if facts.auto_os_enabled(target):
        automatic.append("automatic OS upgrade")
    if facts.auto_extension_upgrades(target):
        automatic.append("automatic extension upgrade")
    probe = facts.health(target)
    if not automatic or probe is None or probe.grace <= facts.AUTO_OS_HEALTH_WAIT:
        return []
    source = (
        "the rich health extension's gracePeriod"
        if probe.rich
        else f"intervalInSeconds {probe.interval:g} x numberOfProbes {probe.probes}"
    )
    at = facts.health_extension_path(target)
    return [
        RULE.finding(
            target,
            message=f"Health may take {probe.grace:g} s to settle, longer than the "
            f"{facts.AUTO_OS_HEALTH_WAIT:g} s that {' and '.join(automatic)} waits",
            reason=(
                f"An instance may need {facts.seconds_text(probe.grace)} to report Healthy ({source}), but the "
                f"platform waits {facts.seconds_text(facts.AUTO_OS_HEALTH_WAIT)} per upgraded instance; a healthy "
                "but slow instance is counted as failed and, for OS upgrades, its previous OS disk is restored."
            ),
            fix="Make the application healthy within 5 minutes, or shorten gracePeriod / intervalInSeconds x "
            "numberOfProbes to at most 300 s.",
            path=f"{at}.properties.settings" if at else facts.HEALTH_PROBE,
        )
    ]


RULE = Rule(
    id="SS011",
    severity=Severity.WARNING,
    title="Health slower than the platform's wait",
    summary="The health source may take longer than 5 minutes to settle, the per-instance wait of automatic upgrades.",
    check=check,
)
