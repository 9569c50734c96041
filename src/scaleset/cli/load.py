"""``scaleset load``: bounded HTTP traffic at a fixed rate against a service on this machine, measured per second
and, with ``--scale-set``, per rollout batch.

* **Loopback only.** The target's host must resolve to a loopback address (127.0.0.0/8, ::1; ``localhost``), and
  the connections go to the addresses checked, so a name that resolves elsewhere later cannot redirect the traffic.
  Anything else is refused (exit 2) before a request is sent.
* **Bounded.** ``--rps`` at most 5000, ``--duration`` at most an hour, exactly ``floor(rps * duration)`` requests,
  at most ``--connections`` in flight, each bounded by ``--timeout``.
* **Open loop.** Request ``i`` is due at ``start + i / rps`` and is sent then whatever the earlier ones are doing
  (latency counts from that due time). A request that is due while every connection is busy is not queued: it is a
  failure of kind ``saturated``. Requests are HTTP/1.1 keep-alive ``GET``s over asyncio streams; ``https`` is not
  verified (the target is this machine). A request sent on a kept-alive connection that the server had already
  closed (no byte of an answer) is sent again once on a new connection, as HTTP clients do for idempotent requests.
* **Failures** by kind: ``refused`` and ``connect`` (connecting failed), ``reset`` (the connection broke before a
  whole answer), ``timeout``, ``http_<status>`` (an answer outside 2xx), ``protocol`` (not HTTP), ``saturated``
  (and ``error`` for anything else).
  Latency percentiles are over the requests that got an answer (any status).
* **Per batch.** With ``--scale-set`` the command follows the scale set's activity log on the ``scaleset serve``
  it finds as the other client commands do (``GET /_scaleset/events``, with the bearer token) and attributes each
  request to what the rollout was doing at its send time: a batch (number and instance ids), between batches,
  rolling back, before or after the rollout. The server's clock may run faster than the wall clock: its reading and
  ``timeScale`` are sampled at the start (``GET /_scaleset/clock``) and a send time maps to
  ``virtual_now + (wall - wall_start) * timeScale``. Attribution waits until the log covers a request's send time.

Exit 0 when the run completed, whatever failed (the report says); 1 with ``--max-failures N`` when more than N
requests failed, or when the scale set's server cannot be used; 2 for invalid usage, a non-loopback target included;
3 when the scale set is not found.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import ipaddress
import json
import math
import re
import socket
import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

from azure.core.rest import HttpRequest
from rich.console import Console
from rich.table import Table

from scaleset import __version__
from scaleset.cli.connect import SUBSCRIPTION, Session, default_endpoint, local_target
from scaleset.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, UsageError, describe
from scaleset.cli.output import AZ_BOX
from scaleset.cli.registry import SubParsers
from scaleset.cli.runner import _quiet_sdk_logging

MAX_RPS = 5000.0
MAX_DURATION = 3600.0
MAX_CONNECTIONS = 512
MAX_TIMEOUT = 300.0
DEFAULT_CONNECTIONS = 32
DEFAULT_TIMEOUT = 5.0
RESOLVE_SECONDS = 5.0  # a name lookup that takes longer is refused
POLL_SECONDS = 0.5  # how often the activity log is read while the load runs
COVER_MARGIN = 0.5  # a request is attributed once a log read that started this much after it answered
STALE_SECONDS = 30.0  # ... or after this long with what is known (the server stopped answering)
SERVER_TIMEOUT = 10.0  # each request to scaleset serve
EVENTS_PAGE = 1000
MAX_HEADERS = 100
READ_CHUNK = 65536

BEFORE, BETWEEN, ROLLBACK, AFTER, BATCH = "before rollout", "between batches", "rollback", "after rollout", "batch"
RESOURCE_TYPE = "Microsoft.Compute/virtualMachineScaleSets"

# ---------------------------------------------------------------------------------------------- argument values


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got '{text}'") from None
    if not 0 < value <= MAX_RPS:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most {MAX_RPS:g} requests per second")
    return value


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$", re.IGNORECASE)
_ISO = re.compile(r"^PT(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$", re.IGNORECASE)
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds_value(text: str) -> float:
    """Seconds: ``30``, ``1.5``, ``500ms``, ``30s``, ``2m``, ``1h`` or ISO 8601 (``PT2M``)."""
    stripped = text.strip()
    plain = _DURATION.match(stripped)
    iso = _ISO.match(stripped)
    if plain is not None:
        unit = plain.group(2).lower() if plain.group(2) else None
        return float(plain.group(1)) * _UNIT[unit]
    if iso is not None:
        hours, minutes, secs = (float(part) if part else 0.0 for part in iso.groups())
        return hours * 3600 + minutes * 60 + secs
    raise argparse.ArgumentTypeError(f"expected seconds (30, 2m, 1h or PT30S), got '{text}'")


def _bounded_seconds(text: str, high: float, what: str) -> float:
    value = seconds_value(text)
    if not 0 < value <= high:
        raise argparse.ArgumentTypeError(f"expected {what} more than 0 and at most {high:g} seconds, got '{text}'")
    return value


def duration(text: str) -> float:
    return _bounded_seconds(text, MAX_DURATION, "a duration")


def timeout(text: str) -> float:
    return _bounded_seconds(text, MAX_TIMEOUT, "a timeout")


def connections(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of connections, got '{text}'") from None
    if not 1 <= value <= MAX_CONNECTIONS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_CONNECTIONS} connections, got {value}")
    return value


def failures_allowed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def planned_requests(rps: float, seconds: float) -> int:
    """``floor(rps * duration)``, without a float's 0.9999... losing the last request."""
    return math.floor(rps * seconds + 1e-9)


