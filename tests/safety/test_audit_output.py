"""``scaleset audit`` end to end: SARIF 2.1.0 (schema-checked), JSON, text, suppressions with reasons, exit codes.

SARIF is checked against a compact subset of the 2.1.0 schema kept beside the fixtures. When the environment variable
``SCALESET_SARIF_SCHEMA`` names a copy of the full OASIS schema, the output is checked against it too (never fetched).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scaleset.domain.validation import parse_scale_set
from scaleset.main import main
from scaleset.safety.audit import (
    EXIT_FINDINGS,
    EXIT_PASS,
    EXIT_USAGE,
    SuppressionError,
    Target,
    audit,
    cli_suppressions,
    locate_line,
    to_json,
    to_sarif,
)
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.rules import RULES

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "audit"
E2E = FIXTURES / "e2e"
TEMPLATE = E2E / "template.json"
PARAMETERS = E2E / "template.parameters.json"
AZ_SHOW = E2E / "az-vmss-show.json"
CLEAN = json.loads((FIXTURES / "bases" / "clean.json").read_text())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def body(**patch: Any) -> dict[str, Any]:
    """The clean base with top-level keys replaced (``tags``, ``sku``)."""
    return {**json.loads(json.dumps(CLEAN)), **patch}


def target(data: dict[str, Any], name: str = "web", source: str | None = None) -> Target:
    return Target(ScaleSetInput(name=name, origin="test", body=data, model=parse_scale_set(data)), source)


def small(tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Three instances at the default thresholds: SS005 (warning) and SS021 (warning), nothing at error."""
    data = body(sku={"name": "Standard_D2s_v5", "capacity": 3})
    if tags is not None:
        data["tags"] = tags
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "vmss.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"name": "web", "type": "Microsoft.Compute/virtualMachineScaleSets", **data}, indent=2))
    return path


