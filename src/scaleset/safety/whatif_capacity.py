"""In-service capacity over a what-if run, exactly, without looking at every instance at every moment.

An instance is in service when :attr:`InstanceView.is_healthy` holds: provisioned, running and healthy by its health
source (or running, with none). So an in-place batch member is out from the moment its update starts until it reports
Healthy, an instance being deleted is out, and a maxSurge instance adds capacity once it is healthy.

The count changes only (a) in a pass, when the engine applies actions, and (b) when an instance's observable state
changes between passes, which the simulated backend announces as ``stable_until``. The tracker recounts the
instances a pass touched (and those out of service) after each pass, and between passes follows the announced
change points of the instances in service: a drop there (a crash, a zone outage, a flap) is a candidate minimum, for
which the instances out of service are looked at again (they may have recovered meanwhile). Rises between passes
need no attention: the minimum is always right after a drop or a pass.
"""

from __future__ import annotations

import heapq

from scaleset.domain.actions import Action
from scaleset.domain.instances import InstanceView
from scaleset.engine.engine import Engine
from scaleset.engine.state import ScaleSetState


class CapacityTracker:
    def __init__(self, engine: Engine, state: ScaleSetState) -> None:
        self.engine = engine
        self.state = state
        self.serving: set[int] = set()
        self.out: set[int] = set()
        self.touched: set[int] = set()
        self._edges: list[tuple[float, int, int]] = []  # (time, instance, token) for instances in service
        self._token: dict[int, int] = {}
        self._last: dict[int, InstanceView] = {}  # the view each instance was last counted from
        self.lowest: int | None = None
        self.lowest_at: float | None = None
        self.highest: int | None = None

    def begin(self, now: float) -> None:
        for view in self.engine.observe(self.state, now):
            self._set(view.instance_id, view, now)
        self._note(now)

    def before_pass(self, now: float) -> None:
        """Follow the change points of instances in service up to (not including) ``now``."""
        edges = self._edges
        while edges and edges[0][0] < now:
            at, instance_id, token = heapq.heappop(edges)
            if self._token.get(instance_id) != token:
                continue
            view = self._observe(instance_id, at)
            if view is not None and view.is_healthy:
                self._set(instance_id, view, at)
                continue
            for other in sorted(self.out):
                self._set(other, self._observe(other, at), at)
            self._set(instance_id, view, at)
            self._note(at)

    def after_pass(self, now: float) -> None:
        """Recount what the pass at ``now`` may have changed: touched instances, those out of service, and those
        whose change point is now."""
        ids = self.touched | self.out
        self.touched = set()
        edges = self._edges
        while edges and edges[0][0] <= now:
            _, instance_id, token = heapq.heappop(edges)
            if self._token.get(instance_id) == token:
                ids.add(instance_id)
        last = self._last
        for instance_id in sorted(ids):
            view = self._current(instance_id, now)
            if view is None or view is not last.get(instance_id):
                self._set(instance_id, view, now)
        self._note(now)

    def count_at(self, at: float) -> int:
        """Instances in service at ``at``, a time after the last pass (nothing changes the records any more)."""
        views = (self._observe(instance_id, at) for instance_id in sorted(self.state.instances))
        return sum(1 for view in views if view is not None and view.is_healthy)

    def _set(self, instance_id: int, view: InstanceView | None, at: float) -> None:
        token = self._token.get(instance_id, 0) + 1
        self._token[instance_id] = token
        self.serving.discard(instance_id)
        self.out.discard(instance_id)
        if view is None:
            self._last.pop(instance_id, None)
            return
        self._last[instance_id] = view
        if view.is_healthy:
            self.serving.add(instance_id)
            if view.stable_until is not None and view.stable_until > at:
                heapq.heappush(self._edges, (view.stable_until, instance_id, token))
        else:
            self.out.add(instance_id)

    def _note(self, at: float) -> None:
        count = len(self.serving)
        if self.lowest is None or count < self.lowest:
            self.lowest, self.lowest_at = count, at
        if self.highest is None or count > self.highest:
            self.highest = count

    def _observe(self, instance_id: int, at: float) -> InstanceView | None:
        """The instance at ``at`` straight from the backend (between passes: the engine's cache holds pass times)."""
        state = self.state
        record = state.instances.get(instance_id)
        if record is None:
            return None
        engine = self.engine
        model = state.model(engine.store, record.model_version, engine.catalogue())
        return engine.backend.observe(record, set_id=state.set_id, model=model, now=at)

    def _current(self, instance_id: int, now: float) -> InstanceView | None:
        """The instance at ``now`` right after a pass: the view the pass cached, when it still holds."""
        state = self.state
        record = state.instances.get(instance_id)
        if record is None:
            return None
        cached = state.views.get(instance_id)
        if (
            cached is not None
            and cached.generation == record.generation
            and cached.observed_at <= now
            and (cached.valid_until is None or now < cached.valid_until)
        ):
            return cached.view
        return self._observe(instance_id, now)


class TrackedEngine(Engine):
    """The engine, telling a :class:`CapacityTracker` about every pass and every action it applies.

    A what-if run is thrown away after it is read (its store keeps no rollouts), so with a tracker the rollout is not
    serialised at every pass: that was a thirteenth of a run's time.
    """

    tracker: CapacityTracker | None = None

    def persist(self, state: ScaleSetState) -> None:
        if self.tracker is not None:
            state.rollout_dirty = False
        super().persist(state)

    def run_pass(self, set_id: str) -> None:
        tracker = self.tracker
        if tracker is None:
            super().run_pass(set_id)
            return
        now = self.clock.now()
        tracker.before_pass(now)
        super().run_pass(set_id)
        tracker.after_pass(now)

    def apply(self, state: ScaleSetState, action: Action, now: float) -> None:
        super().apply(state, action, now)
        if self.tracker is not None:
            self.tracker.touched.add(action.instance_id)
