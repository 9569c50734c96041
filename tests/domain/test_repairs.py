"""The automatic-repairs planner, driven directly: hand-built instance views and repair books, one pass at a time.

Every expectation follows from reference §5.2/§5.3 and the rules in the module docstring of
``scaleset.domain.repairs``; the numbers are worked out by hand in the comments. The grace period is 10 minutes
(600 s) unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import doctest
import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaleset.domain import errors, repairs
from scaleset.domain.actions import Action, Create, Delete, Power, PowerAction, Reimage
from scaleset.domain.health import HealthState
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.repairs import (
    POLL_SECONDS,
    REPAIR_FAILURE_LIMIT,
    RepairAttempt,
    RepairBook,
    RepairPass,
    ServiceState,
    plan_repairs,
    service_state,
    set_service_state,
)
from scaleset.domain.resources import AutomaticRepairsPolicy

NOW = 10_000.0
GRACE = 600.0
NEXT_ID = 100
LATEST = 7
OLD = 3

UNHEALTHY, UNKNOWN, HEALTHY = HealthState.UNHEALTHY, HealthState.UNKNOWN, HealthState.HEALTHY


# --------------------------------------------------------------------------------------------------------- helpers


def vm(
    instance_id: int,
    *,
    health: HealthState | None = HEALTHY,
    provisioning: ProvisioningState = ProvisioningState.SUCCEEDED,
    power: PowerState = PowerState.RUNNING,
    created_at: float = 0.0,
    ready_at: float | None = 0.0,
    eta: float | None = None,
    stable_until: float | None = None,
    zone: str | None = None,
    fault_domain: int = 0,
    version: int = OLD,
    scale_in: bool = False,
    set_actions: bool = False,
    error_code: str | None = None,
) -> InstanceView:
    return InstanceView(
        instance_id=instance_id,
        zone=zone,
        fault_domain=fault_domain,
        model_version=version,
        created_at=created_at,
        provisioning=provisioning,
        power=power,
        health=health,
        ready_at=ready_at,
        eta=eta,
        stable_until=stable_until,
        error_code=error_code,
        protect_from_scale_in=scale_in,
        protect_from_scale_set_actions=set_actions,
    )


def fleet(count: int, unhealthy: Iterable[int] = ()) -> list[InstanceView]:
    bad = set(unhealthy)
    return [vm(i, health=UNHEALTHY if i in bad else HEALTHY) for i in range(count)]


def policy(action: str = "Replace", grace: str = "PT10M", *, enabled: bool = True) -> AutomaticRepairsPolicy:
    return AutomaticRepairsPolicy.model_validate({"enabled": enabled, "gracePeriod": grace, "repairAction": action})


def plan(
    views: list[InstanceView],
    *,
    book: RepairBook | None = None,
    pol: AutomaticRepairsPolicy | None = None,
    now: float = NOW,
    quiet_since: float = 0.0,
    rich: bool = False,
    held: bool = False,
    no_policy: bool = False,
) -> RepairPass:
    return plan_repairs(
        views,
        policy=None if no_policy else (pol or policy()),
        book=book or RepairBook(),
        now=now,
        quiet_since=quiet_since,
        rich=rich,
        held=held,
        next_instance_id=NEXT_ID,
        model_version=LATEST,
    )


def attempt(subject: int, *, original: int | None = None, action: str = "Replace", **fields: Any) -> RepairAttempt:
    return RepairAttempt(
        original_id=subject if original is None else original,
        instance_id=subject,
        action=action,
        started_at=fields.pop("started_at", NOW - 60),
        **fields,
    )


def booked(*attempts: RepairAttempt, **fields: Any) -> RepairBook:
    return RepairBook(attempts={a.instance_id: a for a in attempts}, **fields)


def kinds(out: RepairPass) -> list[str]:
    return [e.kind for e in out.events]


def event(out: RepairPass, kind: str) -> dict[str, Any]:
    found = [e.data for e in out.events if e.kind == kind]
    assert len(found) == 1, f"expected one {kind!r} event, got {kinds(out)}"
    return found[0]


def waiting(out: RepairPass) -> dict[str, str]:
    return {e.data["instanceId"]: e.data["reason"] for e in out.events if e.kind == "repairWaiting"}


def repaired(out: RepairPass) -> list[int]:
    return [int(e.data["instanceId"]) for e in out.events if e.kind == "repairStarted"]


def in_flight(book: RepairBook) -> int:
    return sum(1 for a in book.attempts.values() if a.deadline is None)


def test_module_doctests() -> None:
    result = doctest.testmod(repairs, verbose=False, report=True)
    assert result.attempted > 0
    assert result.failed == 0


# ----------------------------------------------------------------------------------------------- repair actions


def test_replace_deletes_and_creates_together_with_a_new_id() -> None:
    views = [vm(0), vm(3, health=UNHEALTHY, zone="2", fault_domain=1)]
    out = plan(views)
    assert out.actions == [
        Delete(3, reason="automaticRepair"),
        Create(NEXT_ID, "2", 1, LATEST, reason="automaticRepair"),
    ]
    assert out.book.attempts == {
        NEXT_ID: RepairAttempt(original_id=3, instance_id=NEXT_ID, action="Replace", started_at=NOW)
    }
    # Grace ended at max(quiet_since 0, ready_at 0) + 600.
    assert event(out, "repairStarted") == {
        "instanceId": "3",
        "action": "Replace",
        "reason": "Unhealthy",
        "gracePeriodEndedAt": GRACE,
        "newInstanceId": str(NEXT_ID),
    }
    assert out.wake_at == NOW  # look again at once, with the actions applied


def test_reimage_keeps_the_id_and_the_instances_own_model() -> None:
    out = plan([vm(3, health=UNHEALTHY, version=5)], pol=policy("Reimage"))
    assert out.actions == [Reimage(3, to_version=5)]
    assert out.book.attempts[3] == RepairAttempt(original_id=3, instance_id=3, action="Reimage", started_at=NOW)
    assert "newInstanceId" not in event(out, "repairStarted")


def test_restart_restarts() -> None:
    out = plan([vm(3, health=UNHEALTHY)], pol=policy("restart"))  # any letter case
    assert out.actions == [Power(3, PowerAction.RESTART)]
    assert event(out, "repairStarted")["action"] == "Restart"


def test_default_policy_replaces() -> None:
    out = plan([vm(3, health=UNHEALTHY)], pol=AutomaticRepairsPolicy(enabled=True))
    assert [type(a) for a in out.actions] == [Delete, Create]


def test_several_replacements_get_consecutive_new_ids() -> None:
    out = plan(fleet(40, unhealthy=[5, 9]))  # 5% of 40 = 2
    creates = [a for a in out.actions if isinstance(a, Create)]
    assert [c.instance_id for c in creates] == [NEXT_ID, NEXT_ID + 1]
    assert {k: a.original_id for k, a in out.book.attempts.items()} == {NEXT_ID: 5, NEXT_ID + 1: 9}


# ------------------------------------------------------------------------------------------------- candidates


def test_binary_health_repairs_unhealthy_but_not_unknown() -> None:
    out = plan([vm(1, health=UNKNOWN), vm(2, health=UNHEALTHY)])
    assert repaired(out) == [2]
    assert event(out, "repairStarted")["reason"] == "Unhealthy"


def test_rich_health_repairs_unknown_too() -> None:
    out = plan([vm(1, health=UNKNOWN)], rich=True)
    assert repaired(out) == [1]
    assert event(out, "repairStarted")["reason"] == "Unknown"


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(vm(1, health=None), id="no-health-source"),
        pytest.param(vm(1, health=HealthState.INITIALIZING), id="initializing"),
        pytest.param(vm(1, health=HEALTHY), id="healthy"),
        pytest.param(vm(1, health=UNHEALTHY, provisioning=ProvisioningState.FAILED), id="provisioning-failed"),
        pytest.param(vm(1, health=UNHEALTHY, provisioning=ProvisioningState.UPDATING), id="busy"),
        pytest.param(vm(1, health=UNHEALTHY, provisioning=ProvisioningState.DELETING), id="deleting"),
        pytest.param(vm(1, health=UNHEALTHY, power=PowerState.STOPPED), id="stopped"),
        pytest.param(vm(1, health=UNHEALTHY, power=PowerState.DEALLOCATED), id="deallocated"),
    ],
)
def test_not_a_candidate(view: InstanceView) -> None:
    out = plan([view], rich=True)
    assert out.actions == []
    assert out.events == []
    assert out.book == RepairBook()


@pytest.mark.parametrize("flags", [{"scale_in": True}, {"set_actions": True}, {"scale_in": True, "set_actions": True}])
def test_protected_instances_are_never_repaired_and_it_is_logged_once(flags: dict[str, bool]) -> None:
    views = [vm(1, health=UNHEALTHY, **flags), vm(2, health=UNHEALTHY)]
    first = plan(views)
    assert repaired(first) == [2]
    assert waiting(first) == {"1": "protected"}
    assert first.book.noted == {1: "protected"}
    second = plan(views[:1], book=first.book, now=NOW + 60)  # 2 has gone to its replacement
    assert all(not isinstance(a, (Delete, Reimage, Power)) or a.instance_id != 1 for a in second.actions)
    assert waiting(second) == {}


def test_the_subject_of_an_attempt_is_not_a_candidate() -> None:
    # Instance 3 is being watched after a restart (deadline ahead): unhealthy, but not repaired again.
    book = booked(attempt(3, action="Restart", deadline=NOW + 300))
    out = plan([vm(3, health=UNHEALTHY, ready_at=NOW - 300)], book=book, pol=policy("Restart"))
    assert out.actions == []
    assert out.book.attempts == book.attempts


# ------------------------------------------------------------------------------------------------ grace period


def test_grace_runs_from_the_last_scale_set_change() -> None:
    # quiet since NOW-200 -> repairable at NOW+400, although the instance has been ready since t=0.
    views = [vm(1, health=UNHEALTHY)]
    early = plan(views, quiet_since=NOW - 200)
    assert early.actions == []
    assert event(early, "repairWaiting") == {"instanceId": "1", "reason": "gracePeriod", "until": NOW + 400}
    assert early.wake_at == NOW + 400
    assert early.book.noted == {1: "gracePeriod"}
    on_time = plan(views, book=early.book, now=NOW + 400, quiet_since=NOW - 200)
    assert repaired(on_time) == [1]
    assert event(on_time, "repairStarted")["gracePeriodEndedAt"] == NOW + 400
    assert on_time.book.noted == {}


def test_grace_runs_from_the_instances_last_action() -> None:
    # Ready at NOW-100 (quiet since long before) -> repairable at NOW+500.
    out = plan([vm(1, health=UNHEALTHY, ready_at=NOW - 100)], quiet_since=50.0)
    assert event(out, "repairWaiting")["until"] == NOW + 500
    assert out.wake_at == NOW + 500


def test_grace_falls_back_to_creation_time() -> None:
    out = plan([vm(1, health=UNHEALTHY, ready_at=None, created_at=NOW - 30)])
    assert out.wake_at == NOW + 570


def test_grace_period_from_the_policy() -> None:
    views = [vm(1, health=UNHEALTHY, ready_at=NOW - 1000)]
    assert plan(views, pol=policy(grace="PT30M")).wake_at == NOW + 800  # 1800 - 1000
    assert repaired(plan(views, pol=policy(grace="PT15M"))) == [1]  # 900 < 1000


def test_grace_ends_exactly_at_its_end() -> None:
    views = [vm(1, health=UNHEALTHY, ready_at=NOW - GRACE)]
    assert repaired(plan(views)) == [1]
    assert repaired(plan(views, now=NOW - 0.001)) == []


# ------------------------------------------------------------------------------------------------- batch limit


@pytest.mark.parametrize(
    ("size", "unhealthy", "expected"),
    [
        pytest.param(1, 1, 1, id="1-of-1"),
        pytest.param(19, 19, 1, id="under-20-one-at-a-time"),
        pytest.param(20, 20, 1, id="20-at-5pct-is-1"),
        pytest.param(39, 39, 1, id="39-floors-to-1"),
        pytest.param(40, 40, 2, id="40-at-5pct-is-2"),
        pytest.param(100, 100, 5, id="100-unhealthy-5"),
        pytest.param(1000, 3, 3, id="fewer-candidates-than-room"),
    ],
)
def test_batch_limit(size: int, unhealthy: int, expected: int) -> None:
    out = plan(fleet(size, unhealthy=range(unhealthy)))
    assert repaired(out) == list(range(expected))  # ascending instance id
    assert in_flight(out.book) == expected
    over = {str(i): "batchLimit" for i in range(expected, unhealthy)}
    assert waiting(out) == over


def test_candidates_are_taken_in_ascending_id_whatever_the_input_order() -> None:
    views = [vm(i, health=UNHEALTHY) for i in (17, 4, 11)]
    assert repaired(plan(views)) == [4]


def test_in_flight_attempts_count_against_the_limit() -> None:
    # 19 instances, a restart of 0 still running: nothing else starts.
    views = [vm(0, health=UNHEALTHY, provisioning=ProvisioningState.UPDATING, eta=NOW + 20), *fleet(19)[1:]]
    views = [dataclasses.replace(v, health=UNHEALTHY) if v.instance_id == 5 else v for v in views]
    out = plan(views, book=booked(attempt(0, action="Restart")), pol=policy("Restart"))
    assert out.actions == []
    assert event(out, "repairWaiting") == {"instanceId": "5", "reason": "batchLimit", "limit": 1, "inFlight": 1}
    assert out.wake_at == NOW + 20  # the in-flight restart's eta


def test_watched_attempts_count_against_the_limit_until_decided() -> None:
    # Instance 0's restart finished but it is not healthy yet: the one repair a set under 20 allows is still
    # taken, so instance 1 waits; once 0 is healthy, 1 is repaired.
    views = [vm(0, health=UNHEALTHY, ready_at=NOW - 10), vm(1, health=UNHEALTHY), *fleet(19)[2:]]
    book = booked(attempt(0, action="Restart", deadline=NOW - 10 + GRACE))
    out = plan(views, book=book, pol=policy("Restart"))
    assert repaired(out) == [] and waiting(out) == {"1": "batchLimit"}
    healed = [vm(0, ready_at=NOW - 10), vm(1, health=UNHEALTHY), *fleet(19)[2:]]
    assert repaired(plan(healed, book=out.book, pol=policy("Restart"))) == [1]


def test_an_in_flight_replace_counts_once_in_the_set_size() -> None:
    # 40 instances; 5 was replaced by 100 (5 deleting, 100 creating). N stays 40, so a second repair may start.
    views = [v for v in fleet(40, unhealthy=[9]) if v.instance_id != 5]
    views += [
        vm(5, health=None, provisioning=ProvisioningState.DELETING),
        vm(NEXT_ID, health=None, provisioning=ProvisioningState.CREATING, eta=NOW + 30),
    ]
    book = booked(attempt(NEXT_ID, original=5))
    out = plan_repairs(
        views,
        policy=policy(),
        book=book,
        now=NOW,
        quiet_since=0.0,
        rich=False,
        held=False,
        next_instance_id=NEXT_ID + 1,
        model_version=LATEST,
    )
    assert repaired(out) == [9]
    assert Create(NEXT_ID + 1, None, 0, LATEST, reason="automaticRepair") in out.actions
    assert in_flight(out.book) == 2


def test_an_in_flight_replace_still_blocks_a_set_under_20() -> None:
    views = [v for v in fleet(19, unhealthy=[9]) if v.instance_id != 5]
    views.append(vm(NEXT_ID, health=None, provisioning=ProvisioningState.CREATING))
    out = plan(views, book=booked(attempt(NEXT_ID, original=5)))
    assert out.actions == []
    assert waiting(out) == {"9": "batchLimit"}
    assert out.wake_at == NOW + POLL_SECONDS  # creating, no eta


# ------------------------------------------------------------------------------------------ off, suspended, held


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param({"no_policy": True}, id="no-policy"),
        pytest.param({"pol": policy(enabled=False)}, id="disabled"),
        pytest.param({"book": RepairBook(suspended=True, suspended_by="User")}, id="suspended"),
    ],
)
def test_does_nothing_when_off_or_suspended(setup: dict[str, Any]) -> None:
    book = setup.get("book", RepairBook())
    rest = {k: v for k, v in setup.items() if k != "book"}
    out = plan([vm(1, health=UNHEALTHY, stable_until=NOW + 5)], book=book, **rest)
    assert (out.actions, out.events, out.wake_at) == ([], [], None)
    assert out.book == book


def test_held_by_a_rolling_upgrade_logs_once() -> None:
    views = [vm(1, health=UNHEALTHY), vm(2, health=UNHEALTHY, scale_in=True), vm(3, stable_until=NOW + 9)]
    first = plan(views, held=True)
    assert first.actions == []
    assert waiting(first) == {"1": "heldByRollingUpgrade", "2": "protected"}
    assert first.wake_at is None  # the end of the rollout wakes the set, not a timer
    second = plan(views, book=first.book, held=True, now=NOW + 30)
    assert second.events == []
    released = plan(views, book=second.book, now=NOW + 60)
    assert repaired(released) == [1]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param({"no_policy": True}, id="no-policy"),
        pytest.param({"pol": policy(enabled=False)}, id="disabled"),
        pytest.param({"held": True}, id="held"),
    ],
)
def test_attempts_are_tracked_whatever_the_service_state(setup: dict[str, Any]) -> None:
    book = booked(attempt(NEXT_ID, original=1), attempt(NEXT_ID + 1, original=2))
    views = [
        vm(NEXT_ID, ready_at=NOW - 30),  # healthy: succeeded
        vm(NEXT_ID + 1, provisioning=ProvisioningState.CREATING, eta=NOW + 40),  # still creating
    ]
    out = plan(views, book=book, **setup)
    assert kinds(out) == ["repairSucceeded"]
    assert set(out.book.attempts) == {NEXT_ID + 1}
    assert out.wake_at == NOW + 40


def test_attempts_are_tracked_while_suspended() -> None:
    book = booked(attempt(1, action="Restart"), suspended=True, suspended_by="User")
    out = plan([vm(1, health=UNHEALTHY, provisioning=ProvisioningState.FAILED)], book=book)
    assert kinds(out) == ["repairFailed"]
    assert out.book.attempts == {}
    assert (out.book.suspended_by, out.book.consecutive_failures) == ("User", 1)


# -------------------------------------------------------------------------------------------- attempt tracking


def test_a_replacement_not_yet_visible_is_in_flight() -> None:
    out = plan([vm(1)], book=booked(attempt(NEXT_ID, original=5)))
    assert out.events == []
    assert out.book.attempts[NEXT_ID].deadline is None
    assert out.wake_at == NOW + POLL_SECONDS


def test_a_replacement_never_seen_fails_after_the_grace_period() -> None:
    book = booked(attempt(NEXT_ID, original=5, started_at=NOW - GRACE))
    out = plan([vm(1)], book=book)
    assert event(out, "repairFailed")["reason"] == "actionNotObserved"


def test_a_busy_subject_is_in_flight_until_its_eta() -> None:
    views = [vm(NEXT_ID, health=None, provisioning=ProvisioningState.CREATING, eta=NOW + 45)]
    out = plan(views, book=booked(attempt(NEXT_ID, original=5)))
    assert out.events == []
    assert out.wake_at == NOW + 45


def test_a_finished_subject_gets_the_grace_period_to_turn_healthy() -> None:
    # Created, ready at NOW-20, still Initializing: deadline NOW-20+600; health may settle at NOW+10.
    views = [vm(NEXT_ID, health=HealthState.INITIALIZING, ready_at=NOW - 20, stable_until=NOW + 10)]
    out = plan(views, book=booked(attempt(NEXT_ID, original=5)))
    assert out.events == []
    assert out.book.attempts[NEXT_ID].deadline == NOW + 580
    assert out.wake_at == NOW + 10
    unstable = plan([dataclasses.replace(views[0], stable_until=None)], book=booked(attempt(NEXT_ID, original=5)))
    assert unstable.wake_at == NOW + 580


def test_success_resets_the_failure_count() -> None:
    book = booked(attempt(NEXT_ID, original=5, deadline=NOW + 100), consecutive_failures=2)
    out = plan([vm(NEXT_ID, ready_at=NOW - 30)], book=book)
    assert event(out, "repairSucceeded") == {
        "instanceId": str(NEXT_ID),
        "originalInstanceId": "5",
        "action": "Replace",
    }
    assert (out.book.attempts, out.book.consecutive_failures) == ({}, 0)


def test_still_unhealthy_at_the_deadline_fails_and_is_a_candidate_again() -> None:
    # A restart finished at NOW-600: the deadline is NOW. Its own grace has run out too, so it is restarted again.
    book = booked(attempt(3, action="Restart", started_at=NOW - 700))
    out = plan([vm(3, health=UNHEALTHY, ready_at=NOW - GRACE)], book=book, pol=policy("Restart"))
    failed = event(out, "repairFailed")
    assert (failed["reason"], failed["health"], failed["consecutiveFailures"]) == (
        "unhealthyAfterGracePeriod",
        "Unhealthy",
        1,
    )
    assert out.actions == [Power(3, PowerAction.RESTART)]
    assert out.book.attempts[3].started_at == NOW
    assert kinds(out) == ["repairFailed", "repairStarted"]


def test_a_subject_still_initializing_at_the_deadline_is_judged_once_its_health_is_known() -> None:
    # The health extension's own grace period outlasts the repairs grace: wait for its verdict, neither fail nor
    # repair again meanwhile.
    book = booked(attempt(3, action="Restart", started_at=NOW - 700))
    view = vm(3, health=HealthState.INITIALIZING, ready_at=NOW - GRACE, stable_until=NOW + 30)
    out = plan([view], book=book, pol=policy("Restart"))
    assert out.events == [] and out.actions == []
    assert out.wake_at == NOW + 30
    later = plan([vm(3, health=HEALTHY, ready_at=NOW - GRACE)], book=out.book, pol=policy("Restart"))
    assert kinds(later) == ["repairSucceeded"]


def test_provisioning_failed_fails_the_repair_and_is_not_repaired_again() -> None:
    view = vm(NEXT_ID, provisioning=ProvisioningState.FAILED, error_code="VMExtensionProvisioningError")
    out = plan([view], book=booked(attempt(NEXT_ID, original=5)))
    failed = event(out, "repairFailed")
    assert (failed["reason"], failed["errorCode"]) == ("provisioningFailed", "VMExtensionProvisioningError")
    assert out.actions == []


@pytest.mark.parametrize(
    ("action", "views", "deadline"),
    [
        pytest.param("Reimage", [], None, id="reimaged-instance-gone"),
        pytest.param("Replace", [], NOW + 100, id="watched-replacement-gone"),
        pytest.param(
            "Restart", [vm(3, health=None, provisioning=ProvisioningState.DELETING)], None, id="subject-deleting"
        ),
    ],
)
def test_a_vanished_subject_fails_the_repair(action: str, views: list[InstanceView], deadline: float | None) -> None:
    out = plan(views, book=booked(attempt(3, action=action, deadline=deadline)))
    assert event(out, "repairFailed")["reason"] == "instanceDeleted"
    assert out.book.consecutive_failures == 1


def test_an_action_not_yet_applied_is_in_flight() -> None:
    # Reimage asked at NOW-10, but the instance still shows its earlier action (ready at 0): not judged yet.
    out = plan([vm(3, health=UNHEALTHY)], book=booked(attempt(3, action="Reimage", started_at=NOW - 10)))
    assert out.events == []
    assert out.book.attempts[3].deadline is None
    assert out.wake_at == NOW + POLL_SECONDS


# --------------------------------------------------------------------------------------------- suspension


def test_the_platform_suspends_after_consecutive_failures() -> None:
    book = booked(attempt(NEXT_ID, original=5), consecutive_failures=REPAIR_FAILURE_LIMIT - 1)
    views = [vm(NEXT_ID, provisioning=ProvisioningState.FAILED), vm(8, health=UNHEALTHY)]
    out = plan(views, book=book)
    assert kinds(out) == ["repairFailed", "repairsSuspended"]
    assert event(out, "repairsSuspended")["by"] == "Platform"
    assert (out.book.suspended, out.book.suspended_by) == (True, "Platform")
    assert "3 consecutive failed repairs" in (out.book.suspended_reason or "")
    assert out.actions == []  # 8 is not repaired: the service is suspended now
    assert service_state(policy(), out.book) is ServiceState.SUSPENDED


def test_three_failures_in_one_pass_suspend() -> None:
    book = booked(*(attempt(i, action="Restart") for i in (1, 2, 3)))
    views = [vm(i, provisioning=ProvisioningState.FAILED) for i in (1, 2, 3)]
    out = plan(views, book=book, pol=policy("Restart"))
    assert kinds(out) == ["repairFailed"] * 3 + ["repairsSuspended"]


def test_a_success_between_failures_restarts_the_count() -> None:
    book = booked(
        attempt(1, action="Restart"),
        attempt(2, action="Restart", deadline=NOW + 50),
        attempt(3, action="Restart"),
        consecutive_failures=1,
    )
    views = [
        vm(1, provisioning=ProvisioningState.FAILED),
        vm(2, ready_at=NOW - 5),
        vm(3, provisioning=ProvisioningState.FAILED),
    ]
    out = plan(views, book=book, pol=policy("Restart"))
    # Ascending id: 1 fails (2), 2 succeeds (0), 3 fails (1).
    assert kinds(out) == ["repairFailed", "repairSucceeded", "repairFailed"]
    assert (out.book.consecutive_failures, out.book.suspended) == (1, False)


def test_a_user_suspension_is_kept_when_failures_reach_the_limit() -> None:
    book = booked(attempt(1, action="Restart"), consecutive_failures=2, suspended=True, suspended_by="User")
    out = plan([vm(1, provisioning=ProvisioningState.FAILED)], book=book)
    assert kinds(out) == ["repairFailed"]
    assert out.book.suspended_by == "User"


# ------------------------------------------------------------------------------------------- noted reasons


def test_waiting_reasons_are_logged_once_and_again_when_they_change() -> None:
    views = [vm(1, health=UNHEALTHY, ready_at=NOW - 100), vm(2, health=UNHEALTHY, ready_at=NOW - 900)]
    first = plan(views, pol=policy("Restart"))
    assert waiting(first) == {"1": "gracePeriod"}
    assert repaired(first) == [2]
    second = plan(views, book=first.book, now=NOW + 1, pol=policy("Restart"))
    assert waiting(second) == {}
    # 1's grace has ended but 2's restart is still in flight: the reason changes, and is logged.
    views[1] = vm(2, health=None, provisioning=ProvisioningState.UPDATING, eta=NOW + 900)
    third = plan(views, book=second.book, now=NOW + 500, pol=policy("Restart"))
    assert waiting(third) == {"1": "batchLimit"}
    assert third.book.noted == {1: "batchLimit"}


def test_an_instance_that_recovers_is_forgotten_and_logged_again_later() -> None:
    sick = [vm(1, health=UNHEALTHY, ready_at=NOW - 100)]
    first = plan(sick)
    assert first.book.noted == {1: "gracePeriod"}
    recovered = plan([vm(1, ready_at=NOW - 100)], book=first.book, now=NOW + 10)
    assert recovered.book.noted == {}
    again = plan(sick, book=recovered.book, now=NOW + 20)
    assert waiting(again) == {"1": "gracePeriod"}


# ----------------------------------------------------------------------------------------------------- wake_at


def test_nothing_to_wait_for() -> None:
    assert plan(fleet(5)).wake_at is None
    assert plan([]).wake_at is None


def test_wakes_when_a_healthy_instance_may_change() -> None:
    views = [vm(1, stable_until=NOW + 30), vm(2, stable_until=NOW + 12), vm(3, stable_until=NOW - 1)]
    assert plan(views).wake_at == NOW + 15  # the next 5-second tick at or after NOW + 12: the service polls


def test_protected_instances_do_not_wake_the_planner() -> None:
    assert plan([vm(1, stable_until=NOW + 30, set_actions=True)]).wake_at is None


def test_wake_at_is_the_earliest_of_everything() -> None:
    views = [
        vm(1, stable_until=NOW + 300),  # healthy, may change at +300
        vm(2, health=UNHEALTHY, ready_at=NOW - 500),  # grace ends at +100
        vm(NEXT_ID, health=None, provisioning=ProvisioningState.CREATING, eta=NOW + 200),  # in flight
    ]
    out = plan(views, book=booked(attempt(NEXT_ID, original=5)))
    assert out.wake_at == NOW + 100


def test_a_busy_subject_past_its_eta_is_polled() -> None:
    views = [vm(NEXT_ID, health=None, provisioning=ProvisioningState.CREATING, eta=NOW - 1)]
    assert plan(views, book=booked(attempt(NEXT_ID, original=5))).wake_at == NOW + POLL_SECONDS


# --------------------------------------------------------------------------------------------- service state


def test_service_state() -> None:
    assert service_state(None, RepairBook()) is None
    assert service_state(policy(enabled=False), RepairBook(suspended=True)) is ServiceState.NOT_RUNNING
    assert service_state(policy(), RepairBook()) is ServiceState.RUNNING
    assert service_state(policy(), RepairBook(suspended=True)) is ServiceState.SUSPENDED


def test_suspend_then_resume() -> None:
    book, suspended = set_service_state(policy(), RepairBook(noted={1: "gracePeriod"}), "Suspend", now=NOW)
    assert (book.suspended, book.suspended_by) == (True, "User")
    assert suspended.kind == "repairsSuspended"
    assert suspended.data | {} == {
        "by": "User",
        "reason": book.suspended_reason,
        "previousState": "Running",
        "state": "Suspended",
        "changed": True,
        "at": NOW,
    }
    book, resumed = set_service_state(policy(), book, "resume", now=NOW + 1)
    assert book == RepairBook()
    assert (resumed.kind, resumed.data["state"], resumed.data["changed"]) == ("repairsResumed", "Running", True)


def test_resume_clears_a_platform_suspension_and_the_failure_count() -> None:
    start = RepairBook(suspended=True, suspended_by="Platform", suspended_reason="x", consecutive_failures=3)
    book, _ = set_service_state(policy(), start, "Resume", now=NOW)
    assert (book.suspended, book.suspended_by, book.suspended_reason, book.consecutive_failures) == (
        False,
        None,
        None,
        0,
    )
    assert start.suspended  # the input is untouched


def test_suspend_and_resume_are_idempotent() -> None:
    platform = RepairBook(suspended=True, suspended_by="Platform", suspended_reason="failures")
    book, again = set_service_state(policy(), platform, "SUSPEND", now=NOW)
    assert book == platform  # a platform suspension keeps its reason
    assert (again.kind, again.data["changed"]) == ("repairsSuspended", False)
    book, noop = set_service_state(policy(), RepairBook(), "Resume", now=NOW)
    assert book == RepairBook()
    assert (noop.kind, noop.data["changed"]) == ("repairsResumed", False)


@pytest.mark.parametrize("action", ["Suspend", "Resume"])
@pytest.mark.parametrize("pol", [None, policy(enabled=False)], ids=["no-policy", "disabled"])
def test_suspend_or_resume_needs_an_enabled_policy(action: str, pol: AutomaticRepairsPolicy | None) -> None:
    with pytest.raises(errors.DomainError) as caught:
        set_service_state(pol, RepairBook(), action, now=NOW)
    assert (caught.value.code, caught.value.status) == (errors.OPERATION_NOT_ALLOWED, 409)
    assert "automaticRepairsPolicy" in caught.value.message


@pytest.mark.parametrize("action", ["Pause", "", "Suspended"])
def test_an_unknown_action_is_invalid(action: str) -> None:
    with pytest.raises(errors.DomainError) as caught:
        set_service_state(None, RepairBook(), action, now=NOW)  # checked before the policy
    assert (caught.value.code, caught.value.status, caught.value.target) == (errors.INVALID_PARAMETER, 400, "action")


# ----------------------------------------------------------------------------------------- purity and storage


def test_plan_does_not_mutate_the_input_book() -> None:
    book = booked(
        attempt(NEXT_ID, original=5),
        attempt(3, action="Restart", deadline=NOW - 1),
        consecutive_failures=2,
        noted={1: "gracePeriod", 9: "protected"},
    )
    before = book.model_dump(mode="json")
    views = [
        vm(NEXT_ID, ready_at=NOW - 5, health=UNHEALTHY),
        vm(3, health=UNHEALTHY, ready_at=NOW - 700),
        vm(4, health=UNHEALTHY),
    ]
    out = plan(views, book=book, pol=policy("Restart"))
    assert out.events  # the pass did change things ...
    assert out.book.attempts[NEXT_ID].deadline is not None
    assert book.model_dump(mode="json") == before  # ... in its own copy
    assert book.attempts[NEXT_ID].deadline is None


def test_clone_has_its_own_containers() -> None:
    # Attempts themselves are shared: the planner replaces an attempt it changes (the next test holds that).
    book = booked(attempt(1), noted={2: "protected"})
    copy = book.clone()
    copy.attempts[1] = attempt(1, deadline=5.0)
    copy.attempts[7] = attempt(7)
    copy.noted[3] = "batchLimit"
    assert book == booked(attempt(1), noted={2: "protected"})


def test_the_book_round_trips_through_json() -> None:
    book = booked(attempt(NEXT_ID, original=5, deadline=NOW), consecutive_failures=1, noted={3: "batchLimit"})
    stored = book.model_dump(mode="json")
    assert RepairBook.model_validate(stored) == book
    with pytest.raises(ValueError, match="extra"):
        RepairBook.model_validate({**stored, "surprise": 1})


def test_same_input_same_output() -> None:
    views = fleet(60, unhealthy=range(0, 60, 4))
    assert plan(views) == plan(views)


# ---------------------------------------------------------------------------------------------- properties


@dataclasses.dataclass
class World:
    """A tiny scale set the planner's actions advance: each action keeps its instance busy for a drawn time, then
    the instance turns out healthy or unhealthy (drawn)."""

    rng: random.Random
    vms: dict[int, dict[str, Any]]
    next_id: int
    slots: int

    def views(self, now: float) -> list[InstanceView]:
        out = []
        for vid, s in sorted(self.vms.items()):
            busy = s["busy_until"] is not None and now < s["busy_until"]
            out.append(
                vm(
                    vid,
                    health=None if busy else s["health"],
                    provisioning=s["busy_kind"] if busy else s["provisioning"],
                    ready_at=None if busy else s["ready_at"],
                    created_at=s["created_at"],
                    eta=s["busy_until"] if busy else None,
                    scale_in=s["scale_in"],
                    set_actions=s["set_actions"],
                )
            )
        return out

    def settle(self, now: float) -> None:
        for vid in list(self.vms):
            s = self.vms[vid]
            if s["busy_until"] is not None and now >= s["busy_until"]:
                if s["busy_kind"] is ProvisioningState.DELETING:
                    del self.vms[vid]
                    continue
                s["busy_until"], s["ready_at"] = None, s["busy_until"]

    def busy(self, vid: int, now: float, kind: ProvisioningState) -> None:
        s = self.vms[vid]
        s["busy_until"], s["busy_kind"] = now + self.rng.uniform(1, 300), kind
        if kind is not ProvisioningState.DELETING:
            s["health"] = self.rng.choice([HEALTHY, HEALTHY, UNHEALTHY, UNKNOWN])
            s["provisioning"] = self.rng.choice([ProvisioningState.SUCCEEDED] * 5 + [ProvisioningState.FAILED])

    def apply(self, actions: list[Action], now: float) -> None:
        for a in actions:
            if isinstance(a, Create):
                assert a.instance_id == self.next_id
                self.next_id += 1
                self.vms[a.instance_id] = fresh(now, scale_in=False, set_actions=False)
                self.busy(a.instance_id, now, ProvisioningState.CREATING)
            elif isinstance(a, Delete):
                self.busy(a.instance_id, now, ProvisioningState.DELETING)
            else:
                self.busy(a.instance_id, now, ProvisioningState.UPDATING)


def fresh(now: float, **flags: bool) -> dict[str, Any]:
    return {
        "health": HEALTHY,
        "provisioning": ProvisioningState.SUCCEEDED,
        "ready_at": now,
        "created_at": now,
        "busy_until": None,
        "busy_kind": ProvisioningState.UPDATING,
        **flags,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(min_value=1, max_value=90),
    unhealthy=st.floats(min_value=0, max_value=1),
    protected=st.floats(min_value=0, max_value=0.5),
    action=st.sampled_from(["Replace", "Reimage", "Restart"]),
    rich=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_never_over_the_batch_limit_and_never_a_protected_instance(
    *, size: int, unhealthy: float, protected: float, action: str, rich: bool, seed: int
) -> None:
    rng = random.Random(seed)
    world = World(rng=rng, vms={}, next_id=size, slots=size)
    for vid in range(size):
        s = fresh(0.0, scale_in=rng.random() < protected, set_actions=rng.random() < protected / 2)
        s["health"] = rng.choice([UNHEALTHY, UNKNOWN]) if rng.random() < unhealthy else HEALTHY
        world.vms[vid] = s
    limit = max(1, size * 5 // 100)
    pol, book, now = policy(action), RepairBook(), 0.0
    for _ in range(150):
        world.settle(now)
        views = world.views(now)
        shielded = {v.instance_id for v in views if v.protect_from_scale_in or v.protect_from_scale_set_actions}
        out = plan_repairs(
            views,
            policy=pol,
            book=book,
            now=now,
            quiet_since=0.0,
            rich=rich,
            held=False,
            next_instance_id=world.next_id,
            model_version=LATEST,
        )
        targets = [a.instance_id for a in out.actions if not isinstance(a, Create)]
        assert not shielded & set(targets)
        assert len(targets) == len(set(targets))
        assert in_flight(out.book) <= limit
        if out.book.suspended and not book.suspended:
            assert out.book.consecutive_failures >= REPAIR_FAILURE_LIMIT
        world.apply(out.actions, now)
        book = RepairBook.model_validate(out.book.model_dump(mode="json"))  # persisted between passes
        if out.wake_at is None:
            break
        assert out.wake_at >= now
        now = out.wake_at
    # Replace keeps the set's size: every slot is either an instance or a deletion still under way.
    assert len([v for v in world.views(now) if v.provisioning is not ProvisioningState.DELETING]) == world.slots


@settings(max_examples=80, deadline=None)
@given(
    healths=st.lists(st.sampled_from([HEALTHY, UNHEALTHY, UNKNOWN, HealthState.INITIALIZING, None]), max_size=60),
    flags=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=60, max_size=60),
    busy=st.sets(st.integers(min_value=0, max_value=59)),
    rich=st.booleans(),
)
def test_one_pass_respects_the_limit_whatever_the_fleet(
    healths: list[HealthState | None], flags: list[tuple[bool, bool]], busy: set[int], rich: bool
) -> None:
    # Busy instances are the subjects of restarts in flight; the pass may only fill the room that is left.
    views = [
        vm(
            i,
            health=h,
            scale_in=flags[i][0],
            set_actions=flags[i][1],
            provisioning=ProvisioningState.UPDATING if i in busy else ProvisioningState.SUCCEEDED,
        )
        for i, h in enumerate(healths)
    ]
    book = booked(*(attempt(i, action="Restart") for i in sorted(busy) if i < len(healths)))
    out = plan(views, book=book, pol=policy("Restart"), rich=rich)
    limit = max(1, len(views) * 5 // 100)
    started = repaired(out)
    assert len(started) <= max(0, limit - in_flight(book))
    for vid in started:
        v = views[vid]
        assert not (v.protect_from_scale_in or v.protect_from_scale_set_actions)
        assert v.health is UNHEALTHY or (rich and v.health is UNKNOWN)
        assert vid not in busy
