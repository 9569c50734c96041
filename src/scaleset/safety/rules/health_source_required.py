"""SS001 (HL-001): Rolling mode, automatic repairs or automatic OS upgrade with no health source Azure accepts.

Azure rejects such a PUT with 400 "... a health probe or health extension was not provided". On Flexible
orchestration a load-balancer probe does not count for Rolling mode: only the Application Health extension does.
"""

from __future__ import annotations

from scaleset.domain.resources import UpgradeMode
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    has_extension = facts.health_extension_path(target) is not None
    has_probe = facts.has_lb_probe(target)
    needs: list[tuple[str, str]] = []
    if target.model.upgrade_mode is UpgradeMode.ROLLING:
        needs.append(("Rolling mode", f"{facts.UPGRADE_POLICY}.mode"))
    repairs = target.model.properties.automaticRepairsPolicy
    if repairs is not None and repairs.enabled:
        needs.append(("automatic repairs", f"{facts.REPAIRS}.enabled"))
    if facts.auto_os_enabled(target):
        needs.append(("automatic OS upgrade", f"{facts.AUTO_OS}.enableAutomaticOSUpgrade"))
    if not needs or has_extension:
        return []
    flexible_rolling = facts.is_flexible(target) and has_probe
    if has_probe and not flexible_rolling:
        return []
    if flexible_rolling:
        if needs[0][0] != "Rolling mode":
            return []
        return [
            RULE.finding(
                target,
                message="Rolling mode on a Flexible scale set whose only health source is a load-balancer probe",
                reason=(
                    "Flexible orchestration takes its rolling-upgrade health from the Application Health extension "
                    "only; the networkProfile.healthProbe does not count, so Azure rejects the mode with 400 "
                    "BadRequest (health probe or health extension not provided)."
                ),
                fix="Add the ApplicationHealthLinux/ApplicationHealthWindows extension (publisher "
                "Microsoft.ManagedServices) to the extension profile.",
                path=needs[0][1],
            )
        ]
    names = ", ".join(name for name, _ in needs)
    return [
        RULE.finding(
            target,
            message=f"{facts.sentence(names)} without a health probe or the Application Health extension",
            reason=(
                f"{facts.sentence(names)} {'needs' if len(needs) == 1 else 'each need'} a health source to judge "
                'instances; without one Azure rejects the PUT with 400 BadRequest ("... because a health probe or '
                'health extension was not provided"), so this template cannot deploy as written.'
            ),
            fix="Add the Application Health extension (recommended; required on Flexible) or set "
            "properties.virtualMachineProfile.networkProfile.healthProbe.id to a load-balancer probe.",
            path=needs[0][1],
        )
    ]


RULE = Rule(
    id="SS001",
    severity=Severity.ERROR,
    title="Health source required",
    summary="Rolling mode, automatic repairs and automatic OS upgrade need a health probe or the health extension.",
    check=check,
)
