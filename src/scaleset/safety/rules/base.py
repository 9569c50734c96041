"""What a rule is and what it reports.

A :class:`Rule` is an id (``SS001``), a default severity, a title and a ``check`` that reads one
:class:`~scaleset.safety.inputs.ScaleSetInput` and returns its :class:`Finding` objects. A finding says what is wrong in
one line, why with the numbers of this scale set, how to fix it, where its documentation lives, and where in the input
the offending value sits (a dotted ARM path such as ``properties.upgradePolicy.rollingUpgradePolicy``).

A rule may raise or lower the severity of one finding (UP-002 is a warning until live data shows the rollout will
fail); the rule's own severity is the one SARIF publishes as its default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from scaleset.safety.inputs import ScaleSetInput


class Severity(StrEnum):
    """SARIF's levels, in the order ``--fail-on`` compares them."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        """Higher is worse: error 3, warning 2, note 1."""
        return {"error": 3, "warning": 2, "note": 1}[self.value]


DOCS_DIR = "docs/rules"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem on one scale set."""

    rule_id: str
    severity: Severity
    message: str  # one line: what is wrong
    reason: str  # why, with this scale set's numbers
    fix: str
    doc: str  # docs/rules/<ID>.md
    input_name: str
    path: str  # dotted ARM path inside the scale set resource ("" for the resource itself)


@dataclass(frozen=True, slots=True)
class Rule:
    """A check with an id, a default severity and a title; ``check`` does the work."""

    id: str
    severity: Severity
    title: str
    check: Callable[[ScaleSetInput], list[Finding]]
    summary: str = ""  # one sentence for SARIF's fullDescription; the title when empty

    @property
    def doc(self) -> str:
        """The rule's documentation page, relative to the repository root."""
        return f"{DOCS_DIR}/{self.id}.md"

    def finding(
        self,
        target: ScaleSetInput,
        *,
        message: str,
        reason: str,
        fix: str,
        path: str,
        severity: Severity | None = None,
    ) -> Finding:
        """A finding of this rule on ``target``, at the rule's severity unless ``severity`` says otherwise."""
        return Finding(
            rule_id=self.id,
            severity=severity or self.severity,
            message=message,
            reason=reason,
            fix=fix,
            doc=self.doc,
            input_name=target.name,
            path=path,
        )
