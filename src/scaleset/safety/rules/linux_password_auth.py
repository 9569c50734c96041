"""SS033 (table row 19): Linux instances that accept password logins.

Passes only ``linuxConfiguration.disablePasswordAuthentication: true``; Azure's default is false. Windows sets and sets
whose OS the input does not reveal are not judged (Checkov CKV_AZURE_49 guesses from the publisher name).
"""

from __future__ import annotations

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity


def check(target: ScaleSetInput) -> list[Finding]:
    if facts.os_family(target) != "Linux":
        return []
    path = f"{facts.OS_PROFILE}.linuxConfiguration.disablePasswordAuthentication"
    if facts.unresolved(target, path) or facts.dig(target.body, path) in (True, "true", "True"):
        return []
    return [
        RULE.finding(
            target,
            message="Linux instances allow password authentication",
            reason="disablePasswordAuthentication is not true, so sshd accepts the admin password on every "
            f"instance ({facts.plural(target.capacity, 'instance')}), open to password guessing.",
            fix="Set linuxConfiguration.disablePasswordAuthentication true and give ssh.publicKeys.",
            path=path,
        )
    ]


RULE = Rule(
    id="SS033",
    severity=Severity.WARNING,
    title="Linux password authentication",
    summary="A Linux scale set does not set disablePasswordAuthentication true.",
    check=check,
)
