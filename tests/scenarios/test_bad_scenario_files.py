"""A scenario file that cannot run: ``scaleset sim`` exits 2 with one line naming the line or the key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaleset.main import main

GOOD_SCALESET = "scaleset: {location: westus, sku: {name: Standard_D2s_v3, capacity: 2}}\n"

BAD_FILES = {
    "yaml-syntax": (
        "scaleset:\n  location: westus\n  sku: {name: Standard_D2s_v3, capacity: 2\ntimeline: []\n",
        ["not valid YAML", "line 4"],
    ),
    "two-actions": (
        GOOD_SCALESET + "timeline:\n  - {at: PT1M, scale: 3}\n  - at: PT2M\n    scale: 4\n    cancel: {}\n",
        ["line 4", "timeline[1]", "exactly one action", "got scale, cancel"],
    ),
    "no-action": (
        GOOD_SCALESET + "timeline:\n  - {at: PT1M}\n",
        ["line 3", "timeline[0]", "exactly one action", "got none"],
    ),
    "bad-duration": (
        GOOD_SCALESET + "timeline:\n  - {at: PT1M, scale: 3}\n  - {at: 5 minutes, scale: 4}\n",
        ["line 4", "timeline[1].at", "'5 minutes'", "ISO 8601 duration"],
    ),
    "unknown-fault-kind": (
        GOOD_SCALESET + "simulation:\n  faults:\n    - {kind: never_healthy}\n    - {kind: meteor_strike}\n",
        ["line 5", "simulation.faults[1].kind", "never_healthy"],
    ),
    "missing-scaleset": (
        "name: no scale set\nsimulation: {seed: 3}\n",
        ["scaleset", "Field required"],
    ),
    "unknown-top-level-key": (
        GOOD_SCALESET + "timelime: []\n",
        ["line 2", "timelime"],
    ),
    "not-a-mapping": (
        "- just\n- a list\n",
        ["a scenario is a YAML mapping"],
    ),
}


def run_sim(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, str]:
    code = main(["sim", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_exits_2_with_one_line_naming_the_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    text, fragments = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)

    code, out, err = run_sim(capsys, path)

    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, f"one line, got {err!r}"
    assert err.startswith(f"scaleset sim: {path}: ")
    for fragment in fragments:
        assert fragment in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"

    code, out, err = run_sim(capsys, path)

    assert code == 2
    assert out == ""
    assert err == f"scaleset sim: {path}: cannot read the scenario file: No such file or directory\n"


def test_unmet_expectations_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 (not 2) is for a file that runs but whose expect: block does not hold."""
    path = tmp_path / "wrong.yaml"
    path.write_text(GOOD_SCALESET + "expect:\n  instances: {count: 3}\n")

    code, _, err = run_sim(capsys, path)

    assert code == 1
    assert err == ""
