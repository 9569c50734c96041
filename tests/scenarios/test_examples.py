"""Every shipped example runs through ``scaleset sim`` and meets its own ``expect:`` block, deterministically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scaleset.main import main
from scaleset.sim.scenario import load_scenario

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yaml"))
DETERMINISM = ["rolling-happy-path", "rolling-bad-image-rollback", "max-surge", "cancel-mid-rollout"]


def sim_json(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """``scaleset sim PATH --output json``: the exit code, the raw JSON text and the parsed report."""
    code = main(["sim", str(path), "--output", "json", *extra])
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out, json.loads(captured.out)


def test_the_examples_are_there() -> None:
    assert len(EXAMPLES) >= 14, f"expected the shipped examples in {EXAMPLES_DIR}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_documented(path: Path) -> None:
    scenario = load_scenario(path)

    assert scenario.name, "every example has a name"
    assert scenario.description and len(scenario.description.split()) >= 20, "and a description of what to look for"
    assert scenario.expect is not None, "and an expect: block, so `scaleset sim` checks what it shows"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_meets_its_expectations(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    code, _, report = sim_json(capsys, path)

    failed = [check for check in report["expectations"] if not check["ok"]]
    assert failed == []
    assert report["expectations"], "an example with nothing to check proves nothing"
    assert code == 0


@pytest.mark.parametrize("seed", [101, 202])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_does_not_depend_on_its_seed(capsys: pytest.CaptureFixture[str], path: Path, seed: int) -> None:
    """Timings differ with the seed; what each example shows must not."""
    code, _, report = sim_json(capsys, path, "--seed", str(seed))

    assert [check["check"] for check in report["expectations"] if not check["ok"]] == []
    assert report["seed"] == seed
    assert code == 0


@pytest.mark.parametrize("name", DETERMINISM)
def test_same_file_and_seed_give_identical_json(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = EXAMPLES_DIR / f"{name}.yaml"

    _, first, _ = sim_json(capsys, path)
    _, second, _ = sim_json(capsys, path)
    _, other_seed, _ = sim_json(capsys, path, "--seed", "12345")

    assert first == second
    assert other_seed != first  # the seed does drive the timings
