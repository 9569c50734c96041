"""Automatic mode: every stale instance is updated at once, in no particular order.

Level-triggered: any stale, unprotected, idle instance is updated on the next pass, so a model change made while
an earlier one is still being applied simply catches the instances up again. No health gate applies.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaleset.domain.actions import Event, Upgrade, UpgradeReason
from scaleset.domain.instances import InstanceView
from scaleset.domain.upgrade.manual import InstancePlan


def plan_automatic(instances: Sequence[InstanceView], *, target_version: int) -> InstancePlan:
    """Update every stale instance that is idle and not protected from scale-set actions."""
    plan = InstancePlan()
    for view in instances:
        if (
            view.model_version != target_version
            and not view.busy  # deleting instances are busy too
            and not view.protect_from_scale_set_actions
        ):
            plan.actions.append(Upgrade(view.instance_id, target_version, UpgradeReason.AUTOMATIC))
            plan.instance_ids.append(view.instance_id)
    if plan.instance_ids:
        plan.events.append(
            Event(
                "automaticUpgrade",
                {"instanceIds": [str(i) for i in plan.instance_ids], "targetVersion": target_version},
            )
        )
    return plan
