"""Run the audit rules over scale sets, apply suppressions, and render the results as text, JSON or SARIF 2.1.0.

Suppressions always carry a reason. They come from two places:

* the scale set itself: a tag ``scaleset-audit-suppress`` whose value is ``"SS004: reason; SS010: reason"``. A tag
  works the same in an ARM template, a Terraform plan, ``az vmss show`` output and a live scale set (Azure keeps it);
  a reason cannot contain ``;``, and Azure limits a tag value to 256 characters;
* the command line: ``--suppress SS004="reason"``, for every input of the run.

A suppressed result is still reported (text lists it apart, JSON marks it, SARIF gives it ``suppressions`` with the
justification) but does not count towards ``--fail-on``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from scaleset import __version__
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import BY_ID, RULES
from scaleset.safety.rules.base import Finding, Rule, Severity

SUPPRESS_TAG = "scaleset-audit-suppress"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "scaleset-audit"
FAIL_ON = ("error", "warning", "never")
EXIT_PASS, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

_ENTRY = re.compile(r"^\s*([A-Za-z]{2}\d{3})\s*[:=]\s*(.*?)\s*$", re.DOTALL)


class SuppressionError(ValueError):
    """A suppression that names no known rule or gives no reason."""


@dataclass(frozen=True, slots=True)
class Suppression:
    """A rule switched off for a reason. ``kind`` is SARIF's: ``inSource`` (a tag) or ``external`` (the CLI)."""

    rule_id: str
    reason: str
    kind: str
    where: str  # "tag scaleset-audit-suppress on web", "--suppress"


@dataclass(frozen=True, slots=True)
class Target:
    """One scale set to audit and the file it came from (None for a live scale set)."""

    input: ScaleSetInput
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    finding: Finding
    target: Target
    suppression: Suppression | None = None

    @property
    def suppressed(self) -> bool:
        return self.suppression is not None


@dataclass(slots=True)
class Report:
    """Every result of a run, in input order and rule order within an input."""

    targets: list[Target]
    results: list[Result] = field(default_factory=list)
    rules: Sequence[Rule] = RULES

    @property
    def active(self) -> list[Result]:
        return [r for r in self.results if not r.suppressed]

    def counts(self) -> dict[str, int]:
        """Unsuppressed results per severity, and the number suppressed."""
        counted = Counter(r.finding.severity.value for r in self.active)
        out = {s.value: counted.get(s.value, 0) for s in Severity}
        out["suppressed"] = len(self.results) - len(self.active)
        return out

    def exit_code(self, fail_on: str) -> int:
        """1 when an unsuppressed result is at or above ``fail_on`` (``error``, ``warning``), else 0."""
        if fail_on == "never":
            return EXIT_PASS
        threshold = Severity(fail_on).rank
        failed = any(r.finding.severity.rank >= threshold for r in self.active)
        return EXIT_FINDINGS if failed else EXIT_PASS


# --- suppressions -------------------------------------------------------------------------------------------------


def parse_entry(text: str, *, where: str, kind: str) -> Suppression:
    """``SS004: reason`` or ``SS004=reason`` as a :class:`Suppression`; a missing reason or unknown id raises."""
    match = _ENTRY.match(text)
    if match is None:
        raise SuppressionError(f"{where}: '{text.strip()}' is not RULE: reason (e.g. SS004: staging has 1 instance)")
    rule_id, reason = match.group(1).upper(), match.group(2).strip().strip("\"'").strip()
    if rule_id not in BY_ID:
        raise SuppressionError(f"{where}: no rule {rule_id} (rules are {RULES[0].id} to {RULES[-1].id})")
    if not reason:
        raise SuppressionError(f"{where}: suppressing {rule_id} needs a reason ({rule_id}: why it does not apply)")
    return Suppression(rule_id=rule_id, reason=reason, kind=kind, where=where)


def tag_suppressions(target: ScaleSetInput) -> list[Suppression]:
    """The suppressions in the scale set's ``scaleset-audit-suppress`` tag (any letter case of the key)."""
    tags = target.body.get("tags")
    if not isinstance(tags, dict):
        return []
    where = f"tag {SUPPRESS_TAG} on {target.name}"
    out: list[Suppression] = []
    for key, value in tags.items():
        if str(key).lower() != SUPPRESS_TAG:
            continue
        entries = [part for part in str(value).split(";") if part.strip()]
        if not entries:
            raise SuppressionError(f"{where}: the tag is empty; write RULE: reason; RULE: reason")
        out.extend(parse_entry(part, where=where, kind="inSource") for part in entries)
    return out


