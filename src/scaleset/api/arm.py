"""Microsoft.Compute and Microsoft.Resources handlers: parse, call a service, render.

Long-running operations answer as ARM does: ``Azure-AsyncOperation`` on PUT/PATCH (201 or 200 with the resource),
``Azure-AsyncOperation`` and ``Location`` on POST actions and DELETE (202), both absolute https URLs that this
server serves, with ``retry-after-ms`` so clients poll quickly (never ``Retry-After: 0``, which clients read as
"use the 30-second default").
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scaleset.api import codec
from scaleset.api.http import ApiError, json_response
from scaleset.api.identity import base_url, check_subscription
from scaleset.api.runtime import GROUPS, Runtime
from scaleset.domain import errors
from scaleset.domain.actions import PowerAction
from scaleset.domain.records import Operation
from scaleset.domain.upgrade.status import status_document
from scaleset.engine.clock import render_time
from scaleset.engine.services import scale_set_id
from scaleset.engine.state import ScaleSetState

_FILTER = re.compile(r"^\s*properties/latestModelApplied\s+eq\s+(true|false)\s*$", re.IGNORECASE)
POWER = {
    "restart": PowerAction.RESTART,
    "start": PowerAction.START,
    "poweroff": PowerAction.POWER_OFF,
    "deallocate": PowerAction.DEALLOCATE,
}


# ---------------------------------------------------------------------- request helpers


async def json_body(request: Request, *, required: bool) -> dict[str, Any] | None:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ApiError(400, "InvalidRequestContent", "The request content was invalid: a JSON body is required.")
        return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind not in ("application/json", "text/json") and not kind.endswith("+json"):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"The content media type '{kind}' is not supported. Only 'application/json' is supported.",
        )
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(
            400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {exc}."
        ) from exc
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: expected a JSON object.",
        )
    return body


def _api_version(request: Request) -> str:
    return request.query_params.get("api-version") or "2024-11-01"


def lro_headers(
    request: Request, runtime: Runtime, op: Operation, state_location: str, *, location: bool
) -> dict[str, str]:
    base = base_url(request)
    sub = runtime.identity.subscription
    root = f"{base}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{state_location or 'local'}"
    query = f"?api-version={_api_version(request)}"
    headers = {
        "Azure-AsyncOperation": f"{root}/operations/{op.operation_id}{query}",
        "retry-after-ms": str(runtime.retry_after_ms),
        "x-ms-retry-after-ms": str(runtime.retry_after_ms),
    }
    if location:
        headers["Location"] = f"{root}/operationResults/{op.operation_id}{query}"
    return headers


def _now(runtime: Runtime) -> float:
    return runtime.engine.clock.now()


def settle(runtime: Runtime, subscription: str, group: str, name: str) -> None:
    """Run the scale set's pass now, so what a request started (a rollout, a scale-out) shows in the very next
    read, as it does in Azure, instead of after the driver's next turn."""
    set_id = scale_set_id(subscription, group, name).lower()
    if runtime.engine.state(set_id) is not None:
        runtime.engine.run_pass(set_id)


# ---------------------------------------------------------------------- resource groups


def _group_key(subscription: str, group: str) -> str:
    return f"{subscription.lower()}/{group.lower()}"


def require_group(runtime: Runtime, subscription: str, group: str) -> dict[str, Any]:
    check_subscription(runtime, subscription)
    found = runtime.store.get_document(GROUPS, _group_key(subscription, group))
    if found is None:
        raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
    return found


