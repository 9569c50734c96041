"""Manual and Automatic modes: manualupgrade, reimage and the automatic catch-up, planned from instance views."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaleset.domain.actions import Event, Reimage, Upgrade, UpgradeReason
from scaleset.domain.health import HealthState
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.upgrade.automatic import plan_automatic
from scaleset.domain.upgrade.manual import InstancePlan, plan_manual_upgrade, plan_reimage

LATEST = 3


def vm(
    instance_id: int,
    *,
    version: int = LATEST - 1,
    protected: bool = False,
    provisioning: ProvisioningState = ProvisioningState.SUCCEEDED,
    power: PowerState = PowerState.RUNNING,
    health: HealthState | None = HealthState.HEALTHY,
) -> InstanceView:
    return InstanceView(
        instance_id=instance_id,
        zone=None,
        fault_domain=instance_id % 2,
        model_version=version,
        created_at=float(instance_id),
        provisioning=provisioning,
        power=power,
        health=health,
        ready_at=0.0,
        protect_from_scale_set_actions=protected,
        protect_from_scale_in=protected,
    )


def fleet() -> list[InstanceView]:
    """0-1 stale, 2 latest, 3 stale and protected, 4 latest and protected, 5 two versions behind."""
    return [
        vm(0),
        vm(1),
        vm(2, version=LATEST),
        vm(3, protected=True),
        vm(4, version=LATEST, protected=True),
        vm(5, version=LATEST - 2),
    ]


def only_event(plan: InstancePlan) -> Event:
    assert len(plan.events) == 1
    return plan.events[0]


# --------------------------------------------------------------------------------------------------- manualupgrade


@pytest.mark.parametrize(
    ("ids", "upgraded", "already", "skipped"),
    [
        pytest.param([0], [0], [], [], id="one"),
        pytest.param([0, 1, 5], [0, 1, 5], [], [], id="several"),
        pytest.param([5, 0], [0, 5], [], [], id="order-of-the-set-not-the-request"),
        pytest.param([0, 0, 0], [0], [], [], id="duplicates-once"),
        pytest.param([2], [], [2], [], id="already-latest"),
        pytest.param([3], [], [], [3], id="protected"),
        pytest.param([4], [], [], [4], id="protected-and-latest-is-reported-as-protected"),
        pytest.param([0, 2, 3], [0], [2], [3], id="mixed"),
        pytest.param("*", [0, 1, 5], [2], [3, 4], id="star"),
        pytest.param([], [], [], [], id="none"),
        pytest.param([42], [], [], [], id="unknown-id-ignored"),
    ],
)
def test_manual_upgrade(ids: list[int] | str, upgraded: list[int], already: list[int], skipped: list[int]) -> None:
    plan = plan_manual_upgrade(fleet(), ids, target_version=LATEST)
    assert plan.actions == [Upgrade(i, LATEST, UpgradeReason.MANUAL) for i in upgraded]
    assert plan.instance_ids == upgraded
    event = only_event(plan)
    assert event.kind == "manualUpgrade"
    assert event.data == {
        "instanceIds": [str(i) for i in upgraded],
        "alreadyLatest": [str(i) for i in already],
        "skippedProtected": [str(i) for i in skipped],
    }


def test_manual_upgrade_star_skips_instances_being_deleted() -> None:
    views = [*fleet(), vm(6, provisioning=ProvisioningState.DELETING)]
    plan = plan_manual_upgrade(views, "*", target_version=LATEST)
    assert plan.instance_ids == [0, 1, 5]


def test_manual_upgrade_by_id_skips_an_instance_being_deleted() -> None:
    views = [*fleet(), vm(6, provisioning=ProvisioningState.DELETING)]
    plan = plan_manual_upgrade(views, [0, 6], target_version=LATEST)
    assert plan.instance_ids == [0]


def test_manual_upgrade_does_not_look_at_health_or_power() -> None:
    views = [vm(0, health=HealthState.UNHEALTHY), vm(1, power=PowerState.DEALLOCATED), vm(2, health=None)]
    plan = plan_manual_upgrade(views, "*", target_version=LATEST)
    assert plan.instance_ids == [0, 1, 2]


def test_manual_upgrade_with_nothing_to_do_still_records_an_event() -> None:
    plan = plan_manual_upgrade([vm(0, version=LATEST)], "*", target_version=LATEST)
    assert plan.actions == []
    assert only_event(plan).data["alreadyLatest"] == ["0"]


# --------------------------------------------------------------------------------------------------------- reimage


@pytest.mark.parametrize(
    ("ids", "scale_set_action", "reimaged", "skipped"),
    [
        # A reimage applies to an instance whatever its version: it gets a fresh OS disk of the latest model.
        pytest.param([0, 2], True, [0, 2], [], id="stale-and-latest"),
        pytest.param([3], True, [], [3], id="protected-skipped"),
        pytest.param("*", True, [0, 1, 2, 5], [3, 4], id="star-skips-protected"),
        pytest.param([3, 4], False, [3, 4], [], id="vm-api-ignores-protection"),
        pytest.param("*", False, [0, 1, 2, 3, 4, 5], [], id="star-vm-api"),
        pytest.param([7], True, [], [], id="unknown-id-ignored"),
    ],
)
def test_reimage(ids: list[int] | str, scale_set_action: bool, reimaged: list[int], skipped: list[int]) -> None:
    plan = plan_reimage(fleet(), ids, target_version=LATEST, scale_set_action=scale_set_action)
    assert plan.actions == [Reimage(i, LATEST) for i in reimaged]
    assert plan.instance_ids == reimaged
    event = only_event(plan)
    assert event.kind == "reimage"
    assert event.data == {"instanceIds": [str(i) for i in reimaged], "skippedProtected": [str(i) for i in skipped]}


def test_reimage_all_includes_data_disks() -> None:
    plan = plan_reimage(fleet(), [0, 3], target_version=LATEST, data_disks=True)
    assert plan.actions == [Reimage(0, LATEST, data_disks=True)]
    event = only_event(plan)
    assert event.kind == "reimageAll"
    assert event.data["skippedProtected"] == ["3"]


def test_reimage_star_skips_instances_being_deleted() -> None:
    views = [vm(0), vm(1, provisioning=ProvisioningState.DELETING)]
    assert plan_reimage(views, "*", target_version=LATEST).instance_ids == [0]


def test_reimage_by_id_skips_an_instance_being_deleted() -> None:
    views = [vm(0), vm(1, provisioning=ProvisioningState.DELETING)]
    assert plan_reimage(views, [0, 1], target_version=LATEST).instance_ids == [0]


# ------------------------------------------------------------------------------------------------------- automatic


@pytest.mark.parametrize(
    ("views", "expected"),
    [
        pytest.param(fleet(), [0, 1, 5], id="stale-unprotected"),
        pytest.param([vm(0, version=LATEST), vm(1, version=LATEST)], [], id="all-latest"),
        pytest.param([vm(0, protected=True)], [], id="protected"),
        pytest.param(
            [vm(0, provisioning=ProvisioningState.UPDATING), vm(1, provisioning=ProvisioningState.CREATING), vm(2)],
            [2],
            id="busy-waits-for-the-next-pass",
        ),
        pytest.param([vm(0, provisioning=ProvisioningState.DELETING), vm(1)], [1], id="deleting"),
        pytest.param(
            [vm(0, health=HealthState.UNHEALTHY), vm(1, provisioning=ProvisioningState.FAILED), vm(2, health=None)],
            [0, 1, 2],
            id="no-health-gate",
        ),
        pytest.param([vm(0, power=PowerState.DEALLOCATED)], [0], id="deallocated-too"),
        pytest.param([vm(0, version=LATEST + 1)], [0], id="any-other-version-is-stale"),
        pytest.param([], [], id="empty"),
    ],
)
def test_automatic(views: list[InstanceView], expected: list[int]) -> None:
    plan = plan_automatic(views, target_version=LATEST)
    assert plan.actions == [Upgrade(i, LATEST, UpgradeReason.AUTOMATIC) for i in expected]
    assert plan.instance_ids == expected
    if expected:
        assert only_event(plan) == Event(
            "automaticUpgrade", {"instanceIds": [str(i) for i in expected], "targetVersion": LATEST}
        )
    else:
        assert plan.events == []


def test_automatic_catches_up_level_triggered() -> None:
    # A second model change while the first is being applied: the next pass upgrades what is idle and stale.
    views = [vm(0, version=LATEST - 1, provisioning=ProvisioningState.UPDATING), vm(1, version=LATEST - 1)]
    first = plan_automatic(views, target_version=LATEST)
    assert first.instance_ids == [1]
    settled = [dataclasses.replace(v, provisioning=ProvisioningState.SUCCEEDED) for v in views]
    assert plan_automatic(settled, target_version=LATEST + 1).instance_ids == [0, 1]


specs = st.lists(
    st.tuples(st.integers(0, LATEST), st.booleans(), st.sampled_from(list(ProvisioningState))),
    max_size=30,
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(specs)
def test_automatic_upgrades_exactly_the_stale_idle_unprotected(
    drawn: list[tuple[int, bool, ProvisioningState]],
) -> None:
    views = [
        vm(i, version=version, protected=protected, provisioning=provisioning)
        for i, (version, protected, provisioning) in enumerate(drawn)
    ]
    plan = plan_automatic(views, target_version=LATEST)
    chosen = set(plan.instance_ids)
    assert len(chosen) == len(plan.instance_ids)
    for view in views:
        eligible = (
            view.model_version != LATEST
            and not view.protect_from_scale_set_actions
            and view.provisioning in (ProvisioningState.SUCCEEDED, ProvisioningState.FAILED)
        )
        assert (view.instance_id in chosen) is eligible, view
    assert all(isinstance(a, Upgrade) and a.reason is UpgradeReason.AUTOMATIC for a in plan.actions)
