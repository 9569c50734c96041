"""SS003 (UP-001): Automatic mode, which may update every instance at once, in no order.

An error on a scale set that looks like production (a tag ``environment``/``env``/``stage`` of ``prod``,
``production``, ``prd`` or ``live``, or such a word in its name); a warning when the set has more than one instance and
no health source; a note otherwise. AzTS pushes Automatic mode; this rule pushes the other way on purpose.
"""

from __future__ import annotations

import re

from scaleset.domain.resources import UpgradeMode
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import facts
from scaleset.safety.rules.base import Finding, Rule, Severity

PRODUCTION_WORDS = frozenset({"prod", "production", "prd", "live"})
ENVIRONMENT_TAGS = frozenset({"environment", "env", "stage"})


def production_hint(target: ScaleSetInput) -> str | None:
    """Why this set looks like production (``tag environment=prod``, ``name web-prod``), or None."""
    for key, value in (target.model.tags or {}).items():
        if key.lower() in ENVIRONMENT_TAGS and str(value).lower() in PRODUCTION_WORDS:
            return f"tag {key}={value}"
    words = set(re.split(r"[^a-z0-9]+", target.name.lower()))
    if words & PRODUCTION_WORDS:
        return f"name {target.name}"
    return None


def check(target: ScaleSetInput) -> list[Finding]:
    if target.model.upgrade_mode is not UpgradeMode.AUTOMATIC:
        return []
    n = target.capacity
    if n <= 1:
        return []
    hint = production_hint(target)
    no_health = facts.health(target) is None
    if hint is not None:
        severity, why = Severity.ERROR, f"This set looks like production ({hint})"
    elif no_health:
        severity, why = Severity.WARNING, "There is no health source either"
    else:
        severity, why = Severity.NOTE, "Nothing gates the update on health"
    return [
        RULE.finding(
            target,
            message=f"Automatic upgrade mode: a model change may take all {n} instances down at once",
            reason=(
                f"In Automatic mode Azure updates every instance after a model change, in no guaranteed order and "
                f"possibly all at the same time, so all {n} instances can be down together. {why}."
            ),
            fix="Use Rolling mode with a health source and a rollingUpgradePolicy (or Manual mode when you apply "
            "the model yourself).",
            path=f"{facts.UPGRADE_POLICY}.mode",
            severity=severity,
        )
    ]


RULE = Rule(
    id="SS003",
    severity=Severity.WARNING,
    title="Automatic upgrade mode",
    summary="Automatic mode may update every instance at once; an error on production-looking sets.",
    check=check,
)