# ---------------------------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class HttpTarget:
    """Where the requests go: the URL as given, and the loopback addresses it was checked to resolve to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def request_bytes(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        authority = host if self.port == default else f"{host}:{self.port}"
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {authority}",
            f"User-Agent: scaleset-load/{__version__}",
            "Accept: */*",
            "Connection: keep-alive",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class NotLoopbackError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__("NonLoopbackTarget", message, exit_code=EXIT_USAGE)


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _lookup(host: str, port: int) -> list[str]:
    """The addresses of a name, bounded by RESOLVE_SECONDS (a daemon thread: a hung resolver never holds us)."""
    found: list[list[str]] = []
    failed: list[str] = []

    def work() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append([str(info[4][0]) for info in infos])
        except OSError as exc:
            failed.append(str(exc))

    worker = threading.Thread(target=work, name="scaleset-load-resolve", daemon=True)
    worker.start()
    worker.join(RESOLVE_SECONDS)
    if found:
        return found[0]
    reason = failed[0] if failed else f"no answer within {RESOLVE_SECONDS:g} s"
    raise NotLoopbackError(
        f"--target host '{host}' could not be resolved ({reason}); scaleset load sends to this machine only"
    )


def check_target(url: str) -> HttpTarget:
    """The target, if its host is this machine; else NotLoopbackError (exit 2) before anything is sent."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(f"--target must be an http:// or https:// URL, got '{url}'")
    host = (parts.hostname or "").lower()
    if not host:
        raise UsageError(f"--target has no host: '{url}'")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--target has an invalid port: '{url}'") from None
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = _lookup(host, port)
    outside = [a for a in addresses if not is_loopback(a)]
    if not addresses or outside:
        where = f" ({', '.join(sorted(set(outside)))})" if outside and outside != [host] else ""
        raise NotLoopbackError(
            f"--target host '{host}'{where} is not a loopback address; scaleset load sends traffic to this machine "
            "only (127.0.0.0/8, ::1, localhost)"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpTarget(url.strip(), scheme, host, port, path, tuple(dict.fromkeys(addresses)))


# ---------------------------------------------------------------------------------------------- figures


class Histogram:
    """Latencies in logarithmic buckets 1% wide: constant memory per bucket, percentiles within about 1%."""

    __slots__ = ("counts", "high", "low", "total")
    _FACTOR = 1.0 / math.log1p(0.01)
    _FLOOR = 1e-6

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.low = math.inf
        self.high = 0.0

    def add(self, seconds: float) -> None:
        value = max(seconds, self._FLOOR)
        index = round(math.log(value / self._FLOOR) * self._FACTOR)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.low, self.high = min(self.low, value), max(self.high, value)

    def percentile(self, p: float) -> float | None:
        """The nearest-rank percentile in seconds (None when empty)."""
        if self.total == 0:
            return None
        rank = max(1, math.ceil(p / 100.0 * self.total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                value = self._FLOOR * math.exp(index / self._FACTOR)
                return min(max(value, self.low), self.high)
        return self.high


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


@dataclass
class Bucket:
    """Requests, failures by kind, and latency of the requests that got an answer."""

    requests: int = 0
    failures: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)

    def add(self, latency: float | None, kind: str | None) -> None:
        self.requests += 1
        if kind is not None:
            self.failures += 1
            self.kinds[kind] += 1
        if latency is not None:
            self.latency.add(latency)

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "errorRate": round(self.failures / self.requests, 6) if self.requests else 0.0,
            "failureKinds": dict(sorted(self.kinds.items())),
            "p50Ms": _ms(self.latency.percentile(50)),
            "p95Ms": _ms(self.latency.percentile(95)),
            "p99Ms": _ms(self.latency.percentile(99)),
        }


# ---------------------------------------------------------------------------------------------- the rollout timeline


@dataclass
class Span:
    start: float
    end: float | None = None
    instance_ids: list[str] = field(default_factory=list)

    def holds(self, when: float) -> bool:
        return self.start <= when and (self.end is None or when < self.end)


@dataclass
class RolloutSpan:
    rollout_id: str
    start: float
    end: float | None = None
    outcome: str | None = None
    batches: dict[int, Span] = field(default_factory=dict)
    rollback: Span | None = None

    def close(self, when: float, outcome: str | None = None) -> None:
        for span in self.batches.values():
            if span.end is None:
                span.end = when
        if self.rollback is not None and self.rollback.end is None:
            self.rollback.end = when
        if self.end is None:
            self.end = when
        if outcome is not None:
            self.outcome = outcome


Key = tuple[str, str | None, int | None]  # (bucket, rollout id, batch number)

_OUTCOMES = {"rolloutCompleted": "Completed", "rolloutCancelled": "Cancelled", "rolloutFaulted": "Faulted"}


class Timeline:
    """What a scale set's rollouts did and when (virtual time), from its activity-log events in order."""

    def __init__(self) -> None:
        self.rollouts: list[RolloutSpan] = []
        self.since: float | None = None  # rollouts over by then are not this run's

    def _find(self, event: dict[str, Any]) -> RolloutSpan | None:
        rollout_id = event.get("rolloutId")
        if rollout_id is not None:
            for rollout in reversed(self.rollouts):
                if rollout.rollout_id == rollout_id:
                    return rollout
        return self.rollouts[-1] if self.rollouts else None

    def apply(self, event: dict[str, Any]) -> None:
        kind, when = event.get("kind"), event.get("time")
        if not isinstance(when, int | float) or isinstance(when, bool):
            return
        when = float(when)
        if kind == "rolloutStarted":
            for earlier in self.rollouts:
                if earlier.end is None:  # superseded: closed where the new one starts
                    earlier.close(when)
            rollout_id = str(event.get("rolloutId") or f"rollout-{len(self.rollouts) + 1}")
            self.rollouts.append(RolloutSpan(rollout_id, when))
            return
        rollout = self._find(event)
        if rollout is None:
            return
        ids = [str(i) for i in event.get("instanceIds") or []]
        if kind == "batchStarted" and isinstance(event.get("batch"), int):
            rollout.batches[int(event["batch"])] = Span(when, None, ids)
        elif kind == "batchCompleted" and isinstance(event.get("batch"), int):
            span = rollout.batches.get(int(event["batch"]))
            if span is not None and span.end is None:
                span.end = when
        elif kind in _OUTCOMES:
            rollout.close(when, _OUTCOMES[str(kind)])
        elif kind == "rollbackStarted":
            rollout.rollback, rollout.end = Span(when, None, ids), None
        elif kind == "rollbackCompleted":
            rollout.close(when)
        elif kind in ("scaleSetDeleting", "scaleSetDeleted"):
            for each in self.rollouts:
                if each.end is None:
                    each.close(when)

    def relevant(self) -> list[RolloutSpan]:
        return [r for r in self.rollouts if self.since is None or r.end is None or r.end > self.since]

    def locate(self, when: float) -> Key:
        current: RolloutSpan | None = None
        for rollout in self.relevant():
            if rollout.start <= when:
                current = rollout
        if current is None:
            return (BEFORE, None, None)
        if current.end is not None and when >= current.end:
            return (AFTER, None, None)
        for number, span in current.batches.items():
            if span.holds(when):
                return (BATCH, current.rollout_id, number)
        if current.rollback is not None and current.rollback.holds(when):
            return (ROLLBACK, current.rollout_id, None)
        return (BETWEEN, current.rollout_id, None)


# ---------------------------------------------------------------------------------------------- recording


@dataclass(frozen=True)
class ClockMap:
    """Run offsets (wall seconds since the load started) to the server's virtual time."""

    virtual_start: float  # the server's clock when the load started
    scale: float

    def virtual(self, offset: float) -> float:
        return self.virtual_start + offset * self.scale

    def offset(self, virtual: float) -> float:
        return (virtual - self.virtual_start) / self.scale


class Recorder:
    """Every outcome into the totals and its wall second at once; into its rollout phase once the activity log
    covers its send time (``settle``)."""

    def __init__(self, clock: ClockMap | None) -> None:
        self.clock = clock
        self.totals = Bucket()
        self.seconds: dict[int, Bucket] = {}
        self.phases: dict[Key, Bucket] = {}
        self.pending: list[tuple[float, float | None, str | None]] = []
        self.max_lag = 0.0

    def record(self, offset: float, latency: float | None, kind: str | None) -> None:
        self.totals.add(latency, kind)
        second = max(0, int(offset))
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = Bucket()
        bucket.add(latency, kind)
        if self.clock is not None:
            self.pending.append((offset, latency, kind))

    def settle(self, timeline: Timeline, horizon: float) -> None:
        """Attribute the outcomes sent before ``horizon`` (a run offset) to what the rollout was doing then."""
        if self.clock is None or not self.pending:
            return
        keep: list[tuple[float, float | None, str | None]] = []
        for item in self.pending:
            offset, latency, kind = item
            if offset >= horizon:
                keep.append(item)
                continue
            key = timeline.locate(self.clock.virtual(offset))
            bucket = self.phases.get(key)
            if bucket is None:
                bucket = self.phases[key] = Bucket()
            bucket.add(latency, kind)
        self.pending = keep


# ---------------------------------------------------------------------------------------------- the HTTP client


class ClosedError(Exception):
    """The server closed the connection before a whole answer."""

    def __init__(self, answered: bool) -> None:
        super().__init__("the server closed the connection")
        self.answered = answered


class ProtocolError(Exception):
    """The answer is not HTTP/1.x."""


class ConnectError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(eq=False)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _discard(reader: asyncio.StreamReader, size: int) -> None:
    left = size
    while left > 0:
        chunk = await reader.read(min(left, READ_CHUNK))
        if not chunk:
            raise ClosedError(answered=True)
        left -= len(chunk)


async def _read_line(reader: asyncio.StreamReader, *, answered: bool) -> bytes:
    try:
        line = await reader.readline()
    except ValueError as exc:  # longer than the stream's limit
        raise ProtocolError("a line longer than 64 KiB") from exc
    if not line.endswith(b"\n"):
        raise ClosedError(answered=answered or bool(line))
    return line


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await _read_line(reader, answered=True)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError("a bad chunk size") from exc
        if size == 0:
            for _ in range(MAX_HEADERS):  # trailers, up to the empty line
                if (await _read_line(reader, answered=True)).strip() == b"":
                    return
            raise ProtocolError("too many trailers")
        await _discard(reader, size + 2)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer whole; its status and whether the connection can carry another request."""
    while True:
        status_line = await _read_line(reader, answered=False)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError("not an HTTP/1.x status line")
        try:
            status = int(parts[1])
        except ValueError as exc:
            raise ProtocolError("a bad status code") from exc
        headers: dict[bytes, bytes] = {}
        for _ in range(MAX_HEADERS):
            line = await _read_line(reader, answered=True)
            if line.strip() == b"":
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        else:
            raise ProtocolError("too many headers")
        if not 100 <= status < 200:
            break
    version, connection = parts[0], headers.get(b"connection", b"")
    keep = (version == b"HTTP/1.1" and b"close" not in connection) or (
        version == b"HTTP/1.0" and b"keep-alive" in connection
    )
    if status in (204, 304):
        return status, keep
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        await _read_chunked(reader)
    elif b"content-length" in headers:
        try:
            size = int(headers[b"content-length"])
        except ValueError as exc:
            raise ProtocolError("a bad Content-Length") from exc
        await _discard(reader, size)
    else:  # the body lasts until the server closes
        while await reader.read(READ_CHUNK):
            pass
        keep = False
    return status, keep


@dataclass(frozen=True)
class LoadPlan:
    target: HttpTarget
    rps: float
    duration: float
    timeout: float
    connections: int

    @property
    def total(self) -> int:
        return planned_requests(self.rps, self.duration)


class LoadRunner:
    """Open-loop scheduling over a pool of keep-alive connections; every outcome goes to the recorder."""

    def __init__(self, plan: LoadPlan, recorder: Recorder) -> None:
        self.plan = plan
        self.recorder = recorder
        self.request = plan.target.request_bytes()
        self.idle: list[Connection] = []
        self.every: set[Connection] = set()
        self.in_flight = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.start = 0.0
        self.last_sent = 0.0
        self.finished = 0.0
        self._ssl: ssl.SSLContext | None = None
        self._address = 0  # the index of the address that last answered: tried first
        if plan.target.tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # loopback only, by construction
            self._ssl = context

    async def _connect(self, address: str) -> Connection:
        target = self.plan.target
        if self._ssl is not None:
            reader, writer = await asyncio.open_connection(
                address, target.port, ssl=self._ssl, server_hostname=target.host
            )
        else:
            reader, writer = await asyncio.open_connection(address, target.port)
        return Connection(reader, writer)

    async def _open(self) -> Connection:
        """A new connection: to the address that answered last, else the others in turn (``localhost`` may
        resolve to ::1 and 127.0.0.1 while the server listens on one)."""
        addresses = self.plan.target.addresses
        failure: OSError | None = None
        for step in range(len(addresses)):
            index = (self._address + step) % len(addresses)
            try:
                connection = await self._connect(addresses[index])
            except OSError as exc:  # refused, unreachable, TLS handshake, out of ports, ...
                failure = exc
                continue
            self._address = index
            self.every.add(connection)
            return connection
        raise ConnectError("refused" if isinstance(failure, ConnectionRefusedError) else "connect") from failure

    def _drop(self, connection: Connection) -> None:
        connection.close()
        self.every.discard(connection)

    async def _exchange(self) -> int:
        for attempt in range(2):
            reused = bool(self.idle)
            connection = self.idle.pop() if reused else await self._open()
            try:
                connection.writer.write(self.request)
                await connection.writer.drain()
                status, keep = await read_response(connection.reader)
            except (ClosedError, ConnectionError) as exc:
                self._drop(connection)
                stale = reused and attempt == 0 and not (isinstance(exc, ClosedError) and exc.answered)
                if stale:
                    continue  # the server had closed this kept-alive connection: once more on a new one
                raise
            except BaseException:
                self._drop(connection)
                raise
            if keep:
                self.idle.append(connection)
            else:
                self._drop(connection)
            return status
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _one(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        latency: float | None = None
        kind: str | None
        try:
            async with asyncio.timeout(self.plan.timeout):
                status = await self._exchange()
            latency = loop.time() - due
            kind = None if 200 <= status < 300 else f"http_{status}"
        except TimeoutError:
            kind = "timeout"
        except ConnectError as exc:
            kind = exc.kind
        except ProtocolError:
            kind = "protocol"
        except (ClosedError, OSError, asyncio.IncompleteReadError):
            kind = "reset"
        except Exception:  # anything else still counts, as a failure of its own kind
            kind = "error"
        finally:
            self.in_flight -= 1
        self.recorder.record(due - self.start, latency, kind)

    async def run(self, start: float | None = None) -> None:
        """Send the plan's requests from ``start`` (a ``loop.time()``; default now) and wait for the last."""
        loop = asyncio.get_running_loop()
        total, rps = self.plan.total, self.plan.rps
        self.start = loop.time() if start is None else start
        sent = 0
        try:
            while sent < total:
                now = loop.time()
                due_now = min(total, math.floor((now - self.start) * rps) + 1)
                while sent < due_now:
                    due = self.start + sent / rps
                    self.recorder.max_lag = max(self.recorder.max_lag, now - due)
                    if self.in_flight >= self.plan.connections:
                        self.recorder.record(due - self.start, None, "saturated")
                    else:
                        self.in_flight += 1
                        task = loop.create_task(self._one(due))
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)
                    sent += 1
                    self.last_sent = now
                if sent < total:
                    await asyncio.sleep(max(0.0, self.start + sent / rps - loop.time()))
            if self.tasks:  # each is bounded by --timeout
                await asyncio.wait(set(self.tasks))
        finally:
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.wait(set(self.tasks), timeout=1.0)
            self.finished = loop.time()
            await self.close()

    async def close(self) -> None:
        writers = [c.writer for c in self.every]
        for connection in list(self.every):
            connection.close()
        self.every.clear()
        self.idle.clear()
        if writers:
            closing = [asyncio.ensure_future(w.wait_closed()) for w in writers]
            _done, late = await asyncio.wait(closing, timeout=1.0)
            for task in late:
                task.cancel()
            for task in closing:
                if task.done() and not task.cancelled():
                    task.exception()  # read, so a reset while closing is not reported as never retrieved


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
    text = response.text()
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("code")), str(error.get("message"))
        else:
            code, message = f"HTTP{response.status_code}", text.strip() or (response.reason or "")
        raise CliError(code, message, exit_code=3 if response.status_code == 404 else EXIT_FAILED)
    return data


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


