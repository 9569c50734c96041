"""Without a server: the automatic OS upgrade / repairs / scale-in flags (parsing and the bodies they build), the
new verbs' parsing and requests (through a fake SDK client), the OS upgrade history table, the image publish line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from scaleset.cli import images, policies, rolling, tables, upgrades
from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.cli.parsing import enum_choice
from scaleset.cli.vmss import create_body
from scaleset.main import build_parser, main

ORCHESTRATION = ["vmss", "set-orchestration-service-state", "-g", "g", "-n", "w"]
VMSS_ID = "/subscriptions/s/resourceGroups/Demo/providers/Microsoft.Compute/virtualMachineScaleSets/web"


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _create(*flags: str) -> dict[str, Any]:
    args = _parse("vmss", "create", "-g", "g", "-n", "web", *flags)
    policies.check_create(args)
    props: dict[str, Any] = create_body(args, "westus")["properties"]
    return props


def _usage(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """A usage error (exit 2, one line) from parsing alone; no request is made."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# ---------------------------------------------------------------------- create


def test_create_sends_the_policies_as_az_builds_them() -> None:
    props = _create(
        "--enable-auto-os-upgrade", "--automatic-repairs-grace-period", "30", "--automatic-repairs-action",
        "restart", "--scale-in-policy", "oldestvm", "NewestVM", "--upgrade-policy-mode", "Rolling",
    )  # fmt: skip
    assert props["upgradePolicy"] == {"mode": "Rolling", "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True}}
    assert props["automaticRepairsPolicy"] == {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Restart"}
    assert props["scaleInPolicy"] == {"rules": ["OldestVM", "NewestVM"]}


def test_create_repairs_defaults_and_the_alias() -> None:
    # a grace period or an action makes the whole policy, enabled, with az's defaults (_template_builder.py)
    assert _create("--automatic-repairs-action", "Reimage")["automaticRepairsPolicy"] == {
        "enabled": True,
        "gracePeriod": "PT10M",
        "repairAction": "Reimage",
    }
    assert _create("--automatic-repairs-grace-period", "45")["automaticRepairsPolicy"] == {
        "enabled": True,
        "gracePeriod": "PT45M",
        "repairAction": "Replace",
    }
    assert _create("--enable-auto-repairs")["automaticRepairsPolicy"] == {"enabled": True}
    assert _create("--enable-automatic-repairs", "false")["automaticRepairsPolicy"] == {"enabled": False}
    assert _create("--enable-auto-os-upgrade", "no")["upgradePolicy"]["automaticOSUpgradePolicy"] == {
        "enableAutomaticOSUpgrade": False
    }


def test_create_without_the_flags_sends_no_policies() -> None:
    props = _create()
    assert props["upgradePolicy"] == {"mode": "Manual"}
    assert "automaticRepairsPolicy" not in props and "scaleInPolicy" not in props


def test_create_refuses_repair_details_with_repairs_disabled() -> None:
    args = _parse(
        "vmss", "create", "-g", "g", "-n", "web", "--enable-automatic-repairs", "false",
        "--automatic-repairs-grace-period", "30",
    )  # fmt: skip
    with pytest.raises(UsageError, match="cannot be false"):
        policies.check_create(args)


# ---------------------------------------------------------------------- update


def _updated(document: dict[str, Any], *flags: str) -> dict[str, Any]:
    args = _parse("vmss", "update", "-g", "g", "-n", "web", *flags)
    policies.check_update(args)
    policies.apply_update(document, args)
    props: dict[str, Any] = document["properties"]
    return props


def test_update_changes_only_what_the_flags_name() -> None:
    document = {
        "properties": {
            "upgradePolicy": {
                "mode": "Rolling",
                "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": False, "disableAutomaticRollback": True},
            },
            "automaticRepairsPolicy": {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Replace"},
            "scaleInPolicy": {"rules": ["Default"], "forceDeletion": False},
        }
    }
    props = _updated(
        document, "--enable-auto-os-upgrade", "--automatic-repairs-action", "Restart", "--scale-in-policy",
        "NewestVM", "--force-deletion",
    )  # fmt: skip
    assert props["upgradePolicy"] == {
        "mode": "Rolling",
        "automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True, "disableAutomaticRollback": True},
    }
    assert props["automaticRepairsPolicy"] == {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Restart"}
    assert props["scaleInPolicy"] == {"rules": ["NewestVM"], "forceDeletion": True}

    props = _updated(document, "--enable-automatic-repairs", "false", "--force-deletion", "false")
    assert props["automaticRepairsPolicy"]["enabled"] is False
    assert props["scaleInPolicy"] == {"rules": ["NewestVM"], "forceDeletion": False}


def test_update_creates_missing_policy_objects() -> None:
    props = _updated({"properties": {}}, "--enable-auto-os-upgrade", "--automatic-repairs-grace-period", "20")
    assert props == {
        "upgradePolicy": {"automaticOSUpgradePolicy": {"enableAutomaticOSUpgrade": True}},
        "automaticRepairsPolicy": {"gracePeriod": "PT20M"},
    }
    unchanged: dict[str, Any] = {"properties": {"upgradePolicy": {"mode": "Manual"}}}
    assert _updated(unchanged) == {"upgradePolicy": {"mode": "Manual"}}


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--enable-automatic-repairs", "false", "--automatic-repairs-action", "Restart"], "please enable"),
        (["--enable-automatic-repairs"], "please set --automatic-repairs-grace-period"),
    ],
)
def test_update_checks_follow_az(flags: list[str], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        policies.check_update(_parse("vmss", "update", "-g", "g", "-n", "web", *flags))


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["vmss", "create", "-g", "g", "-n", "w", "--automatic-repairs-grace-period", "PT30M"], "whole minutes"),
        (["vmss", "create", "-g", "g", "-n", "w", "--automatic-repairs-grace-period", "-5"], "whole minutes"),
        (["vmss", "create", "-g", "g", "-n", "w", "--automatic-repairs-action", "Redeploy"], "Replace, Restart"),
        (["vmss", "create", "-g", "g", "-n", "w", "--scale-in-policy", "Random"], "Default, OldestVM"),
        (["vmss", "create", "-g", "g", "-n", "w", "--enable-auto-os-upgrade", "maybe"], "true or false"),
        (["vmss", "create", "-g", "g", "-n", "w", "--force-deletion"], "unrecognized arguments"),  # not on create
        (["vmss", "update", "-g", "g", "-n", "w", "--enable-auto-repairs"], "unrecognized arguments"),  # create only
        ([*ORCHESTRATION, "--action", "Suspend"], "--service-name"),
        ([*ORCHESTRATION, "--service-name", "AutomaticRepairs", "--action", "Pause"], "Resume, Suspend"),
        ([*ORCHESTRATION, "--service-name", "Upgrades", "--action", "Resume"], "AutomaticRepairs"),
        (["vmss", "approve-rolling-upgrade", "-g", "g", "-n", "w", "--instance-ids", "one"], "not an instance id"),
        (["vmss", "rolling-upgrade", "start", "-g", "g"], "-n/--name"),
        (["vmss", "extension", "upgrade", "-n", "w"], "-g/--resource-group"),
        (["vmss", "get-os-upgrade-history", "-g", "g", "-n", "w", "--no-wait"], "unrecognized arguments"),
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    assert fragment in _usage(capsys, *argv)


def test_enum_choice_takes_any_case() -> None:
    action = enum_choice("Resume", "Suspend")
    assert action("suspend") == "Suspend" and action(" RESUME ") == "Resume"
    with pytest.raises(argparse.ArgumentTypeError):
        action("stop")
    assert policies.grace_minutes("30") == "PT30M" and policies.grace_minutes("090") == "PT90M"


# ---------------------------------------------------------------------- requests, through a fake SDK client


@dataclass
class FakePoller:
    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def result(self) -> None:
        return None


@dataclass
class FakeOperations:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]
    group: str

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> FakePoller:
            self.calls.append((f"{self.group}.{method}", args, kwargs))
            return FakePoller()

        return call


