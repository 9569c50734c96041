"""Microsoft.Compute and Microsoft.Resources handlers: parse, call a service, render.

Long-running operations answer as ARM does: ``Azure-AsyncOperation`` on PUT/PATCH (201 or 200 with the resource),
``Azure-AsyncOperation`` and ``Location`` on POST actions and DELETE (202), both absolute https URLs that this
server serves, with ``retry-after-ms`` so clients poll quickly (never ``Retry-After: 0``, which clients read as
"use the 30-second default").
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from scaleset.api import codec
from scaleset.api.http import ApiError, json_body, json_response, raw_response
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
GROUP_DELETION_JOB = "ResourceGroupDeletionJob:"
"""Deeper request bodies are refused: ARM bodies nest a dozen levels, and rendering a very deep one would recurse."""
POWER = {
    "restart": PowerAction.RESTART,
    "start": PowerAction.START,
    "poweroff": PowerAction.POWER_OFF,
    "deallocate": PowerAction.DEALLOCATE,
}


# ---------------------------------------------------------------------- request helpers


def _api_version(request: Request) -> str:
    return request.query_params.get("api-version") or "2024-11-01"


def _force_deletion(request: Request) -> bool:
    """The ``forceDeletion`` query parameter: ``true`` or ``false`` in any case; absent is false."""
    raw = request.query_params.get("forceDeletion")
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise errors.invalid_parameter(
            "forceDeletion", f"The value '{raw}' of parameter 'forceDeletion' is invalid: use true or false."
        )
    return raw.lower() == "true"


def lro_headers(
    request: Request, runtime: Runtime, op: Operation, state_location: str, *, location: bool
) -> dict[str, str]:
    base = base_url(request)
    sub = runtime.identity.subscription
    # Location and api-version come from requests and go into header values, which must stay ASCII.
    where = quote(state_location or "local", safe="")
    root = f"{base}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{where}"
    query = f"?api-version={quote(_api_version(request), safe='')}"
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


def _sets_in_group(runtime: Runtime, subscription: str, group: str) -> list[ScaleSetState]:
    return [
        state
        for state in runtime.engine.states()
        if state.record.subscription.lower() == subscription.lower()
        and state.record.resource_group.lower() == group.lower()
    ]


def find_group(runtime: Runtime, subscription: str, group: str) -> dict[str, Any] | None:
    """The group's record; a group being deleted is gone once the last of its scale sets is."""
    check_subscription(runtime, subscription)
    key = _group_key(subscription, group)
    found = runtime.store.get_document(GROUPS, key)
    if found is not None and found.get("deleting") and not _sets_in_group(runtime, subscription, group):
        runtime.store.delete_document(GROUPS, key)
        return None
    return found


def require_group(runtime: Runtime, subscription: str, group: str) -> dict[str, Any]:
    found = find_group(runtime, subscription, group)
    if found is None:
        raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
    return found


def _not_being_deleted(record: dict[str, Any]) -> None:
    if record.get("deleting"):
        raise ApiError(
            409,
            "ResourceGroupBeingDeleted",
            f"The resource group '{record['name']}' is in deprovisioning state and cannot perform this operation.",
        )


