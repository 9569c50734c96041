"""``scaleset what-if``: the rollout a change would start on a scale set, simulated in virtual time.

The engine's own planners and the simulated backend run it: the scale set is rebuilt in a fresh engine over a
memory store as the input describes it (:mod:`scaleset.safety.whatif_fleet`), the change is applied through the same
services the API uses, and the engine runs until the rollout ends. The result (:class:`Outcome`) is the batch plan,
the virtual duration, the lowest in-service capacity (:mod:`scaleset.safety.whatif_capacity`) and the verdict.

Runs differ only by their seed, so the state right after the change is built once and copied for every run
(:meth:`MemoryStore.copy`); a Monte Carlo of ``N`` runs uses seeds ``seed .. seed + N - 1`` and the same numbers come
out whatever the number of worker processes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import multiprocessing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scaleset.backends.simulated import Fault, Range, SimulatedBackend, SimulationConfig
from scaleset.cli.errors import UsageError
from scaleset.cli.setpath import apply_set
from scaleset.domain.errors import DomainError
from scaleset.domain.images import resolve_version
from scaleset.domain.merge import merge_patch
from scaleset.domain.upgrade.rolling import HEALTH_WAIT_SECONDS
from scaleset.domain.upgrade.status import RollingStatusCode
from scaleset.domain.validation import parse_scale_set
from scaleset.engine.clock import DEFAULT_EPOCH, VirtualClock
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services
from scaleset.safety.inputs import ScaleSetInput
from scaleset.safety.whatif_capacity import CapacityTracker, TrackedEngine
from scaleset.safety.whatif_fleet import (
    BUILD_LEAD,
    DEFAULT_RESOURCE_GROUP,
    SUBSCRIPTION,
    Fleet,
    FleetError,
    FleetSummary,
    Names,
    image_versions,
)
from scaleset.safety.whatif_results import (
    COMPLETED,
    FAILED,
    FAULTED,
    NO_ROLLOUT,
    UNFINISHED,
    Batch,
    Brief,
    MonteCarlo,
    Outcome,
    summarise,
)
from scaleset.store.base import Record
from scaleset.store.memory import MemoryStore

HORIZON = 30 * 86400.0
"""A run stops here at the latest (virtual seconds after the change); every rollout ends long before."""
NAMESPACE = "what-if"


class WhatIfError(Exception):
    """The input or the change cannot be simulated; the message says why (ARM's error when the emulator refused)."""


@dataclass(frozen=True)
class Change:
    """The change: ``az``-style ``--set`` assignments, then an ARM PATCH body, applied to the scale set's body."""

    sets: tuple[str, ...] = ()
    patch: Mapping[str, Any] | None = None
    force_string: bool = False

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(body)
        try:
            for text in self.sets:
                apply_set(out, text, force_string=self.force_string)
            if self.patch is not None:
                out = merge_patch(out, dict(self.patch))
        except UsageError as error:
            raise WhatIfError(error.message) from None
        except DomainError as error:
            raise WhatIfError(f"the patch: {error}") from None
        return out

    def describe(self) -> list[str]:
        return [*self.sets, *(["PATCH " + _short(self.patch)] if self.patch is not None else [])]


@dataclass(frozen=True)
class Options:
    seed: int = 0
    boot: tuple[float, float] = (30.0, 90.0)  # provisioning, seconds
    app_start: tuple[float, float] = (5.0, 15.0)  # from provisioned to the application answering
    health_wait: float = HEALTH_WAIT_SECONDS
    bad_image: float = 0.0  # share of instances deployed with the new image that never turn healthy
    faults: tuple[Fault, ...] = ()


class WhatIf:
    """A scale set and a change, rebuilt once; :meth:`run` simulates the rollout for one seed."""

    def __init__(
        self, scale_set: ScaleSetInput, change: Change, options: Options | None = None, *, start: float = DEFAULT_EPOCH
    ) -> None:
        self.scale_set, self.change = scale_set, change
        self.options = options = options or Options()
        self.start = start
        self.names = Names(SUBSCRIPTION, scale_set.resource_group or DEFAULT_RESOURCE_GROUP, scale_set.name)
        catalogue = sorted(set(image_versions(scale_set.body, change.apply(scale_set.body))))
        for facts in scale_set.instances or ():
            if facts.image_version and facts.image_version not in catalogue:
                catalogue.append(facts.image_version)
        self.catalogue = catalogue
        try:
            fleet = Fleet(scale_set, catalogue)
        except FleetError as error:
            raise WhatIfError(f"{scale_set.origin}: {error}") from None
        self.fleet: FleetSummary = fleet.summary()
        current = fleet.prepare(scale_set.body)
        changed = change.apply(current)
        self.image_from = fleet.current_image
        try:
            vmss = parse_scale_set(changed)
        except DomainError as error:
            raise WhatIfError(f"the changed scale set: {error}") from None
        self.image_to = resolve_version(vmss.image, catalogue)
        self.vmss = vmss
        self.faults = tuple(options.faults) + self._bad_image_fault()
        self._config = SimulationConfig(
            seed=options.seed,
            start=start,
            provision=Range(min=options.boot[0], max=options.boot[1]),
            app_start=Range(min=options.app_start[0], max=options.app_start[1]),
            images=list(catalogue),
            faults=list(self.faults),
        )
        store = MemoryStore()
        engine = self._engine(store, self._config.model_copy(update={"faults": []}), start - BUILD_LEAD)
        services = Services(engine)
        try:
            fleet.build(
                engine,
                services,
                self.names,
                current=current,
                start=start,
                quiet=SimulatedBackend(self._config.model_copy(update={"faults": []})),
            )
            before = engine.state(self.names.set_id)
            assert before is not None
            self.model_version_before = before.record.model_version
            services.put_scale_set(*self.names.ids, changed)
        except DomainError as error:
            raise WhatIfError(f"the emulator refuses the scale set or the change: {error}") from None
        state = engine.state(self.names.set_id)
        assert state is not None
        self.model_changed = state.record.model_version != self.model_version_before
        self.capacity = state.vmss.capacity
        self.mode = state.vmss.upgrade_mode.value
        self.policy = state.vmss.rolling_policy.model_dump(mode="json")
        self._seq = store.list_events()[-1][0]
        self._snapshot = store
        self._instances = store.list_instances(self.names.set_id)
        # Every run sees the instances as they are at the change; those views do not depend on the seed, so they
        # are computed once, with the run's faults (a zone outage from the start shows), and handed to each run.
        engine.backend = SimulatedBackend(self._config)
        engine.observe(state, start)
        self._views = dict(state.views)

    def _bad_image_fault(self) -> tuple[Fault, ...]:
        fraction = self.options.bad_image
        if fraction <= 0:
            return ()
        return (Fault(kind="never_healthy", image_version=self.image_to, fraction=fraction),)

    def _engine(self, store: MemoryStore, config: SimulationConfig, now: float) -> TrackedEngine:
        catalogue = self.catalogue
        return TrackedEngine(
            store=store,
            backend=SimulatedBackend(config),
            clock=VirtualClock(now),
            catalogue=lambda _image: list(catalogue),
            health_wait=self.options.health_wait,
            id_namespace=NAMESPACE,
        )

    def run(self, seed: int | None = None, *, settle: bool = True) -> Outcome:
        """The rollout for ``seed`` (the options' seed by default). ``settle``: also count the instances in service
        once every one has had a health wait after the run ended (:attr:`Outcome.final`; -1 without)."""
        seed = self.options.seed if seed is None else seed
        store = _Scratch(self._snapshot, self._instances)
        engine = self._engine(store, self._config.model_copy(update={"seed": seed}), self.start)
        state = engine.state(self.names.set_id)
        assert state is not None
        state.views.update(self._views)
        tracker = CapacityTracker(engine, state)
        engine.tracker = tracker
        tracker.begin(self.start)
        engine.wake(state.set_id, self.start)
        engine.run_until(self.start + HORIZON, advance=False)
        events = tuple(event for _, event in store.list_events(after_seq=self._seq))
        final = tracker.count_at(engine.clock.now() + self.options.health_wait) if settle else -1
        return self._outcome(seed, engine, events, tracker, final)

    def _outcome(
        self, seed: int, engine: Engine, events: tuple[dict[str, Any], ...], tracker: CapacityTracker, final: int
    ) -> Outcome:
        start = self.start
        state = engine.state(self.names.set_id)
        assert state is not None
        rollout = state.rollout
        batches: dict[int, Batch] = {}
        rolled_back: tuple[int, ...] = ()
        finished: list[float] = []
        failed_op: dict[str, str] | None = None
        for event in events:
            kind, at = event["kind"], float(event["time"]) - start
            if kind == "batchStarted":
                number = int(event["batch"])
                batches[number] = Batch(
                    number,
                    event.get("zone"),
                    _ids(event["instanceIds"]),
                    _ids(event.get("surgeInstanceIds", [])),
                    at,
                )
            elif kind == "batchCompleted" and int(event["batch"]) in batches:
                number = int(event["batch"])
                old = batches[number]
                batches[number] = Batch(
                    number,
                    old.zone,
                    old.instance_ids,
                    old.surge_ids,
                    old.start,
                    at,
                    _ids(event["succeededIds"]),
                    _ids(event["failedIds"]),
                    bool(event["passed"]),
                )
            elif kind == "automaticUpgrade":
                number = len(batches) + 1
                batches[number] = Batch(number, None, _ids(event["instanceIds"]), start=at)
            elif kind == "rollbackStarted":
                rolled_back = _ids(event["instanceIds"])
            elif kind == "operationFinished" and event.get("operation") == "update":
                finished.append(at)
                if event.get("status") == "Failed" and failed_op is None:
                    failed_op = dict(event.get("error") or {})
        error: dict[str, str] | None = None
        after_batch: int | None = None
        if rollout is not None:
            verdict = {
                RollingStatusCode.COMPLETED: COMPLETED,
                RollingStatusCode.FAULTED: FAULTED,
                RollingStatusCode.ROLLING_FORWARD: UNFINISHED,
            }.get(rollout.code, rollout.code.value)
            end = rollout.ended_at if rollout.ended_at is not None else engine.clock.now()
            duration = end - rollout.started_at
            if rollout.code is RollingStatusCode.FAULTED:
                error = dict(rollout.error or {})
                after_batch = rollout.batch_number
        elif batches:  # Automatic mode: everything at once, no health gate; done when every update has finished
            verdict = FAILED if failed_op is not None else COMPLETED
            error = failed_op
            duration = max(finished, default=engine.clock.now() - start)
            batches = {n: dataclasses.replace(b, end=duration) for n, b in batches.items()}
        else:
            verdict, duration = NO_ROLLOUT, 0.0
        lowest = tracker.lowest if tracker.lowest is not None else 0
        return Outcome(
            seed=seed,
            mode=state.vmss.upgrade_mode.value,
            verdict=verdict,
            duration=duration,
            batches=tuple(batches[n] for n in sorted(batches)),
            capacity=self.capacity,
            lowest=lowest,
            lowest_at=(tracker.lowest_at if tracker.lowest_at is not None else start) - start,
            highest=tracker.highest if tracker.highest is not None else lowest,
            final=final,
            error=error,
            after_batch=after_batch,
            rolled_back=rolled_back,
            events=events,
        )

    def monte_carlo(self, runs: int, *, jobs: int = 1) -> MonteCarlo:
        """``runs`` runs with seeds ``seed, seed + 1, ...``, in ``jobs`` processes (forked: they share the setup)."""
        seeds = [self.options.seed + index for index in range(runs)]
        if jobs > 1 and runs > 1 and "fork" in multiprocessing.get_all_start_methods():
            _SHARED["what-if"] = self
            try:
                with multiprocessing.get_context("fork").Pool(min(jobs, runs)) as pool:
                    briefs = pool.map(_brief, seeds, chunksize=max(1, runs // (jobs * 8)))
            finally:
                _SHARED.clear()
        else:
            briefs = [self.run(seed, settle=False).brief() for seed in seeds]
        return summarise(briefs, first_seed=self.options.seed)


class _Scratch(MemoryStore):
    """A run's store, copied from the snapshot. A run is thrown away once its events and final state are read, so
    what the engine writes only to carry on after a restart (the scale-set record, instances, rollouts, operations)
    is not kept, and a transaction has nothing to restore: that is a sixth of a run's time. The instances the engine
    loads come from ``instances``, decoded once for every run (each run gets its own dicts)."""

    def __init__(self, source: MemoryStore, instances: Sequence[tuple[int, Record]]) -> None:
        super().__init__()
        self._tables = source.copy()._tables
        self._instances = instances

    def list_instances(self, set_id: str) -> list[tuple[int, Record]]:
        # ``backend`` is replaced, never changed in place, by the simulated backend: a shallow copy is a copy.
        return [(i, {**record, "backend": dict(record["backend"])}) for i, record in self._instances]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def put_scale_set(self, set_id: str, record: Record) -> None:
        return None

    def put_instances(self, set_id: str, records: Iterable[tuple[int, Record]]) -> None:
        return None

    def delete_instances(self, set_id: str, ids: Iterable[int]) -> None:
        return None

    def put_rollout(self, rollout_id: str, set_id: str, record: Record) -> None:
        return None

    def put_operation(self, op_id: str, record: Record) -> None:
        return None


_SHARED: dict[str, WhatIf] = {}
"""The what-if that forked workers run (they inherit it; nothing is pickled but seeds and briefs)."""


def _brief(seed: int) -> Brief:
    return _SHARED["what-if"].run(seed, settle=False).brief()


def _ids(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."
