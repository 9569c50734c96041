"""Real health probes against a local process, feeding the same state machine the simulated backend evaluates.

:func:`probe_once` sends one probe and classifies what came back as an :class:`Answer`:

* **tcp**: a completed TCP handshake is ``HEALTHY``; anything else (refused, timed out) is ``NONE``.
* **http / https, binary** (extension 1.0, and a load-balancer http probe): ``GET request_path``; a ``200`` is
  ``HEALTHY``, any other status ``UNHEALTHY``. A response that is not HTTP at all also reads ``UNHEALTHY``: the
  application answered, just not with a 200.
* **http / https, rich** (extension 2.0): a 2xx whose JSON body is an object with ``"ApplicationHealthState"``
  equal to ``"Healthy"`` or ``"Unhealthy"`` (exact spelling) reads that state; a 2xx without such a body (missing,
  not JSON, another value, larger than :data:`MAX_BODY`, cut short) and every non-2xx read ``INVALID``.
* No answer at all (refused, reset before a status line, TLS handshake failure, timeout) is ``NONE``.

https skips certificate verification: the prober only ever talks to a process on this machine, and an application
with a self-signed certificate is the normal case. The HTTP client is a hand-written HTTP/1.1 ``GET`` with
``Connection: close`` over asyncio streams, so a probe costs one socket and no thread.

:class:`Prober` runs those probes on a schedule and keeps a :class:`HealthTracker` up to date; what the tracker does
with the answers (``numberOfProbes`` in a row, the grace period, Initializing / Healthy / Unhealthy / Unknown) is
:mod:`scaleset.domain.health`'s business, not this module's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from scaleset.domain.health import Answer, HealthState, HealthTracker, ProbeSettings

log = logging.getLogger("scaleset.prober")

PROTOCOLS = ("http", "https", "tcp")
MAX_TIMEOUT = 5.0
"""No probe waits longer than this for its answer, however long the interval."""
MAX_BODY = 16 * 1024
"""Rich health reads at most this much of a response body; a longer body reads ``INVALID``."""
MAX_HEADERS = 100
CLOSE_WAIT = 0.5
"""How long closing a connection that answered may take before it is aborted."""
HISTORY = 64
"""How many recent probes a :class:`Prober` remembers (for diagnostics and tests)."""

_TLS: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One client context for every https probe: TLS, no certificate or host name checks (loopback only)."""
    global _TLS  # noqa: PLW0603 - built once, lazily: creating a context costs a few milliseconds
    if _TLS is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _TLS = context
    return _TLS


def probe_timeout(settings: ProbeSettings) -> float:
    """How long one probe waits: the interval or 5 s, whichever is shorter, less 10% so probes never overlap."""
    return max(0.001, min(settings.interval, MAX_TIMEOUT) * 0.9)


async def probe_once(settings: ProbeSettings, *, host: str, port: int, timeout: float) -> Answer:
    """Probe ``host:port`` once under ``settings``' protocol and rules; never raises for a network failure.

    ``timeout`` bounds connecting, the TLS handshake, the request and the response (closing a connection that
    answered is bounded apart, so a slow close never turns a good answer into a timeout). Raises ``ValueError`` for
    a protocol other than http, https or tcp.
    """
    protocol = settings.protocol.lower()
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown probe protocol {settings.protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    tls = _tls_context() if protocol == "https" else None
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    answer = Answer.NONE
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=tls, server_hostname="" if tls is not None else None
            )
            if protocol == "tcp":
                answer = Answer.HEALTHY
            else:
                writer.write(_request(settings.request_path, host, port))
                await writer.drain()
                answer = await _read_answer(reader, rich=settings.rich)
    except (TimeoutError, OSError, EOFError):
        # Refused, reset, unreachable, TLS handshake failure, too slow: the application did not answer.
        answer = Answer.NONE
    finally:
        if writer is not None:
            await _close(writer, graceful=answer is not Answer.NONE, reader=None if protocol == "tcp" else reader)
    return answer


def _request(path: str | None, host: str, port: int) -> bytes:
    target = path or "/"
    if not target.startswith("/"):
        target = "/" + target
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {authority}\r\n"
        "User-Agent: scaleset-prober\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("latin-1")