def _group_body(runtime: Runtime, record: dict[str, Any]) -> dict[str, Any]:
    body = {
        "id": f"/subscriptions/{runtime.identity.subscription}/resourceGroups/{record['name']}",
        "name": record["name"],
        "type": "Microsoft.Resources/resourceGroups",
        "location": record["location"],
        "properties": {"provisioningState": "Deleting" if record.get("deleting") else "Succeeded"},
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
    if not isinstance(tags, dict) or not all(isinstance(value, str) for value in tags.values()):
        raise ApiError(400, "InvalidRequestContent", "The tags property must be an object of strings.", "tags")
    key = _group_key(subscription, group)
    existing = find_group(runtime, subscription, group)
    if existing is not None:
        _not_being_deleted(existing)
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
    found = find_group(runtime, subscription, group) is not None
    return json_response(request, None, 204 if found else 404)


async def list_groups(request: Request, runtime: Runtime, subscription: str) -> Response:
    check_subscription(runtime, subscription)
    names = [record["name"] for _, record in runtime.store.list_documents(GROUPS)]
    records = [r for r in (find_group(runtime, subscription, name) for name in names) if r is not None]
    return json_response(request, {"value": [_group_body(runtime, r) for r in records]})


def _group_deletion_url(request: Request, runtime: Runtime, group: str) -> str:
    job = base64.urlsafe_b64encode(f"{GROUP_DELETION_JOB}{group.lower()}".encode()).decode().rstrip("=")
    query = f"?api-version={quote(request.query_params.get('api-version') or '2022-12-01', safe='')}"
    return f"{base_url(request)}/subscriptions/{runtime.identity.subscription}/operationresults/{job}{query}"


async def delete_group(request: Request, runtime: Runtime, subscription: str, group: str) -> Response:
    """As ARM does: 202 with a ``Location`` that answers 202 until every scale set in the group is gone, then 200;
    meanwhile the group reads ``Deleting`` and takes no new resources (409 ``ResourceGroupBeingDeleted``)."""
    key = _group_key(subscription, group)
    record = find_group(runtime, subscription, group)
    if record is None:
        return json_response(request, None, 204)
    inside = _sets_in_group(runtime, subscription, group)
    if not inside:
        runtime.store.delete_document(GROUPS, key)
        return json_response(request, None, 200)
    for state in inside:
        runtime.services.delete_scale_set(state.record.subscription, state.record.resource_group, state.record.name)
    runtime.store.put_document(GROUPS, key, record | {"deleting": True})
    headers = {"Location": _group_deletion_url(request, runtime, group), "retry-after-ms": str(runtime.retry_after_ms)}
    return json_response(request, None, 202, headers)


async def group_deletion_result(request: Request, runtime: Runtime, subscription: str, job: str) -> Response:
    """``GET /subscriptions/{sub}/operationresults/{job}``: where a group deletion's ``Location`` points."""
    check_subscription(runtime, subscription)
    try:
        decoded = base64.urlsafe_b64decode(job + "=" * (-len(job) % 4)).decode()
    except ValueError:
        decoded = ""
    if not decoded.startswith(GROUP_DELETION_JOB):
        raise ApiError(404, "NotFound", f"Operation result '{job}' was not found.")
    if find_group(runtime, subscription, decoded.removeprefix(GROUP_DELETION_JOB)) is not None:
        headers = {"Location": str(request.url), "retry-after-ms": str(runtime.retry_after_ms)}
        return json_response(request, None, 202, headers)
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


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}


def check_preconditions(request: Request, state: ScaleSetState | None) -> None:
    """``If-Match`` / ``If-None-Match`` on a scale set write (the SDK's ``etag`` and ``match_condition``)."""
    current = str(state.record.etag) if state is not None else None
    if_match = request.headers.get("if-match")
    if if_match is not None and (current is None or not ({"*", current} & _etags(if_match))):
        raise ApiError(
            412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."
        )
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and current is not None and {"*", current} & _etags(if_none_match):
        raise ApiError(
            412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."
        )


async def put_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    _not_being_deleted(require_group(runtime, subscription, group))
    check_preconditions(request, runtime.engine.state(scale_set_id(subscription, group, name).lower()))
    body = await json_body(request, required=True) or {}
    rendered, op, created = runtime.services.put_scale_set(subscription, group, name, body)
    settle(runtime, subscription, group, name)
    headers = lro_headers(request, runtime, op, rendered.get("location") or "", location=False)
    return json_response(request, rendered, 201 if created else 200, headers)


async def patch_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    check_preconditions(request, scale_set_state(runtime, subscription, group, name))
    body = await json_body(request, required=True) or {}
    rendered, op = runtime.services.patch_scale_set(subscription, group, name, body)
    settle(runtime, subscription, group, name)
    headers = lro_headers(request, runtime, op, rendered.get("location") or "", location=False)
    return json_response(request, rendered, 200, headers)


async def get_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    scale_set_state(runtime, subscription, group, name)
    return json_response(request, runtime.services.get_scale_set(subscription, group, name))


