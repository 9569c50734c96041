"""``GET /_scaleset/events``: the engine's activity log, for tools that follow what the engine decided and when.

``?scaleSet=`` an ARM id of a scale set (any case; the log keys it in lower case), or none for every scale set;
``?after=`` a sequence number (the ``next`` of the previous page; default 0, the start); ``?limit=`` at most that
many events (1 to 1000; default 1000). The answer is ``{"value": [...], "next": seq}``: each event as the engine
recorded it (``time`` in virtual epoch seconds, ``scaleSet``, ``kind``, ...) with its ``seq`` and ``timeIso`` (the
time in ARM's spelling); ``next`` is the last sequence number returned, or ``after`` when there is nothing new, so
``after=next`` polls without gaps or repeats. Events of a deleted scale set stay in the log.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scaleset.api.http import ApiError, json_response
from scaleset.api.runtime import Runtime
from scaleset.engine.clock import render_time

MAX_LIMIT = 1000


def _whole(request: Request, name: str, *, default: int, low: int, high: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ApiError(400, "InvalidParameter", f"'{name}' must be a whole number {bounds}; got '{text}'.", name)
    return value


def _row(seq: int, event: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"seq": seq, **event}
    when = event.get("time")
    if isinstance(when, int | float) and not isinstance(when, bool):
        row["timeIso"] = render_time(float(when))
    return row


async def list_events(request: Request, runtime: Runtime) -> Response:
    """``GET /_scaleset/events?scaleSet=&after=&limit=``."""
    after = _whole(request, "after", default=0, low=0)
    limit = _whole(request, "limit", default=MAX_LIMIT, low=1, high=MAX_LIMIT)
    scale_set = (request.query_params.get("scaleSet") or "").strip().rstrip("/")
    set_id = scale_set.lower() if scale_set else None
    found = runtime.store.list_events(set_id=set_id, after_seq=after, limit=limit)
    value = [_row(seq, dict(event)) for seq, event in found]
    return json_response(request, {"value": value, "next": found[-1][0] if found else after})
