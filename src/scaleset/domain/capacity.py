"""Capacity: make the number of instances match ``sku.capacity``, level-triggered.

Counted: every instance not being deleted, except maxSurge instances still in flight (they are extra by design).
Scale-out places new instances on the latest model by :func:`scaleset.domain.scalein.place_new`; scale-in picks
by the scale-in policy and never takes an instance of the rolling batch in flight (or the instance a surge
instance replaces), nor a protected one; its deletes are forced when the policy says ``forceDeletion``. When
protection (or the batch in flight) leaves too few candidates, the set stays larger than its capacity until an
instance becomes eligible; ``blockedByProtection`` in the ``scaleIn`` event counts the instances it could not remove.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scaleset.domain.actions import Action, Create, Delete, Event
from scaleset.domain.instances import InstanceView, ProvisioningState
from scaleset.domain.resources import ScaleInPolicy
from scaleset.domain.scalein import choose_scale_in, place_new
from scaleset.domain.upgrade.status import Rollout

DEFAULT_FAULT_DOMAINS = 5


@dataclass(slots=True)
class CapacityPlan:
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def created(self) -> list[int]:
        return [a.instance_id for a in self.actions if isinstance(a, Create)]


def plan_capacity(
    views: Sequence[InstanceView],
    *,
    capacity: int,
    model_version: int,
    next_instance_id: int,
    zones: Sequence[str] | None,
    fault_domains: int | None,
    scale_in_policy: ScaleInPolicy,
    rollout: Rollout | None,
    deleting: frozenset[int] = frozenset(),
) -> CapacityPlan:
    """Creates or deletes that bring the set to ``capacity``.

    ``deleting`` names instances that other plans of the same pass are deleting (a surge batch's old instances).

    >>> from scaleset.domain.instances import PowerState
    >>> views = [InstanceView(i, None, 0, 1, 0.0, ProvisioningState.SUCCEEDED, PowerState.RUNNING, None)
    ...          for i in range(3)]
    >>> plan = plan_capacity(views, capacity=1, model_version=1, next_instance_id=3, zones=None, fault_domains=None,
    ...                      scale_in_policy=ScaleInPolicy(), rollout=None)
    >>> [(type(a).__name__, a.instance_id) for a in plan.actions]
    [('Delete', 2), ('Delete', 1)]
    """
    active = rollout if rollout is not None and rollout.active else None
    surge = set(active.surge_pairs) if active is not None else set()
    in_flight = (
        set(active.batch) | set(active.surge_pairs.values()) | set(active.rolling_back) | set(active.reverting)
        if active is not None
        else set()
    )  # the batch and the instances being rolled back finish what they started before scale-in may take them
    left_out = surge | deleting
    being_deleted = ProvisioningState.DELETING
    population = [v for v in views if v.provisioning is not being_deleted and v.instance_id not in left_out]
    plan = CapacityPlan()
    if len(population) < capacity:
        places = place_new(
            views, capacity - len(population), zones=zones, fault_domains=fault_domains or DEFAULT_FAULT_DOMAINS
        )
        for offset, (zone, fd) in enumerate(places):
            plan.actions.append(Create(next_instance_id + offset, zone, fd, model_version, reason="scaleOut"))
        plan.events.append(
            Event("scaleOut", {"from": len(population), "to": capacity, "instanceIds": [str(i) for i in plan.created]})
        )
    elif len(population) > capacity:
        excess = len(population) - capacity
        victims = choose_scale_in(population, excess, policy=scale_in_policy, exclude=frozenset(in_flight))
        if victims:
            force = scale_in_policy.forceDeletion
            plan.actions.extend(Delete(i, reason="scaleIn", force=force) for i in victims)
            plan.events.append(
                Event(
                    "scaleIn",
                    {
                        "from": len(population),
                        "to": capacity,
                        "instanceIds": [str(i) for i in victims],
                        "policy": scale_in_policy.model_dump(mode="json"),
                        "blockedByProtection": excess - len(victims),
                        "forceDeletion": force,
                    },
                )
            )
    return plan