async def delete_scale_set(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    force = _force_deletion(request)
    require_group(runtime, subscription, group)
    if runtime.engine.state(scale_set_id(subscription, group, name).lower()) is None:
        return json_response(request, None, 204)
    state = scale_set_state(runtime, subscription, group, name)
    op = runtime.services.delete_scale_set(subscription, group, name, force=force)
    return accepted(request, runtime, state, op)


async def list_scale_sets(
    request: Request, runtime: Runtime, subscription: str, group: str | None = None, location: str | None = None
) -> Response:
    """By group, by subscription, or (``ListByLocation``) by the subscription's sets in one location."""
    if group is not None:
        require_group(runtime, subscription, group)
    else:
        check_subscription(runtime, subscription)
    found = runtime.services.list_scale_sets(subscription, group)
    if location is not None:
        where = location.replace(" ", "").lower()
        found = [body for body in found if body.get("location") == where]
    return json_response(request, {"value": found})


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


def accepted(request: Request, runtime: Runtime, state: ScaleSetState, op: Operation) -> Response:
    """202 Accepted for a long-running operation on the scale set, with Azure-AsyncOperation and Location."""
    return json_response(
        request, None, 202, lro_headers(request, runtime, op, state.vmss.location or "", location=True)
    )


def instance_ids(body: dict[str, Any] | None) -> Any:
    return None if body is None or body.get("instanceIds") is None else body["instanceIds"]


async def scale_set_action(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, action: str
) -> Response:
    action = action.lower()  # routes match case-insensitively: the SDK sends 'powerOff', the spec 'poweroff'
    state = scale_set_state(runtime, subscription, group, name)
    body = await json_body(request, required=action in ("manualupgrade", "delete"))
    ids = instance_ids(body)
    services = runtime.services
    if action == "manualupgrade":
        op = services.update_instances(subscription, group, name, ids)
    elif action in ("reimage", "reimageall"):
        op = services.reimage(subscription, group, name, ids, data_disks=action == "reimageall")
    elif action == "delete":
        op = services.delete_instances(subscription, group, name, ids, force=_force_deletion(request))
    else:
        op = services.power(subscription, group, name, ids, POWER[action])
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)


async def cancel_rolling(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    op = runtime.services.cancel_rolling_upgrade(subscription, group, name)
    settle(runtime, subscription, group, name)
    return accepted(request, runtime, state, op)


async def latest_rolling(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    state = scale_set_state(runtime, subscription, group, name)
    rollout = runtime.services.latest_rolling_upgrade(subscription, group, name)
    return json_response(request, status_document(rollout, location=state.vmss.location or "", render_time=render_time))


# ---------------------------------------------------------------------- VMs


def vm_state(runtime: Runtime, subscription: str, group: str, name: str, instance: str) -> tuple[ScaleSetState, int]:
    state = scale_set_state(runtime, subscription, group, name)
    try:  # ASCII digits only ('²' is a digit to str.isdigit), and not more than int() converts
        instance_id = int(instance) if instance.isascii() and instance.isdigit() else -1
    except ValueError:
        instance_id = -1
    if instance_id < 0:
        raise errors.invalid_parameter("instanceId", "Virtual Machine Scale Set VM instanceId must be a number")
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
        model=state.parsed(runtime.store, record.model_version),
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
    now = _now(runtime)
    key = ("virtualMachines", expand, wanted)
    cached = state.cached_rendering(key, now)
    if cached is not None:
        return raw_response(request, cached)
    views = runtime.engine.observe(state, now)
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
                model=state.parsed(runtime.store, record.model_version),
                model_body=state.model_body(runtime.store, record.model_version),
                render_time=render_time,
                expand_instance_view=expand,
            )
        )
    payload = json.dumps({"value": out}, separators=(",", ":")).encode()
    horizon = min((v.stable_until for v in views if v.stable_until is not None), default=math.inf)
    state.keep_rendering(key, payload, valid_until=horizon)
    return raw_response(request, payload)


async def get_vm(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    state, instance_id = vm_state(runtime, subscription, group, name, instance)
    return json_response(request, _render_vm(runtime, state, instance_id, expand=_expand(request)))


async def vm_instance_view(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    state, instance_id = vm_state(runtime, subscription, group, name, instance)
    body = _render_vm(runtime, state, instance_id, expand=True)
    return json_response(request, body["properties"]["instanceView"])


async def put_vm(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str
) -> Response:
    """VM PUT: the only writable part this emulator takes is ``protectionPolicy``."""
    state, instance_id = vm_state(runtime, subscription, group, name, instance)
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
    force = _force_deletion(request)
    state, instance_id = vm_state(runtime, subscription, group, name, instance)
    op = runtime.services.delete_instances(subscription, group, name, [str(instance_id)], force=force)
    return accepted(request, runtime, state, op)


async def vm_action(
    request: Request, runtime: Runtime, subscription: str, group: str, name: str, instance: str, action: str
) -> Response:
    """Per-VM actions are user operations on the instance: protection from scale-set actions does not apply."""
    action = action.lower()  # routes match case-insensitively: the SDK sends 'powerOff', the spec 'poweroff'
    state, instance_id = vm_state(runtime, subscription, group, name, instance)
    await json_body(request, required=False)
    ids = [str(instance_id)]
    services = runtime.services
    if action in ("reimage", "reimageall"):
        op = services.reimage(subscription, group, name, ids, data_disks=action == "reimageall", scale_set_action=False)
    else:
        op = services.power(subscription, group, name, ids, POWER[action], scale_set_action=False)
    return accepted(request, runtime, state, op)


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
