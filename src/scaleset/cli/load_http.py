"""``scaleset load``'s HTTP/1.1 client: keep-alive connections over asyncio streams, response parsing, and the
open-loop runner that sends the plan's requests."""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from dataclasses import dataclass

from scaleset.cli.load_args import HttpTarget, planned_requests
from scaleset.cli.load_stats import Recorder

MAX_HEADERS = 100
READ_CHUNK = 65536

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
