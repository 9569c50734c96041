"""Every audit rule against its fixtures: each rule has at least one that fails it and one that passes it.

The table is the registry: a rule without fixtures, without a doc page, or with fixtures that do not behave fails here.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from scaleset.domain.validation import parse_scale_set
from scaleset.safety.inputs import InstanceFacts, ScaleSetInput
from scaleset.safety.rules import BY_ID, RULES
from scaleset.safety.rules.base import Rule, Severity

_spec = importlib.util.spec_from_file_location("audit_fixtures", Path(__file__).parent / "audit_fixtures.py")
assert _spec is not None and _spec.loader is not None
audit_fixtures = importlib.util.module_from_spec(_spec)
sys.modules["audit_fixtures"] = audit_fixtures
_spec.loader.exec_module(audit_fixtures)

REPO = Path(__file__).resolve().parents[2]
ALL = audit_fixtures.fixtures()


def test_registry_ids_are_unique_sorted_and_well_formed() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == sorted(set(ids))
    assert all(re.fullmatch(r"SS\d{3}", i) for i in ids)
    assert all(rule.title and rule.summary for rule in RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_rule_has_a_failing_and_a_passing_fixture(rule: Rule) -> None:
    rule_id = rule.id
    mine = audit_fixtures.fixtures(rule_id)
    assert any(f.fails for f in mine), f"{rule_id} has no fail_*.json fixture"
    assert any(not f.fails for f in mine), f"{rule_id} has no pass_*.json fixture"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_rule_has_a_doc_page_that_lists_its_fixtures(rule: Rule) -> None:
    rule_id = rule.id
    page = REPO / "docs" / "rules" / f"{rule_id}.md"
    assert page.is_file(), f"docs/rules/{rule_id}.md is missing"
    text = page.read_text()
    assert text.startswith(f"# {rule_id}")
    for fixture in audit_fixtures.fixtures(rule_id):
        assert fixture.path.name in text, f"{page.name} does not list {fixture.path.name}"


def test_fixture_folders_name_registered_rules() -> None:
    assert {f.rule_id for f in ALL} <= set(BY_ID)


@pytest.mark.parametrize("fixture", ALL, ids=lambda f: f.label)
def test_fixture(fixture: Any) -> None:
    rule = BY_ID[fixture.rule_id]
    target = fixture.target()
    findings = rule.check(target)
    if not fixture.fails:
        assert findings == [], [f.message for f in findings]
        return
    assert findings, f"{fixture.label} should fail {rule.id}"
    for finding in findings:
        assert finding.rule_id == rule.id
        assert finding.doc == f"docs/rules/{rule.id}.md"
        assert finding.input_name == target.name
        assert "\n" not in finding.message and finding.message
        assert finding.reason and finding.fix and finding.path is not None
    expect = fixture.data.get("expect", {})
    if "severity" in expect:
        assert findings[0].severity is Severity(expect["severity"])
    words = " ".join(f"{f.message} {f.reason} {f.fix}" for f in findings)
    for text in expect.get("text", []):
        assert text in words, f"{text!r} not in {words!r}"


def test_clean_base_passes_every_rule() -> None:
    clean = audit_fixtures.Fixture("SS001", Path("pass_clean.json"), {})
    target = clean.target()
    assert [f.rule_id for rule in RULES for f in rule.check(target)] == []


def test_clean_base_with_live_healthy_instances_passes_every_rule() -> None:
    clean = audit_fixtures.Fixture("SS001", Path("pass_clean.json"), {}).target()
    instances = tuple(
        InstanceFacts(str(i), zone=str(i % 3 + 1), latest_model_applied=True, health="Healthy", power_state="running")
        for i in range(6)
    )
    live = ScaleSetInput(name=clean.name, origin="live", body=clean.body, model=clean.model, instances=instances)
    assert [f.rule_id for rule in RULES for f in rule.check(live)] == []


def test_a_minimal_body_does_not_crash_any_rule() -> None:
    body: dict[str, object] = {"sku": {"capacity": 0}}
    target = ScaleSetInput(name="bare", origin="test", body=body, model=parse_scale_set(body))
    for rule in RULES:
        rule.check(target)
