"""Scale-in, instance protection and ``forceDeletion`` (reference §1.6, §2.7, §5.4, §5.5), through the services
facade in virtual time; docs/semantics.md "Scale-in, protection and forceDeletion" states what these hold.

Timelines come from scenario files; what a scenario file cannot say (``forceDeletion``, VM-level actions) is called
on ``run.services`` between two ``run.run(until=...)``, as the API would.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.scenarios.test_rolling_behaviours import (
    FIXED,
    NEW,
    OLD,
    batches,
    events,
    instances,
    new_image,
    opened,
    policy,
    scale_set,
    scenario,
    simulate,
    status,
)

from scaleset.domain.actions import PowerAction
from scaleset.domain.errors import DomainError
from scaleset.sim.report import build_report
from scaleset.sim.runner import ScenarioRun

DELETE_RANGE = [10, 30]  # simulated delete durations: forced ones take the minimum, 10 s


def ids(run: ScenarioRun) -> tuple[str, str, str]:
    s = run.scenario
    return s.subscription, s.resourceGroup, s.scaleSetName


@contextmanager
def running(tmp_path: Path, doc: dict[str, Any], *, until: float) -> Iterator[ScenarioRun]:
    """The scenario, run to ``until`` seconds (the set created and settled), ready for calls on its services."""
    with opened(tmp_path, doc) as run:
        run.run(until=until)
        yield run


def rows(run: ScenarioRun) -> dict[int, dict[str, Any]]:
    return instances(build_report(run))


def manual(capacity: int = 6, **extra: Any) -> dict[str, Any]:
    body = scale_set(capacity=capacity, mode="Manual")
    body["properties"].update(extra)
    return body


# ---------------------------------------------------------------------------------------------------- §5.4 / §5.5


@pytest.mark.parametrize("rule", ["Default", "OldestVM", "NewestVM"])
def test_scale_in_never_removes_protected_instances_and_the_set_stays_above_capacity(tmp_path: Path, rule: str) -> None:
    """Protection wins over capacity: the set keeps its protected instances and stays larger than ``sku.capacity``
    (which reads as asked) until an instance loses its protection; then the excess goes at once."""
    doc = scenario(
        manual(6, scaleInPolicy={"rules": [rule]}),
        [
            {"at": "PT5M", "protect": {"instances": [3, 4, 5], "protectFromScaleIn": True}},
            {
                "at": "PT5M",
                "protect": {"instances": [0], "protectFromScaleIn": True, "protectFromScaleSetActions": True},
            },
            {"at": "PT10M", "scale": 1},
        ],
    )
    with running(tmp_path, doc, until=20 * 60) as run:
        (scale_in,) = events(build_report(run), "scaleIn")
        assert sorted(scale_in["instanceIds"]) == ["1", "2"]
        assert scale_in["blockedByProtection"] == 3
        assert sorted(rows(run)) == [0, 3, 4, 5]
        assert run.services.get_scale_set(*ids(run))["sku"]["capacity"] == 1

        run.services.set_protection(*ids(run), "4", protect_from_scale_in=False, protect_from_scale_set_actions=False)
        run.run(until=25 * 60)
        assert sorted(rows(run)) == [0, 3, 5]
        assert [e["instanceIds"] for e in events(build_report(run), "scaleIn")][1:] == [["4"]]


def test_prioritize_unhealthy_vms_still_never_takes_a_protected_unhealthy_instance(tmp_path: Path) -> None:
    doc = scenario(
        manual(5, scaleInPolicy={"rules": ["Default"], "prioritizeUnhealthyVMs": True}),
        [
            {"at": "PT5M", "set_health": {"instances": [1, 2], "answer": "unhealthy"}},
            {"at": "PT5M", "protect": {"instances": [2]}},
            {"at": "PT10M", "scale": 3},
        ],
    )
    report = simulate(tmp_path, doc, look_at=30 * 60)
    assert events(report, "scaleIn")[0]["instanceIds"] == ["1", "4"]  # unhealthy 1 first; 2 is protected
    assert sorted(instances(report)) == [0, 2, 3]


def test_explicit_delete_of_protected_instances_deletes_them(tmp_path: Path) -> None:
    """§5.4: protection does not cover user operations on the instance, an explicit delete included."""
    doc = scenario(
        manual(5),
        [
            {"at": "PT5M", "protect": {"instances": [1]}},
            {
                "at": "PT5M",
                "protect": {"instances": [2], "protectFromScaleIn": True, "protectFromScaleSetActions": True},
            },
            {"at": "PT10M", "delete_instances": [1, 2]},
        ],
    )
    report = simulate(tmp_path, doc, look_at=30 * 60)
    assert sorted(instances(report)) == [0, 3, 4]
    assert events(report, "deleteInstances")[0]["instanceIds"] == ["1", "2"]
    assert events(report, "deleteInstances")[0]["capacity"] == 3
    assert events(report, "scaleIn") == []  # the capacity followed the delete: nothing else goes


def test_set_wide_actions_skip_protected_instances_but_vm_actions_do_not(tmp_path: Path) -> None:
    """Set-wide power actions, reimage and manualupgrade pass instances protected from scale-set actions by, even
    when named; the same actions on the VM itself (VM-level APIs) do act on them."""
    doc = scenario(
        manual(4),
        [
            {
                "at": "PT5M",
                "protect": {"instances": [1], "protectFromScaleIn": True, "protectFromScaleSetActions": True},
            },
            {"at": "PT6M", "protect": {"instances": [2], "protectFromScaleIn": True}},  # scale-in only: acted on
            new_image("PT10M"),
        ],
    )
    with running(tmp_path, doc, until=15 * 60) as run:
        services, where = run.services, ids(run)
        services.power(*where, ["*"], PowerAction.POWER_OFF)
        run.run(until=20 * 60)
        assert {i: r["powerState"] for i, r in rows(run).items()} == {
            0: "stopped",
            1: "running",
            2: "stopped",
            3: "stopped",
        }
        assert events(build_report(run), "powerOff")[-1]["skippedProtected"] == ["1"]
        services.power(*where, None, PowerAction.START)
        services.power(*where, ["1"], PowerAction.DEALLOCATE)  # named, still a scale-set action: skipped
        run.run(until=25 * 60)
        assert {r["powerState"] for r in rows(run).values()} == {"running"}

        services.update_instances(*where, ["*"])
        services.reimage(*where, ["1", "3"])
        run.run(until=35 * 60)
        latest = {i: (r["imageVersion"], r["latestModelApplied"]) for i, r in rows(run).items()}
        assert latest == {0: (NEW, True), 1: (OLD, False), 2: (NEW, True), 3: (NEW, True)}

        # The VM-level actions: a user operation on the instance itself.
        services.power(*where, ["1"], PowerAction.POWER_OFF, scale_set_action=False)
        run.run(until=40 * 60)
        assert rows(run)[1]["powerState"] == "stopped"
        services.reimage(*where, ["1"], scale_set_action=False)
        run.run(until=50 * 60)
        assert (rows(run)[1]["imageVersion"], rows(run)[1]["latestModelApplied"]) == (NEW, True)
        assert rows(run)[1]["powerState"] == "running"  # a reimage starts the instance
        assert rows(run)[1]["protectFromScaleSetActions"] is True  # and keeps its protection


def test_protect_from_scale_set_actions_needs_protect_from_scale_in(tmp_path: Path) -> None:
    with running(tmp_path, scenario(manual(2), []), until=5 * 60) as run:
        with pytest.raises(DomainError) as refused:
            run.services.set_protection(
                *ids(run), "0", protect_from_scale_in=False, protect_from_scale_set_actions=True
            )
        assert (refused.value.status, refused.value.code) == (400, "InvalidParameter")
        assert refused.value.target == "properties.protectionPolicy.protectFromScaleIn"
        assert rows(run)[0]["protectFromScaleSetActions"] is False


# ---------------------------------------------------------------------------------------------------- forceDeletion


def _steps_until_gone(run: ScenarioRun, instance_ids: set[int], *, start: float, limit: float) -> float:
    """Step the run second by second from ``start`` and return the offset at which every one of ``instance_ids``
    is gone."""
    t = start
    while t <= limit:
        run.run(until=t)
        if not instance_ids & set(rows(run)):
            return t - start
        t += 1.0
    raise AssertionError(f"{sorted(instance_ids)} still there {limit - start:g} s later")


@pytest.mark.parametrize("force", [False, True])
def test_scale_in_with_force_deletion_forces_its_deletes(tmp_path: Path, force: bool) -> None:
    doc = scenario(
        manual(6, scaleInPolicy={"rules": ["Default"], "forceDeletion": force}),
        [{"at": "PT10M", "scale": 2}],
        seed=3,
        delete=DELETE_RANGE,
    )
    with running(tmp_path, doc, until=10 * 60 - 1) as run:
        took = _steps_until_gone(run, {2, 3, 4, 5}, start=10 * 60, limit=11 * 60)
        (scale_in,) = events(build_report(run), "scaleIn")
    assert scale_in["forceDeletion"] is force
    assert scale_in["policy"]["forceDeletion"] is force
    if force:
        assert took == 10  # delete.min
    else:
        assert took > 10  # the slowest of four draws from [10, 30]


@pytest.mark.parametrize("force", [False, True])
def test_delete_instances_with_force_deletion(tmp_path: Path, force: bool) -> None:
    with running(tmp_path, scenario(manual(6), [], seed=3, delete=DELETE_RANGE), until=10 * 60) as run:
        run.services.delete_instances(*ids(run), ["1", "2", "4"], force=force)
        took = _steps_until_gone(run, {1, 2, 4}, start=10 * 60, limit=11 * 60)
        (deleted,) = events(build_report(run), "deleteInstances")
        assert run.services.get_scale_set(*ids(run))["sku"]["capacity"] == 3
    assert deleted["forceDeletion"] is force
    assert (took == 10) is force


@pytest.mark.parametrize("force", [False, True])
def test_delete_scale_set_with_force_deletion(tmp_path: Path, force: bool) -> None:
    with running(tmp_path, scenario(manual(4), [], seed=3, delete=DELETE_RANGE), until=10 * 60) as run:
        op = run.services.delete_scale_set(*ids(run), force=force)
        took = _steps_until_gone(run, {0, 1, 2, 3}, start=10 * 60, limit=11 * 60)
        assert run.engine.states() == []
        assert run.services.operation(op.operation_id).status.value == "Succeeded"
        (deleting,) = events(build_report(run), "scaleSetDeleting")
    assert deleting["forceDeletion"] is force
    assert (took == 10) is force


def test_forced_delete_does_not_hurry_a_delete_already_under_way(tmp_path: Path) -> None:
    with running(tmp_path, scenario(manual(3), [], seed=3, delete=DELETE_RANGE), until=10 * 60) as run:
        run.services.delete_instances(*ids(run), ["2"])
        run.run(until=10 * 60 + 1)
        run.services.delete_scale_set(*ids(run), force=True)
        run.run(until=10 * 60 + 11)
        # 0 and 1 were forced (gone after 10 s); 2 finishes its graceful delete (22 s with this seed)
        assert {i: r["provisioningState"] for i, r in rows(run).items()} == {2: "Deleting"}
        run.run(until=10 * 60 + 30)
        assert run.engine.states() == []


# ---------------------------------------------------------------------------------------------------- with a rollout


def _rolling(capacity: int = 10, timeline: list[dict[str, Any]] | None = None, **overrides: Any) -> dict[str, Any]:
    return scenario(scale_set(capacity=capacity, policy=policy(**overrides)), timeline or [new_image("PT10M")], **FIXED)


def test_scale_out_during_a_rollout_creates_instances_on_the_latest_model(tmp_path: Path) -> None:
    """Scaled from 10 to 15 during batch 1: the five new instances start on the rollout's model, are never batched
    nor counted by the rollout, but make the set larger, so later batches are 20% of 15."""
    doc = _rolling(timeline=[new_image("PT10M"), {"at": "PT11M", "scale": 15}])
    report = simulate(tmp_path, doc)

    assert events(report, "scaleOut")[-1]["instanceIds"] == ["10", "11", "12", "13", "14"]
    assert batches(report) == [[0, 1], [2, 3, 4], [5, 6, 7], [8, 9]]  # the new ones are not in the rollout
    assert [e["total"] for e in events(report, "preBatchCheck")] == [10, 15, 15, 15]
    assert status(report)["runningStatus"]["code"] == "Completed"
    assert status(report)["progress"]["successfulInstanceCount"] == 10
    rows_ = instances(report)
    assert sorted(rows_) == list(range(15))
    assert all(row["imageVersion"] == NEW and row["latestModelApplied"] for row in rows_.values())


def test_scale_in_during_a_rollout_never_takes_the_batch_in_flight(tmp_path: Path) -> None:
    """The batch in flight at PT11M is [0, 1]; a scale-in to 1 takes every other instance at once and the last
    excess instance only once the batch has finished."""
    doc = _rolling(timeline=[new_image("PT10M"), {"at": "PT11M", "scale": 1}])
    with running(tmp_path, doc, until=11 * 60) as run:
        report = build_report(run)
        assert batches(report) == [[0, 1]]
        first = events(report, "scaleIn")[0]
        assert sorted(first["instanceIds"], key=int) == [str(i) for i in range(2, 10)]
        assert first["blockedByProtection"] == 1  # the batch in flight holds one instance above capacity
        with pytest.raises(DomainError) as refused:
            run.services.delete_instances(*ids(run), ["1"])
        assert (refused.value.status, refused.value.code) == (409, "OperationNotAllowed")
        run.run()
        report = build_report(run)

    later = events(report, "scaleIn")[1]
    assert later["instanceIds"] == ["1"]
    assert later["offsetSeconds"] == at_batch_end(report)  # in the pass that closes the batch
    assert sorted(instances(report)) == [0]
    assert status(report)["runningStatus"]["code"] == "Completed"


def at_batch_end(report: dict[str, Any]) -> float:
    offset: float = events(report, "batchCompleted")[0]["offsetSeconds"]
    return offset


def test_scale_in_between_batches_can_take_upgraded_and_pending_instances(tmp_path: Path) -> None:
    """In the pause after batch 1 ([0, 1] upgraded) nothing is in flight: OldestVM takes the upgraded 0 and 1 and
    pending 2; the rollout goes on with what is left, in batches sized by the smaller set (20% of 7 is 1), and
    counts what it upgraded."""
    body = scale_set(capacity=10, policy=policy(pauseTimeBetweenBatches="PT5M"))
    body["properties"]["scaleInPolicy"] = {"rules": ["OldestVM"]}
    doc = scenario(body, [new_image("PT10M"), {"at": "PT14M", "scale": 7}], **FIXED)
    report = simulate(tmp_path, doc)

    assert events(report, "scaleIn")[0]["instanceIds"] == ["0", "1", "2"]
    assert batches(report) == [[0, 1], [3], [4], [5], [6], [7], [8], [9]]
    assert status(report)["runningStatus"]["code"] == "Completed"
    assert status(report)["progress"]["successfulInstanceCount"] == 9  # 0 and 1 count: this rollout upgraded them
    assert sorted(instances(report)) == list(range(3, 10))


def test_scale_in_during_a_surge_batch_spares_the_surge_instances_and_the_ones_they_replace(tmp_path: Path) -> None:
    doc = _rolling(timeline=[new_image("PT10M"), {"at": "PT11M", "scale": 4}], maxSurge=True)
    with running(tmp_path, doc, until=11 * 60) as run:
        report = build_report(run)
        (started,) = events(report, "batchStarted")
        assert started["instanceIds"] == ["0", "1"] and started["surgeInstanceIds"] == ["10", "11"]
        # 0-9 count (10 and 11 are extra by design); 0 and 1 are being replaced: the six highest others go.
        assert events(report, "scaleIn")[0]["instanceIds"] == ["9", "8", "7", "6", "5", "4"]
        run.run()
        report = build_report(run)

    rows_ = instances(report)
    assert sorted(rows_) == [10, 11, 12, 13]  # 10 and 11 replaced 0 and 1, then 12 and 13 replaced 2 and 3
    assert all(row["imageVersion"] == NEW for row in rows_.values())
    assert status(report)["runningStatus"]["code"] == "Completed"