def subset_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((FIXTURES / "sarif-2.1.0-subset.schema.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


# --- SARIF ----------------------------------------------------------------------------------------------------------


def sarif_of_template(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = run(capsys, str(TEMPLATE), "--parameters", str(PARAMETERS), "-o", "sarif")
    assert code == EXIT_FINDINGS  # SS035 is an error
    data: dict[str, Any] = json.loads(out)
    return data


def test_sarif_validates_against_the_subset_schema(capsys: pytest.CaptureFixture[str]) -> None:
    sarif = sarif_of_template(capsys)
    errors = [f"{e.json_path}: {e.message}" for e in subset_validator().iter_errors(sarif)]
    assert errors == []
    assert sarif["version"] == "2.1.0"


@pytest.mark.skipif(not os.environ.get("SCALESET_SARIF_SCHEMA"), reason="SCALESET_SARIF_SCHEMA names no full schema")
def test_sarif_validates_against_the_official_schema(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(Path(os.environ["SCALESET_SARIF_SCHEMA"]).read_text())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(sarif_of_template(capsys))] == []


def test_sarif_subset_schema_rejects_what_sarif_forbids() -> None:
    validator = subset_validator()
    good = to_sarif(audit([target(small())]))
    assert validator.is_valid(good)
    for broken in (
        {**good, "version": "2.0.0"},
        {**good, "runs": []},
        {**good, "extra": 1},
        {**good, "runs": [{"results": []}]},
    ):
        assert not validator.is_valid(broken)
    result = good["runs"][0]["results"][0]
    for bad in ({**result, "level": "critical"}, {k: v for k, v in result.items() if k != "message"}):
        run_ = {**good["runs"][0], "results": [bad]}
        assert not validator.is_valid({**good, "runs": [run_]})


def test_sarif_driver_lists_every_rule_with_a_help_uri_to_its_page(capsys: pytest.CaptureFixture[str]) -> None:
    driver = sarif_of_template(capsys)["runs"][0]["tool"]["driver"]
    assert driver["name"] == "scaleset-audit"
    assert [r["id"] for r in driver["rules"]] == [r.id for r in RULES]
    for descriptor, rule in zip(driver["rules"], RULES, strict=True):
        assert descriptor["helpUri"].endswith(f"docs/rules/{rule.id}.md")
        assert descriptor["defaultConfiguration"]["level"] == rule.severity.value


def test_sarif_help_uri_follows_doc_base() -> None:
    sarif = to_sarif(audit([target(small())]), doc_base="https://example.test/scaleset/docs/rules/")
    rule = sarif["runs"][0]["tool"]["driver"]["rules"][4]
    assert rule["helpUri"] == f"https://example.test/scaleset/docs/rules/{rule['id']}.md"


def test_sarif_results_point_at_the_file_and_the_json_path(capsys: pytest.CaptureFixture[str]) -> None:
    sarif = sarif_of_template(capsys)
    results = {r["ruleId"]: r for r in sarif["runs"][0]["results"]}
    ss005 = results["SS005"]
    assert ss005["level"] == "warning"
    assert "3 instances at maxUnhealthyInstancePercent 20 tolerate 0 unhealthy" in ss005["message"]["text"]
    location = ss005["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == TEMPLATE.as_uri()  # absolute in, URI out
    line = location["physicalLocation"]["region"]["startLine"]
    assert '"rollingUpgradePolicy"' in TEMPLATE.read_text().splitlines()[line - 1]
    assert location["logicalLocations"][0]["fullyQualifiedName"] == (
        "web-prod/properties.upgradePolicy.rollingUpgradePolicy"
    )
    assert results["SS035"]["level"] == "error"
    assert sarif["runs"][0]["tool"]["driver"]["rules"][ss005["ruleIndex"]]["id"] == "SS005"


def test_sarif_suppressed_results_carry_the_justification(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, str(TEMPLATE), "--parameters", str(PARAMETERS), "-o", "sarif", "--suppress", "SS035=lab network only"
    )
    assert code == EXIT_PASS  # the only error is suppressed
    results = {r["ruleId"]: r for r in json.loads(out)["runs"][0]["results"]}
    assert results["SS035"]["suppressions"] == [{"kind": "external", "justification": "lab network only"}]
    assert results["SS031"]["suppressions"][0]["kind"] == "inSource"
    assert results["SS031"]["suppressions"][0]["justification"].startswith("Uniform is required")
    assert "suppressions" not in results["SS005"]


def test_live_results_have_only_a_logical_location() -> None:
    sarif = to_sarif(audit([target(small())]))
    location = sarif["runs"][0]["results"][0]["locations"][0]
    assert "physicalLocation" not in location
    assert location["logicalLocations"][0]["name"] == "web"


# --- suppressions ---------------------------------------------------------------------------------------------------


def test_tag_suppression_with_reasons() -> None:
    report = audit([target(small({"scaleset-audit-suppress": "SS005: staging runs 3; SS021 = zones are fine here"}))])
    suppressed = {r.finding.rule_id: r.suppression for r in report.results if r.suppression}
    assert set(suppressed) == {"SS005", "SS021"}
    assert suppressed["SS005"] is not None and suppressed["SS005"].reason == "staging runs 3"
    assert report.counts()["suppressed"] == 2
    assert report.active == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("SS005", "is not RULE: reason"),
        ("SS005:", "needs a reason"),
        ("SS005:   ; SS021: ok", "needs a reason"),
        ("SS999: why", "no rule SS999"),
        (" ; ", "the tag is empty"),
    ],
)
def test_tag_suppression_without_a_reason_is_an_error(value: str, message: str) -> None:
    with pytest.raises(SuppressionError, match=message):
        audit([target(small({"scaleset-audit-suppress": value}))])


def test_cli_suppression_needs_a_reason() -> None:
    assert cli_suppressions(['SS005="tiny on purpose"'])[0].reason == "tiny on purpose"
    with pytest.raises(SuppressionError, match="needs a reason"):
        cli_suppressions(["SS005="])
    with pytest.raises(SuppressionError, match="needs a reason"):
        cli_suppressions(['SS005=""'])


def test_cli_suppression_without_a_reason_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, str(write(tmp_path, small())), "--suppress", "SS005")
    assert code == EXIT_USAGE and out == ""
    assert "scaleset audit: --suppress SS005" in err


def test_tag_suppression_without_a_reason_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(write(tmp_path, small({"scaleset-audit-suppress": "SS005:"}))))
    assert code == EXIT_USAGE
    assert "needs a reason" in err


