"""The ASGI application: one case-insensitive route table, ARM's rules for every request, ARM's errors for every
failure (a handler that raises anything unexpected answers 500 in the envelope, logged, never a stack trace).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from scaleset.api import admin, arm, events, extensions, identity, images, openapi, upgrades
from scaleset.api.http import ApiError, error_response, json_response
from scaleset.api.runtime import Runtime
from scaleset.domain.errors import DomainError

log = logging.getLogger("scaleset.api")

Handler = Callable[..., Awaitable[Response]]

SUB = r"/subscriptions/(?P<subscription>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<group>[^/]+)"
VMSS = RG + r"/providers/Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[^/]+)"
VM = VMSS + r"/virtualMachines/(?P<instance>[^/]+)"
OPS = SUB + r"/providers/Microsoft\.Compute/locations/(?P<location>[^/]+)"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    kind: str  # "arm" (token + api-version), "identity" (open), "admin" (token)
    extra: dict[str, str]


def _route(path: str, kind: str, extra: dict[str, str] | None = None, **methods: Handler) -> Route:
    return Route(
        re.compile(f"^{path}/?$", re.IGNORECASE), {m.upper(): h for m, h in methods.items()}, kind, extra or {}
    )


ROUTES: list[Route] = [
    _route(r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration", "identity", get=identity.openid),
    _route(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", "identity", post=identity.token),
    _route(r"/msi/token", "identity", get=identity.msi_token),
    _route(r"/metadata/identity/oauth2/token", "identity", get=identity.msi_token),
    _route(r"/+metadata/endpoints", "identity", get=identity.metadata_endpoints),  # az asks for {arm}/ + /metadata
    _route(r"/_scaleset/faults", "admin", get=admin.list_faults, post=admin.add_fault, delete=admin.clear_faults),
    _route(r"/_scaleset/faults/(?P<fault_id>[^/]+)", "admin", delete=admin.delete_fault),
    _route(
        r"/_scaleset/health/(?P<subscription>[^/]+)/(?P<group>[^/]+)/(?P<name>[^/]+)", "admin", post=admin.set_health
    ),
    _route(r"/_scaleset/clock", "admin", get=admin.clock),
    _route(r"/_scaleset/images", "admin", get=images.list_images),
    _route(
        r"/_scaleset/images/(?P<publisher>[^/]+)/(?P<offer>[^/]+)/(?P<sku>[^/]+)/(?P<version>[^/]+)",
        "admin",
        get=images.get_image,
        put=images.put_image,
        delete=images.delete_image,
    ),
    _route(r"/_scaleset/extensions", "admin", get=extensions.list_extensions),
    _route(
        r"/_scaleset/extensions/(?P<publisher>[^/]+)/(?P<kind>[^/]+)/(?P<version>[^/]+)",
        "admin",
        get=extensions.get_extension,
        put=extensions.put_extension,
        delete=extensions.delete_extension,
    ),
    _route(r"/_scaleset/events", "admin", get=events.list_events),
    _route(r"/_scaleset/loadbalancers", "admin", get=admin.load_balancers),
    _route(r"/_scaleset/openapi\.json", "identity", get=openapi.serve),
    _route(r"/subscriptions", "arm", get=identity.list_subscriptions),
    _route(SUB, "arm", get=identity.get_subscription),
    _route(SUB + r"/resourcegroups", "arm", get=arm.list_groups),
    _route(SUB + r"/operationresults/(?P<job>[^/]+)", "arm", get=arm.group_deletion_result),
    _route(RG, "arm", put=arm.put_group, get=arm.get_group, delete=arm.delete_group, head=arm.head_group),
    _route(SUB + r"/providers/Microsoft\.Compute/virtualMachineScaleSets", "arm", get=arm.list_scale_sets),
    _route(RG + r"/providers/Microsoft\.Compute/virtualMachineScaleSets", "arm", get=arm.list_scale_sets),
    _route(
        VMSS,
        "arm",
        put=arm.put_scale_set,
        patch=arm.patch_scale_set,
        get=arm.get_scale_set,
        delete=arm.delete_scale_set,
    ),
    _route(VMSS + r"/instanceView", "arm", get=arm.scale_set_instance_view),
    _route(VMSS + r"/skus", "arm", get=arm.scale_set_skus),
    _route(VMSS + r"/rollingUpgrades/cancel", "arm", post=arm.cancel_rolling),
    _route(VMSS + r"/rollingUpgrades/latest", "arm", get=arm.latest_rolling),
    _route(VMSS + r"/osRollingUpgrade", "arm", post=upgrades.start_os_upgrade),
    _route(VMSS + r"/osUpgradeHistory", "arm", get=upgrades.os_upgrade_history),
    _route(VMSS + r"/extensionRollingUpgrade", "arm", post=upgrades.start_extension_upgrade),
    _route(VMSS + r"/approveRollingUpgrade", "arm", post=upgrades.approve_rolling_upgrade),
    _route(VMSS + r"/setOrchestrationServiceState", "arm", post=upgrades.set_orchestration_service_state),
    _route(
        VMSS + r"/(?P<action>manualupgrade|reimage|reimageall|restart|start|poweroff|deallocate|delete)",
        "arm",
        post=arm.scale_set_action,
    ),
    _route(VMSS + r"/virtualMachines", "arm", get=arm.list_vms),
    _route(VM, "arm", get=arm.get_vm, put=arm.put_vm, delete=arm.delete_vm),
    _route(VM + r"/instanceView", "arm", get=arm.vm_instance_view),
    _route(VM + r"/approveRollingUpgrade", "arm", post=upgrades.approve_vm_rolling_upgrade),
    _route(VM + r"/(?P<action>reimage|reimageall|restart|start|poweroff|deallocate)", "arm", post=arm.vm_action),
    _route(OPS + r"/virtualMachineScaleSets", "arm", get=arm.list_scale_sets),
    _route(OPS + r"/operations/(?P<op_id>[^/]+)", "arm", get=arm.operation_status),
    _route(OPS + r"/operationResults/(?P<op_id>[^/]+)", "arm", get=arm.operation_result),
]


def _match(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a path as the client sent it (still percent-encoded), so an encoded slash inside a name never
    separates segments (``web%2FinstanceView`` is not ``web/instanceView``); a name that holds one matches nothing.
    """
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is not None:
            params = {k: unquote(v) for k, v in found.groupdict().items() if v is not None}
            return None if any("/" in v for v in params.values()) else (route, params)
    return None


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes) or not raw:
        return quote(request.url.path)
    return raw.decode("utf-8", "replace").split("?", 1)[0]


