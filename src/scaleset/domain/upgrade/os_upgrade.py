"""OS image upgrades: when the platform starts one, and the rollout it runs (reference §5.1).

An OS upgrade is a rolling upgrade whose target is an *image version* rather than a model version: every instance
not running ``image_version`` gets a new OS disk from it (and the current model with it). The batch loop is the
rolling planner's; what differs is decided here:

* the policy: Azure's defaults (20% batches, 20% unhealthy before and after every batch, no pause) unless
  ``useRollingUpgradePolicy`` asks for the scale set's ``rollingUpgradePolicy``; a user-started upgrade
  (``POST osRollingUpgrade``) always uses the scale set's policy;
* rollback: a platform upgrade puts the previous image back on each instance that does not turn healthy within
  the health wait, unless ``disableAutomaticRollback``; a user-started one never does (reference §5.1);
* deferral: with ``osRollingUpgradeDeferral`` every instance waits for ``approveRollingUpgrade``;
* which instances: all that run another image, except that in Manual mode instances on an older model are left to
  the operator (they must first be brought to the latest model by hand).

The platform starts an upgrade when the scale set tracks ``latest`` (or a versionless gallery image), has
``enableAutomaticOSUpgrade``, some instance runs an older image than the newest one in the catalogue, and no
upgrade to that version was attempted before: a version that failed is not retried until a newer one is
published (or a user starts ``osRollingUpgrade``). Choices are in docs/semantics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scaleset.domain.images import tracks_latest
from scaleset.domain.instances import InstanceView, ProvisioningState
from scaleset.domain.resources import ImageReference, RollingUpgradePolicy, UpgradeMode, VirtualMachineScaleSet
from scaleset.domain.upgrade.rolling import start_rollout
from scaleset.domain.upgrade.status import OS_UPGRADE, Rollout

PLATFORM = "Platform"
USER = "User"


def os_rollout_policy(vmss: VirtualMachineScaleSet, *, started_by: str) -> RollingUpgradePolicy:
    automatic = vmss.properties.upgradePolicy.automaticOSUpgradePolicy
    if started_by == USER or automatic.useRollingUpgradePolicy:
        return vmss.rolling_policy
    return RollingUpgradePolicy()


def os_stale(view: InstanceView, *, image_version: str, model_version: int, manual: bool) -> bool:
    if view.provisioning is ProvisioningState.DELETING or view.protect_from_scale_set_actions:
        return False
    if manual and view.model_version != model_version:
        return False
    return view.image_version != image_version


def platform_upgrade_due(
    vmss: VirtualMachineScaleSet,
    views: Sequence[InstanceView],
    *,
    latest: str | None,
    attempted: str | None,
    model_version: int,
) -> bool:
    """Whether the platform should start an automatic OS upgrade to ``latest`` now."""
    if not vmss.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade:
        return False
    if not tracks_latest(vmss.image) or latest is None or latest.lower() == "latest" or latest == attempted:
        return False
    manual = vmss.upgrade_mode is UpgradeMode.MANUAL
    return any(os_stale(v, image_version=latest, model_version=model_version, manual=manual) for v in views)


def target_image(image: ImageReference | None, exact: str) -> dict[str, Any]:
    """``targetImageReference`` for the history: the reference as the model has it, with ``exactVersion``."""
    reference = image.model_dump(mode="json", exclude_none=True) if image is not None else {}
    reference.pop("sharedGalleryImageId", None)
    reference.pop("communityGalleryImageId", None)
    reference["exactVersion"] = exact
    return reference


def start_os_rollout(
    rollout_id: str,
    set_id: str,
    vmss: VirtualMachineScaleSet,
    *,
    target_version: int,
    image_version: str,
    started_by: str,
    now: float,
    operation_id: str | None = None,
) -> Rollout:
    automatic = vmss.properties.upgradePolicy.automaticOSUpgradePolicy
    rollout = start_rollout(
        rollout_id,
        set_id,
        policy=os_rollout_policy(vmss, started_by=started_by),
        target_version=target_version,
        now=now,
        operation_id=operation_id,
        kind=OS_UPGRADE,
    )
    rollout.started_by = started_by
    rollout.target_image = target_image(vmss.image, image_version)
    rollout.target_image_version = image_version
    rollout.revert_failed = started_by == PLATFORM and not automatic.disableAutomaticRollback
    rollout.deferral = bool(automatic.osRollingUpgradeDeferral)
    return rollout
