"""SS030 (HL-002): the health extension's signal is weaker than it could be.

* ``protocol: tcp``: an open port reads Healthy even when the application answers errors.
* ``typeHandlerVersion`` 1.x (binary): no Unknown state, no start-up grace, no ordering by custom metrics.
* A rich ``gracePeriod`` above 7200 s: Azure's pages disagree on the maximum (7200 or 14400).

A load-balancer probe's protocol lives on the load balancer, which the scale set does not carry; PSRule Azure.LB.Probe
checks that side.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity

GRACE_DOCUMENTED_MAX = 7200


def check(target: ScaleSetInput) -> list[Finding]:
    probe = facts.health(target)
    at = facts.health_extension_path(target)
    if probe is None or probe.source != "extension" or at is None:
        return []
    out = []
    if probe.protocol == "tcp":
        out.append(
            RULE.finding(
                target,
                message="The health extension probes TCP: an open port counts as healthy",
                reason=f"A TCP probe on port {probe.port} reads Healthy once the port accepts a connection, so an "
                "application that answers every request with an error still passes every rollout gate.",
                fix='Use "protocol": "http" or "https" with a requestPath that checks the application.',
                path=f"{at}.properties.settings.protocol",
            )
        )
    if not probe.rich:
        out.append(
            RULE.finding(
                target,
                message="The health extension reports binary health (typeHandlerVersion 1.x)",
                reason="Binary health reads only Healthy (a 200) or Unhealthy (anything else); rich health (2.0) "
                "adds Unknown, a start-up grace period and custom metrics for upgrade ordering.",
                fix='Use "typeHandlerVersion": "2.0" and answer {"ApplicationHealthState": "Healthy"}.',
                path=f"{at}.properties.typeHandlerVersion",
            )
        )
    if probe.rich and probe.grace > GRACE_DOCUMENTED_MAX:
        out.append(
            RULE.finding(
                target,
                message=f"Health gracePeriod {probe.grace:g} s is above {GRACE_DOCUMENTED_MAX} s",
                reason=f"Azure's health extension page allows 14400 s but the custom-metrics page says "
                f"{GRACE_DOCUMENTED_MAX}; a grace of {facts.seconds_text(probe.grace)} also keeps a dead instance "
                "Initializing that long.",
                fix=f"Keep gracePeriod at or below {GRACE_DOCUMENTED_MAX}.",
                path=f"{at}.properties.settings.gracePeriod",
            )
        )
    return out


RULE = Rule(
    id="SS030",
    severity=Severity.NOTE,
    title="Weak health signal",
    summary="The health extension probes TCP, reports binary health, or has a grace period above 7200 s.",
    check=check,
)