async def _close(writer: asyncio.StreamWriter, *, graceful: bool, reader: asyncio.StreamReader | None = None) -> None:
    """Close a probe connection: politely after an answer (first reading the rest of a small response, so the
    application is not reset mid-write), within :data:`CLOSE_WAIT`; at once after a failure or a cancellation, so a
    peer that never answered (or never acknowledges TLS close_notify) cannot hold the socket."""
    closed = False
    try:
        if graceful:
            async with asyncio.timeout(CLOSE_WAIT):
                if reader is not None:
                    await _consume(reader)
                writer.close()
                await writer.wait_closed()
            closed = True
    except (OSError, TimeoutError):
        pass
    finally:
        if not closed:
            writer.transport.abort()


async def _read_answer(reader: asyncio.StreamReader, *, rich: bool) -> Answer:
    """Classify one HTTP response. An answer that is not HTTP is UNHEALTHY (binary) or INVALID (rich)."""
    garbled = Answer.INVALID if rich else Answer.UNHEALTHY
    try:
        while True:
            line = await reader.readline()
            if not line:
                return Answer.NONE  # closed before answering
            status = _status(line)
            if status is None:
                return garbled
            if 100 <= status < 200 and status != 101:  # an interim response: its headers, then the real one
                await _headers(reader)
                continue
            break
    except (ValueError, asyncio.LimitOverrunError):
        return garbled
    if not rich:  # the status is the answer; the rest is read (bounded) when the connection closes
        return Answer.HEALTHY if status == 200 else Answer.UNHEALTHY
    if not 200 <= status < 300:
        return Answer.INVALID
    try:
        body = await _body(reader, await _headers(reader))
    except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        return Answer.INVALID  # a 2xx whose body could not be read whole has no valid state
    return _rich_state(body)


