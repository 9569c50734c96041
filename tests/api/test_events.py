"""``GET /_scaleset/events``: the activity log over HTTP, against the live server (order, filtering, paging)."""

from __future__ import annotations

from typing import Any

import requests
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
from tests.api.conftest import Server, assert_arm_error, image_patch, scale_set_body

EVENTS = "/_scaleset/events"


def _events(arm: requests.Session, server: Server, **params: Any) -> dict[str, Any]:
    answer = arm.get(server.url(EVENTS, None), params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


def _rolled(
    compute: ComputeManagementClient, resources: ResourceManagementClient, group: str, *, capacity: int = 4
) -> None:
    """A Rolling scale set created, then taken from 1.0.0 to 1.1.0 (25% batches: one instance each)."""
    resources.resource_groups.create_or_update(group, {"location": "westus"})
    body = scale_set_body(capacity=capacity, rolling={"maxBatchInstancePercent": 25})
    compute.virtual_machine_scale_sets.begin_create_or_update(group, "web", body).result(timeout=60)
    compute.virtual_machine_scale_sets.begin_update(group, "web", image_patch("1.1.0")).result(timeout=60)


def test_events_of_a_rollout_in_order_filtered_and_paged(
    server: Server, arm: requests.Session, compute: ComputeManagementClient, resources: ResourceManagementClient
) -> None:
    _rolled(compute, resources, "events-a")
    _rolled(compute, resources, "events-b", capacity=2)
    set_id = server.vmss_path("events-a", "web")

    everything = _events(arm, server, scaleSet=set_id)
    rows = everything["value"]
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert everything["next"] == seqs[-1]
    assert {row["scaleSet"] for row in rows} == {set_id.lower()}  # only this scale set, keyed in lower case
    times = [row["time"] for row in rows]
    assert times == sorted(times)  # virtual time never goes back along the log
    assert all(isinstance(row["timeIso"], str) and row["timeIso"].endswith("Z") for row in rows)

    kinds = [row["kind"] for row in rows]
    assert kinds[0] == "scaleSetCreated"
    started = kinds.index("rolloutStarted")
    assert kinds.index("rolloutCompleted") > started
    batches = [row for row in rows if row["kind"] == "batchStarted"]
    assert [row["batch"] for row in batches] == [1, 2, 3, 4]
    assert sorted(i for row in batches for i in row["instanceIds"]) == ["0", "1", "2", "3"]
    rollout_id = rows[started]["rolloutId"]
    assert rollout_id and all(row["rolloutId"] == rollout_id for row in batches)
    for row in batches:  # each batch completes before the next starts
        done = next(r for r in rows if r["kind"] == "batchCompleted" and r["batch"] == row["batch"])
        assert row["seq"] < done["seq"]
        assert row["time"] <= done["time"]
    assert kinds[-1] == "operationFinished"

    # The lower-case form of the id gives the same events; another scale set gives its own; none gives both.
    assert _events(arm, server, scaleSet=set_id.lower())["value"] == rows
    other = _events(arm, server, scaleSet=server.vmss_path("events-b", "web"))["value"]
    assert other and not {row["seq"] for row in other} & set(seqs)
    assert sum(row["kind"] == "batchStarted" for row in other) == 2
    both = {row["seq"] for row in _events(arm, server)["value"]}
    assert set(seqs) | {row["seq"] for row in other} <= both

    # after= continues from a sequence number; limit= pages; next= is where to go on from.
    middle = seqs[len(seqs) // 2]
    assert [row["seq"] for row in _events(arm, server, scaleSet=set_id, after=middle)["value"]] == [
        s for s in seqs if s > middle
    ]
    paged: list[int] = []
    after = 0
    for _ in range(len(seqs) + 2):
        page = _events(arm, server, scaleSet=set_id, after=after, limit=3)
        assert len(page["value"]) <= 3
        paged += [row["seq"] for row in page["value"]]
        if not page["value"]:
            assert page["next"] == after  # nothing new: poll again from the same place
            break
        after = page["next"]
    assert paged == seqs
    assert _events(arm, server, scaleSet=server.vmss_path("events-a", "nothing-here")) == {"value": [], "next": 0}


def test_events_need_a_token_and_valid_numbers(server: Server, arm: requests.Session) -> None:
    anonymous = server.anonymous().get(server.url(EVENTS, None), timeout=10)
    assert_arm_error(anonymous, 401, "AuthenticationFailed")
    for params in ({"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "1001"}):
        answer = arm.get(server.url(EVENTS, None), params=params, timeout=10)
        assert_arm_error(answer, 400, "InvalidParameter")
    assert arm.post(server.url(EVENTS, None), timeout=10).status_code == 405
