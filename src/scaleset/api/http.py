"""Responses as ARM sends them: JSON, request ids on every answer, and one table for errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scaleset.domain.errors import DomainError


class ApiError(Exception):
    """An HTTP-level error (routing, auth, content) in ARM's envelope."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}


def request_id(request: Request) -> str:
    rid = request.scope.setdefault("state", {}).get("request_id")
    if rid is None:
        rid = str(uuid.uuid4())
        request.scope["state"]["request_id"] = rid
    return str(rid)


def json_response(request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return raw_response(request, None, status, headers)
    return raw_response(request, json.dumps(body, separators=(",", ":")).encode(), status, headers)


def raw_response(
    request: Request, payload: bytes | None, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response whose JSON is already encoded (``None``: no body)."""
    out = Response(payload or b"", status_code=status, media_type="application/json" if payload is not None else None)
    out.headers["x-ms-request-id"] = request_id(request)
    correlation = request.headers.get("x-ms-correlation-request-id") or request.headers.get("x-ms-client-request-id")
    out.headers["x-ms-correlation-request-id"] = correlation or request_id(request)
    for key, value in (headers or {}).items():
        out.headers[key] = value
    return out


def error_response(request: Request, error: DomainError | ApiError) -> Response:
    if isinstance(error, DomainError):
        return json_response(request, {"error": error.to_arm()}, error.status)
    return json_response(request, error.body(), error.status)