# ---------------------------------------------------------------------------------------------- the report


def _phase_label(key: Key) -> str:
    return f"batch {key[2]}" if key[0] == BATCH else key[0]


def phase_rows(recorder: Recorder, timeline: Timeline, clock: ClockMap) -> list[dict[str, Any]]:
    """One row per batch of the rollouts that overlap the run, and the phases around them that saw requests."""
    order: list[tuple[Key, Span | None, RolloutSpan | None]] = [((BEFORE, None, None), None, None)]
    for each in timeline.relevant():
        for number in sorted(each.batches):
            order.append(((BATCH, each.rollout_id, number), each.batches[number], each))
        order.append(((BETWEEN, each.rollout_id, None), None, each))
        if each.rollback is not None:
            order.append(((ROLLBACK, each.rollout_id, None), each.rollback, each))
    order.append(((AFTER, None, None), None, None))
    listed = {key for key, _, _ in order}
    order += [(key, None, None) for key in recorder.phases if key not in listed]  # never drop a request

    rows: list[dict[str, Any]] = []
    for key, span, rollout in order:
        bucket = recorder.phases.get(key)
        if span is None and (bucket is None or bucket.requests == 0):
            continue
        row: dict[str, Any] = {
            "phase": _phase_label(key),
            "rolloutId": key[1],
            "batch": key[2],
            "instanceIds": list(span.instance_ids) if span is not None else [],
            "outcome": rollout.outcome if rollout is not None else None,
            "start": _iso(span.start) if span is not None else None,
            "end": _iso(span.end) if span is not None and span.end is not None else None,
            "fromSecond": round(clock.offset(span.start), 3) if span is not None else None,
            "toSecond": round(clock.offset(span.end), 3) if span is not None and span.end is not None else None,
        }
        row.update((bucket or Bucket()).figures())
        rows.append(row)
    return rows