def cli_suppressions(values: Iterable[str]) -> list[Suppression]:
    """``--suppress SS004="reason"`` values."""
    return [parse_entry(value, where=f"--suppress {value}", kind="external") for value in values]


# --- running ------------------------------------------------------------------------------------------------------


def audit(
    targets: Sequence[Target],
    *,
    suppressions: Sequence[Suppression] = (),
    rules: Sequence[Rule] = RULES,
) -> Report:
    """Run ``rules`` over ``targets``; raises :class:`SuppressionError` for a bad tag before any rule runs."""
    in_file = {id(t): tag_suppressions(t.input) for t in targets}
    report = Report(targets=list(targets), rules=rules)
    for target in targets:
        applied = {s.rule_id: s for s in suppressions}
        applied.update({s.rule_id: s for s in in_file[id(target)]})  # the file's own reason wins
        for rule in rules:
            for finding in rule.check(target.input):
                report.results.append(Result(finding, target, applied.get(finding.rule_id)))
    return report


# --- JSON ---------------------------------------------------------------------------------------------------------


def to_json(report: Report, *, fail_on: str = "error") -> dict[str, Any]:
    """The report as plain data: inputs, results (suppressed ones marked), and counts."""
    counts = report.counts()
    return {
        "tool": TOOL_NAME,
        "version": __version__,
        "inputs": [
            {
                "name": t.input.name,
                "origin": t.input.origin,
                "source": t.source,
                "resourceGroup": t.input.resource_group,
                "capacity": t.input.capacity,
                "instances": None if t.input.instances is None else len(t.input.instances),
            }
            for t in report.targets
        ],
        "results": [
            {
                "ruleId": r.finding.rule_id,
                "severity": r.finding.severity.value,
                "title": BY_ID[r.finding.rule_id].title if r.finding.rule_id in BY_ID else "",
                "finding": r.finding.message,
                "reason": r.finding.reason,
                "fix": r.finding.fix,
                "doc": r.finding.doc,
                "input": r.finding.input_name,
                "origin": r.target.input.origin,
                "source": r.target.source,
                "path": r.finding.path,
                "suppressed": None
                if r.suppression is None
                else {"reason": r.suppression.reason, "kind": r.suppression.kind, "where": r.suppression.where},
            }
            for r in report.results
        ],
        "summary": {**counts, "failOn": fail_on, "failed": report.exit_code(fail_on) == EXIT_FINDINGS},
    }


# --- SARIF --------------------------------------------------------------------------------------------------------


def default_doc_base() -> str | None:
    """A ``file://`` URI of this checkout's ``docs/rules/`` when it exists (an editable install), else None."""
    docs = Path(__file__).resolve().parents[3] / "docs" / "rules"
    return docs.as_uri() + "/" if docs.is_dir() else None


def help_uri(rule: Rule, doc_base: str | None) -> str:
    """Where the rule's page is: under ``doc_base`` (a URL ending in ``/``), or the repository-relative path."""
    return f"{doc_base.rstrip('/')}/{rule.id}.md" if doc_base else rule.doc


def artifact_uri(source: str) -> str:
    """A relative path stays relative (code scanning resolves it against the checkout); an absolute one is a URI."""
    path = Path(source)
    return path.as_uri() if path.is_absolute() else path.as_posix()


def locate_line(text: str, name: str, path: str) -> int:
    """Best-effort 1-based line of ``path`` inside the resource named ``name`` in a JSON file; 1 if not found.

    Finds the line that names the resource, then each key of the path in turn below it, as templates are usually
    laid out. A key that is not found stops the walk at the deepest line found so far.
    """
    lines = text.splitlines()
    current = next((i for i, line in enumerate(lines) if f'"{name}"' in line), None)
    if current is None:
        current = next((i for i, line in enumerate(lines) if "virtualmachinescalesets" in line.lower()), 0)
    for key in re.findall(r"[^.\[\]]+", path):
        if key.isdigit():
            continue
        found = next((i for i in range(current, len(lines)) if f'"{key}"' in lines[i]), None)
        if found is None:
            break
        current = found
    return current + 1


def _read_text(source: str) -> str | None:
    try:
        return Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def _sarif_rule(rule: Rule, doc_base: str | None) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": re.sub(r"[^A-Za-z0-9]+", " ", rule.title).title().replace(" ", ""),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.summary or rule.title},
        "helpUri": help_uri(rule, doc_base),
        "help": {"text": f"{rule.summary or rule.title} See {rule.doc}."},
        "defaultConfiguration": {"level": rule.severity.value},
        "properties": {"tags": ["azure", "vmss", "upgrade-policy"]},
    }


