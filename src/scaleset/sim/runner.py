"""Running a scenario: an engine over a SQLite store, the simulated backend and a virtual clock.

The scale set is created at offset 0; each timeline entry runs at its offset through the same services the API
uses, and a request the services refuse is recorded (``requestRejected``) rather than stopping the run, as an
operator would see the error and carry on. A run can stop at any virtual time and be reopened from its database:
timeline progress and the clock are in the store, so it ends as an uninterrupted run would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleset.backends.simulated import SimulatedBackend
from scaleset.domain.actions import Event, PowerAction
from scaleset.domain.errors import DomainError
from scaleset.domain.health import Answer
from scaleset.engine.clock import DEFAULT_EPOCH, VirtualClock
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services
from scaleset.sim.scenario import Scenario, Step
from scaleset.store import open_store
from scaleset.store.base import Store

CREATE_KEY = "timeline:create"
PUBLISHED_KEY = "published_images"
EXTENSIONS_KEY = "published_extensions"
TIMELINE_PREFIX = "timeline:"


@dataclass
class ScenarioRun:
    scenario: Scenario
    store: Store
    seed: int
    start: float = DEFAULT_EPOCH
    engine: Engine = field(init=False)
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        simulation = self.scenario.simulation.model_copy(update={"seed": self.seed, "start": self.start})
        saved_now = self.store.get_meta("now")
        clock = VirtualClock(float(saved_now) if saved_now is not None else self.start)
        self.engine = Engine(
            store=self.store,
            backend=SimulatedBackend(simulation),
            clock=clock,
            catalogue=lambda _image: self._catalogue(),
            extension_catalogue=self._extensions,
            id_namespace=f"scenario-seed-{self.seed}",
        )
        self.services = Services(self.engine)
        self.engine.on_timeline(self._run_step)
        done = int(self.store.get_meta("timeline_next") or -1)
        if done < 0:
            self.engine.request_timeline(CREATE_KEY, self.start)
        for index, step in enumerate(self.scenario.timeline):
            if index >= max(done, 0):
                self.engine.request_timeline(f"{TIMELINE_PREFIX}{index:06d}", self.start + step.at)

    def _catalogue(self) -> list[str]:
        """The scenario's image versions and those its timeline published (kept in the store, so a resumed run
        sees them), without the ones excluded from ``latest``."""
        published = json.loads(self.store.get_meta(PUBLISHED_KEY) or "[]")
        return [*self.scenario.simulation.images, *(p["version"] for p in published if not p["excludeFromLatest"])]

    def _extensions(self, publisher: str, kind: str) -> list[str]:
        published = json.loads(self.store.get_meta(EXTENSIONS_KEY) or "[]")
        return [
            p["version"]
            for p in published
            if p["publisher"].lower() == publisher.lower() and p["type"].lower() == kind.lower()
        ]

    @classmethod
    def open(cls, scenario: Scenario, *, db: str | Path, seed: int | None = None) -> ScenarioRun:
        return cls(scenario, open_store(str(db)), scenario.simulation.seed if seed is None else seed)

    @property
    def horizon(self) -> float:
        return self.start + self.scenario.simulation.until

    def run(self, until: float | None = None) -> None:
        """Run to ``until`` seconds from the start, or until nothing is left to do (never past the horizon)."""
        if until is None:
            self.engine.run_until(self.horizon, advance=False)
        else:
            self.engine.run_until(min(self.horizon, self.start + until))

    def close(self) -> None:
        self.engine.backend.close()
        self.store.close()

    # ------------------------------------------------------------------ timeline

    @property
    def _ids(self) -> tuple[str, str, str]:
        s = self.scenario
        return s.subscription, s.resourceGroup, s.scaleSetName

    def _run_step(self, key: str) -> None:
        # The step and the record that it ran commit together, so a stop can never replay or skip one.
        with self.store.transaction():
            self._run_step_inner(key)

    def _run_step_inner(self, key: str) -> None:
        if key == CREATE_KEY:
            self._attempt("create", lambda: self.services.put_scale_set(*self._ids, self.scenario.scaleset))
            self.store.set_meta("timeline_next", "0")
            return
        index = int(key.removeprefix(TIMELINE_PREFIX))
        step = self.scenario.timeline[index]
        self._attempt(step.action, lambda: self._act(step))
        self.store.set_meta("timeline_next", str(index + 1))

    def _attempt(self, action: str, call: Any) -> None:
        try:
            call()
        except DomainError as error:
            state = next(iter(self.engine.states()), None)
            if state is None:
                raise
            self.engine.emit(state, Event("requestRejected", {"action": action, **error.to_arm()}))
            self.engine.persist(state)

    def _act(self, step: Step) -> None:
        ids = self._ids
        services = self.services
        action = step.action
        if step.patch is not None:
            services.patch_scale_set(*ids, step.patch)
        elif step.put is not None:
            services.put_scale_set(*ids, step.put)
        elif step.scale is not None:
            services.patch_scale_set(*ids, {"sku": {"capacity": step.scale}})
        elif step.update_instances is not None:
            services.update_instances(*ids, _instance_ids(step.update_instances))
        elif step.reimage is not None:
            services.reimage(*ids, _instance_ids(step.reimage))
        elif step.reimage_all is not None:
            services.reimage(*ids, _instance_ids(step.reimage_all), data_disks=True)
        elif step.delete_instances is not None:
            services.delete_instances(*ids, _instance_ids(step.delete_instances))
        elif step.cancel is not None:
            services.cancel_rolling_upgrade(*ids)
        elif step.set_health is not None:
            services.set_health(*ids, _instance_ids(step.set_health.instances), Answer(step.set_health.answer))
        elif step.publish_image is not None:
            published = json.loads(self.store.get_meta(PUBLISHED_KEY) or "[]")
            published.append(step.publish_image.model_dump())
            self.store.set_meta(PUBLISHED_KEY, json.dumps(published))
            services.catalogue_changed(Event("imagePublished", step.publish_image.model_dump()))
        elif step.publish_extension is not None:
            published = json.loads(self.store.get_meta(EXTENSIONS_KEY) or "[]")
            published.append(step.publish_extension.model_dump())
            self.store.set_meta(EXTENSIONS_KEY, json.dumps(published))
            services.catalogue_changed(Event("extensionPublished", step.publish_extension.model_dump()))
        elif step.kill_instance is not None:
            services.set_health(*ids, _instance_ids(step.kill_instance), Answer.NONE)
        elif step.os_upgrade is not None:
            services.start_os_upgrade(*ids)
        elif step.approve is not None:
            services.approve_rolling_upgrade(*ids, None if step.approve == "*" else _instance_ids(step.approve))
        elif step.orchestration is not None:
            services.set_orchestration_service_state(*ids, step.orchestration.model_dump())
        elif step.protect is not None:
            for instance in step.protect.instances:
                services.set_protection(
                    *ids,
                    str(instance),
                    protect_from_scale_in=step.protect.protectFromScaleIn,
                    protect_from_scale_set_actions=step.protect.protectFromScaleSetActions,
                )
        else:
            power = {
                "restart": PowerAction.RESTART,
                "power_off": PowerAction.POWER_OFF,
                "deallocate": PowerAction.DEALLOCATE,
                "start": PowerAction.START,
            }[action]
            services.power(*ids, _instance_ids(getattr(step, action)), power)


def _instance_ids(value: Any) -> Any:
    """Scenario ids as the API receives them: ``"*"`` or a list of strings."""
    return ["*"] if value == "*" else [str(v) for v in value]