def _iso(when: float) -> str:
    stamp = datetime.fromtimestamp(when, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def build_report(
    plan: LoadPlan,
    recorder: Recorder,
    runner: LoadRunner,
    *,
    scale_set: str | None = None,
    following: Following | None = None,
) -> dict[str, Any]:
    elapsed = max(runner.finished - runner.start, 1e-9)
    sending = max(runner.last_sent - runner.start, 0.0) + 1.0 / plan.rps  # the window the requests went out in
    totals = recorder.totals.figures()
    totals.update(
        {
            "succeeded": recorder.totals.requests - recorder.totals.failures,
            "elapsedSeconds": round(elapsed, 3),
            "achievedRps": round(recorder.totals.requests / sending, 3),
            "maxSchedulerLagMs": _ms(recorder.max_lag),
        }
    )
    report: dict[str, Any] = {
        "target": plan.target.url,
        "rps": plan.rps,
        "durationSeconds": plan.duration,
        "timeoutSeconds": plan.timeout,
        "connections": plan.connections,
        "plannedRequests": plan.total,
        "totals": totals,
        "perSecond": [{"second": s, **recorder.seconds[s].figures()} for s in sorted(recorder.seconds)],
    }
    if scale_set is not None and following is not None and recorder.clock is not None:
        report["scaleSet"] = scale_set
        report["clock"] = {"start": _iso(recorder.clock.virtual_start), "timeScale": recorder.clock.scale}
        report["events"] = {"complete": following.errors == 0, "readErrors": following.errors}
        report["batches"] = phase_rows(recorder, following.timeline, recorder.clock)
    return report


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kinds.items()) or "-"


