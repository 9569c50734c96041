"""SS020 (table rows 3 and 4): the scale set does not span availability zones, or is not zone-redundant.

* No zones, in a region known to have zones: warning (PSRule Azure.VMSS.AvailabilityZone, APRL 1422c567). In a region
  known to have none the rule is silent; in a region it does not know (or an unresolved expression) it is a note.
* One zone (zone-aligned): warning, a zone outage takes every instance.
* Two zones, or three with fewer than 3 instances: note, zone-spanning but not zone-redundant in the sense of Azure
  Policy d3903bdf (at least 3 zones and 3 instances). The per-zone count is SS021's.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity

# Regions with availability zones, and regions without, as Microsoft listed them in 2025; the rest are "unknown".
ZONE_REGIONS = frozenset(
    [
        "australiaeast",
        "austriaeast",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "chilecentral",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "indonesiacentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "koreacentral",
        "malaysiawest",
        "mexicocentral",
        "newzealandnorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uaenorth",
        "uksouth",
        "westeurope",
        "westus2",
        "westus3",
        "usgovvirginia",
        "chinanorth3",
    ]
)
NO_ZONE_REGIONS = frozenset(
    [
        "westus",
        "northcentralus",
        "westcentralus",
        "canadaeast",
        "ukwest",
        "francesouth",
        "germanynorth",
        "norwaywest",
        "switzerlandwest",
        "uaecentral",
        "southafricawest",
        "australiasoutheast",
        "australiacentral",
        "australiacentral2",
        "koreasouth",
        "southindia",
        "westindia",
        "jioindiawest",
        "jioindiacentral",
        "brazilsoutheast",
        "swedensouth",
    ]
)


def region_key(location: str | None) -> str | None:
    """``"East US 2"`` -> ``"eastus2"``; None for a missing location or an unresolved expression."""
    if not location or location.startswith(("[", "<")):
        return None
    return location.replace(" ", "").lower()


def check(target: ScaleSetInput) -> list[Finding]:
    names, n = facts.zones(target), target.capacity
    region = region_key(target.model.location)
    if not names:
        if region in NO_ZONE_REGIONS:
            return []
        known = region in ZONE_REGIONS
        where = f"{region} has availability zones" if known else f"if {region or 'the region'} has availability zones"
        return [
            RULE.finding(
                target,
                message="The scale set is not zonal: every instance can be lost with one datacenter",
                reason=f"No zones are set; {where}, spreading the {n} instances over at least 2 of them survives a "
                "zone outage and is needed for the 99.99% SLA.",
                fix='Set "zones": ["1", "2", "3"] (zones are fixed when the set is created: plan a new set).',
                path="zones",
                severity=Severity.WARNING if known else Severity.NOTE,
            )
        ]
    if len(names) == 1:
        return [
            RULE.finding(
                target,
                message=f"The scale set is pinned to zone {names[0]}: a zone outage takes all {n} instances",
                reason="A zone-aligned set keeps latency low but has no zone redundancy; PSRule and APRL expect at "
                "least 2 zones.",
                fix='Spread the set over 3 zones ("zones": ["1", "2", "3"]) unless zone alignment is deliberate.',
                path="zones",
            )
        ]
    if len(names) >= 3 and n >= 3:
        return []
    why = (
        f"this one spans only {len(names)}"
        if len(names) < 3
        else f"it spans {len(names)} zones with {facts.plural(n, 'instance')}, so some zones hold none"
    )
    return [
        RULE.finding(
            target,
            message="Zone-spanning but not zone-redundant",
            reason="Azure Policy d3903bdf counts a set as zone-redundant with at least 3 zones and 3 instances; "
            f"{why}.",
            fix="Use 3 zones and at least 2 instances per zone (6 or more).",
            path="zones",
            severity=Severity.NOTE,
        )
    ]


RULE = Rule(
    id="SS020",
    severity=Severity.WARNING,
    title="Not zone-redundant",
    summary="The set has no zones, one zone, or fewer than 3 zones or 3 instances.",
    check=check,
)
