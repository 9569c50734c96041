"""``scaleset load --scale-set``: reading the scale set's activity log and clock on ``scaleset serve``, and
following the log while the load runs so each request is attributed to its rollout phase."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from azure.core.rest import HttpRequest

from scaleset.cli.connect import Session, admin_answer
from scaleset.cli.errors import CliError, describe
from scaleset.cli.load_http import LoadRunner
from scaleset.cli.load_stats import Recorder
from scaleset.cli.load_timeline import Timeline

POLL_SECONDS = 0.5  # how often the activity log is read while the load runs
COVER_MARGIN = 0.5  # a request is attributed once a log read that started this much after it answered
STALE_SECONDS = 30.0  # ... or after this long with what is known (the server stopped answering)
SERVER_TIMEOUT = 10.0  # each request to scaleset serve
EVENTS_PAGE = 1000
RESOURCE_TYPE = "Microsoft.Compute/virtualMachineScaleSets"

# ---------------------------------------------------------------------------------------------- the activity log


def scale_set_id(subscription: str, group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{RESOURCE_TYPE}/{name}"


def server_get(session: Session, path: str) -> Any:
    """``GET`` one of the emulator's own routes with the CLI's token, bounded by SERVER_TIMEOUT."""
    response = session.compute.send_request(
        HttpRequest("GET", path),
        connection_timeout=SERVER_TIMEOUT,
        read_timeout=SERVER_TIMEOUT,
        retry_total=1,
    )
    return admin_answer(response)


def parse_time(text: str) -> float:
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


@dataclass
class EventFollower:
    """Reads a scale set's activity log page by page, from where it left off (``after``)."""

    session: Session
    set_id: str
    after: int = 0

    def fetch(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            query = urlencode({"scaleSet": self.set_id, "after": self.after, "limit": EVENTS_PAGE}, quote_via=quote)
            page = server_get(self.session, f"/_scaleset/events?{query}")
            rows = page.get("value") if isinstance(page, dict) else None
            if not isinstance(rows, list):
                raise CliError("InvalidResponse", "GET /_scaleset/events did not answer {value, next}")
            out.extend(row for row in rows if isinstance(row, dict))
            if rows:
                self.after = int(page.get("next") or rows[-1].get("seq") or self.after)
            if len(rows) < EVENTS_PAGE:
                return out

    def sample_clock(self) -> tuple[float, float, float]:
        """The server's virtual now, its time scale, and the monotonic instant they were read at."""
        before = time.monotonic()
        answer = server_get(self.session, "/_scaleset/clock")
        after = time.monotonic()
        try:
            now, scale = parse_time(str(answer["now"])), float(answer["timeScale"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError("InvalidResponse", f"GET /_scaleset/clock answered {answer!r}") from exc
        if scale <= 0:
            raise CliError("InvalidResponse", f"the server's time scale is {scale}")
        return now, scale, (before + after) / 2


@dataclass
class Following:
    """The activity log while the load runs: the timeline, and how the reading went."""

    follower: EventFollower
    timeline: Timeline
    errors: int = 0
    last_error: str | None = None

    def apply(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self.timeline.apply(event)

    async def read(self) -> bool:
        try:
            self.apply(await asyncio.to_thread(self.follower.fetch))
        except Exception as exc:
            self.errors += 1
            self.last_error = describe(exc)[0]
            return False
        return True

    async def follow(self, runner: LoadRunner, recorder: Recorder, done: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            started = loop.time() - runner.start
            if await self.read():
                recorder.settle(self.timeline, started - COVER_MARGIN)
            recorder.settle(self.timeline, loop.time() - runner.start - STALE_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), POLL_SECONDS)
        await asyncio.sleep(COVER_MARGIN)  # let the engine record what happened up to the last request
        await self.read()
        recorder.settle(self.timeline, math.inf)