def test_the_file_reason_wins_over_the_command_line() -> None:
    report = audit(
        [target(small({"scaleset-audit-suppress": "SS005: from the tag"}))],
        suppressions=cli_suppressions(["SS005=from the CLI", "SS021=from the CLI"]),
    )
    reasons = {r.finding.rule_id: r.suppression.reason for r in report.results if r.suppression}
    assert reasons == {"SS005": "from the tag", "SS021": "from the CLI"}


# --- exit codes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [("error", EXIT_PASS), ("warning", EXIT_FINDINGS), ("never", EXIT_PASS)],
)
def test_fail_on_with_warnings_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fail_on: str, expected: int
) -> None:
    code, _, _ = run(capsys, str(write(tmp_path, small())), "--fail-on", fail_on, "-o", "json")
    assert code == expected


@pytest.mark.parametrize(("fail_on", "expected"), [("error", EXIT_FINDINGS), ("never", EXIT_PASS)])
def test_fail_on_with_an_error(capsys: pytest.CaptureFixture[str], fail_on: str, expected: int) -> None:
    code, _, _ = run(capsys, str(TEMPLATE), "--parameters", str(PARAMETERS), "--fail-on", fail_on)
    assert code == expected


def test_clean_file_passes_even_at_fail_on_warning(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, str(write(tmp_path, body())), "--fail-on", "warning")
    assert code == EXIT_PASS
    assert "no findings" in out and "pass" in out


def test_notes_never_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = body()
    del data["properties"]["virtualMachineProfile"]["securityProfile"]  # SS036, a note
    code, out, _ = run(capsys, str(write(tmp_path, data)), "--fail-on", "warning", "-o", "json")
    assert code == EXIT_PASS
    assert [r["ruleId"] for r in json.loads(out)["results"]] == ["SS036"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give a SOURCE file, or -g GROUP -n NAME"),
        (("does-not-exist.json",), "no such input file"),
        (("--fail-on", "sometimes", "x.json"), "invalid choice"),
    ],
)
def test_usage_and_input_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    assert out == ""
    assert message in err


# --- JSON and text --------------------------------------------------------------------------------------------------


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(AZ_SHOW), "-o", "json")
    data = json.loads(out)
    assert code == EXIT_PASS  # warnings and notes only
    assert data["inputs"][0]["name"] == "api-staging" and data["inputs"][0]["source"] == str(AZ_SHOW)
    by_rule = {r["ruleId"]: r for r in data["results"]}
    assert by_rule["SS012"]["suppressed"]["reason"] == "images are pinned and promoted by the release pipeline"
    assert by_rule["SS003"]["severity"] == "warning"
    assert by_rule["SS032"]["finding"].startswith("The image Canonical:UbuntuServer:18.04-LTS is Ubuntu 18.04 LTS")
    assert "s3cr3tvalue123" not in out  # SS034 names the kind of secret, never the value
    assert by_rule["SS034"]["path"].endswith("settings.commandToExecute")
    assert data["summary"]["suppressed"] == 1 and data["summary"]["error"] == 0


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(TEMPLATE), "--parameters", str(PARAMETERS))
    assert code == EXIT_FINDINGS
    assert "web-prod" in out and "ERROR" in out and "SS035" in out and "docs/rules/SS005.md" in out
    assert "suppressed (2)" in out and "Uniform is required" in out
    assert "FAIL" in out


def test_to_json_counts_and_verdict() -> None:
    report = audit([target(small())])
    data = to_json(report, fail_on="warning")
    assert data["summary"] == {
        "error": 0,
        "warning": 2,
        "note": 0,
        "suppressed": 0,
        "failOn": "warning",
        "failed": True,
    }


def test_several_sources_in_one_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, str(write(tmp_path, body())), str(AZ_SHOW), "-o", "json")
    data = json.loads(out)
    assert [i["name"] for i in data["inputs"]] == ["web", "api-staging"]
    assert code == EXIT_PASS


def test_locate_line_walks_the_path_below_the_resource() -> None:
    text = '{\n "name": "other",\n "mode": 1,\n "name": "web",\n "properties": {\n  "mode": 2\n }\n}'
    assert locate_line(text, "web", "properties.mode") == 6
    assert locate_line(text, "web", "properties.missing") == 5
    assert locate_line(text, "nowhere", "x") == 1
