"""Automatic OS upgrades, automatic repairs, scale-in and protection through the CLI, against a live server.

``vmss create``/``update`` policy flags (round trip through GET), ``set-orchestration-service-state`` seen in the
instance view, ``rolling-upgrade start`` and ``get-os-upgrade-history``, deferred upgrades and
``approve-rolling-upgrade``, ``extension upgrade``, the publish line, and one-line errors.

Each test uses its own image publisher, so a publish reaches only that test's scale sets.
"""

from __future__ import annotations

import time

from tests.cli.conftest import Result, Run

OS_POLICY = "upgradePolicy.automaticOSUpgradePolicy"


def _group(scaleset: Run, name: str) -> None:
    assert scaleset("group", "create", "-n", name, "-l", "westus", "-o", "none").code == 0


def _publish(scaleset: Run, urn: str) -> Result:
    published = scaleset("image", "publish", "--urn", urn, "--command", "{python} -m app --port {port}")
    assert published.code == 0, published.err
    return published


def _one_line(result: Result, code: int, prefix: str) -> None:
    assert result.code == code, (result.code, result.err)
    assert result.out == "" and result.err.startswith(prefix), result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err


def _until(scaleset: Run, argv: list[str], expression: str, wanted: object, timeout: float = 20.0) -> Result:
    """Run ``argv`` until its JSON output's ``expression`` is ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        result = scaleset(*argv)
        assert result.code == 0, result.err
        if result.q(expression) == wanted or time.monotonic() > deadline:
            assert result.q(expression) == wanted, result.out
            return result
        time.sleep(0.1)


def test_create_and_update_policy_flags_round_trip(scaleset: Run) -> None:
    _group(scaleset, "cli-pol")
    _publish(scaleset, "polcli:app:stable:1.0.0")
    created = scaleset(
        "vmss", "create", "-g", "cli-pol", "-n", "web", "--image", "polcli:app:stable:latest",
        "--instance-count", "2", "--health-extension", "--enable-auto-os-upgrade",
        "--enable-auto-repairs", "--automatic-repairs-grace-period", "30", "--automatic-repairs-action", "restart",
        "--scale-in-policy", "OldestVM", "-o", "none",
    )  # fmt: skip
    assert created.code == 0, created.err
    shown = scaleset("vmss", "show", "-g", "cli-pol", "-n", "web")
    assert shown.q(f"{OS_POLICY}.enableAutomaticOSUpgrade") is True
    assert shown.q("automaticRepairsPolicy") == {"enabled": True, "gracePeriod": "PT30M", "repairAction": "Restart"}
    assert shown.q("scaleInPolicy.rules") == ["OldestVM"]
    view = scaleset("vmss", "get-instance-view", "-g", "cli-pol", "-n", "web", "--query", "orchestrationServices")
    assert view.json() == [{"serviceName": "AutomaticRepairs", "serviceState": "Running"}]

    updated = scaleset(
        "vmss", "update", "-g", "cli-pol", "-n", "web", "--enable-auto-os-upgrade", "false",
        "--automatic-repairs-grace-period", "45", "--automatic-repairs-action", "Reimage",
        "--scale-in-policy", "NewestVM", "--force-deletion",
        "--set", f"{OS_POLICY}.disableAutomaticRollback=true",
    )  # fmt: skip
    assert updated.code == 0, updated.err
    shown = scaleset("vmss", "show", "-g", "cli-pol", "-n", "web")
    assert shown.q(f"{OS_POLICY}.[enableAutomaticOSUpgrade, disableAutomaticRollback]") == [False, True]
    assert shown.q("automaticRepairsPolicy") == {"enabled": True, "gracePeriod": "PT45M", "repairAction": "Reimage"}
    assert shown.q("scaleInPolicy.[rules, forceDeletion]") == [["NewestVM"], True]

    disabled = scaleset("vmss", "update", "-g", "cli-pol", "-n", "web", "--enable-automatic-repairs", "false")
    assert disabled.code == 0, disabled.err
    assert disabled.q("automaticRepairsPolicy.[enabled, gracePeriod]") == [False, "PT45M"]
    view = scaleset("vmss", "get-instance-view", "-g", "cli-pol", "-n", "web", "--query", "orchestrationServices")
    assert view.json() == [{"serviceName": "AutomaticRepairs", "serviceState": "NotRunning"}]


def test_orchestration_service_state_suspend_and_resume(scaleset: Run) -> None:
    _group(scaleset, "cli-orch")
    created = scaleset(
        "vmss", "create", "-g", "cli-orch", "-n", "web", "--image", "Contoso:app:stable:1.0.0",
        "--health-extension", "--automatic-repairs-action", "Replace", "-o", "none",
    )  # fmt: skip
    assert created.code == 0, created.err
    view = ["vmss", "get-instance-view", "-g", "cli-orch", "-n", "web"]
    state = "orchestrationServices[?serviceName=='AutomaticRepairs'].serviceState | [0]"
    assert scaleset(*view).q(state) == "Running"

    for action, expected in (("Suspend", "Suspended"), ("resume", "Running")):
        done = scaleset(
            "vmss", "set-orchestration-service-state", "-g", "cli-orch", "-n", "web",
            "--service-name", "AutomaticRepairs", "--action", action,
        )  # fmt: skip
        assert (done.code, done.out, done.err) == (0, "", ""), done.err  # an action: prints nothing, as az
        assert scaleset(*view).q(state) == expected

    missing = scaleset(
        "vmss", "set-orchestration-service-state", "-g", "cli-orch", "-n", "nope",
        "--service-name", "AutomaticRepairs", "--action", "Suspend",
    )  # fmt: skip
    _one_line(missing, 3, "(ResourceNotFound) ")


def test_rolling_upgrade_start_and_os_upgrade_history(scaleset: Run) -> None:
    _group(scaleset, "cli-osup")
    _publish(scaleset, "osupcli:app:stable:1.0.0")
    created = scaleset(
        "vmss", "create", "-g", "cli-osup", "-n", "web", "--image", "osupcli:app:stable:latest",
        "--instance-count", "3", "--health-extension", "-o", "none",
    )  # fmt: skip
    assert created.code == 0, created.err
    history = scaleset("vmss", "get-os-upgrade-history", "-g", "cli-osup", "-n", "web")
    assert (history.code, history.json()) == (0, []), history.err
    _publish(scaleset, "osupcli:app:stable:2.0.0")

    started = scaleset("vmss", "rolling-upgrade", "start", "-g", "cli-osup", "-n", "web")
    assert (started.code, started.out) == (0, ""), started.err
    progress = started.err.splitlines()  # the live view, one line per change (not a terminal)
    assert progress and "rolling upgrade web: Completed" in progress[-1], started.err
    assert "latest model 3/3 (3 healthy)" in progress[-1]
    versions = scaleset("vmss", "list-instances", "-g", "cli-osup", "-n", "web",
                        "--query", "[].storageProfile.imageReference.exactVersion")  # fmt: skip
    assert versions.json() == ["2.0.0", "2.0.0", "2.0.0"]

    history = scaleset("vmss", "get-os-upgrade-history", "-g", "cli-osup", "-n", "web")
    assert history.code == 0, history.err
    (entry,) = history.json()
    assert entry["runningStatus"]["code"] == "Completed" and entry["startedBy"] == "User"
    assert entry["runningStatus"]["startTime"] and entry["runningStatus"]["endTime"]
    assert entry["targetImageReference"]["exactVersion"] == "2.0.0"
    assert entry["progress"]["successfulInstanceCount"] == 3
    assert entry["rollbackInfo"]["successfullyRolledbackInstanceCount"] == 0
    table = scaleset("vmss", "get-os-upgrade-history", "-g", "cli-osup", "-n", "web", "-o", "table")
    header, _, row = table.out.splitlines()
    assert header.split() == ["StartTime", "EndTime", "Status", "StartedBy", "TargetVersion", "Successful",
                              "Failed", "InProgress", "Pending", "RolledBack", "RollbackFailed", "Error"]  # fmt: skip
    assert row.split()[2:11] == ["Completed", "User", "2.0.0", "3", "0", "0", "0", "0", "0"]

    no_wait = scaleset("vmss", "rolling-upgrade", "start", "-g", "cli-osup", "-n", "web", "--no-wait")
    assert (no_wait.code, no_wait.out, no_wait.err) == (0, "", ""), no_wait.err
    waited = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-osup", "-n", "web", "-o", "none")
    assert waited.code == 0, waited.err

    _one_line(scaleset("vmss", "rolling-upgrade", "start", "-g", "cli-osup", "-n", "nope"), 3, "(ResourceNotFound) ")
    _one_line(scaleset("vmss", "get-os-upgrade-history", "-g", "cli-osup", "-n", "nope"), 3, "(ResourceNotFound) ")


def test_deferred_os_upgrade_waits_for_approval(scaleset: Run) -> None:
    _group(scaleset, "cli-defer")
    _publish(scaleset, "defercli:app:stable:1.0.0")
    created = scaleset(
        "vmss", "create", "-g", "cli-defer", "-n", "web", "--image", "defercli:app:stable:latest",
        "--instance-count", "3", "--health-extension", "-o", "none",
    )  # fmt: skip
    assert created.code == 0, created.err
    deferral = f"{OS_POLICY}.osRollingUpgradeDeferral"
    updated = scaleset(
        "vmss", "update", "-g", "cli-defer", "-n", "web", "--set", f"{deferral}=true", "--query", deferral
    )
    assert (updated.code, updated.json()) == (0, True), updated.err

    nothing = scaleset("vmss", "approve-rolling-upgrade", "-g", "cli-defer", "-n", "web")
    _one_line(nothing, 1, "(OperationNotAllowed) ")  # no upgrade is waiting yet

    _publish(scaleset, "defercli:app:stable:2.0.0")
    assert scaleset("vmss", "rolling-upgrade", "start", "-g", "cli-defer", "-n", "web", "--no-wait").code == 0
    latest = ["vmss", "rolling-upgrade", "get-latest", "-g", "cli-defer", "-n", "web"]
    assert scaleset(*latest).q("runningStatus.code") == "RollingForward"

    one = scaleset("vmss", "approve-rolling-upgrade", "-g", "cli-defer", "-n", "web", "--instance-id", "0")
    assert (one.code, one.out, one.err) == (0, "", ""), one.err
    status = _until(scaleset, latest, "progress.successfulInstanceCount", 1)
    assert status.q("runningStatus.code") == "RollingForward"  # the others still wait for their approval

    rest = scaleset("vmss", "approve-rolling-upgrade", "-g", "cli-defer", "-n", "web", "--instance-ids", "1", "2")
    assert rest.code == 0, rest.err
    waited = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-defer", "-n", "web", "--timeout", "60")
    assert waited.code == 0, waited.err
    assert waited.q("[runningStatus.code, progress.successfulInstanceCount]") == ["Completed", 3]


def test_extension_upgrade(scaleset: Run) -> None:
    _group(scaleset, "cli-ext")
    created = scaleset("vmss", "create", "-g", "cli-ext", "-n", "web", "--image", "Contoso:app:stable:1.0.0",
                       "--health-extension", "-o", "none")  # fmt: skip
    assert created.code == 0, created.err
    upgraded = scaleset("vmss", "extension", "upgrade", "-g", "cli-ext", "-n", "web")
    assert (upgraded.code, upgraded.out) == (0, ""), upgraded.err
    _one_line(scaleset("vmss", "extension", "upgrade", "-g", "cli-ext", "-n", "nope"), 3, "(ResourceNotFound) ")


def test_publish_names_the_automatic_os_upgrades_it_started(scaleset: Run) -> None:
    _group(scaleset, "cli-auto")
    _publish(scaleset, "autocli:app:stable:1.0.0")
    for name, flags in (("web", ["--enable-auto-os-upgrade"]), ("manual", [])):
        created = scaleset(
            "vmss", "create", "-g", "cli-auto", "-n", name, "--image", "autocli:app:stable:latest",
            "--health-extension", *flags, "-o", "none",
        )  # fmt: skip
        assert created.code == 0, created.err

    published = _publish(scaleset, "autocli:app:stable:2.0.0")
    assert published.err == "started automatic OS upgrades on: cli-auto/web\n"
    (started,) = published.q("automaticOSUpgrades")
    assert started.endswith("/resourceGroups/cli-auto/providers/Microsoft.Compute/virtualMachineScaleSets/web")
    waited = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-auto", "-n", "web", "--timeout", "60")
    assert waited.code == 0, waited.err
    history = scaleset("vmss", "get-os-upgrade-history", "-g", "cli-auto", "-n", "web", "--query", "[0].startedBy")
    assert history.json() == "Platform"

    quiet = _publish(scaleset, "otherautocli:app:stable:1.0.0")  # no scale set tracks it
    assert quiet.err == ""


def test_instance_protection_flags(scaleset: Run) -> None:
    _group(scaleset, "cli-prot")
    created = scaleset("vmss", "create", "-g", "cli-prot", "-n", "web", "--image", "Contoso:app:stable:1.0.0",
                       "--instance-count", "2", "-o", "none")  # fmt: skip
    assert created.code == 0, created.err
    both = scaleset(
        "vmss", "update", "-g", "cli-prot", "-n", "web", "--instance-id", "0", "--protect-from-scale-in", "true",
        "--protect-from-scale-set-actions", "true", "--query", "protectionPolicy",
    )  # fmt: skip
    assert both.code == 0, both.err
    assert both.json() == {"protectFromScaleIn": True, "protectFromScaleSetActions": True}

    refused = scaleset(
        "vmss", "update", "-g", "cli-prot", "-n", "web", "--instance-id", "1", "--protect-from-scale-in", "false",
        "--protect-from-scale-set-actions", "true",
    )  # fmt: skip
    _one_line(refused, 1, "(InvalidParameter) ")
    assert "protectFromScaleSetActions" in refused.err
    shown = scaleset("vmss", "show", "-g", "cli-prot", "-n", "web", "--instance-id", "1", "--query", "protectionPolicy")
    assert shown.json() == {"protectFromScaleIn": False, "protectFromScaleSetActions": False}


def test_invalid_calls_are_one_line(scaleset: Run) -> None:
    _group(scaleset, "cli-bad")
    no_health = scaleset("vmss", "create", "-g", "cli-bad", "-n", "web", "--image", "Contoso:app:stable:latest",
                         "--enable-auto-os-upgrade")  # fmt: skip
    _one_line(no_health, 1, "(BadRequest) Automatic OS Upgrade is not supported")
    assert scaleset("vmss", "create", "-g", "cli-bad", "-n", "web", "--image", "Contoso:app:stable:1.0.0",
                    "--health-extension", "-o", "none").code == 0  # fmt: skip
    short = scaleset("vmss", "update", "-g", "cli-bad", "-n", "web", "--automatic-repairs-grace-period", "5")
    _one_line(short, 1, "(InvalidParameter) ")
    assert "gracePeriod" in short.err
    pinned = scaleset("vmss", "update", "-g", "cli-bad", "-n", "web", "--enable-auto-os-upgrade")
    _one_line(pinned, 1, "(BadRequest) ")  # the image is pinned to 1.0.0, not latest

    usage = [
        ("vmss", "update", "-g", "cli-bad", "-n", "web", "--enable-automatic-repairs", "false",
         "--automatic-repairs-action", "Restart"),
        ("vmss", "update", "-g", "cli-bad", "-n", "web", "--enable-automatic-repairs"),
        ("vmss", "update", "-g", "cli-bad", "-n", "web", "--instance-id", "0", "--scale-in-policy", "OldestVM"),
        ("vmss", "create", "-g", "cli-bad", "-n", "web", "--enable-auto-repairs", "false",
         "--automatic-repairs-grace-period", "30"),
        ("vmss", "approve-rolling-upgrade", "-g", "cli-bad", "-n", "web", "--instance-id", "0",
         "--instance-ids", "1"),
        ("vmss", "set-orchestration-service-state", "-g", "cli-bad", "-n", "web", "--service-name",
         "AutomaticRepairs", "--action", "Pause"),
    ]  # fmt: skip
    for argv in usage:
        result = scaleset(*argv)
        assert result.code == 2 and result.out == "", (argv, result.err)
        assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    still = scaleset("vmss", "show", "-g", "cli-bad", "-n", "web")
    assert still.q("[automaticRepairsPolicy, scaleInPolicy.rules]") == [None, ["Default"]]  # nothing was sent
