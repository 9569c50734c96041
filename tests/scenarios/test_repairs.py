"""Automatic instance repairs (reference §5.2), in virtual time through the real engine: a killed application is
repaired after the grace period by the policy's action, at most 5% at a time, never on a protected instance,
held while a rolling upgrade runs, suspended by the operator or by the platform."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.scenarios.test_rolling_behaviours import (
    FIXED,
    events,
    instances,
    new_image,
    policy,
    scale_set,
    scenario,
    simulate,
)

GRACE = 600.0  # PT10M, the default


def repairing(*, capacity: int = 10, action: str = "Replace", mode: str = "Manual", **extra: Any) -> dict[str, Any]:
    body = scale_set(capacity=capacity, mode=mode, policy=extra.pop("rolling", None))
    body["properties"]["automaticRepairsPolicy"] = {"enabled": True, "repairAction": action, **extra}
    return body


def kill(at: str, *ids: int) -> dict[str, Any]:
    return {"at": at, "kill_instance": list(ids)}


def run(tmp_path: Path, body: dict[str, Any], timeline: list[dict[str, Any]], **simulation: Any) -> dict[str, Any]:
    return simulate(tmp_path, scenario(body, timeline, **{**FIXED, **simulation}))


def started(report: dict[str, Any]) -> list[tuple[float, str, str]]:
    return [(e["offsetSeconds"], e["instanceId"], e["action"]) for e in events(report, "repairStarted")]


def test_replace_gives_a_new_instance_after_the_grace_period(tmp_path: Path) -> None:
    report = run(tmp_path, repairing(), [kill("PT30M", 3)])
    [(when, instance, action)] = started(report)
    assert (instance, action) == ("3", "Replace")
    first = events(report, "repairStarted")[0]
    assert first["reason"] == "Unknown"  # rich health: a silent application is Unknown, which triggers too
    assert first["newInstanceId"] == "10"
    # The set last changed at creation (t=0); instance 3 became ready ~130 s later; it died at PT30M: the grace
    # periods from both have long passed, so the repair starts as soon as the probe sees it unhealthy.
    assert 1800 <= when <= 1800 + 30
    rows = instances(report)
    assert 3 not in rows and 10 in rows and len(rows) == 10
    assert all(row["health"] == "Healthy" for row in rows.values())
    assert [e["instanceId"] for e in events(report, "repairSucceeded")] == ["10"]


def test_the_grace_period_counts_from_the_last_scale_set_change(tmp_path: Path) -> None:
    tags = {"at": "PT29M", "patch": {"tags": {"team": "web"}}}  # a PATCH: the set changed
    report = run(tmp_path, repairing(), [tags, kill("PT30M", 3)])
    [(when, _, _)] = started(report)
    assert when == 29 * 60 + GRACE


def test_reimage_keeps_the_instance_id(tmp_path: Path) -> None:
    report = run(tmp_path, repairing(action="Reimage"), [kill("PT30M", 3)])
    assert [(i, a) for _, i, a in started(report)] == [("3", "Reimage")]
    rows = instances(report)
    assert sorted(rows) == list(range(10)) and rows[3]["health"] == "Healthy"


def test_restart_keeps_the_instance_id(tmp_path: Path) -> None:
    report = run(tmp_path, repairing(action="Restart"), [kill("PT30M", 3)])
    assert [(i, a) for _, i, a in started(report)] == [("3", "Restart")]
    assert instances(report)[3]["health"] == "Healthy"


def test_unknown_triggers_only_under_rich_health(tmp_path: Path) -> None:
    invalid = {"at": "PT30M", "set_health": {"instances": [3], "answer": "invalid"}}
    rich = run(tmp_path / "rich", repairing(), [invalid])
    assert [e["reason"] for e in events(rich, "repairStarted")] == ["Unknown"]
    binary_body = copy.deepcopy(repairing())  # scale_set() shares its extension dict between bodies
    extension = binary_body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"][0]
    extension["properties"]["typeHandlerVersion"] = "1.0"
    binary = run(tmp_path / "binary", binary_body, [invalid])
    assert [e["reason"] for e in events(binary, "repairStarted")] == ["Unhealthy"]  # binary: not 200 is Unhealthy


def test_one_repair_at_a_time_under_twenty_instances(tmp_path: Path) -> None:
    report = run(tmp_path, repairing(), [kill("PT30M", 2, 4, 6)])
    repairs = started(report)
    assert [i for _, i, _ in repairs] == ["2", "4", "6"]
    ends = [e["offsetSeconds"] for e in events(report, "repairSucceeded")]
    # each repair starts only once the one before has finished its action
    assert repairs[1][0] > repairs[0][0] and repairs[2][0] > repairs[1][0]
    assert any(e["reason"] == "batchLimit" for e in events(report, "repairWaiting"))
    assert len(ends) == 3


def test_five_percent_at_once_in_a_larger_set(tmp_path: Path) -> None:
    report = run(tmp_path, repairing(capacity=40), [kill("PT30M", *range(5))])
    repairs = started(report)
    first_wave = [i for t, i, _ in repairs if t == repairs[0][0]]
    assert first_wave == ["0", "1"]  # floor(40 * 5%) = 2
    assert len(repairs) == 5 and len(instances(report)) == 40


def test_protected_instances_are_never_repaired(tmp_path: Path) -> None:
    timeline = [
        {"at": "PT5M", "protect": {"instances": [3]}},
        {"at": "PT5M", "protect": {"instances": [4], "protectFromScaleSetActions": True}},
        kill("PT30M", 3, 4, 5),
    ]
    report = run(tmp_path, repairing(), timeline)
    assert [i for _, i, _ in started(report)] == ["5"]
    protected = {e["instanceId"] for e in events(report, "repairWaiting") if e["reason"] == "protected"}
    assert protected == {"3", "4"}
    rows = instances(report)
    assert rows[3]["health"] != "Healthy" and rows[4]["health"] != "Healthy"


def test_repairs_wait_while_a_rollout_runs_and_a_grace_period_after_it(tmp_path: Path) -> None:
    rolling = policy(maxUnhealthyInstancePercent=100, maxUnhealthyUpgradedInstancePercent=100)
    body = repairing(mode="Rolling", rolling=rolling)
    report = run(tmp_path, body, [new_image("PT20M"), kill("PT23M", 0)])
    held = [e for e in events(report, "repairWaiting") if e["reason"] == "heldByRollingUpgrade"]
    assert held and held[0]["instanceId"] == "0"
    [done] = events(report, "rolloutCompleted")
    [(when, instance, _)] = started(report)
    assert instance == "0" and when == done["offsetSeconds"] + GRACE


def test_suspend_and_resume(tmp_path: Path) -> None:
    timeline = [
        {"at": "PT10M", "orchestration": {"action": "Suspend"}},
        kill("PT30M", 3),
        {"at": "PT2H", "orchestration": {"action": "Resume"}},
    ]
    report = run(tmp_path, repairing(), timeline)
    [(when, instance, _)] = started(report)
    assert instance == "3" and when >= 2 * 3600
    suspended = events(report, "repairsSuspended")
    assert suspended and suspended[0]["by"] == "User"


def test_the_platform_suspends_repairs_that_keep_failing(tmp_path: Path) -> None:
    # Every replacement (ids 10 and up) never turns healthy: three failed repairs in a row suspend the service.
    fault = {"kind": "never_healthy", "instances": list(range(10, 20))}
    report = run(tmp_path, repairing(), [kill("PT30M", 3)], faults=[fault], until="P1D")
    failed = events(report, "repairFailed")
    assert len(failed) == 3
    [suspended] = events(report, "repairsSuspended")
    assert suspended["by"] == "Platform"
    assert len(started(report)) == 3  # and no more after the suspension


def test_a_stopped_instance_is_not_repaired(tmp_path: Path) -> None:
    report = run(tmp_path, repairing(), [{"at": "PT30M", "power_off": [3]}])
    assert started(report) == []
