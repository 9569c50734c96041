"""Automatic extension upgrades (reference §5.1, "Automatic extension upgrade"), in virtual time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.scenarios.test_rolling_behaviours import (
    FIXED,
    batches,
    events,
    instances,
    policy,
    scale_set,
    scenario,
    simulate,
)

AGENT = {"publisher": "Contoso.Monitoring", "type": "Agent"}


def with_agent(*, mode: str = "Manual", automatic: bool = True, capacity: int = 4) -> dict[str, Any]:
    body = scale_set(
        capacity=capacity, mode=mode, policy=policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=50)
    )
    agent = {"name": "agent", "properties": {**AGENT, "typeHandlerVersion": "1.0", "enableAutomaticUpgrade": automatic}}
    body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"].append(agent)
    return body


def publish(at: str, version: str) -> dict[str, Any]:
    return {"at": at, "publish_extension": {**AGENT, "version": version}}


def agent_versions(report: dict[str, Any]) -> list[str]:
    return [row["extensionVersions"].get("agent") for _, row in sorted(instances(report).items())]


def test_a_newer_minor_version_rolls_out_under_the_rolling_policy_in_any_mode(tmp_path: Path) -> None:
    report = simulate(tmp_path, scenario(with_agent(mode="Manual"), [publish("PT20M", "1.1")], **FIXED))
    [start] = events(report, "rolloutStarted")
    assert start["rolloutKind"] == "ExtensionUpgrade" and start["startedBy"] == "Platform"
    assert start["targetExtensions"] == {"agent": "1.1"}
    assert batches(report) == [[0, 1], [2, 3]]
    assert agent_versions(report) == ["1.1"] * 4
    assert {row["imageVersion"] for row in report["instances"]} == {"1.0.0"}  # the image stays


def test_a_new_major_version_is_not_rolled_out(tmp_path: Path) -> None:
    report = simulate(tmp_path, scenario(with_agent(), [publish("PT20M", "2.0")], **FIXED))
    assert events(report, "rolloutStarted") == []
    assert agent_versions(report) == ["1.0"] * 4


def test_without_enable_automatic_upgrade_nothing_moves_but_new_instances_get_the_newest_minor(tmp_path: Path) -> None:
    timeline = [publish("PT20M", "1.1"), {"at": "PT30M", "scale": 5}]
    report = simulate(tmp_path, scenario(with_agent(automatic=False), timeline, **FIXED))
    assert events(report, "rolloutStarted") == []
    assert agent_versions(report) == ["1.0", "1.0", "1.0", "1.0", "1.1"]  # autoUpgradeMinorVersion on deploy


def test_protected_instances_keep_their_extension_versions(tmp_path: Path) -> None:
    protect = {"at": "PT10M", "protect": {"instances": [1], "protectFromScaleSetActions": True}}
    report = simulate(tmp_path, scenario(with_agent(), [protect, publish("PT20M", "1.1")], **FIXED))
    assert agent_versions(report) == ["1.1", "1.0", "1.1", "1.1"]
