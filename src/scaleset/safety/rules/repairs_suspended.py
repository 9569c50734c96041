"""SS027 (RP-003, live): repairs are enabled but the AutomaticRepairs service is Suspended or NotRunning.

Azure suspends repairs by itself after repeated failed repairs, so they can be off without anyone changing the policy.
The state comes from the scale set's instance view (``orchestrationServices``), which live inputs carry under
``instanceView`` in the body; files have no instance view and the rule is silent.
"""

from __future__ import annotations

from typing import Any

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def services(target: ScaleSetInput) -> list[dict[str, Any]]:
    """``orchestrationServices`` of the instance view, from ``instanceView`` or ``properties.instanceView``."""
    for path in ("instanceView.orchestrationServices", "properties.instanceView.orchestrationServices"):
        found = facts.dig(target.body, path)
        if isinstance(found, list):
            return [s for s in found if isinstance(s, dict)]
    return []


def check(target: ScaleSetInput) -> list[Finding]:
    repairs = target.model.properties.automaticRepairsPolicy
    if repairs is None or not repairs.enabled:
        return []
    for service in services(target):
        state = str(service.get("serviceState", ""))
        if service.get("serviceName") == "AutomaticRepairs" and state in ("Suspended", "NotRunning"):
            return [
                RULE.finding(
                    target,
                    message=f"Automatic repairs are enabled but the service is {state}",
                    reason="The policy says repairs are on, but the AutomaticRepairs orchestration service is "
                    f"{state}: Azure suspends it after repeated failed repairs, so unhealthy instances of the "
                    f"{target.capacity} stay as they are.",
                    fix="Find why repairs failed, then az vmss set-orchestration-service-state --service-name "
                    "AutomaticRepairs --action Resume.",
                    path=f"{facts.REPAIRS}.enabled",
                )
            ]
    return []


RULE = Rule(
    id="SS027",
    severity=Severity.WARNING,
    title="Repairs suspended",
    summary="Live: automatic repairs are enabled but the AutomaticRepairs service is not running.",
    check=check,
)
