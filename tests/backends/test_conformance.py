"""One conformance suite for every instance backend: what the engine may rely on, whatever runs the instances.

Each backend gets a driver that moves its time on: the simulated backend's virtual clock jumps; the process
backend runs real processes of the demo application, so its driver lets real time pass (bounded waits; the
settings keep every step to a second or two).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from scaleset.backends import base
from scaleset.backends import process as process_backend
from scaleset.backends.base import InstanceModel
from scaleset.backends.process import ProcessBackend
from scaleset.backends.simulated import Range, SimulatedBackend, SimulationConfig
from scaleset.domain.catalogue import BUILTIN_IMAGES, lookup
from scaleset.domain.health import HealthState, ProbeSettings
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.records import InstanceRecord
from scaleset.domain.resources import ImageReference

SET_ID = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/conformance"
IMAGE = ImageReference(publisher="scaleset", offer="demo", sku="app", version="1.0.0")
PROBE = ProbeSettings(
    "extension", protocol="http", request_path="/health", interval=0.2, probes=1, grace=5.0, rich=True
)


def model(version: int, image_version: str) -> InstanceModel:
    image = IMAGE.model_copy(update={"version": image_version})
    body = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": image.model_dump()}}}}
    return InstanceModel(version, image_version, (), PROBE, image=image, body=body)


class Driver(Protocol):
    backend: base.InstanceBackend

    def now(self) -> float: ...

    def until(self, predicate: Callable[[], bool], *, within: float) -> bool: ...

    def close(self) -> None: ...


@dataclass
class SimulatedDriver:
    backend: SimulatedBackend = field(
        default_factory=lambda: SimulatedBackend(
            SimulationConfig(seed=3, provision=Range(min=5, max=10), app_start=Range(min=1, max=2))
        )
    )
    clock: float = 1_000.0

    def now(self) -> float:
        return self.clock

    def until(self, predicate: Callable[[], bool], *, within: float) -> bool:
        deadline = self.clock + within * 100  # virtual seconds are free
        while self.clock <= deadline:
            if predicate():
                return True
            self.clock += 0.5
        return False

    def close(self) -> None:
        self.backend.close()


@dataclass
class ProcessDriver:
    root: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    backend: ProcessBackend = field(init=False)

    def __post_init__(self) -> None:
        self.backend = ProcessBackend(
            root=self.root,
            find_image=lambda ref, version: lookup(BUILTIN_IMAGES, ref, version or ""),
            clock=time.time,
            drain_seconds=0.2,
            python=sys.executable,
        )

    def now(self) -> float:
        return time.time()

    def run(self, call: Callable[[], Any]) -> Any:
        async def inside() -> Any:
            return call()

        return self.loop.run_until_complete(inside())

    def until(self, predicate: Callable[[], bool], *, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:  # real processes: real time must pass
            if self.loop.run_until_complete(_check(predicate)):
                return True
            self.loop.run_until_complete(asyncio.sleep(0.05))
        return bool(self.loop.run_until_complete(_check(predicate)))

    def close(self) -> None:
        self.loop.run_until_complete(self.backend.aclose())
        self.loop.close()


async def _check(predicate: Callable[[], bool]) -> bool:
    return predicate()


@pytest.fixture(params=["simulated", "process"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    made: Driver = SimulatedDriver() if request.param == "simulated" else ProcessDriver(tmp_path)
    yield made
    made.close()


def act(driver: Driver, record: InstanceRecord, action: str, *, version: int = 1, image: str = "1.0.0") -> None:
    record.action = action
    record.generation += 1
    record.action_started_at = driver.now()
    record.model_version = version
    record.image_version = image
    if action == base.POWER_OFF:
        record.power_goal = "stopped"
    elif action == base.DEALLOCATE:
        record.power_goal = "deallocated"
    elif action in (base.START, base.RESTART, base.CREATE, base.UPGRADE, base.REIMAGE):
        record.power_goal = "running"
    call = lambda: driver.backend.apply(record, set_id=SET_ID, model=model(version, image), now=driver.now())  # noqa: E731
    if isinstance(driver, ProcessDriver):
        driver.run(call)
    else:
        call()


def look(driver: Driver, record: InstanceRecord) -> InstanceView | None:
    return driver.backend.observe(
        record, set_id=SET_ID, model=model(record.model_version, record.image_version or ""), now=driver.now()
    )


def serving(driver: Driver, record: InstanceRecord) -> Callable[[], bool]:
    def check() -> bool:
        view = look(driver, record)
        return view is not None and view.is_healthy and view.health is HealthState.HEALTHY

    return check


def new_record(driver: Driver, instance_id: int = 0) -> InstanceRecord:
    return InstanceRecord(
        instance_id=instance_id,
        zone=None,
        fault_domain=0,
        model_version=1,
        created_at=driver.now(),
        image_version="1.0.0",
    )


def test_create_provisions_then_turns_healthy(driver: Driver) -> None:
    record = new_record(driver)
    act(driver, record, base.CREATE)
    first = look(driver, record)
    assert first is not None and first.busy and first.provisioning is ProvisioningState.CREATING
    assert driver.until(serving(driver, record), within=10)
    view = look(driver, record)
    assert view is not None and view.power is PowerState.RUNNING and view.ready_at is not None


def test_restart_goes_busy_and_comes_back(driver: Driver) -> None:
    record = new_record(driver)
    act(driver, record, base.CREATE)
    assert driver.until(serving(driver, record), within=10)
    act(driver, record, base.RESTART)
    view = look(driver, record)
    assert view is not None and not view.is_healthy
    assert driver.until(serving(driver, record), within=10)


def test_power_off_then_start(driver: Driver) -> None:
    record = new_record(driver)
    act(driver, record, base.CREATE)
    assert driver.until(serving(driver, record), within=10)
    act(driver, record, base.POWER_OFF)

    def stopped() -> bool:
        view = look(driver, record)
        return view is not None and not view.busy and view.power is PowerState.STOPPED

    assert driver.until(stopped, within=10)
    view = look(driver, record)
    assert view is not None and view.is_unhealthy and not view.is_healthy
    act(driver, record, base.START)
    assert driver.until(serving(driver, record), within=10)


def test_upgrade_and_reimage_end_on_the_new_model(driver: Driver) -> None:
    record = new_record(driver)
    act(driver, record, base.CREATE)
    assert driver.until(serving(driver, record), within=10)
    act(driver, record, base.UPGRADE, version=2, image="1.1.0")
    assert driver.until(serving(driver, record), within=10)
    view = look(driver, record)
    assert view is not None and view.model_version == 2
    act(driver, record, base.REIMAGE, version=2, image="1.1.0")
    assert driver.until(serving(driver, record), within=10)


def test_a_never_healthy_image_is_provisioned_but_not_healthy(driver: Driver) -> None:
    if isinstance(driver, SimulatedDriver):
        driver.backend.config = driver.backend.config.model_copy(
            update={
                "faults": SimulationConfig.model_validate(
                    {"faults": [{"kind": "never_healthy", "image_version": "3.0.0", "respond": "unhealthy"}]}
                ).faults
            }
        )
    record = new_record(driver)
    act(driver, record, base.CREATE, image="3.0.0")

    def decided() -> bool:
        view = look(driver, record)
        return view is not None and not view.busy and view.health in (HealthState.UNHEALTHY, HealthState.UNKNOWN)

    assert driver.until(decided, within=10)
    view = look(driver, record)
    assert view is not None and view.provisioning is ProvisioningState.SUCCEEDED and not view.is_healthy


def test_delete_makes_the_instance_disappear(driver: Driver) -> None:
    record = new_record(driver)
    act(driver, record, base.CREATE)
    assert driver.until(serving(driver, record), within=10)
    act(driver, record, base.DELETE)
    view = look(driver, record)
    assert view is None or view.provisioning is ProvisioningState.DELETING
    assert driver.until(lambda: look(driver, record) is None, within=10)


def test_a_forced_delete_makes_the_instance_disappear(driver: Driver) -> None:
    record = new_record(driver)
    act(driver, record, base.CREATE)
    assert driver.until(serving(driver, record), within=10)
    record.force = True  # what the engine sets from Delete.force (forceDeletion)
    act(driver, record, base.DELETE)
    view = look(driver, record)
    assert view is None or view.provisioning is ProvisioningState.DELETING
    assert driver.until(lambda: look(driver, record) is None, within=10)


# ---------------------------------------------------------------------------------------------------- forceDeletion


@pytest.mark.parametrize("force", [False, True])
def test_simulated_forced_delete_takes_the_shortest_delete(force: bool) -> None:
    """docs/semantics.md: a forced delete takes ``delete.min`` seconds; a graceful one a draw from ``delete``."""
    backend = SimulatedBackend(SimulationConfig(seed=5, delete=Range(min=10, max=30)))
    durations = []
    for instance_id in range(8):
        record = InstanceRecord(instance_id, None, 0, 1, 0.0, action=base.DELETE, generation=1, force=force)
        backend.apply(record, set_id=SET_ID, model=model(1, "1.0.0"), now=100.0)
        view = backend.observe(record, set_id=SET_ID, model=model(1, "1.0.0"), now=100.0)
        assert view is not None and view.provisioning is ProvisioningState.DELETING and view.eta is not None
        assert backend.observe(record, set_id=SET_ID, model=model(1, "1.0.0"), now=view.eta) is None
        durations.append(view.eta - 100.0)
    if force:
        assert durations == [10.0] * 8
    else:
        assert all(10.0 <= d <= 30.0 for d in durations) and len(set(durations)) == 8


def test_process_forced_delete_kills_at_once_without_draining(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forced delete takes the instance out of the load balancer at once (an open connection is reset, not
    waited for through the drain window) and SIGKILLs its process group, with no SIGTERM first."""
    signals: list[int] = []
    real_killpg = os.killpg

    def recording_killpg(pgid: int, sig: int) -> None:
        if sig:
            signals.append(sig)
        real_killpg(pgid, sig)

    monkeypatch.setattr(process_backend.os, "killpg", recording_killpg)
    driver = ProcessDriver(tmp_path)
    driver.backend.drain_seconds = 60.0  # a graceful delete would wait a minute for the open connection
    try:
        record = new_record(driver)
        act(driver, record, base.CREATE)
        assert driver.until(serving(driver, record), within=10)
        found = driver.backend.balancer(SET_ID)
        assert found is not None
        balancer = found[0]
        assert driver.until(lambda: balancer.pool() != [] and balancer.port is not None, within=5)
        client = socket.create_connection(("127.0.0.1", balancer.port), timeout=5)
        try:
            assert driver.until(lambda: balancer.stats()["active"] == 1, within=5)
            signals.clear()
            record.force = True
            started = time.monotonic()
            act(driver, record, base.DELETE)
            assert driver.until(lambda: look(driver, record) is None, within=10)
            assert time.monotonic() - started < 10  # far from the 60 s drain window
            assert signals and set(signals) == {signal.SIGKILL}, signals
            assert driver.until(lambda: balancer.stats()["active"] == 0, within=5)  # the connection was reset
        finally:
            client.close()
    finally:
        driver.close()