def _table(columns: list[str], rows: list[list[str]], right: int) -> Table:
    table = Table(box=AZ_BOX, show_edge=False, pad_edge=False, header_style="")
    for position, column in enumerate(columns):
        table.add_column(column, no_wrap=True, justify="right" if position >= right else "left")
    for row in rows:
        table.add_row(*row)
    return table


def write_tables(report: dict[str, Any], stream: TextIO) -> None:
    """The report as rich tables (no frame, as the other table outputs), the same figures as the JSON."""
    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, width=4096, soft_wrap=False, force_terminal=False)
    totals = report["totals"]
    console.print(
        f"load: {report['target']}  {report['rps']:g} req/s for {report['durationSeconds']:g} s  "
        f"({report['connections']} connections, timeout {report['timeoutSeconds']:g} s)"
    )
    console.print(
        f"requests {totals['requests']} (planned {report['plannedRequests']}), failed {totals['failures']} "
        f"({totals['errorRate'] * 100:.2f}%), p50 {_num(totals['p50Ms'])} ms, p95 {_num(totals['p95Ms'])} ms, "
        f"p99 {_num(totals['p99Ms'])} ms, {totals['achievedRps']:g} req/s over {totals['elapsedSeconds']:g} s"
    )
    console.print(f"failures: {_kinds(totals['failureKinds'])}")
    console.print()
    rows = [
        [
            str(s["second"]),
            str(s["requests"]),
            str(s["failures"]),
            _num(s["p50Ms"]),
            _num(s["p95Ms"]),
            _num(s["p99Ms"]),
            _kinds(s["failureKinds"]),
        ]
        for s in report["perSecond"]
    ]
    console.print(_table(["Second", "Requests", "Failed", "p50 ms", "p95 ms", "p99 ms", "Failures"], rows, 1))
    if "batches" in report:
        console.print()
        console.print(f"per rollout phase: {report['scaleSet']} (server time x{report['clock']['timeScale']:g})")
        rows = [
            [
                b["phase"],
                ",".join(b["instanceIds"]) or "-",
                _num(b["fromSecond"], 2),
                _num(b["toSecond"], 2),
                str(b["requests"]),
                str(b["failures"]),
                f"{b['errorRate'] * 100:.2f}%",
                _num(b["p99Ms"]),
                _kinds(b["failureKinds"]),
            ]
            for b in report["batches"]
        ]
        console.print(
            _table(
                ["Phase", "Instances", "From s", "To s", "Requests", "Failed", "Error rate", "p99 ms", "Failures"],
                rows,
                2,
            )
        )
        if not report["events"]["complete"]:
            console.print(f"(the activity log could not be read {report['events']['readErrors']} time(s))")
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
    stream.flush()


