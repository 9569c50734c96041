"""The rolling-upgrade planner, driven directly: hand-built instance views and rollout records, one pass at a time.

Every expectation below follows from reference §2.5 and the planner's documented algorithm; the numbers are worked
out by hand in the comments.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scaleset.domain import errors
from scaleset.domain.actions import Create, Delete, Upgrade, UpgradeReason
from scaleset.domain.health import HealthState, ProbeSettings
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.resources import RollingUpgradePolicy
from scaleset.domain.upgrade.rolling import (
    HEALTH_WAIT_SECONDS,
    POLL_SECONDS,
    UNREACHABLE_DETAIL,
    RollingPass,
    Target,
    plan_rolling,
    request_cancel,
    start_rollout,
)
from scaleset.domain.upgrade.status import Phase, RollingStatusCode, Rollout

NOW = 1000.0
OLD = 1
NEW = 2


# --------------------------------------------------------------------------------------------------------- helpers


def vm(
    instance_id: int,
    *,
    zone: str | None = None,
    fault_domain: int = 0,
    version: int = OLD,
    health: HealthState | None = HealthState.HEALTHY,
    provisioning: ProvisioningState = ProvisioningState.SUCCEEDED,
    power: PowerState = PowerState.RUNNING,
    ready_at: float | None = 0.0,
    eta: float | None = None,
    stable_until: float | None = None,
    error_message: str | None = None,
    protected: bool = False,
) -> InstanceView:
    return InstanceView(
        instance_id=instance_id,
        zone=zone,
        fault_domain=fault_domain,
        model_version=version,
        created_at=float(instance_id),
        provisioning=provisioning,
        power=power,
        health=health,
        ready_at=ready_at,
        eta=eta,
        stable_until=stable_until,
        error_message=error_message,
        protect_from_scale_set_actions=protected,
    )


def fleet(count: int, **fields: Any) -> list[InstanceView]:
    return [vm(i, **fields) for i in range(count)]


def zoned(per_zone: int, zones: tuple[str, ...] = ("1", "2", "3")) -> list[InstanceView]:
    """Zones in blocks: with per_zone=3, zone 1 holds 0-2, zone 2 holds 3-5, zone 3 holds 6-8."""
    return [
        vm(z * per_zone + k, zone=zone, fault_domain=k % 2) for z, zone in enumerate(zones) for k in range(per_zone)
    ]


def policy(**fields: Any) -> RollingUpgradePolicy:
    return RollingUpgradePolicy(**fields)


def new_rollout(pol: RollingUpgradePolicy, **record: Any) -> Rollout:
    rollout = start_rollout("r1", "set1", policy=pol, target_version=NEW, now=NOW - 1)
    return rollout.model_copy(update=record) if record else rollout


def target(next_instance_id: int = 100, probe: ProbeSettings | None = None) -> Target:
    return Target(version=NEW, next_instance_id=next_instance_id, probe=probe)


ALIASES = {"version": "model_version", "protected": "protect_from_scale_set_actions"}


def replace(views: list[InstanceView], ids: list[int] | range, **fields: Any) -> list[InstanceView]:
    """The views with ``fields`` changed on the listed instances (``version`` and ``protected`` as in :func:`vm`)."""
    renamed = {ALIASES.get(name, name): value for name, value in fields.items()}
    wanted = set(ids)
    return [dataclasses.replace(v, **renamed) if v.instance_id in wanted else v for v in views]


def upgraded(views: list[InstanceView], ids: list[int] | range, **fields: Any) -> list[InstanceView]:
    """The views after the listed instances finished an upgrade to NEW (healthy unless told otherwise)."""
    return replace(views, ids, **{"version": NEW, "ready_at": NOW, **fields})


def upgrade_ids(plan: RollingPass) -> list[int]:
    return [a.instance_id for a in plan.actions if isinstance(a, Upgrade)]


def event(plan: RollingPass, kind: str) -> dict[str, Any]:
    found = [e.data for e in plan.events if e.kind == kind]
    assert len(found) == 1, f"expected one {kind!r} event, got {[e.kind for e in plan.events]}"
    return found[0]


def in_batch(pol: RollingUpgradePolicy, batch: list[int], *, done: list[int] | None = None, **record: Any) -> Rollout:
    """A rollout with ``batch`` in flight (in place) after ``done`` succeeded in earlier batches."""
    earlier = done or []
    fields: dict[str, Any] = {
        "phase": Phase.BATCH,
        "batch_number": 2 if earlier else 1,
        "batch": list(batch),
        "batch_started_at": NOW - 60,
        "attempted": [*earlier, *batch],
        "succeeded": list(earlier),
        "previous_versions": dict.fromkeys([*earlier, *batch], OLD),
    }
    return new_rollout(pol, **{**fields, **record})


# ------------------------------------------------------------------------------------------------- first batch


@pytest.mark.parametrize(
    ("views", "fields", "expected"),
    [
        pytest.param(fleet(10), {}, [0, 1], id="docs-20pct-of-10"),
        pytest.param(fleet(7), {}, [0], id="7-at-20pct-floors-to-1"),
        pytest.param(fleet(3), {}, [0], id="3-at-20pct-min-1"),
        pytest.param(fleet(1), {}, [0], id="single"),
        pytest.param(
            fleet(10), {"maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 100}, [0, 1, 2, 3, 4], id="50pct"
        ),
        pytest.param(
            fleet(3),
            {"maxBatchInstancePercent": 100, "maxUnhealthyInstancePercent": 100},
            [0, 1, 2],
            id="100pct-all-at-once",
        ),
        # 50% of 10 is 5, but in place the set must stay within 20% unhealthy: tolerated(10, 20) = 2.
        pytest.param(fleet(10), {"maxBatchInstancePercent": 50}, [0, 1], id="shrunk-by-max-unhealthy"),
        # tolerated(10, 30) = 3, one already unhealthy (9): room for 2.
        pytest.param(
            replace(fleet(10), [9], health=HealthState.UNHEALTHY),
            {"maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 30},
            [0, 1],
            id="shrunk-by-existing-unhealthy",
        ),
        # tolerated(10, 20) = 2, two unhealthy already: no room, but never below one.
        pytest.param(
            replace(fleet(10), [8, 9], health=HealthState.UNHEALTHY),
            {"maxBatchInstancePercent": 50},
            [0],
            id="no-room-still-one",
        ),
        pytest.param(replace(fleet(10), [0, 1, 3], version=NEW), {}, [2, 4], id="already-latest-skipped"),
        pytest.param(
            [vm(11), vm(5), vm(8), vm(3)],
            {"maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 50},
            [3, 5],
            id="ascending-id-whatever-the-input-order",
        ),
        # Size is floor(10 * 20%) = 2 of the whole set, even when only 2 are stale.
        pytest.param(replace(fleet(10), range(2, 10), version=NEW), {}, [0, 1], id="size-from-whole-set"),
        pytest.param(
            replace(fleet(10), [0, 2], provisioning=ProvisioningState.UPDATING, eta=NOW + 30),
            {},
            [1, 3],
            id="busy-instances-wait",
        ),
    ],
)
def test_first_batch(views: list[InstanceView], fields: dict[str, Any], expected: list[int]) -> None:
    pol = policy(**fields)
    rollout = new_rollout(pol)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    r = plan.rollout
    assert plan.actions == [Upgrade(i, NEW, UpgradeReason.ROLLING) for i in expected]
    assert (r.phase, r.code, r.batch_number, r.batch) == (Phase.BATCH, RollingStatusCode.ROLLING_FORWARD, 1, expected)
    assert r.attempted == expected
    assert r.previous_versions == dict.fromkeys(expected, OLD)
    assert r.batch_started_at == NOW
    assert plan.wake_at == NOW
    assert event(plan, "preBatchCheck")["passed"] is True
    started = event(plan, "batchStarted")
    assert (started["batch"], started["size"], started["instanceIds"]) == (1, len(expected), [str(i) for i in expected])
    assert r.progress.inProgressInstanceCount == len(expected)
    # The input record is not changed: the planner is a function.
    assert rollout.phase is Phase.IDLE
    assert rollout.batch == []


def test_every_instance_already_latest_completes_at_once() -> None:
    plan = plan_rolling(new_rollout(policy()), instances=fleet(4, version=NEW), target=target(), now=NOW)
    r = plan.rollout
    assert plan.actions == []
    assert (r.phase, r.code, r.ended_at, r.batch_number) == (Phase.DONE, RollingStatusCode.COMPLETED, NOW, 0)
    assert r.progress.pendingInstanceCount == 0
    assert event(plan, "rolloutCompleted")["batches"] == 0
    assert plan.wake_at is None


def test_all_stale_instances_busy_waits_for_the_earliest() -> None:
    views = replace(fleet(3), [0], provisioning=ProvisioningState.UPDATING, eta=NOW + 40)
    views = replace(views, [1], provisioning=ProvisioningState.UPDATING, eta=NOW + 25)
    views = replace(views, [2], version=NEW)
    plan = plan_rolling(new_rollout(policy()), instances=views, target=target(), now=NOW)
    assert plan.actions == []
    assert plan.rollout.phase is Phase.IDLE
    assert plan.wake_at == NOW + 25


# --------------------------------------------------------------------------------------------------------- zones


def test_zone_by_zone_picks_only_the_first_zone() -> None:
    # 9 instances, 50%: batch of 4, but zone 1 holds only 0-2.
    pol = policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=100)
    plan = plan_rolling(new_rollout(pol), instances=zoned(3), target=target(), now=NOW)
    assert upgrade_ids(plan) == [0, 1, 2]
    assert plan.rollout.batch_zone == "1"
    assert event(plan, "batchStarted")["zone"] == "1"


def test_zone_by_zone_moves_to_the_next_zone_once_a_zone_is_done() -> None:
    pol = policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=100)
    rollout = in_batch(pol, [0, 1, 2], batch_zone="1")
    views = upgraded(zoned(3), [0, 1, 2])
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert upgrade_ids(plan) == [3, 4, 5]
    assert plan.rollout.batch_zone == "2"
    assert plan.rollout.batch_number == 2


def test_zone_by_zone_batches_split_a_large_zone() -> None:
    # 12 instances in 3 zones of 4, 20%: batch of 2, so zone 1 takes two batches.
    pol = policy(maxBatchInstancePercent=20, maxUnhealthyInstancePercent=100)
    views = zoned(4)
    first = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    assert upgrade_ids(first) == [0, 1]
    second = plan_rolling(first.rollout, instances=upgraded(views, [0, 1]), target=target(), now=NOW + 1)
    assert upgrade_ids(second) == [2, 3]
    assert second.rollout.batch_zone == "1"


def test_cross_zone_interleaves_the_zones() -> None:
    # Zone 1: 0-2, zone 2: 3-5, zone 3: 6-8. 50% of 9 = 4: the first of each zone, then the second of zone 1.
    pol = policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=100, enableCrossZoneUpgrade=True)
    plan = plan_rolling(new_rollout(pol), instances=zoned(3), target=target(), now=NOW)
    assert upgrade_ids(plan) == [0, 3, 6, 1]
    assert plan.rollout.batch_zone is None
    assert event(plan, "batchStarted")["zone"] is None


def test_cross_zone_all_at_once() -> None:
    pol = policy(maxBatchInstancePercent=100, maxUnhealthyInstancePercent=100, enableCrossZoneUpgrade=True)
    plan = plan_rolling(new_rollout(pol), instances=zoned(2), target=target(), now=NOW)
    assert upgrade_ids(plan) == [0, 2, 4, 1, 3, 5]


# -------------------------------------------------------------------------------------------- unhealthy first


@pytest.mark.parametrize(
    ("prioritize", "expected"),
    [
        pytest.param(False, [0, 1], id="off-ascending-id"),
        pytest.param(True, [4, 7], id="on-unhealthy-first"),
    ],
)
def test_prioritize_unhealthy_instances(prioritize: bool, expected: list[int]) -> None:
    views = replace(fleet(10), [7, 4], health=HealthState.UNHEALTHY)
    pol = policy(maxUnhealthyInstancePercent=50, prioritizeUnhealthyInstances=prioritize)
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    assert upgrade_ids(plan) == expected


def test_prioritize_unhealthy_counts_every_kind_of_unhealthy() -> None:
    # Unknown health, a stopped VM and a failed provisioning are all unhealthy; Initializing is not.
    views = replace(fleet(10), [9], health=HealthState.UNKNOWN)
    views = replace(views, [8], power=PowerState.STOPPED)
    views = replace(views, [7], provisioning=ProvisioningState.FAILED)
    views = replace(views, [1], health=HealthState.INITIALIZING)
    pol = policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=80, prioritizeUnhealthyInstances=True)
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    # batch 5; unhealthy 7, 8, 9 first, then 0 and 1 by id.
    assert upgrade_ids(plan) == [7, 8, 9, 0, 1]


def test_prioritize_unhealthy_zone_by_zone_starts_with_the_zone_holding_unhealthy_work() -> None:
    views = replace(zoned(3), [7], health=HealthState.UNHEALTHY)  # zone 3
    pol = policy(maxBatchInstancePercent=20, maxUnhealthyInstancePercent=50, prioritizeUnhealthyInstances=True)
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    # 20% of 9 = 1: the unhealthy one, in zone 3.
    assert upgrade_ids(plan) == [7]
    assert plan.rollout.batch_zone == "3"


def test_prioritize_unhealthy_cross_zone() -> None:
    views = replace(zoned(3), [5, 8], health=HealthState.UNHEALTHY)
    pol = policy(
        maxBatchInstancePercent=50,
        maxUnhealthyInstancePercent=100,
        enableCrossZoneUpgrade=True,
        prioritizeUnhealthyInstances=True,
    )
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    # 50% of 9 = 4: the two unhealthy (zones 2 and 3) first, then healthy ones by position in their zone. Zones 2
    # and 3 have used their first place on the unhealthy ones, so zone 1 gives two: the batch spreads 2/1/1.
    assert upgrade_ids(plan) == [5, 8, 0, 1]


# --------------------------------------------------------------------------------------------------- protection


def test_protected_instances_are_never_chosen() -> None:
    views = replace(fleet(10), [0, 1, 3], protected=True)
    pol = policy(maxBatchInstancePercent=50, maxUnhealthyInstancePercent=100)
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    assert upgrade_ids(plan) == [2, 4, 5, 6, 7]
    # The next batch takes the rest and still skips them.
    second = plan_rolling(plan.rollout, instances=upgraded(views, [2, 4, 5, 6, 7]), target=target(), now=NOW + 1)
    assert upgrade_ids(second) == [8, 9]
    third = plan_rolling(second.rollout, instances=upgraded(views, [2, 4, 5, 6, 7, 8, 9]), target=target(), now=NOW)
    assert third.actions == []
    assert third.rollout.code is RollingStatusCode.COMPLETED


def test_everything_protected_completes_without_actions() -> None:
    plan = plan_rolling(new_rollout(policy()), instances=fleet(5, protected=True), target=target(), now=NOW)
    assert plan.actions == []
    assert plan.rollout.code is RollingStatusCode.COMPLETED


def test_protected_unhealthy_instance_is_not_prioritized() -> None:
    views = replace(fleet(10), [6], health=HealthState.UNHEALTHY, protected=True)
    pol = policy(maxUnhealthyInstancePercent=50, prioritizeUnhealthyInstances=True)
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    assert upgrade_ids(plan) == [0, 1]


# ------------------------------------------------------------------------------------------------ pre-batch check


@pytest.mark.parametrize(
    ("unhealthy_ids", "breached", "shown"),
    [
        pytest.param([7, 8], False, None, id="2-of-10-at-20pct-passes"),
        pytest.param([7, 8, 9], True, 30, id="3-of-10-breaches"),
    ],
)
def test_pre_batch_check_before_the_first_batch(unhealthy_ids: list[int], breached: bool, shown: int | None) -> None:
    views = replace(fleet(10), unhealthy_ids, health=HealthState.UNHEALTHY)
    plan = plan_rolling(new_rollout(policy()), instances=views, target=target(), now=NOW)
    check = event(plan, "preBatchCheck")
    assert (check["batch"], check["unhealthy"], check["total"], check["tolerated"]) == (1, len(unhealthy_ids), 10, 2)
    assert check["passed"] is not breached
    r = plan.rollout
    if not breached:
        assert r.code is RollingStatusCode.ROLLING_FORWARD
        assert upgrade_ids(plan) == [0]  # room: 2 tolerated - 2 unhealthy -> shrunk to the minimum of one
        return
    assert plan.actions == []
    assert (r.code, r.phase, r.ended_at, r.batch_number) == (RollingStatusCode.FAULTED, Phase.DONE, NOW, 0)
    assert r.error is not None
    assert r.error["code"] == errors.MAX_UNHEALTHY_BEFORE
    assert f"{shown}% of instances are in an unhealthy state" in r.error["message"]
    assert "threshold of 20%" in r.error["message"]
    assert event(plan, "rolloutFaulted")["code"] == errors.MAX_UNHEALTHY_BEFORE
    assert r.progress.pendingInstanceCount == 10  # every instance is still stale and unattempted


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("health", HealthState.UNHEALTHY),
        ("health", HealthState.UNKNOWN),
        ("power", PowerState.STOPPED),
        ("power", PowerState.DEALLOCATED),
        ("provisioning", ProvisioningState.FAILED),
    ],
)
def test_pre_batch_check_counts_every_unhealthy_kind(field: str, value: object) -> None:
    views = replace(fleet(10), [7, 8, 9], **{field: value})
    plan = plan_rolling(new_rollout(policy()), instances=views, target=target(), now=NOW)
    assert plan.rollout.code is RollingStatusCode.FAULTED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("health", HealthState.INITIALIZING),
        ("provisioning", ProvisioningState.UPDATING),
        ("provisioning", ProvisioningState.CREATING),
    ],
)
def test_pre_batch_check_ignores_initializing_and_busy(field: str, value: object) -> None:
    views = replace(fleet(10), [7, 8, 9], **{field: value})
    plan = plan_rolling(new_rollout(policy()), instances=views, target=target(), now=NOW)
    assert plan.rollout.code is RollingStatusCode.ROLLING_FORWARD
    assert event(plan, "preBatchCheck")["unhealthy"] == 0


def test_pre_batch_check_counts_protected_and_up_to_date_instances() -> None:
    # Unhealthy is counted over the whole set: protected and already-latest instances included.
    views = replace(fleet(10), [7], health=HealthState.UNHEALTHY, protected=True)
    views = replace(views, [8, 9], health=HealthState.UNHEALTHY, version=NEW)
    plan = plan_rolling(new_rollout(policy()), instances=views, target=target(), now=NOW)
    assert plan.rollout.code is RollingStatusCode.FAULTED


def test_pre_batch_check_later_uses_the_in_rolling_upgrade_code() -> None:
    pol = policy(maxUnhealthyInstancePercent=20)
    rollout = new_rollout(
        pol,
        phase=Phase.IDLE,
        batch_number=2,
        attempted=[0, 1, 2, 3],
        succeeded=[0, 1, 2, 3],
        previous_versions=dict.fromkeys([0, 1, 2, 3], OLD),
    )
    views = upgraded(fleet(10), [0, 1, 2, 3])
    views = replace(views, [7, 8, 9], health=HealthState.UNHEALTHY)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    r = plan.rollout
    assert plan.actions == []
    assert r.code is RollingStatusCode.FAULTED
    assert r.error is not None
    assert r.error["code"] == errors.MAX_UNHEALTHY_IN
    assert r.error["message"] == (
        "Rolling Upgrade failed after exceeding the MaxUnhealthyInstancePercent value defined in the "
        "RollingUpgradePolicy. 30% of instances are in an unhealthy state - more than the threshold of 20%. "
        "To apply upgrades, consider increasing the MaxUnhealthyInstancePercent value."
    )
    assert event(plan, "preBatchCheck")["batch"] == 3
    assert r.progress.successfulInstanceCount == 4
    assert r.progress.pendingInstanceCount == 6


def test_pre_batch_check_message_rounds_up() -> None:
    # 1 of 3 at 20%: tolerated 0, 33.3% shows as 34%.
    views = replace(fleet(3), [2], health=HealthState.UNHEALTHY)
    plan = plan_rolling(new_rollout(policy()), instances=views, target=target(), now=NOW)
    assert plan.rollout.error is not None
    assert "34% of instances" in plan.rollout.error["message"]


# ----------------------------------------------------------------------------------------------- post-batch check


def test_batch_succeeds_and_the_next_starts_in_the_same_pass() -> None:
    pol = policy()
    views = upgraded(fleet(10), [0, 1])
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    r = plan.rollout
    completed = event(plan, "batchCompleted")
    assert completed["succeededIds"] == ["0", "1"]
    assert completed["failedIds"] == []
    assert completed["passed"] is True
    assert r.succeeded == [0, 1]
    assert upgrade_ids(plan) == [2, 3]
    assert r.batch_number == 2
    assert r.progress.successfulInstanceCount == 2
    assert r.progress.inProgressInstanceCount == 2
    assert r.progress.pendingInstanceCount == 6


def test_post_batch_check_uses_upgraded_so_far_as_the_denominator() -> None:
    # 4 upgraded earlier, batch [4, 5] both fail: 2 of 6 upgraded = 33.3% > 20%.
    # Over the whole set (2 of 10 = 20%) it would pass, so this pins the upgraded-so-far denominator.
    pol = policy()
    rollout = in_batch(pol, [4, 5], done=[0, 1, 2, 3])
    views = upgraded(fleet(10), [0, 1, 2, 3])
    views = upgraded(views, [4, 5], health=HealthState.UNHEALTHY, ready_at=NOW - HEALTH_WAIT_SECONDS)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    r = plan.rollout
    completed = event(plan, "batchCompleted")
    assert (completed["upgradedUnhealthy"], completed["upgraded"], completed["passed"]) == (2, 6, False)
    assert r.code is RollingStatusCode.FAULTED
    assert r.phase is Phase.DONE
    assert r.error == {
        "code": errors.MAX_UNHEALTHY_UPGRADED,
        "message": (
            "Rolling Upgrade failed after exceeding the MaxUnhealthyUpgradedInstancePercent value defined in the "
            "RollingUpgradePolicy. 34% of instances are in an unhealthy state after being upgraded - more than the "
            f"threshold of 20%. The most impactful error is: {UNREACHABLE_DETAIL}. First failed instance ID is: 4."
        ),
    }
    assert plan.actions == []  # no rollback asked for, and no further batch
    assert r.progress.failedInstanceCount == 2
    assert r.progress.successfulInstanceCount == 4


def test_post_batch_check_within_threshold_carries_on() -> None:
    # 1 of 6 upgraded unhealthy = 16.7% <= 20%.
    pol = policy()
    rollout = in_batch(pol, [4, 5], done=[0, 1, 2, 3])
    views = upgraded(fleet(10), [0, 1, 2, 3, 4])
    views = upgraded(views, [5], provisioning=ProvisioningState.FAILED)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert event(plan, "batchCompleted")["passed"] is True
    assert plan.rollout.failed == [5]
    assert plan.rollout.code is RollingStatusCode.ROLLING_FORWARD
    # 5 is now unhealthy; tolerated(10, 20) = 2 leaves room for one.
    assert upgrade_ids(plan) == [6]


def test_post_batch_first_failed_is_the_earliest_failure_and_detail_comes_from_the_instance() -> None:
    # 5 was recorded failed in an earlier pass; 4 fails now. First failed: 5.
    pol = policy(maxUnhealthyUpgradedInstancePercent=0)
    rollout = in_batch(pol, [4, 5], done=[0, 1, 2, 3], failed=[5])
    views = upgraded(fleet(10), [0, 1, 2, 3])
    views = upgraded(views, [5], provisioning=ProvisioningState.FAILED, error_message="Disk swap failed")
    views = upgraded(views, [4], provisioning=ProvisioningState.FAILED, error_message="Extension failed")
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert plan.rollout.error is not None
    message = plan.rollout.error["message"]
    assert "The most impactful error is: Disk swap failed." in message
    assert message.endswith("First failed instance ID is: 5.")
    assert "threshold of 0%" in message


def test_post_batch_counts_earlier_upgraded_instances_that_turned_unhealthy() -> None:
    # Batch [4, 5] healthy, but 0 (upgraded in batch 1) is now unhealthy: 1 of 6 = 16.7% > 10%.
    pol = policy(maxUnhealthyUpgradedInstancePercent=10)
    rollout = in_batch(pol, [4, 5], done=[0, 1, 2, 3])
    views = upgraded(fleet(10), [0, 1, 2, 3, 4, 5])
    views = replace(views, [0], health=HealthState.UNHEALTHY)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert plan.rollout.code is RollingStatusCode.FAULTED
    assert plan.rollout.error is not None
    assert plan.rollout.error["message"].endswith("First failed instance ID is: 0.")
    assert "17% of instances" in plan.rollout.error["message"]


def test_zero_percent_threshold_one_failure_breaches() -> None:
    pol = policy(maxUnhealthyUpgradedInstancePercent=0)
    views = upgraded(fleet(10), [0])
    views = upgraded(views, [1], provisioning=ProvisioningState.FAILED)
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    assert plan.rollout.error is not None
    assert "50% of instances are in an unhealthy state after being upgraded" in plan.rollout.error["message"]
    assert plan.rollout.error["message"].endswith("First failed instance ID is: 1.")


def test_a_batch_member_that_vanished_counts_as_failed() -> None:
    pol = policy(maxUnhealthyUpgradedInstancePercent=100)
    views = [v for v in upgraded(fleet(10), [0]) if v.instance_id != 1]
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    assert plan.rollout.failed == [1]
    assert plan.rollout.succeeded == [0]


# ------------------------------------------------------------------------------------------- waiting on a batch


@pytest.mark.parametrize(
    ("member", "wake_at"),
    [
        pytest.param({"provisioning": ProvisioningState.UPDATING, "eta": NOW + 30}, NOW + 30, id="busy-with-eta"),
        pytest.param(
            {"provisioning": ProvisioningState.UPDATING, "eta": None}, NOW + POLL_SECONDS, id="busy-without-eta"
        ),
        pytest.param(
            {"provisioning": ProvisioningState.UPDATING, "eta": NOW - 5}, NOW + POLL_SECONDS, id="busy-eta-overdue"
        ),
        pytest.param(
            {"version": NEW, "health": HealthState.INITIALIZING, "ready_at": NOW - 10},
            NOW - 10 + HEALTH_WAIT_SECONDS,
            id="health-wait-until-deadline",
        ),
        pytest.param(
            {"version": NEW, "health": HealthState.INITIALIZING, "ready_at": NOW - 10, "stable_until": NOW + 7},
            NOW + 7,
            id="health-wait-until-it-may-change",
        ),
        pytest.param(
            {"version": NEW, "health": HealthState.UNHEALTHY, "ready_at": NOW - 100, "stable_until": NOW + 500},
            NOW - 100 + HEALTH_WAIT_SECONDS,
            id="stable-past-the-deadline-wakes-at-deadline",
        ),
        pytest.param(
            {"version": NEW, "health": HealthState.UNHEALTHY, "ready_at": NOW - HEALTH_WAIT_SECONDS + 0.5},
            NOW + 0.5,
            id="unhealthy-just-inside-the-wait",
        ),
    ],
)
def test_unsettled_member_keeps_the_batch_open(member: dict[str, Any], wake_at: float) -> None:
    pol = policy()
    views = upgraded(fleet(10), [0])
    views = replace(views, [1], **member)
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    r = plan.rollout
    assert plan.actions == []
    assert r.phase is Phase.BATCH
    assert r.batch == [0, 1]
    assert r.succeeded == [0]
    assert r.failed == []
    assert plan.wake_at == pytest.approx(wake_at)
    assert plan.wake_at is not None
    assert plan.wake_at > NOW
    assert r.progress.inProgressInstanceCount == 1
    assert r.progress.successfulInstanceCount == 1


@pytest.mark.parametrize(
    ("health", "ready_ago", "failed"),
    [
        pytest.param(HealthState.INITIALIZING, HEALTH_WAIT_SECONDS, True, id="initializing-at-deadline"),
        pytest.param(HealthState.INITIALIZING, HEALTH_WAIT_SECONDS + 60, True, id="initializing-past-deadline"),
        pytest.param(HealthState.UNHEALTHY, HEALTH_WAIT_SECONDS, True, id="unhealthy-at-deadline"),
        pytest.param(HealthState.UNKNOWN, HEALTH_WAIT_SECONDS, True, id="unknown-at-deadline"),
        pytest.param(HealthState.INITIALIZING, HEALTH_WAIT_SECONDS - 1, False, id="one-second-left"),
    ],
)
def test_health_wait_deadline_fails_a_never_healthy_instance(
    health: HealthState, ready_ago: float, failed: bool
) -> None:
    pol = policy(maxUnhealthyUpgradedInstancePercent=100)
    views = upgraded(fleet(10), [0])
    views = upgraded(views, [1], health=health, ready_at=NOW - ready_ago)
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    if failed:
        assert plan.rollout.failed == [1]
        assert event(plan, "batchCompleted")["failedIds"] == ["1"]
    else:
        assert plan.rollout.failed == []
        assert plan.rollout.phase is Phase.BATCH


def test_rich_health_grace_longer_than_the_wait_extends_it() -> None:
    probe = ProbeSettings("extension", rich=True, grace=900.0)
    pol = policy(maxUnhealthyUpgradedInstancePercent=100)
    views = upgraded(fleet(10), [0])
    views = upgraded(views, [1], health=HealthState.INITIALIZING, ready_at=NOW - HEALTH_WAIT_SECONDS)
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(probe=probe), now=NOW)
    assert plan.rollout.phase is Phase.BATCH
    assert plan.wake_at == NOW - HEALTH_WAIT_SECONDS + 900.0
    late = plan_rolling(plan.rollout, instances=views, target=target(probe=probe), now=plan.wake_at)
    assert late.rollout.failed == [1]


def test_a_member_decided_in_an_earlier_pass_is_not_judged_again() -> None:
    # 0 succeeded in an earlier pass and has since turned unhealthy: it stays in succeeded (it is counted by
    # the post-batch check instead).
    pol = policy(maxUnhealthyUpgradedInstancePercent=100)
    rollout = in_batch(pol, [0, 1], succeeded=[0])
    views = upgraded(fleet(10), [0], health=HealthState.UNHEALTHY)
    views = replace(views, [1], provisioning=ProvisioningState.UPDATING, eta=NOW + 10)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert plan.rollout.succeeded == [0]
    assert plan.rollout.failed == []


# ------------------------------------------------------------------------------------------------------- pause


def test_pause_between_batches() -> None:
    pol = policy(pauseTimeBetweenBatches="PT1M")
    views = upgraded(fleet(10), [0, 1])
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    r = plan.rollout
    assert plan.actions == []
    assert (r.phase, r.pause_until, plan.wake_at) == (Phase.PAUSE, NOW + 60, NOW + 60)
    assert event(plan, "pause") == {"seconds": 60.0, "until": NOW + 60}
    # Woken early: still paused, same wake time.
    early = plan_rolling(r, instances=views, target=target(), now=NOW + 30)
    assert early.actions == []
    assert (early.rollout.phase, early.wake_at) == (Phase.PAUSE, NOW + 60)
    # At the end of the pause the next batch starts.
    later = plan_rolling(early.rollout, instances=views, target=target(), now=NOW + 60)
    assert upgrade_ids(later) == [2, 3]
    assert later.rollout.pause_until is None
    assert later.rollout.batch_number == 2


def test_no_pause_after_the_last_batch() -> None:
    pol = policy(pauseTimeBetweenBatches="PT1H")
    views = upgraded(fleet(10), range(10))
    rollout = in_batch(pol, [8, 9], done=[0, 1, 2, 3, 4, 5, 6, 7], batch_number=5)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    r = plan.rollout
    assert (r.phase, r.code, r.ended_at) == (Phase.DONE, RollingStatusCode.COMPLETED, NOW)
    assert event(plan, "rolloutCompleted") == {"batches": 5, "succeeded": 10}
    assert r.progress.successfulInstanceCount == 10
    assert r.progress.pendingInstanceCount == 0
    assert r.progress.inProgressInstanceCount == 0


# ------------------------------------------------------------------------------------------------------ cancel


def test_cancel_lets_the_batch_finish_then_ends_cancelled() -> None:
    pol = policy()
    views = fleet(10)
    started = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    assert upgrade_ids(started) == [0, 1]

    cancelled = request_cancel(started.rollout, now=NOW + 5)
    assert cancelled.cancel_requested is True
    assert (cancelled.code, cancelled.last_action, cancelled.last_action_at) == (
        RollingStatusCode.CANCELLED,
        "Cancel",
        NOW + 5,
    )
    assert started.rollout.cancel_requested is False  # the input record is untouched

    busy = replace(views, [0, 1], provisioning=ProvisioningState.UPDATING, eta=NOW + 20)
    waiting = plan_rolling(cancelled, instances=busy, target=target(), now=NOW + 6)
    assert waiting.actions == []
    assert waiting.rollout.phase is Phase.BATCH
    assert waiting.wake_at == NOW + 20

    done_views = upgraded(views, [0, 1])
    done = plan_rolling(waiting.rollout, instances=done_views, target=target(), now=NOW + 20)
    r = done.rollout
    assert done.actions == []
    assert (r.phase, r.code, r.ended_at) == (Phase.DONE, RollingStatusCode.CANCELLED, NOW + 20)
    assert r.succeeded == [0, 1]
    assert r.batch_number == 1
    assert event(done, "rolloutCancelled") == {"batchesCompleted": 1}
    assert r.progress.pendingInstanceCount == 8
    assert done.wake_at is None
    # Nothing more happens however often it is planned again.
    again = plan_rolling(r, instances=done_views, target=target(), now=NOW + 100)
    assert again.actions == []
    assert again.rollout.phase is Phase.DONE


def test_cancel_during_a_pause_ends_without_waiting_for_it() -> None:
    pol = policy(pauseTimeBetweenBatches="PT10M")
    views = upgraded(fleet(10), [0, 1])
    paused = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW).rollout
    assert paused.phase is Phase.PAUSE
    plan = plan_rolling(request_cancel(paused, now=NOW + 1), instances=views, target=target(), now=NOW + 1)
    assert plan.actions == []
    assert (plan.rollout.phase, plan.rollout.code) == (Phase.DONE, RollingStatusCode.CANCELLED)


def test_cancel_before_the_first_batch() -> None:
    rollout = request_cancel(new_rollout(policy()), now=NOW)
    plan = plan_rolling(rollout, instances=fleet(10), target=target(), now=NOW)
    assert plan.actions == []
    assert (plan.rollout.phase, plan.rollout.code, plan.rollout.batch_number) == (
        Phase.DONE,
        RollingStatusCode.CANCELLED,
        0,
    )


def _finished(code: RollingStatusCode) -> Rollout:
    return new_rollout(policy(), code=code, phase=Phase.DONE, ended_at=NOW)


@pytest.mark.parametrize(
    "rollout",
    [
        pytest.param(None, id="none"),
        pytest.param(_finished(RollingStatusCode.COMPLETED), id="completed"),
        pytest.param(_finished(RollingStatusCode.FAULTED), id="faulted"),
        pytest.param(_finished(RollingStatusCode.CANCELLED), id="cancelled"),
        pytest.param(
            new_rollout(policy(), code=RollingStatusCode.FAULTED, phase=Phase.ROLLING_BACK, rolling_back=[1]),
            id="faulted-rolling-back",
        ),
    ],
)
def test_cancel_with_nothing_rolling_forward_is_409(rollout: Rollout | None) -> None:
    with pytest.raises(errors.DomainError) as caught:
        request_cancel(rollout, now=NOW)
    assert caught.value.code == "OperationNotAllowed"
    assert caught.value.status == 409
    assert caught.value.message == "There is no ongoing Rolling Upgrade to cancel."
    assert caught.value.to_arm() == {
        "code": "OperationNotAllowed",
        "message": "There is no ongoing Rolling Upgrade to cancel.",
    }


# ------------------------------------------------------------------------------------------------------ maxSurge


def test_max_surge_creates_new_instances_instead_of_upgrading() -> None:
    pol = policy(maxSurge=True)
    views = zoned(4)  # 12 instances; 20% -> 2 per batch
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(next_instance_id=12), now=NOW)
    r = plan.rollout
    assert plan.actions == [
        Create(12, "1", 0, NEW, reason="maxSurge"),
        Create(13, "1", 1, NEW, reason="maxSurge"),
    ]
    assert r.batch == [12, 13]
    assert r.surge_pairs == {12: 0, 13: 1}
    assert r.attempted == [0, 1]
    assert r.previous_versions == {}
    started = event(plan, "batchStarted")
    assert (started["instanceIds"], started["surgeInstanceIds"]) == (["0", "1"], ["12", "13"])


def test_max_surge_is_not_shrunk_by_max_unhealthy() -> None:
    # In place, 50% of 10 would shrink to tolerated(10, 20) = 2; surged instances are extra, so no shrink.
    pol = policy(maxSurge=True, maxBatchInstancePercent=50)
    plan = plan_rolling(new_rollout(pol), instances=fleet(10), target=target(next_instance_id=10), now=NOW)
    assert [a.instance_id for a in plan.actions if isinstance(a, Create)] == [10, 11, 12, 13, 14]


def _surge_views(old: int, created: dict[int, int], **fields: Any) -> list[InstanceView]:
    """``old`` instances 0..old-1 on OLD, plus the surged ``created`` ids (new id -> old id) on NEW."""
    views = fleet(old)
    return views + [vm(new_id, version=NEW, ready_at=NOW, **fields) for new_id in created]


def test_max_surge_deletes_the_replaced_instances_once_the_new_ones_are_healthy() -> None:
    pol = policy(maxSurge=True, pauseTimeBetweenBatches="PT1M")
    rollout = new_rollout(
        pol, phase=Phase.BATCH, batch_number=1, batch=[10, 11], surge_pairs={10: 0, 11: 1}, attempted=[0, 1]
    )
    # Still creating: nothing deleted yet, capacity stays at 10 plus the extras.
    creating = _surge_views(10, {10: 0, 11: 1}, provisioning=ProvisioningState.CREATING, eta=NOW + 30)
    plan = plan_rolling(rollout, instances=creating, target=target(next_instance_id=12), now=NOW)
    assert plan.actions == []
    assert plan.wake_at == NOW + 30

    healthy = _surge_views(10, {10: 0, 11: 1})
    plan = plan_rolling(plan.rollout, instances=healthy, target=target(next_instance_id=12), now=NOW + 30)
    r = plan.rollout
    assert plan.actions == [Delete(0, reason="replacedBySurge"), Delete(1, reason="replacedBySurge")]
    assert r.surge_pairs == {}
    assert r.succeeded == [10, 11]
    assert r.phase is Phase.PAUSE


def test_max_surge_deletes_a_failed_new_instance_and_keeps_the_old_one() -> None:
    pol = policy(maxSurge=True, maxUnhealthyUpgradedInstancePercent=100, pauseTimeBetweenBatches="PT1M")
    rollout = new_rollout(
        pol, phase=Phase.BATCH, batch_number=1, batch=[10, 11], surge_pairs={10: 0, 11: 1}, attempted=[0, 1]
    )
    views = _surge_views(10, {10: 0})
    views.append(vm(11, version=NEW, provisioning=ProvisioningState.FAILED, ready_at=NOW))
    plan = plan_rolling(rollout, instances=views, target=target(next_instance_id=12), now=NOW)
    assert plan.actions == [Delete(0, reason="replacedBySurge"), Delete(11, reason="surgeInstanceFailed")]
    assert plan.rollout.failed == [11]


def test_max_surge_failed_replacement_keeps_the_old_instance_and_the_rollout_completes() -> None:
    # docs/semantics.md: a failed surge instance is deleted and its old instance kept; instances that failed are
    # not tried again by the same rollout. So the rollout completes with 4 still on the old model.
    pol = policy(maxSurge=True, maxUnhealthyUpgradedInstancePercent=100)
    rollout = new_rollout(
        pol,
        phase=Phase.BATCH,
        batch_number=5,
        batch=[9],
        surge_pairs={9: 4},
        attempted=[0, 1, 2, 3, 4],
        succeeded=[5, 6, 7, 8],
    )
    views = [vm(4), *(vm(i, version=NEW, ready_at=NOW) for i in (5, 6, 7, 8))]
    views.append(vm(9, version=NEW, provisioning=ProvisioningState.FAILED, ready_at=NOW))
    plan = plan_rolling(rollout, instances=views, target=target(next_instance_id=10), now=NOW)
    r = plan.rollout
    assert plan.actions == [Delete(9, reason="surgeInstanceFailed")]
    assert (r.code, r.phase) == (RollingStatusCode.COMPLETED, Phase.DONE)
    assert (r.progress.successfulInstanceCount, r.progress.failedInstanceCount) == (4, 1)
    assert r.progress.pendingInstanceCount == 0


def test_max_surge_failure_beyond_threshold_faults_without_rollback_actions() -> None:
    pol = policy(maxSurge=True, maxUnhealthyUpgradedInstancePercent=0, rollbackFailedInstancesOnPolicyBreach=True)
    rollout = new_rollout(
        pol, phase=Phase.BATCH, batch_number=1, batch=[10, 11], surge_pairs={10: 0, 11: 1}, attempted=[0, 1]
    )
    views = _surge_views(10, {10: 0})
    views.append(vm(11, version=NEW, provisioning=ProvisioningState.FAILED, ready_at=NOW))
    plan = plan_rolling(rollout, instances=views, target=target(next_instance_id=12), now=NOW)
    assert plan.rollout.code is RollingStatusCode.FAULTED
    assert plan.rollout.phase is Phase.DONE
    assert all(isinstance(a, Delete) for a in plan.actions)


def test_max_surge_next_batch_is_sized_on_the_target_capacity() -> None:
    # The pass that deletes batch 1's old instances starts batch 2 while those are still in the views: they must
    # not be counted next to their replacements (10 instances, not 14; batch_size(14, 40) would be 5).
    pol = policy(maxSurge=True, maxBatchInstancePercent=40, maxUnhealthyInstancePercent=100)
    first = plan_rolling(new_rollout(pol), instances=fleet(10), target=target(next_instance_id=10), now=NOW)
    assert [a.instance_id for a in first.actions] == [10, 11, 12, 13]  # batch_size(10, 40) = 4
    views = _surge_views(10, {10: 0, 11: 1, 12: 2, 13: 3})
    second = plan_rolling(first.rollout, instances=views, target=target(next_instance_id=14), now=NOW + 1)
    deletes = [a.instance_id for a in second.actions if isinstance(a, Delete)]
    creates = [a.instance_id for a in second.actions if isinstance(a, Create)]
    assert deletes == [0, 1, 2, 3]
    assert event(second, "preBatchCheck")["total"] == 10
    assert len(creates) == 4


# ------------------------------------------------------------------------------------------------------ rollback


def test_rollback_returns_failed_instances_to_their_previous_version() -> None:
    pol = policy(rollbackFailedInstancesOnPolicyBreach=True)
    rollout = in_batch(pol, [2, 3], done=[0, 1])
    rollout.previous_versions[3] = 0  # 3 came from an older model still
    views = upgraded(fleet(10), [0, 1, 2])
    views = upgraded(views, [3], provisioning=ProvisioningState.FAILED)
    # 1 of 4 upgraded unhealthy = 25% > 20%.
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    r = plan.rollout
    assert r.code is RollingStatusCode.FAULTED
    assert plan.actions == [Upgrade(3, 0, UpgradeReason.ROLLBACK)]
    assert (r.phase, r.rolling_back, plan.wake_at) == (Phase.ROLLING_BACK, [3], NOW)
    assert event(plan, "rollbackStarted") == {"instanceIds": ["3"]}

    # While it runs, the rollout waits for it.
    busy = replace(views, [3], provisioning=ProvisioningState.UPDATING, eta=NOW + 45)
    waiting = plan_rolling(r, instances=busy, target=target(), now=NOW)
    assert waiting.actions == []
    assert (waiting.rollout.phase, waiting.wake_at) == (Phase.ROLLING_BACK, NOW + 45)
    assert waiting.rollout.active

    # Back but not healthy yet, on a backend that cannot predict health (real instances say "may change now"):
    # look again one poll later, not at once (that was a busy loop).
    unsure = replace(
        views, [3], provisioning=ProvisioningState.SUCCEEDED, version=0, health=HealthState.UNHEALTHY,
        ready_at=NOW + 45, stable_until=NOW + 45,
    )  # fmt: skip
    polling = plan_rolling(waiting.rollout, instances=unsure, target=target(), now=NOW + 45)
    assert polling.wake_at == NOW + 45 + POLL_SECONDS

    back = replace(views, [3], provisioning=ProvisioningState.SUCCEEDED, version=0)
    done = plan_rolling(waiting.rollout, instances=back, target=target(), now=NOW + 45)
    assert done.actions == []
    assert (done.rollout.phase, done.rollout.code) == (Phase.DONE, RollingStatusCode.FAULTED)
    assert done.rollout.rolled_back == [3]
    assert done.rollout.rolling_back == []
    assert event(done, "rollbackCompleted") == {"instanceIds": ["3"], "healthyIds": ["3"]}
    assert not done.rollout.active


def test_rollback_covers_earlier_upgraded_instances_that_turned_unhealthy() -> None:
    pol = policy(rollbackFailedInstancesOnPolicyBreach=True, maxUnhealthyUpgradedInstancePercent=0)
    rollout = in_batch(pol, [2, 3], done=[0, 1])
    views = upgraded(fleet(10), [0, 1, 2, 3])
    views = replace(views, [1], health=HealthState.UNHEALTHY)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert plan.actions == [Upgrade(1, OLD, UpgradeReason.ROLLBACK)]


@pytest.mark.parametrize(
    "where",
    [pytest.param("gone", id="deleted-and-gone"), pytest.param("deleting", id="being-deleted")],
)
def test_rollback_skips_instances_that_are_gone(where: str) -> None:
    # Batch 1 upgraded 0 (healthy) and 1 (failed, within 50%). The operator then deleted 1, which is allowed: it is
    # not in the batch in flight. Batch 2 [2, 3]: 3 fails. Upgraded unhealthy {1, 3}: 2 of 4 = 50% > 25%.
    pol = policy(rollbackFailedInstancesOnPolicyBreach=True, maxUnhealthyUpgradedInstancePercent=25)
    rollout = in_batch(
        pol, [2, 3], done=[0], failed=[1], attempted=[0, 1, 2, 3], previous_versions=dict.fromkeys(range(4), OLD)
    )
    views = upgraded(fleet(10), [0, 1, 2])
    views = upgraded(views, [3], provisioning=ProvisioningState.FAILED)
    if where == "gone":
        views = [v for v in views if v.instance_id != 1]
    else:
        views = replace(views, [1], provisioning=ProvisioningState.DELETING, eta=NOW + 30)
    plan = plan_rolling(rollout, instances=views, target=target(), now=NOW)
    assert plan.rollout.code is RollingStatusCode.FAULTED
    assert plan.actions == [Upgrade(3, OLD, UpgradeReason.ROLLBACK)]


def test_rollback_skips_instances_protected_since_their_upgrade() -> None:
    pol = policy(rollbackFailedInstancesOnPolicyBreach=True, maxUnhealthyUpgradedInstancePercent=0)
    views = upgraded(fleet(10), [0, 1, 2, 3])
    views = replace(views, [0], health=HealthState.UNHEALTHY, protected=True)
    views = replace(views, [3], provisioning=ProvisioningState.FAILED)
    plan = plan_rolling(in_batch(pol, [2, 3], done=[0, 1]), instances=views, target=target(), now=NOW)
    assert plan.rollout.code is RollingStatusCode.FAULTED
    assert plan.actions == [Upgrade(3, OLD, UpgradeReason.ROLLBACK)]


def test_no_rollback_without_the_policy() -> None:
    pol = policy(rollbackFailedInstancesOnPolicyBreach=False, maxUnhealthyUpgradedInstancePercent=0)
    views = upgraded(fleet(10), [0])
    views = upgraded(views, [1], provisioning=ProvisioningState.FAILED)
    plan = plan_rolling(in_batch(pol, [0, 1]), instances=views, target=target(), now=NOW)
    assert plan.actions == []
    assert plan.rollout.phase is Phase.DONE
    assert plan.rollout.code is RollingStatusCode.FAULTED


def test_pre_batch_breach_has_nothing_to_roll_back() -> None:
    pol = policy(rollbackFailedInstancesOnPolicyBreach=True)
    views = replace(fleet(10), [7, 8, 9], health=HealthState.UNHEALTHY)
    plan = plan_rolling(new_rollout(pol), instances=views, target=target(), now=NOW)
    assert plan.actions == []
    assert plan.rollout.phase is Phase.DONE


# ------------------------------------------------------------------------------------------------------ resuming


def test_the_record_survives_a_json_round_trip_between_passes() -> None:
    pol = policy(maxSurge=True)
    first = plan_rolling(new_rollout(pol), instances=fleet(10), target=target(next_instance_id=10), now=NOW)
    stored = Rollout.model_validate_json(first.rollout.model_dump_json())
    assert stored == first.rollout
    views = _surge_views(10, {10: 0, 11: 1})
    direct = plan_rolling(first.rollout, instances=views, target=target(next_instance_id=12), now=NOW + 1)
    resumed = plan_rolling(stored, instances=views, target=target(next_instance_id=12), now=NOW + 1)
    assert (resumed.rollout, resumed.actions, resumed.events, resumed.wake_at) == (
        direct.rollout,
        direct.actions,
        direct.events,
        direct.wake_at,
    )
