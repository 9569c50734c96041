"""Which rolling upgrade a pass starts, when none is running: a model change's first (Rolling mode), then an OS
image upgrade (asked for with ``osRollingUpgrade``, or due because a newer image was published), then an
extension upgrade (asked for with ``extensionRollingUpgrade``, or due because a newer extension version was
published for an extension with ``enableAutomaticUpgrade``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scaleset.domain.actions import Event
from scaleset.domain.extensions import EXTENSION_UPGRADE, outdated, upgrade_targets
from scaleset.domain.instances import InstanceView
from scaleset.domain.resources import UpgradeMode
from scaleset.domain.upgrade.os_upgrade import PLATFORM, platform_upgrade_due, start_os_rollout
from scaleset.domain.upgrade.rolling import start_rollout
from scaleset.domain.upgrade.status import OS_UPGRADE, Rollout
from scaleset.engine.state import ScaleSetState

if TYPE_CHECKING:
    from scaleset.engine.engine import Engine


def start_due_rollout(
    engine: Engine, state: ScaleSetState, views: Sequence[InstanceView], now: float
) -> Rollout | None:
    record = state.record
    pending_op = next((op.operation_id for op in state.operations.values() if op.pending), None)
    started = _model_rollout(engine, state, views, now, pending_op)
    if started is None:
        started = _os_rollout(engine, state, views, now)
    if started is None:
        started = _extension_rollout(engine, state, now)
    if started is None:
        return None
    rollout, facts = started
    record.active_rollout = rollout.rollout_id
    state.rollout = rollout
    state.rollout_dirty = True
    engine.emit_at(
        state,
        now,
        Event("rolloutStarted", {**facts, "policy": rollout.policy, "instances": len(views)}),
        rollout_id=rollout.rollout_id,
    )
    for op in state.operations.values():
        if op.pending and (
            rollout.kind not in (OS_UPGRADE, EXTENSION_UPGRADE) or op.operation_id == rollout.operation_id
        ):
            op.rollout_id = rollout.rollout_id
    return rollout


def _model_rollout(
    engine: Engine, state: ScaleSetState, views: Sequence[InstanceView], now: float, pending_op: str | None
) -> tuple[Rollout, dict[str, Any]] | None:
    record, vmss = state.record, state.vmss
    if not record.rollout_requested:
        return None
    record.rollout_requested = False
    version = record.model_version
    if vmss.upgrade_mode is not UpgradeMode.ROLLING or not any(
        v.model_version != version and not v.protect_from_scale_set_actions for v in views
    ):
        return None
    rollout = start_rollout(
        engine.new_id(),
        state.set_id,
        policy=vmss.rolling_policy,
        target_version=version,
        now=now,
        operation_id=pending_op,
    )
    return rollout, {"targetModelVersion": version}


def _os_rollout(
    engine: Engine, state: ScaleSetState, views: Sequence[InstanceView], now: float
) -> tuple[Rollout, dict[str, Any]] | None:
    record, vmss = state.record, state.vmss
    automatic = vmss.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade
    if record.os_upgrade_requested is None and not automatic:
        return None  # every pass asks: resolve the image only when an OS upgrade can start
    version = record.model_version
    latest = state.model(engine.store, version, engine.catalogue()).image_version
    started_by: str | None = None
    operation_id: str | None = None
    if record.os_upgrade_requested is not None:
        started_by, operation_id = record.os_upgrade_requested, record.os_upgrade_operation
        record.os_upgrade_requested = record.os_upgrade_operation = None
    elif platform_upgrade_due(vmss, views, latest=latest, attempted=record.os_upgrade_attempted, model_version=version):
        started_by = PLATFORM
    if started_by is None or latest is None:
        return None
    if started_by == PLATFORM:
        record.os_upgrade_attempted = latest
    rollout = start_os_rollout(
        engine.new_id(),
        state.set_id,
        vmss,
        target_version=version,
        image_version=latest,
        started_by=started_by,
        now=now,
        operation_id=operation_id,
    )
    facts = {
        "rolloutKind": OS_UPGRADE,
        "startedBy": started_by,
        "targetModelVersion": version,
        "targetImageVersion": latest,
    }
    return rollout, facts


def extension_targets(engine: Engine, state: ScaleSetState) -> dict[str, str]:
    return upgrade_targets(state.vmss.extensions, engine.extension_versions)


def _extension_rollout(engine: Engine, state: ScaleSetState, now: float) -> tuple[Rollout, dict[str, Any]] | None:
    record, vmss = state.record, state.vmss
    targets = extension_targets(engine, state)
    started_by: str | None = None
    operation_id: str | None = None
    if record.extension_upgrade_requested is not None:
        started_by, operation_id = record.extension_upgrade_requested, record.extension_upgrade_operation
        record.extension_upgrade_requested = record.extension_upgrade_operation = None
    elif _platform_extension_upgrade_due(state, targets):
        started_by = PLATFORM
    if started_by is None:
        return None
    if started_by == PLATFORM:
        record.extension_upgrade_attempted = dict(targets)
    rollout = start_rollout(
        engine.new_id(),
        state.set_id,
        policy=vmss.rolling_policy,
        target_version=record.model_version,
        now=now,
        operation_id=operation_id,
        kind=EXTENSION_UPGRADE,
    )
    rollout.started_by = started_by
    rollout.target_extensions = dict(targets)
    facts = {"rolloutKind": EXTENSION_UPGRADE, "startedBy": started_by, "targetExtensions": dict(targets)}
    return rollout, facts


def extension_upgrade_due(engine: Engine, state: ScaleSetState) -> bool:
    """Whether the platform would start an extension upgrade on ``state`` now."""
    return _platform_extension_upgrade_due(state, extension_targets(engine, state))


def _platform_extension_upgrade_due(state: ScaleSetState, targets: dict[str, str]) -> bool:
    return bool(targets) and targets != state.record.extension_upgrade_attempted and _any_outdated(state, targets)


def _any_outdated(state: ScaleSetState, targets: dict[str, str]) -> bool:
    return any(
        outdated(r.extension_versions, targets) and not r.protect_from_scale_set_actions and r.action != "delete"
        for r in state.instances.values()
    )


def outdated_instances(engine: Engine, state: ScaleSetState, rollout: Rollout) -> frozenset[int] | None:
    """Extension upgrades: the instances still behind the rollout's target versions (None for other rollouts)."""
    if rollout.kind != EXTENSION_UPGRADE:
        return None
    targets = rollout.target_extensions or {}
    return frozenset(i for i, r in state.instances.items() if outdated(r.extension_versions, targets))
