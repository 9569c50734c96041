"""Ending long-running operations: an operation finishes when the instances it touched are idle and its rollout,
if it has one, has ended; it takes the rollout's verdict (Faulted: Failed with the rollout's error; cancelled:
Canceled) or the first failed instance's error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scaleset.domain import errors
from scaleset.domain.actions import Event
from scaleset.domain.instances import InstanceView, ProvisioningState, done_by
from scaleset.domain.records import Operation, OperationStatus
from scaleset.domain.upgrade.status import Phase, RollingStatusCode
from scaleset.engine.state import ScaleSetState

if TYPE_CHECKING:
    from scaleset.engine.engine import Engine

CANCEL_OPERATION = "cancelRollingUpgrade"


def settle_operations(
    engine: Engine, state: ScaleSetState, views: Sequence[InstanceView], now: float, waits: list[float]
) -> None:
    """End every started operation whose instances are idle and whose rollout (if any) has ended; the others add
    when to look again to ``waits``."""
    by_id = {v.instance_id: v for v in views}
    for op in list(state.operations.values()):
        if op.done or op.pending:
            continue
        busy = [by_id[i] for i in op.instance_ids if i in by_id and by_id[i].busy]
        if busy:
            waits.append(max(done_by(v, now) for v in busy))
            continue
        if op.rollout_id is not None:
            rollout = state.rollout
            if rollout is not None and rollout.rollout_id == op.rollout_id:
                if rollout.code is RollingStatusCode.ROLLING_FORWARD or (
                    rollout.code is RollingStatusCode.CANCELLED and rollout.phase is not Phase.DONE
                ):
                    continue
                if op.kind == CANCEL_OPERATION:
                    _finish(engine, state, op, now, status=OperationStatus.SUCCEEDED)
                    continue
                if rollout.code is RollingStatusCode.FAULTED:
                    _finish(engine, state, op, now, status=OperationStatus.FAILED, error=rollout.error)
                    continue
                if rollout.code is RollingStatusCode.CANCELLED:
                    _finish(
                        engine,
                        state,
                        op,
                        now,
                        status=OperationStatus.CANCELED,
                        error={
                            "code": errors.ROLLING_UPGRADE_CANCELED,
                            "message": "The rolling upgrade was cancelled before it finished.",
                        },
                    )
                    continue
        failed = [by_id[i] for i in op.instance_ids if i in by_id and by_id[i].provisioning is ProvisioningState.FAILED]
        if failed:
            first = failed[0]
            _finish(
                engine,
                state,
                op,
                now,
                status=OperationStatus.FAILED,
                error={
                    "code": first.error_code or "VMProvisioningFailed",
                    "message": f"Instance {first.instance_id}: {first.error_message or 'provisioning failed.'}",
                },
            )
        else:
            _finish(engine, state, op, now, status=OperationStatus.SUCCEEDED)


def _finish(
    engine: Engine,
    state: ScaleSetState,
    op: Operation,
    now: float,
    *,
    status: OperationStatus,
    error: dict[str, str] | None = None,
) -> None:
    op.status, op.ended_at, op.error = status, now, error
    data: dict[str, Any] = {"operationId": op.operation_id, "operation": op.kind, "status": status.value}
    if error:
        data["error"] = error
    engine.emit_at(state, now, Event("operationFinished", data))
