"""What a running server holds: the store, the engine over a scaled clock, the simulated backend and its faults,
the identity that signs tokens; and the driver that runs reconcile passes as their time comes.

Everything runs on the server's event loop thread: request handlers call the services, the driver runs passes,
never at the same time, so the engine needs no locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleset.api.auth import Identity
from scaleset.api.extensions import versions_of
from scaleset.api.images import catalogue_images
from scaleset.backends.base import InstanceBackend
from scaleset.backends.process import ProcessBackend
from scaleset.backends.simulated import Fault, SimulatedBackend, SimulationConfig
from scaleset.domain.catalogue import lookup, versions_for
from scaleset.domain.errors import DomainError
from scaleset.domain.upgrade.rolling import HEALTH_WAIT_SECONDS
from scaleset.engine.clock import Clock, ScaledClock, SystemClock
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services, scale_set_id
from scaleset.store.base import Store

log = logging.getLogger("scaleset.serve")

FAULTS = "fault"
GROUPS = "resourceGroup"
MAX_IDLE_SLEEP = 1.0


DEMO_GROUP, DEMO_SET = "demo", "web"


def demo_body(backend: str) -> dict[str, Any]:
    """Six instances of the demo application, Rolling in batches of two, rich health on ``/health``."""
    return {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": 6},
        "properties": {
            "upgradePolicy": {
                "mode": "Rolling",
                "rollingUpgradePolicy": {
                    "maxBatchInstancePercent": 34,
                    "maxUnhealthyInstancePercent": 50,
                    "maxUnhealthyUpgradedInstancePercent": 0,
                    "pauseTimeBetweenBatches": "PT2S",
                    "rollbackFailedInstancesOnPolicyBreach": True,
                },
            },
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser"},
                "storageProfile": {
                    "imageReference": {"publisher": "scaleset", "offer": "demo", "sku": "app", "version": "1.0.0"}
                },
                "extensionProfile": {
                    "extensions": [
                        {
                            "name": "HealthExtension",
                            "properties": {
                                "publisher": "Microsoft.ManagedServices",
                                "type": "ApplicationHealthLinux",
                                "typeHandlerVersion": "2.0",
                                "settings": {
                                    "protocol": "http",
                                    "port": 8080,
                                    "requestPath": "/health",
                                    "intervalInSeconds": 5,
                                    "numberOfProbes": 1,
                                    "gracePeriod": 30,
                                },
                            },
                        }
                    ]
                },
            },
        },
        "tags": {"scaleset-demo": backend},
    }


def create_demo(runtime: Runtime) -> None:
    """The demo group and scale set, unless they exist (a restart keeps the user's changes)."""
    sub = runtime.identity.subscription
    key = f"{sub.lower()}/{DEMO_GROUP}"
    if runtime.store.get_document(GROUPS, key) is None:
        runtime.store.put_document(GROUPS, key, {"name": DEMO_GROUP, "location": "westus", "tags": {}})
    try:
        runtime.services.get_scale_set(sub, DEMO_GROUP, DEMO_SET)
    except DomainError:
        runtime.services.put_scale_set(sub, DEMO_GROUP, DEMO_SET, demo_body(runtime.backend_kind))


def demo_hints(url: str | None, endpoint_hint: str) -> str:
    target = "scale set 'web' in group 'demo': 6 instances of scaleset:demo:app 1.0.0"
    lines = [f"demo: {target}" + (f", load balancer {url}" if url else " (simulated instances)"), "try:"]
    if endpoint_hint:
        lines.append(f"  export {endpoint_hint}")
    prefix = ""
    if url:
        lines.append(f"  curl {url}")
        lines.append(f"  {prefix}scaleset load --target {url} --rps 20 --duration 3m --scale-set -g demo -n web &")
    image = "virtualMachineProfile.storageProfile.imageReference.version"
    lines += [
        f"  {prefix}scaleset vmss update -g demo -n web --set {image}=1.1.0   # a rolling upgrade",
        f"  {prefix}scaleset vmss rolling-upgrade get-latest -g demo -n web -o table",
        f"  {prefix}scaleset vmss update -g demo -n web --set {image}=3.0.0   # a bad image: faults, rolls back",
        f"  {prefix}scaleset image list -o table",
    ]
    return "\n".join(lines)


def make_clock(store: Store, time_scale: float) -> Clock:
    """Wall time at scale 1; otherwise virtual time running ``time_scale`` times as fast, resuming from the
    virtual time the store last recorded (so a restart does not jump rollouts forward by the downtime)."""
    if time_scale == 1:
        return SystemClock()
    saved = store.get_meta("now")
    start = max(float(saved), 0.0) if saved is not None else time.time()
    return ScaledClock(time_scale, start=start)


BACKENDS = ("process", "simulated")


@dataclass
class Runtime:
    """``backend`` is ``"simulated"`` (virtual instances, fault injection, any time scale) or ``"process"`` (real
    local processes under ``data_dir/instances`` behind real load balancers; wall-clock time only)."""

    store: Store
    identity: Identity
    time_scale: float = 1.0
    retry_after_ms: int = 100
    backend_kind: str = "simulated"
    data_dir: Path | None = None
    drain_seconds: float = 3.0
    demo: bool = False
    health_wait: float = HEALTH_WAIT_SECONDS
    repairs_grace: float | None = None  # overrides every scale set's automatic-repairs grace period (rehearsals)
    engine: Engine = field(init=False)
    services: Services = field(init=False)
    simulated: SimulatedBackend = field(init=False)
    process: ProcessBackend | None = field(default=None, init=False)
    endpoint_hint: str = ""  # the environment the CLI needs when the server is not at its defaults
    _wakeup: asyncio.Event | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _announce: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.backend_kind not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend_kind!r}; choose one of {', '.join(BACKENDS)}")
        if self.backend_kind == "process" and self.time_scale != 1:
            raise ValueError("real processes run in wall-clock time: use --time-scale 1 with --backend process")
        faults = [Fault.model_validate(data) for _, data in self.store.list_documents(FAULTS)]
        self.simulated = SimulatedBackend(SimulationConfig(seed=0, start=0.0, faults=faults))
        clock = make_clock(self.store, self.time_scale)
        backend: InstanceBackend = self.simulated
        if self.backend_kind == "process":
            root = (self.data_dir or Path.cwd()) / "processes"
            root.mkdir(parents=True, exist_ok=True)
            self.process = ProcessBackend(
                root=root,
                find_image=lambda ref, version: lookup(catalogue_images(self.store), ref, version or ""),
                clock=clock.now,
                on_change=self._instance_changed,
                drain_seconds=self.drain_seconds,
            )
            backend = self.process
        self.engine = Engine(
            store=self.store,
            backend=backend,
            clock=clock,
            catalogue=lambda ref: versions_for(catalogue_images(self.store), ref),
            health_wait=self.health_wait,
            repairs_grace=self.repairs_grace,
            extension_catalogue=lambda publisher, kind: versions_of(self.store, publisher, kind),
        )
        self.engine.notify = self.kick
        self.services = Services(self.engine)

    @property
    def backend(self) -> InstanceBackend:
        return self.engine.backend

    def _instance_changed(self, set_id: str) -> None:
        if self.engine.state(set_id) is not None:
            self.engine.wake(set_id)

    # ------------------------------------------------------------------ faults

    def fault_list(self) -> list[tuple[str, dict[str, Any]]]:
        return self.store.list_documents(FAULTS)

    def fault_add(self, fault: Fault) -> str:
        """Store a fault rule; a zone outage's ``at`` counts from now."""
        if fault.kind == "zone_outage":
            fault = fault.model_copy(update={"at": self.engine.clock.now() + fault.at})
        key = self.engine.new_id()
        self.store.put_document(
            FAULTS, key, fault.model_dump(mode="json", exclude_defaults=True) | {"kind": fault.kind}
        )
        self._reload_faults()
        return key

    def fault_clear(self, key: str | None = None) -> int:
        keys = [k for k, _ in self.fault_list() if key is None or k == key]
        with self.store.transaction():
            for k in keys:
                self.store.delete_document(FAULTS, k)
        self._reload_faults()
        return len(keys)

    def _reload_faults(self) -> None:
        faults = [Fault.model_validate(data) for _, data in self.store.list_documents(FAULTS)]
        self.simulated.config = self.simulated.config.model_copy(update={"faults": faults})
        for state in self.engine.states():
            state.views.clear()
            self.engine.wake(state.set_id)

    # ------------------------------------------------------------------ the driver

    def kick(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def _drive(self) -> None:
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()
            try:
                upcoming = self.engine.run_due()
            except Exception:  # a broken pass must not kill the server; it is logged and retried
                log.exception("reconcile pass failed")
                upcoming = self.engine.clock.now() + 1.0
            if upcoming is None:
                delay = MAX_IDLE_SLEEP
            else:
                delay = max(0.0, (upcoming - self.engine.clock.now()) / self.time_scale)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=min(delay, MAX_IDLE_SLEEP))

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        if self.process is not None:
            self._adopt_instances(self.process)
        if self.demo:
            create_demo(self)
            self._announce = asyncio.get_running_loop().create_task(self._announce_demo())
        self._task = asyncio.get_running_loop().create_task(self._drive())

    async def _announce_demo(self) -> None:
        """Once the demo's load balancer listens, print what to try next."""
        url = None
        set_id = scale_set_id(self.identity.subscription, DEMO_GROUP, DEMO_SET).lower()  # as the engine keys it
        for _ in range(200):  # up to 10 s for the first instances to bring the load balancer up
            if self.process is None:
                break
            found = self.process.balancer(set_id)
            if found is not None and found[1] is not None:
                url = f"http://127.0.0.1:{found[1]}/"
                break
            await asyncio.sleep(0.05)
        print(demo_hints(url, self.endpoint_hint), flush=True)

    def _adopt_instances(self, process: ProcessBackend) -> None:
        """After a restart, every recorded instance is started again (or finishes its delete), so the store and
        the running processes agree."""
        catalogue = self.engine.catalogue()
        for state in self.engine.states():
            for record in state.instances.values():
                model = state.model(self.store, record.model_version, catalogue)
                process.adopt(record, set_id=state.set_id, model=model)
            self.engine.wake(state.set_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.store.set_meta("now", repr(self.engine.clock.now()))
        if self.process is not None:
            await self.process.aclose()
        self.backend.close()
        self.store.close()
