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
from typing import Any

from scaleset.api.auth import Identity
from scaleset.backends.simulated import Fault, SimulatedBackend, SimulationConfig
from scaleset.engine.clock import Clock, ScaledClock, SystemClock
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services
from scaleset.store.base import Store

log = logging.getLogger("scaleset.serve")

FAULTS = "fault"
GROUPS = "resourceGroup"
MAX_IDLE_SLEEP = 1.0


def make_clock(store: Store, time_scale: float) -> Clock:
    """Wall time at scale 1; otherwise virtual time running ``time_scale`` times as fast, resuming from the
    virtual time the store last recorded (so a restart does not jump rollouts forward by the downtime)."""
    if time_scale == 1:
        return SystemClock()
    saved = store.get_meta("now")
    start = max(float(saved), 0.0) if saved is not None else time.time()
    return ScaledClock(time_scale, start=start)


@dataclass
class Runtime:
    store: Store
    identity: Identity
    time_scale: float = 1.0
    retry_after_ms: int = 100
    engine: Engine = field(init=False)
    services: Services = field(init=False)
    backend: SimulatedBackend = field(init=False)
    _wakeup: asyncio.Event | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        faults = [Fault.model_validate(data) for _, data in self.store.list_documents(FAULTS)]
        self.backend = SimulatedBackend(SimulationConfig(seed=0, start=0.0, faults=faults))
        clock = make_clock(self.store, self.time_scale)
        self.engine = Engine(store=self.store, backend=self.backend, clock=clock)
        self.engine.notify = self.kick
        self.services = Services(self.engine)

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
        self.backend.config = self.backend.config.model_copy(update={"faults": faults})
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
        self._task = asyncio.get_running_loop().create_task(self._drive())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.store.set_meta("now", repr(self.engine.clock.now()))
        self.backend.close()
        self.store.close()
