"""A run stopped at any point and reopened from its SQLite database ends exactly as an uninterrupted run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scaleset.engine.clock import DEFAULT_EPOCH as START
from scaleset.sim.report import build_report
from scaleset.sim.runner import ScenarioRun
from scaleset.sim.scenario import Scenario, parse_scenario

HEALTH = {
    "name": "health",
    "properties": {
        "publisher": "Microsoft.ManagedServices",
        "type": "ApplicationHealthLinux",
        "typeHandlerVersion": "2.0",
        "settings": {"protocol": "http", "port": 80, "requestPath": "/health", "numberOfProbes": 2},
    },
}

SCENARIO = """
name: resume
scaleset:
  location: westus
  zones: ["1", "2", "3"]
  sku: {name: Standard_D2s_v3, capacity: 12}
  properties:
    upgradePolicy:
      mode: Rolling
      rollingUpgradePolicy:
        maxBatchInstancePercent: 25
        maxUnhealthyUpgradedInstancePercent: 40
        pauseTimeBetweenBatches: PT2M
        rollbackFailedInstancesOnPolicyBreach: true
        maxSurge: %(surge)s
    virtualMachineProfile:
      storageProfile: {imageReference: {publisher: p, offer: o, sku: s, version: 1.0.0}}
      extensionProfile: {extensions: [%(health)s]}
simulation:
  seed: 11
  faults:
    - {kind: never_healthy, image_version: 2.0.0, fraction: 0.3}
timeline:
  - {at: PT10M, patch: {properties: {virtualMachineProfile: {storageProfile: {imageReference: {version: 2.0.0}}}}}}
  - {at: PT14M, set_health: {instances: ["11"], answer: unhealthy}}
  - {at: PT40M, scale: 14}
"""


def scenario(surge: bool) -> Scenario:
    import json

    return parse_scenario(SCENARIO % {"surge": str(surge).lower(), "health": json.dumps(HEALTH)})


def events_of(run: ScenarioRun) -> list[dict[str, Any]]:
    return [event for _, event in run.store.list_events()]


def finish(scenario_: Scenario, db: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    run = ScenarioRun.open(scenario_, db=db)
    try:
        run.run()
        report = build_report(run)
        return events_of(run), report
    finally:
        run.close()


@pytest.mark.parametrize("surge", [False, True], ids=["in-place", "max-surge"])
def test_stop_and_reopen_anywhere_gives_the_same_run(tmp_path: Path, surge: bool) -> None:
    scenario_ = scenario(surge)
    expected_events, expected_report = finish(scenario_, tmp_path / "straight.db")
    kinds = {e["kind"] for e in expected_events}
    assert ("batchStarted" in kinds and "rolloutFaulted" in kinds) or "rolloutCompleted" in kinds
    # Stop points: before the change, inside batches, during pauses, after the end; and twice in one run.
    for stops in ([5 * 60], [10 * 60], [10 * 60 + 45], [12 * 60 + 30], [16 * 60, 21 * 60], [45 * 60], [3 * 3600]):
        db = tmp_path / f"stopped-{'-'.join(map(str, stops))}.db"
        for stop in stops:
            run = ScenarioRun.open(scenario_, db=db)
            run.run(until=stop)
            run.close()
        events, report = finish(scenario_, db)
        assert events == expected_events, f"stopped at {stops}"
        if max(stops) < expected_events[-1]["time"] - START:
            assert report == expected_report, f"stopped at {stops}"
        else:  # stopped after the end: the clock stands later, the outcome is the same
            assert report["rollingUpgrade"] == expected_report["rollingUpgrade"]
            assert report["operations"] == expected_report["operations"]


def test_the_same_seed_gives_the_same_run_and_another_seed_differs(tmp_path: Path) -> None:
    scenario_ = scenario(False)
    first, _ = finish(scenario_, tmp_path / "a.db")
    second, _ = finish(scenario_, tmp_path / "b.db")
    assert first == second
    other = scenario_.model_copy(update={"simulation": scenario_.simulation.model_copy(update={"seed": 12})})
    third, _ = finish(other, tmp_path / "c.db")
    assert third != first