@dataclass
class FakeCompute:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def __getattr__(self, group: str) -> FakeOperations:
        return FakeOperations(self.calls, group)


@dataclass
class FakeTarget:
    poll_interval: float = 0.01


@dataclass
class FakeSession:
    compute: FakeCompute = field(default_factory=FakeCompute)
    target: FakeTarget = field(default_factory=FakeTarget)


def _run(handler: Any, *argv: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    session = FakeSession()
    assert handler(cast(Session, session), _parse(*argv)) is None  # actions print nothing
    return session.compute.calls


def test_set_orchestration_service_state_sends_the_wire_body() -> None:
    calls = _run(
        upgrades.set_orchestration_service_state,
        "vmss", "set-orchestration-service-state", "-g", "g", "-n", "web", "--service-name", "automaticrepairs",
        "--action", "suspend",
    )  # fmt: skip
    ((name, args, _),) = calls
    assert name == "virtual_machine_scale_sets.begin_set_orchestration_service_state"
    assert args[:2] == ("g", "web") and args[2].as_dict() == {"serviceName": "AutomaticRepairs", "action": "Suspend"}


def test_approve_rolling_upgrade_routes() -> None:
    ((name, args, _),) = _run(upgrades.approve_rolling_upgrade, "vmss", "approve-rolling-upgrade", "-g", "g", "-n", "w")
    assert name == "virtual_machine_scale_sets.begin_approve_rolling_upgrade" and args == ("g", "w", None)

    ((name, args, _),) = _run(
        upgrades.approve_rolling_upgrade, "vmss", "approve-rolling-upgrade", "-g", "g", "-n", "w",
        "--instance-ids", "0", "2,3",
    )  # fmt: skip
    assert name == "virtual_machine_scale_sets.begin_approve_rolling_upgrade"
    assert args[2].as_dict() == {"instanceIds": ["0", "2", "3"]}

    ((name, args, _),) = _run(
        upgrades.approve_rolling_upgrade, "vmss", "approve-rolling-upgrade", "-g", "g", "-n", "w", "--instance-id", "4"
    )
    assert name == "virtual_machine_scale_set_vms.begin_approve_rolling_upgrade" and args == ("g", "w", "4")

    args_both = _parse("vmss", "approve-rolling-upgrade", "-g", "g", "-n", "w", "--instance-id", "4",
                       "--instance-ids", "1")  # fmt: skip
    with pytest.raises(UsageError, match="not both"):
        upgrades.approve_rolling_upgrade(cast(Session, FakeSession()), args_both)


def test_start_and_extension_upgrade_no_wait() -> None:
    ((name, args, kwargs),) = _run(rolling.start, "vmss", "rolling-upgrade", "start", "-g", "g", "-n", "w", "--no-wait")
    assert name == "virtual_machine_scale_set_rolling_upgrades.begin_start_os_upgrade"
    assert args == ("g", "w") and kwargs == {"polling": False}  # --no-wait: no look at the rollout either
    ((name, args, kwargs),) = _run(upgrades.extension_upgrade, "vmss", "extension", "upgrade", "-g", "g", "-n", "w")
    assert name == "virtual_machine_scale_set_rolling_upgrades.begin_start_extension_upgrade" and args == ("g", "w")


# ---------------------------------------------------------------------- output


def test_os_upgrade_history_table() -> None:
    entry = {
        "runningStatus": {"code": "Completed", "startTime": "2025-01-01T00:00:00Z", "endTime": "2025-01-01T00:10:00Z"},
        "progress": {
            "successfulInstanceCount": 3,
            "failedInstanceCount": 1,
            "inProgressInstanceCount": 0,
            "pendingInstanceCount": 0,
        },
        "startedBy": "Platform",
        "targetImageReference": {
            "publisher": "p",
            "offer": "o",
            "sku": "s",
            "version": "latest",
            "exactVersion": "2.0",
        },
        "rollbackInfo": {"successfullyRolledbackInstanceCount": 1, "failedRolledbackInstanceCount": 0},
        "error": {"code": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"},
    }
    gallery = {"runningStatus": {"code": "RollingForward"}, "targetImageReference": {"id": "/x/images/app/versions/"}}
    rows = tables.os_upgrade_history([entry, gallery])
    assert rows[0] == {
        "StartTime": "2025-01-01T00:00:00Z",
        "EndTime": "2025-01-01T00:10:00Z",
        "Status": "Completed",
        "StartedBy": "Platform",
        "TargetVersion": "2.0",
        "Successful": 3,
        "Failed": 1,
        "InProgress": 0,
        "Pending": 0,
        "RolledBack": 1,
        "RollbackFailed": 0,
        "Error": "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade",
    }
    assert rows[1]["Status"] == "RollingForward" and rows[1]["TargetVersion"] == "versions"
    assert rows[1]["EndTime"] is None and rows[1]["RolledBack"] is None


def test_publish_line_names_the_scale_sets_and_nothing_when_none() -> None:
    other = "/subscriptions/s/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachineScaleSets/api"
    assert images.upgrades_line({"automaticOSUpgrades": [VMSS_ID, other]}) == (
        "started automatic OS upgrades on: Demo/web, rg2/api"
    )
    assert images.upgrades_line({"automaticOSUpgrades": ["not-an-id"]}) == "started automatic OS upgrades on: not-an-id"
    answers: list[Any] = [{"automaticOSUpgrades": []}, {"automaticOSUpgrades": None}, {"version": "1.0.0"}, None, []]
    for answer in answers:
        assert images.upgrades_line(answer) is None
