"""Manual mode: a model change leaves instances stale until an operator applies it.

``manualupgrade`` (``az vmss update-instances``) and ``reimage`` name instances (or ``"*"`` for all). Both are
operations started on the scale set, so instances protected from scale-set actions are skipped (and the skip is
recorded); naming them explicitly does not override the protection (docs/semantics.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from scaleset.domain.actions import Action, Event, Reimage, Upgrade, UpgradeReason
from scaleset.domain.instances import InstanceView, ProvisioningState


@dataclass(slots=True)
class InstancePlan:
    actions: list[Action] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    instance_ids: list[int] = field(default_factory=list)  # the instances the operation waits for


def _selected(instances: Sequence[InstanceView], ids: Sequence[int] | str) -> list[InstanceView]:
    """The named instances (all for ``"*"``), never one that is being deleted: nothing can revive it."""
    wanted = None if ids == "*" else set(ids)
    return [
        v
        for v in instances
        if v.provisioning is not ProvisioningState.DELETING and (wanted is None or v.instance_id in wanted)
    ]


def plan_manual_upgrade(
    instances: Sequence[InstanceView], ids: Sequence[int] | str, *, target_version: int
) -> InstancePlan:
    """Bring the named instances to the current model; instances already on it are left alone.

    >>> from scaleset.domain.instances import PowerState
    >>> views = [InstanceView(i, None, 0, 1, 0.0, ProvisioningState.SUCCEEDED, PowerState.RUNNING, None)
    ...          for i in range(3)]
    >>> [a.instance_id for a in plan_manual_upgrade(views, [0, 2], target_version=2).actions]
    [0, 2]
    """
    plan = InstancePlan()
    chosen = _selected(instances, ids)
    protected = [v.instance_id for v in chosen if v.protect_from_scale_set_actions]
    current = [
        v.instance_id for v in chosen if v.model_version == target_version and not v.protect_from_scale_set_actions
    ]
    for view in chosen:
        if view.protect_from_scale_set_actions or view.model_version == target_version:
            continue
        plan.actions.append(Upgrade(view.instance_id, target_version, UpgradeReason.MANUAL))
        plan.instance_ids.append(view.instance_id)
    plan.events.append(
        Event(
            "manualUpgrade",
            {
                "instanceIds": [str(i) for i in plan.instance_ids],
                "alreadyLatest": [str(i) for i in current],
                "skippedProtected": [str(i) for i in protected],
            },
        )
    )
    return plan


def plan_reimage(
    instances: Sequence[InstanceView],
    ids: Sequence[int] | str,
    *,
    target_version: int,
    data_disks: bool = False,
    scale_set_action: bool = True,
) -> InstancePlan:
    """Reimage the named instances from the current model's image; they end on the latest model.

    A reimage through the VM's own API (``scale_set_action=False``) ignores scale-set-action protection.
    """
    plan = InstancePlan()
    chosen = _selected(instances, ids)
    skipped = [v.instance_id for v in chosen if scale_set_action and v.protect_from_scale_set_actions]
    for view in chosen:
        if view.instance_id in skipped:
            continue
        plan.actions.append(Reimage(view.instance_id, target_version, data_disks=data_disks))
        plan.instance_ids.append(view.instance_id)
    plan.events.append(
        Event(
            "reimageAll" if data_disks else "reimage",
            {"instanceIds": [str(i) for i in plan.instance_ids], "skippedProtected": [str(i) for i in skipped]},
        )
    )
    return plan
