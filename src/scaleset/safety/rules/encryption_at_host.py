"""SS036 (table row 23): encryption at host is off.

``securityProfile.encryptionAtHost: true`` encrypts temp disks and disk caches on the host (Checkov CKV_AZURE_97, Azure
Policy fc4d8e41). It needs the subscription feature and a VM size that supports it, so this is a note.
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    path = f"{facts.PROFILE}.securityProfile.encryptionAtHost"
    if facts.unresolved(target, path) or facts.dig(target.body, path) in (True, "true", "True"):
        return []
    return [
        RULE.finding(
            target,
            message="Encryption at host is off",
            reason="Temp disks and OS/data disk caches on the host are not encrypted, which Azure Policy fc4d8e41 "
            "audits.",
            fix="Set virtualMachineProfile.securityProfile.encryptionAtHost true (register the EncryptionAtHost "
            "feature and use a size that supports it).",
            path=path,
        )
    ]


RULE = Rule(
    id="SS036",
    severity=Severity.NOTE,
    title="Encryption at host off",
    summary="virtualMachineProfile.securityProfile.encryptionAtHost is not true.",
    check=check,
)