async def _consume(reader: asyncio.StreamReader) -> None:
    """Read what is left of a response whose status was enough: its headers, and its body when a small
    Content-Length frames it. Never waits for an end of stream that might not come."""
    with contextlib.suppress(ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        length = int((await _headers(reader)).get("content-length", "-1"))
        if 0 <= length <= MAX_BODY:
            await reader.readexactly(length)


def _status(line: bytes) -> int | None:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1])


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ValueError("malformed header line")
        headers[name.strip().lower()] = value.strip()
    raise ValueError("too many headers")


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """At most :data:`MAX_BODY` bytes of the body (``ValueError`` beyond), framed as the headers say."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int((await reader.readline()).split(b";", 1)[0].strip() or b"x", 16)
            if size == 0:
                return body
            if len(body) + size > MAX_BODY:
                raise ValueError("body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)  # the CRLF after each chunk
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > MAX_BODY:
            raise ValueError("body too large")
        return await reader.readexactly(length)
    body = await reader.read(MAX_BODY + 1)
    while len(body) <= MAX_BODY and (more := await reader.read(MAX_BODY + 1 - len(body))):
        body += more
    if len(body) > MAX_BODY:
        raise ValueError("body too large")
    return body


def _rich_state(body: bytes) -> Answer:
    try:
        document = json.loads(body)
    except ValueError:
        return Answer.INVALID
    state = document.get("ApplicationHealthState") if isinstance(document, dict) else None
    if state == "Healthy":
        return Answer.HEALTHY
    if state == "Unhealthy":
        return Answer.UNHEALTHY
    return Answer.INVALID


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """One probe: when it was sent (by the prober's clock) and what it got."""

    at: float
    answer: Answer


class Prober:
    """Probes one instance every ``settings.interval`` seconds and tracks its health.

    ``run()`` sends the first probe at once, then one per interval (wall-clock seconds, aligned to when the run or
    the last :meth:`restart` began; a tick missed because the event loop was busy is skipped, not made up). Each
    answer goes to a :class:`HealthTracker` stamped with ``clock()`` read when the probe was sent, so a probe sent
    before the grace period ends counts before it, whenever its answer arrives. Between probes the prober wakes at
    the end of the grace period and calls ``tracker.expire`` so an instance that never settled turns Unknown (rich
    http/https) or Unhealthy (everything else) on time, not one interval late.

    ``on_change(state)`` is called whenever the state changes (including back to Initializing on ``restart``); it
    runs on the event loop and should be quick. A failing probe never ends ``run`` (it reads as no answer and is
    logged at debug level); only cancellation does. Use one ``run()`` per prober, on the loop that calls
    :meth:`restart`.
    """

    def __init__(
        self,
        settings: ProbeSettings,
        *,
        host: str,
        port: int,
        clock: Callable[[], float],
        started_at: float | None = None,
        on_change: Callable[[HealthState], None] | None = None,
    ) -> None:
        if settings.protocol.lower() not in PROTOCOLS:
            raise ValueError(f"unknown probe protocol {settings.protocol!r}; expected one of {', '.join(PROTOCOLS)}")
        if settings.interval <= 0:
            raise ValueError("the probe interval must be positive")
        self.settings = settings
        self.host = host
        self.port = port
        self.timeout = probe_timeout(settings)
        self._clock = clock
        self._on_change = on_change
        self._tracker = HealthTracker(settings, started_at=clock() if started_at is None else started_at)
        self._history: deque[ProbeRecord] = deque(maxlen=HISTORY)
        self._probes = 0
        self._generation = 0
        self._wake = asyncio.Event()

    @property
    def state(self) -> HealthState:
        return self._tracker.state

    @property
    def since(self) -> float:
        """When (by the prober's clock) the current state began."""
        return self._tracker.since

    @property
    def started_at(self) -> float:
        return self._tracker.started_at

    @property
    def last_answer(self) -> Answer | None:
        """The answer to the latest probe since the process (re)started; None before the first one."""
        return self._history[-1].answer if self._history else None

    @property
    def probes(self) -> int:
        """How many probes have been answered (or given up on) since the process (re)started."""
        return self._probes

    @property
    def history(self) -> tuple[ProbeRecord, ...]:
        """The latest probes (at most :data:`HISTORY`), oldest first, since the process (re)started."""
        return tuple(self._history)

    def restart(self, *, started_at: float) -> None:
        """A new process: start over from Initializing at ``started_at`` and probe it at once.

        A probe in flight for the old process is discarded when it returns.
        """
        before = self._tracker.state
        self._tracker = HealthTracker(self.settings, started_at=started_at)
        self._history.clear()
        self._probes = 0
        self._generation += 1
        self._wake.set()
        self._notify(before)

    async def run(self) -> None:
        """Probe until cancelled. Never returns otherwise and never raises for a probe failure."""
        loop = asyncio.get_running_loop()
        while True:
            generation = self._generation
            self._wake.clear()
            anchor, tick = loop.time(), 0
            while generation == self._generation:
                at = self._clock()
                answer = await self._probe()
                if generation != self._generation:
                    break  # restarted while probing: this answer belongs to the old process
                self._observe(answer, at)
                tick = max(tick + 1, math.floor((loop.time() - anchor) / self.settings.interval) + 1)
                await self._sleep_until(anchor + tick * self.settings.interval, generation)

    async def _probe(self) -> Answer:
        try:
            return await probe_once(self.settings, host=self.host, port=self.port, timeout=self.timeout)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("probe of %s:%s failed", self.host, self.port, exc_info=True)
            return Answer.NONE

    def _observe(self, answer: Answer, at: float) -> None:
        before = self._tracker.state
        self._tracker.observe(answer, at)
        self._history.append(ProbeRecord(at, answer))
        self._probes += 1
        self._notify(before)

    async def _sleep_until(self, deadline: float, generation: int) -> None:
        """Sleep until the loop time ``deadline``, waking at the end of the grace period to apply it."""
        loop = asyncio.get_running_loop()
        while generation == self._generation:
            before = self._tracker.state
            self._tracker.expire(self._clock())
            self._notify(before)
            delay = deadline - loop.time()
            if delay <= 0:
                return
            if self._tracker.state is HealthState.INITIALIZING:
                delay = min(delay, max(0.0, self._tracker.grace_end - self._clock()) + 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _notify(self, before: HealthState) -> None:
        after = self._tracker.state
        if after is before or self._on_change is None:
            return
        try:
            self._on_change(after)
        except Exception:
            log.exception("health change callback failed for %s:%s", self.host, self.port)
