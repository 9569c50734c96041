"""Automatic OS image upgrades (reference §5.1), one scenario each, in virtual time through the real engine.

A publish (the ``publish_image`` timeline action) is what the platform reacts to; scale sets track ``latest``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.scenarios.test_rolling_behaviours import (
    FIXED,
    batches,
    events,
    instances,
    opened,
    policy,
    scale_set,
    scenario,
    simulate,
)

from scaleset.sim.report import build_report

OLD, NEW, BAD = "1.0.0", "1.1.0", "1.2.0"


def tracking(
    *, capacity: int = 10, mode: str = "Manual", rolling: dict[str, Any] | None = None, **automatic: Any
) -> dict[str, Any]:
    body = scale_set(capacity=capacity, mode=mode, policy=rolling)
    body["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]["version"] = "latest"
    body["properties"]["upgradePolicy"]["automaticOSUpgradePolicy"] = {"enableAutomaticOSUpgrade": True, **automatic}
    return body


def publish(at: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"at": at, "publish_image": {"version": version, **extra}}


def run(tmp_path: Path, body: dict[str, Any], timeline: list[dict[str, Any]], **simulation: Any) -> dict[str, Any]:
    return simulate(tmp_path, scenario(body, timeline, images=[OLD], **{**FIXED, **simulation}))


def by_image(report: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in report["instances"]:
        counts[row["imageVersion"]] = counts.get(row["imageVersion"], 0) + 1
    return counts


def started(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in events(report, "rolloutStarted") if e.get("rolloutKind") == "OSUpgrade"]


def test_a_publish_starts_a_platform_upgrade_with_the_default_batches(tmp_path: Path) -> None:
    # The scale set's own policy says 50% batches; without useRollingUpgradePolicy the platform uses 20%.
    body = tracking(rolling=policy(maxBatchInstancePercent=50))
    report = run(tmp_path, body, [publish("PT30M", NEW)])
    [start] = started(report)
    assert start["startedBy"] == "Platform" and start["targetImageVersion"] == NEW
    assert start["offsetSeconds"] == 1800  # at once, not hours later
    assert start["policy"]["maxBatchInstancePercent"] == 20
    assert [len(b) for b in batches(report)] == [2, 2, 2, 2, 2]
    assert by_image(report) == {NEW: 10}


def test_use_rolling_upgrade_policy_takes_the_scale_sets_policy(tmp_path: Path) -> None:
    rolling = policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=50)
    body = tracking(rolling=rolling, useRollingUpgradePolicy=True)
    report = run(tmp_path, body, [publish("PT30M", NEW)])
    assert [len(b) for b in batches(report)] == [5, 5]
    assert by_image(report) == {NEW: 10}


def test_five_or_fewer_instances_go_one_at_a_time(tmp_path: Path) -> None:
    report = run(tmp_path, tracking(capacity=5), [publish("PT30M", NEW)])
    assert batches(report) == [[0], [1], [2], [3], [4]]


def test_a_failed_version_rolls_back_each_failed_instance_and_is_not_retried(tmp_path: Path) -> None:
    fault = {"kind": "never_healthy", "image_version": BAD}
    timeline = [publish("PT30M", BAD), {"at": "PT2H", "scale": 12}, publish("PT5H", "1.3.0")]
    report = run(tmp_path, tracking(), timeline, faults=[fault])
    first, second = started(report)
    assert first["targetImageVersion"] == BAD and second["targetImageVersion"] == "1.3.0"
    [faulted] = events(report, "rolloutFaulted")
    assert faulted["code"] == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    reverted = events(report, "instanceRollbackStarted")
    assert reverted[0]["instanceIds"] == ["0", "1"]
    outcomes = [e["outcome"] for e in events(report, "instanceRollbackCompleted")]
    assert outcomes == ["succeeded", "succeeded"]
    # The scale-out at PT2H created instances on the newest image (1.2.0): the platform did not start a second
    # upgrade to 1.2.0 for the others. The 1.3.0 publish upgraded everything.
    assert by_image(report) == {"1.3.0": 12}


def test_disable_automatic_rollback_leaves_failed_instances_on_the_new_image(tmp_path: Path) -> None:
    fault = {"kind": "never_healthy", "image_version": BAD}
    report = run(tmp_path, tracking(disableAutomaticRollback=True), [publish("PT30M", BAD)], faults=[fault])
    assert events(report, "instanceRollbackStarted") == []
    assert by_image(report) == {BAD: 2, OLD: 8}


def test_history_records_rollback_info_and_lists_only_os_upgrades(tmp_path: Path) -> None:
    fault = {"kind": "never_healthy", "image_version": BAD}
    doc = scenario(tracking(), [publish("PT30M", NEW), publish("PT2H", BAD)], images=[OLD], faults=[fault], **FIXED)
    with opened(tmp_path, doc) as scenario_run:
        scenario_run.run()
        ids = ("00000000-0000-0000-0000-000000000000", "rg", "vmss")
        newest, older = scenario_run.services.os_upgrade_history(*ids)
    assert (older.code.value, older.started_by, older.target_image_version) == ("Completed", "Platform", NEW)
    assert (newest.code.value, newest.target_image_version) == ("Faulted", BAD)
    assert (newest.rollback_succeeded, newest.rollback_failed, newest.rollback_error) == (2, 0, None)


def test_history_keeps_the_last_five_of_the_past_two_months(tmp_path: Path) -> None:
    timeline = [publish(f"P{day}D", f"1.{day}.0") for day in range(1, 8)] + [publish("P70D", "2.0.0")]
    doc = scenario(tracking(capacity=2), timeline, images=[OLD], until="P71D", **FIXED)
    with opened(tmp_path, doc) as scenario_run:
        scenario_run.run(until=8 * 86400)
        ids = ("00000000-0000-0000-0000-000000000000", "rg", "vmss")
        listed = [r.target_image_version for r in scenario_run.services.os_upgrade_history(*ids)]
        assert listed == ["1.7.0", "1.6.0", "1.5.0", "1.4.0", "1.3.0"]
        scenario_run.run()
        listed = [r.target_image_version for r in scenario_run.services.os_upgrade_history(*ids)]
        assert listed == ["2.0.0"]  # the others started more than 60 days before


def test_a_version_excluded_from_latest_is_never_rolled_out(tmp_path: Path) -> None:
    report = run(tmp_path, tracking(), [publish("PT30M", "9.0.0", excludeFromLatest=True)])
    assert started(report) == [] and by_image(report) == {OLD: 10}


def test_manual_mode_leaves_instances_on_an_older_model_to_the_operator(tmp_path: Path) -> None:
    custom = {"properties": {"virtualMachineProfile": {"osProfile": {"customData": "djI="}}}}
    timeline = [
        {"at": "PT10M", "patch": custom},
        {"at": "PT20M", "update_instances": [0, 1]},
        publish("PT1H", NEW),
    ]
    report = run(tmp_path, tracking(capacity=4), timeline)
    assert batches(report) == [[0], [1]]
    rows = instances(report)
    assert [rows[i]["imageVersion"] for i in range(4)] == [NEW, NEW, OLD, OLD]


def test_instances_protected_from_scale_set_actions_are_skipped(tmp_path: Path) -> None:
    protect = {"at": "PT10M", "protect": {"instances": [3], "protectFromScaleSetActions": True}}
    report = run(tmp_path, tracking(capacity=4), [protect, publish("PT30M", NEW)])
    assert batches(report) == [[0], [1], [2]]
    assert instances(report)[3]["imageVersion"] == OLD


def test_deferral_waits_for_approval(tmp_path: Path) -> None:
    timeline = [publish("PT30M", NEW), {"at": "PT3H", "approve": [2]}, {"at": "PT5H", "approve": "*"}]
    report = run(tmp_path, tracking(capacity=3, osRollingUpgradeDeferral=True), timeline)
    [asked, *_] = events(report, "approvalRequested")
    assert asked["offsetSeconds"] == 1800 and asked["instanceIds"] == ["0", "1", "2"]
    starts = [(e["offsetSeconds"], e["instanceIds"]) for e in events(report, "batchStarted")]
    assert starts[0] == (3 * 3600, ["2"])  # nothing moved before the first approval
    assert [ids for _, ids in starts[1:]] == [["0"], ["1"]] and all(t >= 5 * 3600 for t, _ in starts[1:])
    assert by_image(report) == {NEW: 3}


def test_a_model_change_during_an_os_upgrade_is_refused(tmp_path: Path) -> None:
    custom = {"properties": {"virtualMachineProfile": {"osProfile": {"customData": "djI="}}}}
    report = run(tmp_path, tracking(), [publish("PT30M", NEW), {"at": "PT31M", "patch": custom}])
    [rejected] = events(report, "requestRejected")
    assert rejected["code"] == "OperationNotAllowed"


def test_os_rolling_upgrade_is_refused_while_one_runs(tmp_path: Path) -> None:
    report = run(tmp_path, tracking(), [publish("PT30M", NEW), {"at": "PT31M", "os_upgrade": {}}])
    [rejected] = events(report, "requestRejected")
    assert rejected["code"] == "OperationNotAllowed"


def test_a_user_started_upgrade_on_a_pinned_image_completes_at_once(tmp_path: Path) -> None:
    body = scale_set(capacity=3, mode="Manual")
    doc = scenario(body, [{"at": "PT30M", "os_upgrade": {}}], images=[OLD], **FIXED)
    with opened(tmp_path, doc) as scenario_run:
        scenario_run.run()
        report = build_report(scenario_run)
    [start] = started(report)
    assert start["startedBy"] == "User" and start["targetImageVersion"] == OLD
    assert report["rollingUpgrade"]["properties"]["runningStatus"]["code"] == "Completed"
    assert [op["status"] for op in report["operations"]] == ["Succeeded", "Succeeded"]
