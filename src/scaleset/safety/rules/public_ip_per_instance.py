"""SS035 (table row 22): every instance gets its own public IP address.

A ``publicIPAddressConfiguration`` on an IP configuration gives each instance a public address, reachable from the
internet unless an NSG says otherwise (PSRule Azure.VMSS.PublicIPAttached, Critical).
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    out = []
    nics = facts.dig(target.body, facts.NICS)
    for n, nic in enumerate(nics if isinstance(nics, list) else []):
        configs = facts.dig(nic, "properties.ipConfigurations")
        for c, config in enumerate(configs if isinstance(configs, list) else []):
            if facts.dig(config, "properties.publicIPAddressConfiguration") is None:
                continue
            out.append(
                RULE.finding(
                    target,
                    message="Each instance gets a public IP address",
                    reason=f"IP configuration {facts.dig(config, 'name') or c} of NIC {facts.dig(nic, 'name') or n} "
                    f"has a publicIPAddressConfiguration, so all {target.capacity} instances are addressable from "
                    "the internet.",
                    fix="Remove publicIPAddressConfiguration; reach instances through a load balancer, Bastion or a "
                    "NAT gateway for outbound traffic.",
                    path=f"{facts.NICS}[{n}].properties.ipConfigurations[{c}].properties.publicIPAddressConfiguration",
                )
            )
    return out


RULE = Rule(
    id="SS035",
    severity=Severity.ERROR,
    title="Public IP per instance",
    summary="An IP configuration gives every instance its own public IP address.",
    check=check,
)
