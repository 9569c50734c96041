"""A layer-4 TCP load balancer: one listening port, a pool of backends, round-robin, connection draining.

Azure's load balancer works on connections, not requests, and so does this one:

* **New connections** go round-robin to the backends *in the pool*. A backend that refuses (or does not accept
  within ``connect_timeout``) is skipped for the next pool member, up to once round the pool. When the pool is empty,
  or no member accepts, the client's connection is accepted and reset at once: the client sees a reset or an end of
  stream, a failed request, never a hang.
* **Existing connections** stay with their backend until either side closes them. A backend that leaves the pool
  (``upsert(..., in_pool=False)`` or :meth:`LoadBalancer.drain`) keeps serving the connections it already has.
* **Drain** takes a backend out of the pool for new connections, waits until the connections it had when the drain
  began have all finished, or until the drain window passes, then resets whatever is still open and reports how many
  it cut. A request shorter than the window is never cut; a long one (or an idle keep-alive connection) is.
* **Remove** takes a backend out at once and resets its connections.

Bytes are copied both ways with asyncio streams: each direction ends on end-of-stream and passes the half-close
on (``write_eof``), so a client that shuts down its sending side still receives the whole response; writes wait
for the peer to read (``drain``), so a slow reader slows its writer instead of filling memory. A reset on either
side resets both. At most ``max_connections`` client connections are served at once; beyond that new ones are
reset straight away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("scaleset.lb")

MAX_CONNECTIONS = 1024
CONNECT_TIMEOUT = 2.0
BUFFER = 64 * 1024
STOP_WAIT = 2.0
"""How long :meth:`LoadBalancer.stop` (and a drain, after cutting) waits for connection handlers to finish."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reset(writer: asyncio.StreamWriter | None) -> None:
    """Close at once and send a TCP reset (linger 0), so the peer sees the cut instead of a clean end."""
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Backend:
    key: str
    host: str
    port: int
    in_pool: bool
    links: set[_Link] = field(default_factory=set)
    total: int = 0
    failed_connects: int = 0
    cut: int = 0


@dataclass(eq=False)
class _Link:
    """One client connection and, once connected, its backend connection."""

    client: asyncio.StreamWriter
    task: asyncio.Task[Any]
    backend: _Backend | None = None
    upstream: asyncio.StreamWriter | None = None

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.upstream)

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None and not writer.transport.is_closing():
                writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side."""
    while data := await reader.read(BUFFER):
        writer.write(data)
        await writer.drain()
    if not writer.transport.is_closing() and writer.can_write_eof():
        writer.write_eof()


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a copy task's exception as seen: a reset peer is an ordinary end, reported by resetting the other side."""
    if not task.cancelled():
        task.exception()


