"""The emulator's own controls, under ``/_scaleset/``: fault injection, health injection, the clock.

Never mixed into ARM routes. They need the same bearer token as ARM routes.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.arm import scale_set_state
from scaleset.api.http import ApiError, invalid, json_body, json_response
from scaleset.api.runtime import FAULTS, Runtime
from scaleset.backends.simulated import Fault
from scaleset.domain.health import Answer
from scaleset.engine.clock import render_time


async def list_faults(request: Request, runtime: Runtime) -> Response:
    return json_response(request, {"value": [{"id": key, **data} for key, data in runtime.fault_list()]})


def _simulated_only(runtime: Runtime) -> None:
    if runtime.backend_kind != "simulated":
        raise ApiError(
            409,
            "OperationNotAllowed",
            "Fault injection drives simulated instances; this server runs real processes (--backend process). "
            "Rehearse failures with the demo image versions that misbehave (scaleset image list).",
        )


async def load_balancers(request: Request, runtime: Runtime) -> Response:
    """``GET /_scaleset/loadbalancers``: each scale set's load balancer (process backend): URL, pool, counters."""
    out = []
    if runtime.process is not None:
        for set_id, (port, pool, stats) in sorted(runtime.process.balancers().items()):
            out.append(
                {
                    "scaleSet": set_id,
                    "url": f"http://127.0.0.1:{port}/" if port else None,
                    "port": port,
                    "pool": pool,
                    "stats": stats,
                }
            )
    return json_response(request, {"value": out, "backend": runtime.backend_kind})


async def add_fault(request: Request, runtime: Runtime) -> Response:
    _simulated_only(runtime)
    body = await json_body(request, required=True) or {}
    try:
        fault = Fault.model_validate(body)
    except ValidationError as exc:
        raise invalid("fault", exc) from exc
    key = runtime.fault_add(fault)
    return json_response(request, {"id": key, **dict(runtime.store.get_document(FAULTS, key) or {})}, 201)


async def clear_faults(request: Request, runtime: Runtime) -> Response:
    return json_response(request, {"removed": runtime.fault_clear()})


async def delete_fault(request: Request, runtime: Runtime, fault_id: str) -> Response:
    if runtime.fault_clear(fault_id) == 0:
        raise ApiError(404, "NotFound", f"Fault '{fault_id}' was not found.")
    return json_response(request, None, 204)


async def set_health(request: Request, runtime: Runtime, subscription: str, group: str, name: str) -> Response:
    """``POST /_scaleset/health/{sub}/{group}/{name}`` ``{"instanceIds": [...], "answer": "unhealthy"}``."""
    _simulated_only(runtime)
    scale_set_state(runtime, subscription, group, name)
    body = await json_body(request, required=True) or {}
    try:
        answer = Answer(str(body.get("answer")))
    except ValueError as exc:
        allowed = ", ".join(a.value for a in Answer)
        raise ApiError(400, "InvalidParameter", f"'answer' must be one of {allowed}.", "answer") from exc
    ids: Any = body.get("instanceIds", ["*"])
    changed = runtime.services.set_health(subscription, group, name, ids, answer)
    return json_response(request, {"instanceIds": [str(i) for i in changed], "answer": answer.value})


async def clock(request: Request, runtime: Runtime) -> Response:
    now = runtime.engine.clock.now()
    return json_response(request, {"now": render_time(now), "timeScale": runtime.time_scale})
