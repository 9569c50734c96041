"""Capacity planning (``domain/capacity.py``): scale-out on the latest model, scale-in by the policy, around a
rolling upgrade's batch in flight, with protection and ``forceDeletion``."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scaleset.domain.actions import Create, Delete
from scaleset.domain.capacity import plan_capacity
from scaleset.domain.health import HealthState
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.resources import ScaleInPolicy
from scaleset.domain.upgrade.status import Phase, Rollout


def vm(instance_id: int, zone: str | None = None, *, version: int = 1, **fields: Any) -> InstanceView:
    view = InstanceView(
        instance_id,
        zone,
        instance_id % 5,
        version,
        float(instance_id),
        ProvisioningState.SUCCEEDED,
        PowerState.RUNNING,
        HealthState.HEALTHY,
    )
    return dataclasses.replace(view, **fields) if fields else view


def rollout(*, batch: list[int], surge: dict[int, int] | None = None, phase: Phase = Phase.BATCH) -> Rollout:
    return Rollout(
        rollout_id="r",
        set_id="s",
        policy={},
        target_version=2,
        started_at=0.0,
        last_action_at=0.0,
        phase=phase,
        batch=batch,
        surge_pairs=surge or {},
    )


def plan(views: list[InstanceView], capacity: int, *, policy: ScaleInPolicy | None = None, **options: Any) -> Any:
    return plan_capacity(
        views,
        capacity=capacity,
        model_version=options.pop("model_version", 2),
        next_instance_id=options.pop("next_instance_id", max((v.instance_id for v in views), default=-1) + 1),
        zones=options.pop("zones", None),
        fault_domains=None,
        scale_in_policy=policy or ScaleInPolicy(),
        rollout=options.pop("rollout", None),
        **options,
    )


def deletes(result: Any) -> list[tuple[int, bool]]:
    return [(a.instance_id, a.force) for a in result.actions if isinstance(a, Delete)]


@pytest.mark.parametrize("force", [False, True])
def test_scale_in_deletes_carry_force_deletion(force: bool) -> None:
    result = plan([vm(i) for i in range(5)], 3, policy=ScaleInPolicy(forceDeletion=force))
    assert deletes(result) == [(4, force), (3, force)]
    assert all(a.reason == "scaleIn" for a in result.actions if isinstance(a, Delete))
    (event,) = result.events
    assert event.kind == "scaleIn"
    assert event.data["forceDeletion"] is force
    assert event.data["instanceIds"] == ["4", "3"]


def test_scale_out_creates_on_the_latest_model() -> None:
    result = plan([vm(0, version=1), vm(1, version=1)], 4, model_version=7)
    created = [a for a in result.actions if isinstance(a, Create)]
    assert [(a.instance_id, a.version, a.reason) for a in created] == [(2, 7, "scaleOut"), (3, 7, "scaleOut")]


@pytest.mark.parametrize("flag", ["protect_from_scale_in", "protect_from_scale_set_actions"])
def test_protection_leaves_the_set_above_capacity(flag: str) -> None:
    views = [vm(i, **({flag: True, "protect_from_scale_in": True} if i < 3 else {})) for i in range(4)]
    result = plan(views, 1)
    assert deletes(result) == [(3, False)]  # three protected instances stay: the set keeps 3 for a capacity of 1
    assert result.events[0].data["blockedByProtection"] == 2
    everything_protected = plan(views[:3], 1)
    assert everything_protected.actions == [] and everything_protected.events == []


def test_scale_in_never_takes_the_in_place_batch_in_flight() -> None:
    views = [vm(i) for i in range(6)]
    result = plan(views, 2, rollout=rollout(batch=[4, 5]))
    assert sorted(i for i, _ in deletes(result)) == [0, 1, 2, 3]
    # Asked for fewer than the batch: what is left is the batch, until it finishes.
    result = plan(views, 1, rollout=rollout(batch=[4, 5]))
    assert sorted(i for i, _ in deletes(result)) == [0, 1, 2, 3]
    assert result.events[0].data["blockedByProtection"] == 1


@pytest.mark.parametrize("field", ["rolling_back", "reverting"])
def test_scale_in_never_takes_an_instance_being_rolled_back(field: str) -> None:
    # A faulted rollout rolling instances 4 and 5 back (on breach, or an OS upgrade's per-instance rollback).
    views = [vm(i) for i in range(6)]
    faulted = rollout(batch=[], phase=Phase.ROLLING_BACK if field == "rolling_back" else Phase.DONE)
    setattr(faulted, field, [4, 5])
    result = plan(views, 3, rollout=faulted)
    chosen = {i for i, _ in deletes(result)}
    assert len(chosen) == 3 and not chosen & {4, 5}


def test_scale_in_never_takes_a_surge_instance_or_the_instance_it_replaces() -> None:
    # Instances 0-3; surge instances 4 and 5 replace 3 and 2. The surge instances are not counted.
    views = [vm(i, version=2 if i >= 4 else 1) for i in range(6)]
    result = plan(views, 2, rollout=rollout(batch=[4, 5], surge={4: 3, 5: 2}))
    assert deletes(result) == [(1, False), (0, False)]


def test_scale_in_between_batches_may_take_any_unprotected_instance() -> None:
    # In a pause (or between batches) nothing is in flight: upgraded and pending instances alike can go.
    views = [vm(i, version=2 if i < 2 else 1) for i in range(4)]
    result = plan(views, 1, rollout=rollout(batch=[], phase=Phase.PAUSE))
    assert deletes(result) == [(3, False), (2, False), (1, False)]


def test_a_finished_rollout_excludes_nothing() -> None:
    done = rollout(batch=[2, 3], phase=Phase.DONE)  # a stale record of a batch: the rollout is over
    assert deletes(plan([vm(i) for i in range(4)], 2, rollout=done)) == [(3, False), (2, False)]


def test_instances_deleted_by_the_same_pass_are_not_counted_twice() -> None:
    views = [vm(i) for i in range(4)]
    assert deletes(plan(views, 3, deleting=frozenset({1}))) == []
    assert deletes(plan(views, 2, deleting=frozenset({1}))) == [(3, False)]