class LoadBalancer:
    """A TCP load balancer on ``host:port`` (loopback by default; port 0 picks a free one at :meth:`start`).

    Connections have no idle timeout: an idle keep-alive connection stays with its backend until a drain window
    ends, a remove, or a stop. Not thread-safe: call every method from the event loop that ran :meth:`start`.
    """

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        drain_seconds: float = 3.0,
        max_connections: int = MAX_CONNECTIONS,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.drain_seconds = drain_seconds
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self._backends: dict[str, _Backend] = {}
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self._cursor = 0
        self._accepted = 0
        self._refused_empty = 0
        self._refused_full = 0
        self._failed = 0
        self._cut = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Listen, and return the port (the one picked when constructed with port 0)."""
        if self._server is not None:
            raise RuntimeError(f"load balancer {self.name!r} is already started")
        if not is_loopback(self.host):
            log.warning("load balancer %s listens on %s, not a loopback address", self.name, self.host)
        self._closing = False
        self._server = await asyncio.start_server(self._serve, self.host, self.port, backlog=self.max_connections)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.debug("load balancer %s listening on %s:%s", self.name, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and reset every open connection. Safe to call twice."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await asyncio.sleep(0)  # let connections accepted just now reach their handler, which resets them
        for link in list(self._links):
            self._cut += 1
            link.reset()
            if link.upstream is None:
                link.task.cancel()  # still connecting to a backend: do not wait for the connect timeout
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=STOP_WAIT)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WAIT):
                    await server.wait_closed()

    # ------------------------------------------------------------------ the pool

    def upsert(self, key: str, *, host: str, port: int, in_pool: bool) -> None:
        """Add a backend or update its address and whether it receives new connections.

        Open connections are untouched: they stay with the address they were made to.
        """
        backend = self._backends.get(key)
        if backend is None:
            self._backends[key] = _Backend(key, host, port, in_pool)
        else:
            backend.host, backend.port, backend.in_pool = host, port, in_pool

    def remove(self, key: str) -> None:
        """Forget a backend now and reset its open connections. Unknown keys are ignored."""
        backend = self._backends.pop(key, None)
        if backend is None:
            return
        for link in list(backend.links):
            backend.cut += 1
            self._cut += 1
            link.reset()

    async def drain(self, key: str, seconds: float | None = None) -> int:
        """Take ``key`` out of the pool, let its open connections finish, reset what is left; return how many.

        The window is ``seconds`` (default ``drain_seconds``). Only the connections open when the drain began are
        waited for; the backend receives no new ones unless it is put back in the pool. It stays registered (out of
        the pool) afterwards. Unknown keys drain nothing and return 0.
        """
        backend = self._backends.get(key)
        if backend is None:
            return 0
        backend.in_pool = False
        window = self.drain_seconds if seconds is None else seconds
        tasks = {link.task for link in backend.links}
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, window))
        left = [link for link in backend.links if link.task in tasks and not link.task.done()]
        for link in left:
            backend.cut += 1
            self._cut += 1
            link.reset()
        if left:
            await asyncio.wait({link.task for link in left}, timeout=STOP_WAIT)
        return len(left)

    def pool(self) -> list[str]:
        """The keys receiving new connections, in round-robin order."""
        return [b.key for b in self._backends.values() if b.in_pool]

    def stats(self) -> dict[str, Any]:
        """Counters as JSON-ready data.

        ``accepted``: client connections taken; ``active``: open now; ``refusedEmptyPool``: reset because no backend
        was in the pool; ``failed``: reset because no pool member accepted; ``refusedOverLimit``: reset because
        ``max_connections`` were open; ``cut``: reset by drain, remove or stop. Per backend: ``active`` and
        ``total`` connections, ``failedConnects`` and ``cut``.
        """
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "pool": self.pool(),
            "accepted": self._accepted,
            "active": len(self._links),
            "refusedEmptyPool": self._refused_empty,
            "failed": self._failed,
            "refusedOverLimit": self._refused_full,
            "cut": self._cut,
            "backends": {
                b.key: {
                    "host": b.host,
                    "port": b.port,
                    "inPool": b.in_pool,
                    "active": len(b.links),
                    "total": b.total,
                    "failedConnects": b.failed_connects,
                    "cut": b.cut,
                }
                for b in self._backends.values()
            },
        }

    # ------------------------------------------------------------------ connections

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            _reset(writer)
            return
        if len(self._links) >= self.max_connections:
            self._refused_full += 1
            _reset(writer)
            return
        link = _Link(writer, task)
        self._links.add(link)
        self._handlers.add(task)
        self._accepted += 1
        try:
            upstream = await self._connect(link)
            if upstream is None:
                _reset(writer)
                return
            await self._pipe(link, reader, upstream)
        except asyncio.CancelledError:
            # The root of its own task (stop, or the loop shutting down): end quietly. Python 3.11's stream server
            # logs a handler task that ends cancelled as an error.
            link.reset()
        except Exception:
            log.debug("load balancer %s: connection failed", self.name, exc_info=True)
            link.reset()
        finally:
            self._links.discard(link)
            self._handlers.discard(task)
            if link.backend is not None:
                link.backend.links.discard(link)
            link.close()

    async def _connect(self, link: _Link) -> asyncio.StreamReader | None:
        """Connect ``link`` to the next pool member that accepts; None when the pool is empty or none does."""
        start = self._cursor
        self._cursor += 1
        tried = 0
        while True:
            pool = [b for b in self._backends.values() if b.in_pool]
            if not pool:
                if tried == 0:
                    self._refused_empty += 1
                else:
                    self._failed += 1
                return None
            if tried >= len(pool):
                self._failed += 1
                return None
            backend = pool[(start + tried) % len(pool)]
            tried += 1
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await asyncio.open_connection(backend.host, backend.port)
            except (OSError, TimeoutError):
                backend.failed_connects += 1
                continue
            if self._closing or self._backends.get(backend.key) is not backend or not backend.in_pool:
                writer.close()  # it left the pool (or we are stopping) while we connected: no new connections
                if self._closing:
                    return None
                continue
            link.backend, link.upstream = backend, writer
            backend.links.add(link)
            backend.total += 1
            return reader

    async def _pipe(self, link: _Link, client: asyncio.StreamReader, upstream: asyncio.StreamReader) -> None:
        assert link.upstream is not None
        directions = {
            asyncio.create_task(_copy(client, link.upstream)),
            asyncio.create_task(_copy(upstream, link.client)),
        }
        for task in directions:
            task.add_done_callback(_retrieve)
        try:
            done, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in directions:
                task.cancel()
        failed = [task for task in done if not task.cancelled() and task.exception() is not None]
        if failed or pending:
            link.reset()
            if pending:
                await asyncio.wait(pending)
