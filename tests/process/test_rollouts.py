"""Rolling upgrades of real processes under real traffic through the scale set's load balancer.

The scale sets are created together when the module starts, so their instances turn Healthy while the first test
sets up; each rollout then costs about 5 s a batch (stop, start, the second probe).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from tests.process.conftest import (
    Api,
    Live,
    Load,
    all_healthy,
    get,
    image_patch,
    instance_home,
    scale_set,
    vm_version,
    wait_for,
)

GROUP = "rollouts"
CAPACITY = 4
HAPPY = {"smooth": "PT1S", "tight": "PT0S"}  # name -> pauseTimeBetweenBatches
BAD = "broken"
MAX_UNHEALTHY_UPGRADED = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"


def happy_policy(pause: str) -> dict[str, object]:
    """Batches of two (50% of 4; maxUnhealthyInstancePercent 50 lets two be out at once)."""
    return {"maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 50, "pauseTimeBetweenBatches": pause}


BAD_POLICY = {
    "maxBatchInstancePercent": 25,  # one instance a batch
    "maxUnhealthyUpgradedInstancePercent": 0,
    "pauseTimeBetweenBatches": "PT1S",
    "rollbackFailedInstancesOnPolicyBreach": True,
}


@pytest.fixture(scope="module")
def fleets(live: Live) -> Api:
    """Every scale set of this module, created at once (creation returns as soon as the processes are started)."""
    api = live.api
    api.group(GROUP)
    operations = [
        api.create(GROUP, name, scale_set(capacity=CAPACITY, rolling=happy_policy(p))) for name, p in HAPPY.items()
    ]
    operations.append(api.create(GROUP, BAD, scale_set(capacity=CAPACITY, rolling=BAD_POLICY)))
    for operation in operations:
        assert api.finish(operation, timeout=15)["status"] == "Succeeded"
    return api


def ready(api: Api, name: str) -> int:
    """Wait until every instance is Healthy and in the load balancer's pool; the balancer's port."""
    wait_for(lambda: all_healthy(api, GROUP, name, CAPACITY), timeout=15, what=f"{name}: every instance Healthy")
    wait_for(lambda: len(api.balancer(GROUP, name)["pool"]) == CAPACITY, timeout=2, what=f"{name}: all in the pool")
    return int(api.balancer(GROUP, name)["port"])


def answers(port: int, count: int) -> list[dict[str, object]]:
    out = []
    for _ in range(count):
        status, body = get(port)
        assert status == 200, body
        out.append(json.loads(body))
    return out


def starts(data_dir: Path, name: str, instance_id: int) -> list[str]:
    """The image versions an instance's application started as, in order (the demo app's ``starts`` file)."""
    lines = (instance_home(data_dir, name, instance_id) / "data" / "starts").read_text().splitlines()
    return [line.split()[1] for line in lines]


def test_rollout_under_load_drops_no_request(live: Live, fleets: Api) -> None:
    """1.0.0 -> 1.1.0 on two scale sets at once, each under 50 requests a second, one request per connection: a
    pause of PT1S between batches, and none at all (the next batch leaves the pool the instant the last one turns
    Healthy, so the pool must already hold it)."""
    api = fleets
    ports = {name: ready(api, name) for name in HAPPY}
    with contextlib.ExitStack() as running:
        loads = {name: running.enter_context(Load(port, rps=50)) for name, port in ports.items()}
        operations = {name: api.start_operation("PATCH", api.path(GROUP, name), image_patch("1.1.0")) for name in HAPPY}
        results = {name: api.finish(operation, timeout=30) for name, operation in operations.items()}
    for name in HAPPY:
        load = loads[name]
        assert results[name]["status"] == "Succeeded", (name, results[name])
        latest = api.latest(GROUP, name)["properties"]
        assert latest["runningStatus"]["code"] == "Completed"
        assert latest["progress"]["successfulInstanceCount"] == CAPACITY
        assert load.sent >= 200, load.summary()
        assert load.failures == [], f"{name}: {load.summary()}"
        assert load.versions["1.0.0"] > 0 and load.versions["1.1.0"] > 0, load.summary()
        assert len(load.instances) == CAPACITY and min(load.instances.values()) >= load.sent // 10, load.summary()
        stats = api.balancer(GROUP, name)["stats"]
        assert stats["refusedEmptyPool"] == stats["failed"] == stats["cut"] == 0, stats

        # every instance answers 1.1.0 through the load balancer, and round robin reaches each one
        seen = answers(ports[name], 2 * CAPACITY)
        assert {a["version"] for a in seen} == {"1.1.0"}
        assert {a["instanceId"] for a in seen} == {str(i) for i in range(CAPACITY)}
        assert {vm_version(vm) for vm in api.vms(GROUP, name)} == {"1.1.0"}
        for instance_id in range(CAPACITY):
            assert starts(live.data_dir, name, instance_id) == ["1.0.0", "1.1.0"]


def test_bad_image_faults_the_rollout_and_rolls_back(live: Live, fleets: Api) -> None:
    """3.0.0 never turns Healthy: the first batch (one instance) fails after the health wait, the rollout is
    Faulted with Azure's code, that instance goes back to 1.0.0 and Healthy, and the others never leave 1.0.0.
    The broken instance is never in the pool, so traffic through the load balancer never fails."""
    api = fleets
    port = ready(api, BAD)
    with Load(port, rps=40) as load:
        operation = api.start_operation("PATCH", api.path(GROUP, BAD), image_patch("3.0.0"))
        result = api.finish(operation, timeout=30)
        assert result["status"] == "Failed", result
        assert result["error"]["code"] == MAX_UNHEALTHY_UPGRADED, result
        latest = api.latest(GROUP, BAD)["properties"]
        assert latest["runningStatus"]["code"] == "Faulted"
        assert latest["error"]["code"] == MAX_UNHEALTHY_UPGRADED
        assert latest["progress"]["failedInstanceCount"] == 1

        events = api.events(GROUP, BAD)
        batches = [e for e in events if e["kind"] == "batchCompleted"]
        assert len(batches) == 1 and batches[0]["passed"] is False, batches
        failed = int(batches[0]["failedIds"][0])
        assert not any(e["kind"] == "batchStarted" and e["batch"] > 1 for e in events)

        # the rollback: the failed instance comes back Healthy on 1.0.0 (in the pool again)
        wait_for(
            lambda: any(e["kind"] == "rollbackCompleted" for e in api.events(GROUP, BAD)),
            timeout=15,
            what="the rollback to complete",
        )
        done = next(e for e in api.events(GROUP, BAD) if e["kind"] == "rollbackCompleted")
        assert done["instanceIds"] == done["healthyIds"] == [str(failed)], done
        wait_for(lambda: len(api.balancer(GROUP, BAD)["pool"]) == CAPACITY, timeout=2, what="all in the pool")
    assert load.sent >= 200, load.summary()
    assert load.failures == [], load.summary()
    assert set(load.versions) == {"1.0.0"}, load.summary()  # 3.0.0 never served a request

    vms = {int(vm["instanceId"]): vm for vm in api.vms(GROUP, BAD)}
    assert {i: vm_version(vm) for i, vm in vms.items()} == dict.fromkeys(range(CAPACITY), "1.0.0")
    assert vms[failed]["properties"]["latestModelApplied"] is False  # the model says 3.0.0; the instance does not
    assert starts(live.data_dir, BAD, failed) == ["1.0.0", "3.0.0", "1.0.0"]
    for instance_id in set(range(CAPACITY)) - {failed}:
        assert starts(live.data_dir, BAD, instance_id) == ["1.0.0"], instance_id
    seen = answers(port, 2 * CAPACITY)
    assert {a["version"] for a in seen} == {"1.0.0"}
    assert {a["instanceId"] for a in seen} == {str(i) for i in range(CAPACITY)}