def _authenticate(request: Request, runtime: Runtime) -> None:
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is not a bearer token."
        )
    try:
        runtime.identity.verify(token.strip())
    except jwt.ExpiredSignatureError as exc:
        raise ApiError(
            401, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time."
        ) from exc
    except jwt.InvalidTokenError as exc:
        raise ApiError(
            401, "InvalidAuthenticationToken", "The access token is invalid: it was not issued by this scaleset server."
        ) from exc


class Application:
    """ASGI app over a :class:`Runtime`; the runtime's driver starts and stops with the server (lifespan)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.runtime.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def dispatch(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except (DomainError, ApiError) as error:
            return error_response(request, error)
        except Exception:
            log.exception("unexpected error answering %s %s", request.method, request.url.path)
            return error_response(
                request,
                ApiError(500, "InternalServerError", "An internal error occurred; the server log has the details."),
            )

    async def _dispatch(self, request: Request) -> Response:
        found = _match(_raw_path(request))
        if found is None:
            raise ApiError(404, "NotFound", f"No route matches '{request.url.path}'.")
        route, params = found
        handler = route.methods.get(request.method.upper())
        if handler is None:
            allowed = ", ".join(sorted(route.methods))
            response = error_response(
                request,
                ApiError(
                    405, "MethodNotAllowed", f"The HTTP method '{request.method}' is not supported here; use {allowed}."
                ),
            )
            response.headers["Allow"] = allowed
            return response
        if route.kind in ("arm", "admin"):
            _authenticate(request, self.runtime)
        if route.kind == "arm" and not request.query_params.get("api-version"):
            raise ApiError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        arguments: dict[str, Any] = dict(params)
        return await handler(request, self.runtime, **arguments)


def create_app(runtime: Runtime) -> Application:
    return Application(runtime)


__all__ = ["Application", "create_app", "json_response"]
