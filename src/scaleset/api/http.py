"""Responses as ARM sends them: JSON, request ids on every answer, and one table for errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from scaleset.domain.errors import DomainError
from scaleset.domain.validation import arm_path


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


# ---------------------------------------------------------------------- request bodies

MAX_BODY_DEPTH = 64


def _not_json(constant: str) -> Any:
    """Python's json module reads NaN and Infinity; JSON (and ARM) does not."""
    raise ValueError(f"'{constant}' is not a JSON value")


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
        body = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(
            400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {reason}."
        ) from exc
    if not isinstance(body, dict):
        raise ApiError(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: expected a JSON object.",
        )
    if _depth(body) > MAX_BODY_DEPTH:
        raise ApiError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid: it is nested more than {MAX_BODY_DEPTH} levels deep.",
        )
    return body


def _depth(value: Any) -> int:
    """How deeply a parsed JSON value nests (iteratively: the point is not to recurse on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def invalid(what: str, exc: ValidationError) -> ApiError:
    """400 ``InvalidParameter`` for the first thing pydantic refused in ``what`` (an image version, a fault...),
    its location as ARM writes targets."""
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    return ApiError(400, "InvalidParameter", f"Invalid {what}: {message}", arm_path(first["loc"]) or None)
