"""SS026 (RP-002): repairs that replace instances on a set with data disks.

``Replace`` (the default) deletes the instance and creates a new one: instance id, private IP, OS disk and data disks
are gone. On a set with data disks that usually means lost state; ``Reimage`` keeps data disks, ``Restart`` keeps all
(both need api-version 2021-11-01 or later, which the inputs do not carry, so the fix says it).
"""

from __future__ import annotations

from scaleset.domain.resources import RepairAction
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    repairs = target.model.properties.automaticRepairsPolicy
    if repairs is None or not repairs.enabled:
        return []
    out = []
    storage = target.model.profile.storageProfile
    disks = (storage.dataDisks if storage else None) or []
    if repairs.repairAction is RepairAction.REPLACE and disks:
        luns = ", ".join(str(d.lun) for d in disks)
        out.append(
            RULE.finding(
                target,
                message=f"Repairs replace instances that carry {facts.plural(len(disks), 'data disk')}",
                reason=f"repairAction Replace deletes an unhealthy instance with its data disks (LUN {luns}), its "
                "instance id and its private IP, and creates a new one from the latest model.",
                fix='Use "repairAction": "Reimage" (keeps data disks, id and IP) or "Restart" (api-version '
                "2021-11-01 or later), or confirm the data is disposable and suppress with that reason.",
                path=f"{facts.REPAIRS}.repairAction",
            )
        )
    return out


RULE = Rule(
    id="SS026",
    severity=Severity.NOTE,
    title="Repairs discard instance state",
    summary="repairAction Replace on a set with data disks, which a repair deletes.",
    check=check,
)