def _group_body(runtime: Runtime, record: dict[str, Any]) -> dict[str, Any]:
    body = {
        "id": f"/subscriptions/{runtime.identity.subscription}/resourceGroups/{record['name']}",
        "name": record["name"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": record["location"],
        "properties": {"provisioningState": "Succeeded"},
    }
    if record.get("tags"):
        body["tags"] = record["tags"]
    return body


async def put_group(request: Request, runtime: Runtime, subscription: str, group: str) -> Response:
    check_subscription(runtime, subscription)
    body = await json_body(request, required=True) or {}
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise ApiError(400, "LocationRequired", "The location property is required for this definition.", "location")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise ApiError(400, "InvalidRequestContent", "The tags property must be an object.", "tags")
    key = _group_key(subscription, group)
    existing = runtime.store.get_document(GROUPS, key)
    record = {
        "name": existing["name"] if existing else group,
        "location": location.replace(" ", "").lower(),
        "tags": tags,
    }
    runtime.store.put_document(GROUPS, key, record)
    return json_response(request, _group_body(runtime, record), 200 if existing else 201)


async def get_group(request: Request, runtime: Runtime, subscription: str, group: str) -> Response:
    return json_response(request, _group_body(runtime, require_group(runtime, subscription, group)))


async def head_group(request: Request, runtime: Runtime, subscription: str, group: str) -> Response:
    check_subscription(runtime, subscription)
    found = runtime.store.get_document(GROUPS, _group_key(subscription, group)) is not None
    return json_response(request, None, 204 if found else 404)


async def list_groups(request: Request, runtime: Runtime, subscription: str) -> Response:
    check_subscription(runtime, subscription)
    groups = [_group_body(runtime, r) for _, r in runtime.store.list_documents(GROUPS)]
    return json_response(request, {"value": groups})


async def delete_group(request: Request, runtime: Runtime, subscription: str, group: str) -> Response:
    check_subscription(runtime, subscription)
    key = _group_key(subscription, group)
    if runtime.store.get_document(GROUPS, key) is None:
        return json_response(request, None, 204)
    for state in runtime.engine.states():
        record = state.record
        if record.subscription.lower() == subscription.lower() and record.resource_group.lower() == group.lower():
            runtime.services.delete_scale_set(record.subscription, record.resource_group, record.name)
    runtime.store.delete_document(GROUPS, key)
    return json_response(request, None, 200)


# ---------------------------------------------------------------------- scale sets


def scale_set_state(runtime: Runtime, subscription: str, group: str, name: str) -> ScaleSetState:
    require_group(runtime, subscription, group)
    state = runtime.engine.state(scale_set_id(subscription, group, name).lower())
    if state is None:
        raise errors.not_found(
            f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource group '{group}' "
            "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            code=errors.RESOURCE_NOT_FOUND,
        )
    return state


async def put_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    require_group(runtime, subscription, group)
    body = await json_body(request, required=True) or {}
    rendered, op, created = runtime.services.put_scale_set(subscription, group, name, body)
    settle(runtime, subscription, group, name)
    headers = lro_headers(request, runtime, op, rendered.get("location") or "", location=False)
    return json_response(request, rendered, 201 if created else 200, headers)


async def patch_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    scale_set_state(runtime, subscription, group, name)
    body = await json_body(request, required=True) or {}
    rendered, op = runtime.services.patch_scale_set(subscription, group, name, body)
    settle(runtime, subscription, group, name)
    headers = lro_headers(request, runtime, op, rendered.get("location") or "", location=False)
    return json_response(request, rendered, 200, headers)


async def get_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    scale_set_state(runtime, subscription, group, name)
    return json_response(request, runtime.services.get_scale_set(subscription, group, name))


async def delete_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    require_group(runtime, subscription, group)
    if runtime.engine.state(scale_set_id(subscription, group, name).lower()) is None:
        return json_response(request, None, 204)
    state = scale_set_state(runtime, subscription, group, name)
    op = runtime.services.delete_scale_set(subscription, group, name)
    return json_response(
        request, None, 202, lro_headers(request, runtime, op, state.vmss.location or "", location=True)
    )


async def list_scale_sets(request: Request, runtime: Runtime, subscription: str, group: str | None = None) -> Response:
    if group is not None:
        require_group(runtime, subscription, group)
    else:
        check_subscription(runtime, subscription)
    return json_response(request, {"value": runtime.services.list_scale_sets(subscription, group)})


async def scale_set_instance_view(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str
) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    views = runtime.services.instances(subscription, group, name)
    return json_response(
        request, codec.scale_set_instance_view(state, views, render_time=render_time, now=_now(runtime))
    )


async def scale_set_skus(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    return json_response(request, codec.skus(scale_set_state(runtime, subscription, group, name)))


def _instance_ids(body: dict[str, Any] | None) -> Any:
    return None if body is None or body.get("instanceIds") is None else body["instanceIds"]


async def scale_set_action(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, action: str
) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    body = await json_body(request, required=action in ("manualupgrade", "delete"))
    ids = _instance_ids(body)
    services = runtime.services
    if action == "manualupgrade":
        op = services.update_instances(subscription, group, name, ids)
    elif action in ("reimage", "reimageall"):
        op = services.reimage(subscription, group, name, ids, data_disks=action == "reimageall")
    elif action == "delete":
        op = services.delete_instances(subscription, group, name, ids)
    else:
        op = services.power(subscription, group, name, ids, POWER[action])
    settle(runtime, subscription, group, name)
    return json_response(
        request, None, 202, lro_headers(request, runtime, op, state.vmss.location or "", location=True)
    )


async def cancel_rolling(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    op = runtime.services.cancel_rolling_upgrade(subscription, group, name)
    settle(runtime, subscription, group, name)
    return json_response(
        request, None, 202, lro_headers(request, runtime, op, state.vmss.location or "", location=True)
    )


async def latest_rolling(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    rollout = runtime.services.latest_rolling_upgrade(subscription, group, name)
    return json_response(request, status_document(rollout, location=state.vmss.location or "", render_time=render_time))


# ---------------------------------------------------------------------- VMs


def _vm_state(runtime: Runtime, subscription: str, group: str, name: str, instance: str) -> tuple[ScaleSetState, int]:
    state = scale_set_state(runtime, subscription, group, name)
    if not instance.isdigit():
        raise errors.invalid_parameter("instanceId", "Virtual Machine Scale Set VM instanceId must be a number")
    instance_id = int(instance)
    runtime.engine.observe(state, _now(runtime))
    if instance_id not in state.instances:
        raise errors.not_found(
            f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}/virtualMachines/{instance}' under "
            f"resource group '{group}' was not found.",
            code=errors.RESOURCE_NOT_FOUND,
        )
    return state, instance_id


def _render_vm(runtime: Runtime, state: ScaleSetState, instance_id: int, *, expand: bool) -> dict[str, Any]:
    views = {v.instance_id: v for v in runtime.engine.observe(state, _now(runtime))}
    record = state.instances[instance_id]
    return codec.vm_resource(
        state,
        record,
        views[instance_id],
        model_body=state.model_body(runtime.store, record.model_version),
        render_time=render_time,
        expand_instance_view=expand,
    )


def _expand(request: Request) -> bool:
    return "instanceview" in (request.query_params.get("$expand") or "").lower()


async def list_vms(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    wanted: bool | None = None
    raw = request.query_params.get("$filter")
    if raw:
        match = _FILTER.match(raw)
        if match is None:
            raise errors.invalid_parameter(
                "$filter",
                f"The $filter '{raw}' is not supported. Use 'properties/latestModelApplied eq true' or '... eq false'.",
            )
        wanted = match.group(1).lower() == "true"
    expand = _expand(request)
    views = runtime.engine.observe(state, _now(runtime))
    out = []
    for view in views:
        record = state.instances[view.instance_id]
        latest = record.model_version == state.record.model_version
        if wanted is not None and latest != wanted:
            continue
        out.append(
            codec.vm_resource(
                state,
                record,
                view,
                model_body=state.model_body(runtime.store, record.model_version),
                render_time=render_time,
                expand_instance_view=expand,
            )
        )
    return json_response(request, {"value": out})


async def get_vm(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    state, instance_id = _vm_state(runtime, subscription, group, name, instance)
    return json_response(request, _render_vm(runtime, state, instance_id, expand=_expand(request)))


async def vm_instance_view(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    state, instance_id = _vm_state(runtime, subscription, group, name, instance)
    body = _render_vm(runtime, state, instance_id, expand=True)
    return json_response(request, body["properties"]["instanceView"])


async def put_vm(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    """VM PUT: the only writable part this emulator takes is ``protectionPolicy``."""
    state, instance_id = _vm_state(runtime, subscription, group, name, instance)
    body = await json_body(request, required=True) or {}
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise errors.invalid_parameter("properties")
    policy = properties.get("protectionPolicy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise errors.invalid_parameter("properties.protectionPolicy")
        record = state.instances[instance_id]
        scale_in = policy.get("protectFromScaleIn", record.protect_from_scale_in)
        actions = policy.get("protectFromScaleSetActions", record.protect_from_scale_set_actions)
        for field_name, value in (("protectFromScaleIn", scale_in), ("protectFromScaleSetActions", actions)):
            if not isinstance(value, bool):
                raise errors.invalid_parameter(f"properties.protectionPolicy.{field_name}")
        runtime.services.set_protection(
            subscription,
            group,
            name,
            str(instance_id),
            protect_from_scale_in=scale_in,
            protect_from_scale_set_actions=actions,
        )
    return json_response(request, _render_vm(runtime, state, instance_id, expand=False), 200)


async def delete_vm(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    state, instance_id = _vm_state(runtime, subscription, group, name, instance)
    op = runtime.services.delete_instances(subscription, group, name, [str(instance_id)])
    return json_response(
        request, None, 202, lro_headers(request, runtime, op, state.vmss.location or "", location=True)
    )


async def vm_action(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str, action: str
) -> Response:
    """Per-VM actions are user operations on the instance: protection from scale-set actions does not apply."""
    state, instance_id = _vm_state(runtime, subscription, group, name, instance)
    await json_body(request, required=False)
    ids = [str(instance_id)]
    services = runtime.services
    if action in ("reimage", "reimageall"):
        op = services.reimage(subscription, group, name, ids, data_disks=action == "reimageall", scale_set_action=False)
    else:
        op = services.power(subscription, group, name, ids, POWER[action], scale_set_action=False)
    return json_response(
        request, None, 202, lro_headers(request, runtime, op, state.vmss.location or "", location=True)
    )


# ---------------------------------------------------------------------- operations


async def operation_status(
    request: Request, runtime: Runtime, subscription: str, location: str, op_id: str
) -> Response:
    check_subscription(runtime, subscription)
    op = runtime.services.operation(op_id)
    headers = (
        {}
        if op.done
        else {"retry-after-ms": str(runtime.retry_after_ms), "x-ms-retry-after-ms": str(runtime.retry_after_ms)}
    )
    return json_response(request, codec.operation_status(op, render_time=render_time), 200, headers)


async def operation_result(
    request: Request, runtime: Runtime, subscription: str, location: str, op_id: str
) -> Response:
    check_subscription(runtime, subscription)
    op = runtime.services.operation(op_id)
    if not op.done:
        headers = {"Location": str(request.url), "retry-after-ms": str(runtime.retry_after_ms)}
        return json_response(request, None, 202, headers)
    if op.error is not None and op.status.value == "Failed":
        return json_response(request, {"error": dict(op.error)}, 200)
    return json_response(request, None, 204)