def _fingerprint(result: Result) -> str:
    key = "|".join((result.finding.rule_id, result.finding.input_name, result.finding.path, result.finding.message))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def to_sarif(report: Report, *, doc_base: str | None = None) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log with one run: the rules in the driver, one result per finding."""
    rules = list(report.rules)
    index = {rule.id: i for i, rule in enumerate(rules)}
    texts: dict[str, str | None] = {}
    results = []
    for r in report.results:
        f = r.finding
        logical = {"name": f.input_name, "fullyQualifiedName": f"{f.input_name}/{f.path}", "kind": "resource"}
        location: dict[str, Any] = {"logicalLocations": [logical]}
        if r.target.source is not None:
            if r.target.source not in texts:
                texts[r.target.source] = _read_text(r.target.source)
            text = texts[r.target.source]
            line = locate_line(text, f.input_name, f.path) if text is not None else 1
            location["physicalLocation"] = {
                "artifactLocation": {"uri": artifact_uri(r.target.source)},
                "region": {"startLine": line},
            }
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "level": f.severity.value,
            "message": {"text": f"{f.message}. {f.reason} Fix: {f.fix}"},
            "locations": [location],
            "partialFingerprints": {"scalesetAudit/v1": _fingerprint(r)},
            "properties": {"input": f.input_name, "path": f.path, "fix": f.fix, "doc": f.doc},
        }
        if f.rule_id in index:
            result["ruleIndex"] = index[f.rule_id]
        if r.suppression is not None:
            result["suppressions"] = [{"kind": r.suppression.kind, "justification": r.suppression.reason}]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "rules": [_sarif_rule(rule, doc_base) for rule in rules],
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


# --- text ---------------------------------------------------------------------------------------------------------

_STYLE = {
    Severity.ERROR: "bold white on red",
    Severity.WARNING: "bold black on yellow",
    Severity.NOTE: "bold white on blue",
}


def print_text(report: Report, console: Console, *, fail_on: str = "error") -> None:
    """Findings grouped by scale set, worst first; suppressed ones listed apart with their reasons."""
    for target in report.targets:
        mine = [r for r in report.active if r.target is target]
        mine.sort(key=lambda r: (-r.finding.severity.rank, r.finding.rule_id))
        where = f" ({target.source})" if target.source and target.source not in target.input.origin else ""
        header = f"[bold]{escape(target.input.name)}[/bold] [dim]{escape(target.input.origin)}{escape(where)}[/dim]"
        counted = Counter(r.finding.severity.value for r in mine)
        tally = ", ".join(f"{counted[s.value]} {s.value}" for s in Severity if counted[s.value]) or "no findings"
        console.print(f"{header}: {tally}")
        for r in mine:
            f = r.finding
            title = BY_ID[f.rule_id].title if f.rule_id in BY_ID else ""
            console.print(
                f"  [{_STYLE[f.severity]}] {f.severity.value.upper()} [/] [bold]{f.rule_id}[/bold] {escape(title)}"
            )
            console.print(f"    {escape(f.message)}")
            console.print(f"    [dim]why[/dim]  {escape(f.reason)}")
            console.print(f"    [dim]fix[/dim]  {escape(f.fix)}")
            console.print(f"    [dim]at[/dim]   {escape(f.path or '(resource)')}   [dim]{escape(f.doc)}[/dim]")
        console.print()
    suppressed = [r for r in report.results if r.suppressed]
    if suppressed:
        console.print(f"[dim]suppressed ({len(suppressed)}):[/dim]")
        for r in suppressed:
            assert r.suppression is not None
            console.print(
                f"  [dim]{r.finding.rule_id} on {escape(r.finding.input_name)}: {escape(r.suppression.reason)} "
                f"({escape(r.suppression.where)})[/dim]"
            )
        console.print()
    counts = report.counts()
    verdict = "FAIL" if report.exit_code(fail_on) == EXIT_FINDINGS else "pass"
    style = "bold red" if verdict == "FAIL" else "bold green"
    console.print(
        f"[{style}]{verdict}[/{style}] {counts['error']} error, {counts['warning']} warning, {counts['note']} note, "
        f"{counts['suppressed']} suppressed over {len(report.targets)} scale set(s) (--fail-on {fail_on})"
    )


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"