# ---------------------------------------------------------------------------------------------- the command


@dataclass
class FollowSetup:
    scale_set: str
    following: Following
    virtual_now: float
    scale: float
    sampled_at: float


def _prepare_follow(args: argparse.Namespace) -> FollowSetup | None:
    given = [args.resource_group is not None, args.name is not None]
    if not args.scale_set and not any(given):
        return None
    if not all(given):
        raise UsageError("--scale-set needs -g/--resource-group and -n/--name")
    target = local_target(endpoint=args.endpoint, data_dir=args.data_dir, subscription=args.subscription)
    session = Session(target)
    # The scale set must exist (a typo would give a report with no batches); this also fetches the token.
    session.compute.virtual_machine_scale_sets.get(
        args.resource_group, args.name, connection_timeout=SERVER_TIMEOUT, read_timeout=SERVER_TIMEOUT
    )
    set_id = scale_set_id(args.subscription or SUBSCRIPTION, args.resource_group, args.name)
    follower = EventFollower(session, set_id.lower())
    following = Following(follower, Timeline())
    following.apply(follower.fetch())  # the history: a rollout may already be running
    now, scale, sampled_at = follower.sample_clock()
    return FollowSetup(set_id, following, now, scale, sampled_at)


async def _run(plan: LoadPlan, setup: FollowSetup | None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    recorder = Recorder(None)
    runner = LoadRunner(plan, recorder)
    if setup is None:
        await runner.run()
        return build_report(plan, recorder, runner)
    # loop.time() is time.monotonic(), as the clock sample's instant: the sample maps onto the run's start.
    start = loop.time()
    clock = ClockMap(setup.virtual_now + (start - setup.sampled_at) * setup.scale, setup.scale)
    setup.following.timeline.since = clock.virtual_start
    recorder.clock = clock
    runner.start = start
    done = asyncio.Event()
    follow = loop.create_task(setup.following.follow(runner, recorder, done))
    try:
        await runner.run(start)
    finally:
        done.set()
        await follow
    return build_report(plan, recorder, runner, scale_set=setup.scale_set, following=setup.following)


def run(args: argparse.Namespace) -> int:
    """``scaleset load``: exit 0 when the run completed; 1 past ``--max-failures``; 2 on invalid usage."""
    _quiet_sdk_logging()  # the SDK's own warnings about failures this command reports in one line
    try:
        target = check_target(args.target)
        plan = LoadPlan(target, args.rps, args.duration, args.timeout, args.connections)
        if plan.total < 1:
            raise UsageError(f"--rps {args.rps:g} for --duration {args.duration:g} s is less than one request")
        setup = _prepare_follow(args)
        report = asyncio.run(_run(plan, setup))
        if setup is not None and setup.following.errors:
            print(
                f"(EventsUnavailable) the activity log could not be read {setup.following.errors} time(s): "
                f"{setup.following.last_error}",
                file=sys.stderr,
            )
        if args.output == "json":
            sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            write_tables(report, sys.stdout)
        failed = int(report["totals"]["failures"])
        if args.max_failures is not None and failed > args.max_failures:
            print(
                f"(TooManyFailures) {failed} of {report['totals']['requests']} requests failed, more than "
                f"--max-failures {args.max_failures}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK
    except BrokenPipeError:
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:
        following = args.scale_set or args.resource_group is not None
        line, code = describe(exc, endpoint=(args.endpoint or default_endpoint()) if following else None)
        print(line, file=sys.stderr)
        return code


def register(sub: SubParsers) -> None:
    summary = "send bounded HTTP load to a local service and report failures and latency per second and per batch"
    parser = sub.add_parser(
        "load", help=summary, description=summary[:1].upper() + summary[1:] + " (loopback targets only)."
    )
    parser.add_argument("--target", required=True, metavar="URL", help="http:// or https:// URL on this machine")
    parser.add_argument("--rps", type=rate, required=True, metavar="N", help=f"requests per second (<= {MAX_RPS:g})")
    parser.add_argument(
        "--duration", type=duration, required=True, metavar="D", help="how long: 30, 30s, 2m, 1h or PT30S (<= 1 h)"
    )
    parser.add_argument(
        "--timeout",
        type=timeout,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"per request, connecting included (default: {DEFAULT_TIMEOUT:g} s)",
    )
    parser.add_argument(
        "--connections",
        type=connections,
        default=DEFAULT_CONNECTIONS,
        metavar="C",
        help=f"at most this many requests in flight (default: {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--max-failures",
        type=failures_allowed,
        default=None,
        metavar="N",
        help="exit 1 when more than N requests failed (for CI); default: exit 0 whatever failed",
    )
    parser.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="report format (default: table)"
    )
    follow = parser.add_argument_group("per rollout batch (a scale set on the local scaleset serve)")
    follow.add_argument(
        "--scale-set", action="store_true", help="attribute requests to the batches of -g/-n's rolling upgrades"
    )
    follow.add_argument("-g", "--resource-group", default=None, help="the scale set's resource group")
    follow.add_argument("-n", "--name", "--vmss-name", dest="name", default=None, help="the scale set's name")
    follow.add_argument("--endpoint", default=None, metavar="URL", help="the emulator's URL (as the other commands)")
    follow.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR", help="the emulator's data dir (as the other commands)"
    )
    follow.add_argument("--subscription", default=None, metavar="ID", help="subscription id (default: the emulator's)")
    parser.set_defaults(run=run)
