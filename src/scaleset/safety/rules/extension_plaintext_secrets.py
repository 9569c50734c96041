"""SS034 (table row 21): a secret in an extension's public ``settings``.

``settings`` are stored and shown in plain text to anyone who can read the scale set; ``protectedSettings`` are
encrypted and never returned. The rule looks through every string in ``settings`` for credentials (password or token
assignments, SAS signatures, account keys, private keys) and, in templates, for expressions that read a secret
parameter or call ``listKeys``. The value itself is never printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity

_SECRET_WORD = r"(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)"
_VARIABLE = r"(?![$%]|\$\{|\$\()"  # $VAR, %VAR%, ${VAR}, $(cmd) are references, not values
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "a password or token assignment",
        re.compile(rf"(?i)\b\w*{_SECRET_WORD}\s*[=:]\s*['\"]?{_VARIABLE}[^\s'\";&|]{{3,}}"),
    ),
    (
        "a password or token argument",
        re.compile(rf"(?i)--\w*{_SECRET_WORD}[ =]['\"]?{_VARIABLE}[^\s'\"-][^\s'\";&|]{{2,}}"),
    ),
    ("a SAS signature", re.compile(r"[?&]sig=[A-Za-z0-9%/+=]{10,}")),
    ("a storage account key", re.compile(r"(?i)AccountKey=[A-Za-z0-9+/=]{20,}")),
    ("a shared access key", re.compile(r"(?i)SharedAccessKey=[A-Za-z0-9+/=]{20,}")),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("a bearer token", re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/-]{20,}")),
    ("a secret template parameter", re.compile(rf"(?i)parameters\(\s*'[^']*{_SECRET_WORD}[^']*'\s*\)")),
    ("a listKeys() call", re.compile(r"(?i)\blistKeys\s*\(")),
)


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string under ``value`` with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def first_secret(settings: Any, path: str) -> tuple[str, str] | None:
    """``(where, what kind)`` of the first secret-looking value under ``settings``."""
    for where, text in strings(settings, path):
        for kind, pattern in PATTERNS:
            if pattern.search(text):
                return where, kind
    return None


def check(target: ScaleSetInput) -> list[Finding]:
    out = []
    extensions = facts.dig(target.body, facts.EXTENSIONS)
    for index, extension in enumerate(extensions if isinstance(extensions, list) else []):
        base = f"{facts.EXTENSIONS}[{index}].properties.settings"
        found = first_secret(facts.dig(extension, "properties.settings"), base)
        if found is None:
            continue
        where, kind = found
        name = extension.get("name") if isinstance(extension, dict) else None
        out.append(
            RULE.finding(
                target,
                message=f"Extension {name or index} has {kind} in its public settings",
                reason=f"{where.removeprefix(facts.PROFILE + '.')} holds {kind}; public settings are stored in plain "
                "text and returned to anyone who can read the scale set (and logged by the extension agent).",
                fix="Move the value to protectedSettings (or protectedSettingsFromKeyVault) and keep only "
                "non-secret values in settings.",
                path=where,
            )
        )
    return out


RULE = Rule(
    id="SS034",
    severity=Severity.WARNING,
    title="Secret in extension settings",
    summary="An extension's public settings hold a credential, a SAS signature, a key or a secret parameter.",
    check=check,
)
