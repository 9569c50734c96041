"""The routes of the platform's own hands: OS image upgrades, their history and approval, extension upgrades,
and the orchestration services (automatic repairs) of a scale set."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.arm import accepted, instance_ids, scale_set_state, settle, vm_state
from scaleset.api.http import json_body, json_response
from scaleset.api.runtime import Runtime
from scaleset.domain.upgrade.status import history_entry
from scaleset.engine.clock import render_time


async def start_os_upgrade(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    await json_body(request, required=False)
    op = runtime.services.start_os_upgrade(subscription, group, name)
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)


async def start_extension_upgrade(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str
) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    await json_body(request, required=False)
    op = runtime.services.start_extension_upgrade(subscription, group, name)
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)


async def os_upgrade_history(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    location = state.vmss.location or ""
    entries = [
        history_entry(rollout, location=location, render_time=render_time)
        for rollout in runtime.services.os_upgrade_history(subscription, group, name)
    ]
    return json_response(request, {"value": entries})


async def approve_rolling_upgrade(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str
) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    body = await json_body(request, required=False)
    op = runtime.services.approve_rolling_upgrade(subscription, group, name, instance_ids(body))
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)


async def approve_vm_rolling_upgrade(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    state, instance_id = vm_state(runtime, subscription, group, name, instance)
    await json_body(request, required=False)
    op = runtime.services.approve_rolling_upgrade(subscription, group, name, [str(instance_id)])
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)


async def set_orchestration_service_state(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str
) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    body = await json_body(request, required=True)
    op = runtime.services.set_orchestration_service_state(subscription, group, name, body)
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)
