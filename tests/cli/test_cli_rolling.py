"""Rollouts through the CLI: the live view, ``rolling-upgrade wait``'s exit codes, faults that make a rollout fail.

Faults apply to every scale set on the server, so each test uses its own image versions.
"""

from __future__ import annotations

from tests.cli.conftest import Run

IMAGE_SET = "virtualMachineProfile.storageProfile.imageReference.version"


def _rolling_set(scaleset: Run, group: str, *extra: str, capacity: int = 4) -> None:
    assert scaleset("group", "create", "-n", group, "-l", "westus", "-o", "none").code == 0
    created = scaleset(
        "vmss", "create", "-g", group, "-n", "web", "--image", "Contoso:app:stable:1.0.0",
        "--instance-count", str(capacity), "--upgrade-policy-mode", "Rolling", "--health-extension",
        "--max-batch-instance-percent", "25", *extra, "-o", "none",
    )  # fmt: skip
    assert created.code == 0, created.err


def test_update_shows_progress_and_wait_exits_0_on_completed(scaleset: Run) -> None:
    # PT2M between batches (0.2 s of wall time here) keeps the rollout visible to a slow first look
    _rolling_set(scaleset, "cli-roll", "--pause-time-between-batches", "PT2M")
    never = scaleset("vmss", "rolling-upgrade", "get-latest", "-g", "cli-roll", "-n", "web")
    assert never.code == 3 and never.err.startswith("(NotFound) ")  # no rollout has run yet
    updated = scaleset("vmss", "update", "-g", "cli-roll", "-n", "web", "--set", f"{IMAGE_SET}=1.1.0")
    assert updated.code == 0, updated.err
    assert updated.q(IMAGE_SET) == "1.1.0"
    progress = updated.err.splitlines()  # not a terminal: one line each time something changes
    assert any("RollingForward" in line and "batch ≈" in line for line in progress), updated.err
    assert "rolling upgrade web: Completed" in progress[-1] and "latest model 4/4 (4 healthy)" in progress[-1]

    waited = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-roll", "-n", "web")
    assert waited.code == 0
    assert waited.q("runningStatus.code") == "Completed"
    assert waited.q("progress.successfulInstanceCount") == 4
    latest = scaleset("vmss", "rolling-upgrade", "get-latest", "-g", "cli-roll", "-n", "web", "-o", "table")
    header, _, row = latest.out.splitlines()
    assert header.split()[:3] == ["Status", "StartTime", "LastAction"]
    assert row.split()[0] == "Completed" and row.split()[3:7] == ["4", "0", "0", "0"]


def test_fault_makes_the_rollout_fault_and_wait_exits_1(scaleset: Run) -> None:
    _rolling_set(scaleset, "cli-fault")
    added = scaleset("fault", "add", "--kind", "never_healthy", "--image-version", "6.6.6")
    assert added.code == 0, added.err
    fault_id = added.q("id")
    assert added.q("[kind, image_version]") == ["never_healthy", "6.6.6"]
    listed = scaleset("fault", "list", "--query", f"[?id=='{fault_id}'].kind")
    assert listed.json() == ["never_healthy"]
    try:
        updated = scaleset("vmss", "update", "-g", "cli-fault", "-n", "web", "--set", f"{IMAGE_SET}=6.6.6")
        assert updated.code == 1 and updated.out == ""
        error_line = updated.err.splitlines()[-1]
        assert error_line.startswith("(MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade) ")
        assert "Faulted" in updated.err, updated.err  # the live view saw it

        waited = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-fault", "-n", "web")
        assert waited.code == 1
        assert waited.q("runningStatus.code") == "Faulted"
        assert waited.q("error.code") == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
        assert waited.err.splitlines()[-1].startswith("(MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade)")
    finally:
        cleared = scaleset("fault", "clear", "--id", fault_id)
    assert cleared.code == 0 and cleared.json() == {"removed": 1}
    assert scaleset("fault", "list", "--query", f"[?id=='{fault_id}']").json() == []
    assert scaleset("fault", "clear", "--id", fault_id).code == 3


def test_cancel_then_wait_exits_1_and_timeout_is_bounded(scaleset: Run) -> None:
    # PT60M between batches is six seconds of wall time here: long enough to cancel in and to time out in.
    _rolling_set(scaleset, "cli-cancel", "--pause-time-between-batches", "PT60M")
    started = scaleset("vmss", "update", "-g", "cli-cancel", "-n", "web", "--set", f"{IMAGE_SET}=1.2.0", "--no-wait")
    assert (started.code, started.out, started.err) == (0, "", "")
    running = scaleset("vmss", "rolling-upgrade", "get-latest", "-g", "cli-cancel", "-n", "web",
                       "--query", "runningStatus.code", "-o", "tsv")  # fmt: skip
    assert running.out == "RollingForward\n"
    timed_out = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-cancel", "-n", "web", "--timeout", "0.3")
    assert timed_out.code == 1 and timed_out.out == ""
    assert timed_out.err.splitlines()[-1].startswith("(OperationTimedOut) ")

    assert scaleset("vmss", "rolling-upgrade", "cancel", "-g", "cli-cancel", "-n", "web").code == 0
    waited = scaleset("vmss", "rolling-upgrade", "wait", "-g", "cli-cancel", "-n", "web", "-o", "none")
    assert waited.code == 1 and waited.out == ""
    assert waited.err.splitlines()[-1].startswith("(RollingUpgradeCancelled) ")
    status = scaleset("vmss", "rolling-upgrade", "get-latest", "-g", "cli-cancel", "-n", "web")
    assert status.q("[runningStatus.code, runningStatus.lastAction]") == ["Cancelled", "Cancel"]


def test_health_injection_and_scale_out_on_a_rolling_set(scaleset: Run) -> None:
    _rolling_set(scaleset, "cli-health", capacity=2)
    answered = scaleset("fault", "health", "-g", "cli-health", "-n", "web", "--instance-ids", "1", "--answer",
                        "unhealthy")  # fmt: skip
    assert answered.code == 0, answered.err
    assert answered.json() == {"instanceIds": ["1"], "answer": "unhealthy"}
    health = scaleset("vmss", "list-instances", "-g", "cli-health", "-n", "web", "--expand", "instanceView",
                      "--query", "[].instanceView.vmHealth.status.code")  # fmt: skip
    assert health.json() == ["HealthState/healthy", "HealthState/unhealthy"]
    missing = scaleset("fault", "health", "-g", "cli-health", "-n", "nope", "--answer", "healthy")
    assert missing.code == 3 and missing.err.startswith("(ResourceNotFound) ")

    scaled = scaleset("vmss", "scale", "-g", "cli-health", "-n", "web", "--new-capacity", "3",
                      "--query", "sku.capacity")  # fmt: skip
    assert scaled.code == 0 and scaled.json() == 3
    assert "waiting for a rollout to start" in scaled.err  # a Rolling set: the view ran, but scale-out is no rollout
