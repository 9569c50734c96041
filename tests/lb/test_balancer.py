"""The layer-4 load balancer with real sockets: spreading, pool changes, drain, remove, failover, limits, stop.

The last test is the property a rolling upgrade relies on: backends drained and replaced one at a time under steady
traffic, and not one request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest

from scaleset.lb.balancer import LoadBalancer, is_loopback

HOST = "127.0.0.1"


def run(coro: Coroutine[Any, Any, None], *, limit: float = 10.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await coro

    asyncio.run(bounded())


async def until(predicate: Callable[[], bool], *, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Backend:
    """An HTTP server that answers every request with its name, after ``delay`` seconds; or an echo server."""

    name: str
    delay: float = 0.0
    echo: bool = False
    port: int = 0
    served: int = 0
    in_flight: int = 0
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self.handle, HOST, 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.wait(self.tasks, timeout=1.0)
            await self.server.wait_closed()
            self.server = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.writers.add(writer)
        try:
            if self.echo:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                return
            await reader.readuntil(b"\r\n\r\n")
            self.in_flight += 1
            try:
                await asyncio.sleep(self.delay)
                body = self.name.encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
                self.served += 1
            finally:
                self.in_flight -= 1
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a cancelled handler (the backend stopped) ends quietly: asyncio 3.11 would log the cancellation
        finally:
            self.writers.discard(writer)
            self.tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


class RequestFailedError(Exception):
    """A request through the balancer got no whole response."""


async def get(port: int, *, timeout: float = 2.0) -> str:
    """One request on a new connection; the backend's name, or ``RequestFailedError`` (reset, empty or cut response)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError) as exc:
        raise RequestFailedError(repr(exc)) from exc
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RequestFailedError(f"no response: {data!r}")
    return body.decode()


@contextlib.asynccontextmanager
async def balancer(*backends: Backend, **options: Any) -> AsyncIterator[LoadBalancer]:
    lb = LoadBalancer("test", **options)
    for backend in backends:
        lb.upsert(backend.name, host=HOST, port=backend.port, in_pool=True)
    await lb.start()
    try:
        yield lb
    finally:
        await lb.stop()
        for backend in backends:
            await backend.stop()


def test_round_robin_spreads_new_connections() -> None:
    async def main() -> None:
        backends = [await Backend(f"b{i}").start() for i in range(3)]
        async with balancer(*backends) as lb:
            assert lb.port > 0
            names = [await get(lb.port) for _ in range(9)]
            assert names == ["b0", "b1", "b2"] * 3
            await until(lambda: lb.stats()["active"] == 0)  # the last connection's handler closes just after
            stats = lb.stats()
            assert (stats["accepted"], stats["active"], stats["refusedEmptyPool"]) == (9, 0, 0)
            assert {k: v["total"] for k, v in stats["backends"].items()} == {"b0": 3, "b1": 3, "b2": 3}
            assert all(v["active"] == 0 and v["inPool"] for v in stats["backends"].values())

    run(main())


def test_pool_changes_apply_to_new_connections() -> None:
    async def main() -> None:
        backends = [await Backend(f"b{i}").start() for i in range(3)]
        async with balancer(*backends) as lb:
            lb.upsert("b1", host=HOST, port=backends[1].port, in_pool=False)
            assert lb.pool() == ["b0", "b2"]
            assert {await get(lb.port) for _ in range(6)} == {"b0", "b2"}
            lb.upsert("b1", host=HOST, port=backends[1].port, in_pool=True)
            assert lb.pool() == ["b0", "b1", "b2"]
            assert {await get(lb.port) for _ in range(6)} == {"b0", "b1", "b2"}
            replacement = await Backend("b1-v2").start()
            lb.upsert("b1", host=HOST, port=replacement.port, in_pool=True)  # a new address for the same key
            assert "b1-v2" in {await get(lb.port) for _ in range(3)}
            await replacement.stop()

    run(main())


def test_empty_pool_fails_fast() -> None:
    async def main() -> None:
        async with balancer() as lb:
            began = time.monotonic()
            with pytest.raises(RequestFailedError):
                await get(lb.port)
            assert time.monotonic() - began < 0.5
            backend = await Backend("b0").start()
            lb.upsert("b0", host=HOST, port=backend.port, in_pool=False)
            with pytest.raises(RequestFailedError):
                await get(lb.port)
            assert lb.stats()["refusedEmptyPool"] == 2
            lb.upsert("b0", host=HOST, port=backend.port, in_pool=True)
            assert await get(lb.port) == "b0"
            await backend.stop()

    run(main())


def test_drain_lets_a_short_request_finish_and_cuts_one_that_overruns() -> None:
    async def main() -> None:
        slow, other = await Backend("slow", delay=0.3).start(), await Backend("other").start()
        async with balancer(slow, other, drain_seconds=1.0) as lb:
            request = asyncio.create_task(get(lb.port))
            await until(lambda: slow.in_flight == 1)
            began = time.monotonic()
            draining = asyncio.create_task(lb.drain("slow"))
            await asyncio.sleep(0.05)
            assert lb.pool() == ["other"]
            assert await get(lb.port) == "other"  # new connections avoid the draining backend
            assert await draining == 0
            assert 0.15 < time.monotonic() - began < 0.9  # it waited for the request, not for the whole window
            assert await request == "slow"

            slow.delay = 1.0
            lb.upsert("slow", host=HOST, port=slow.port, in_pool=True)
            lb.upsert("other", host=HOST, port=other.port, in_pool=False)
            request = asyncio.create_task(get(lb.port))
            await until(lambda: slow.in_flight == 1)
            lb.upsert("other", host=HOST, port=other.port, in_pool=True)
            began = time.monotonic()
            assert await lb.drain("slow", 0.2) == 1
            assert 0.15 < time.monotonic() - began < 0.6
            with pytest.raises(RequestFailedError):
                await request
            stats = lb.stats()
            slow_stats = stats["backends"]["slow"]
            assert (stats["cut"], slow_stats["cut"], slow_stats["inPool"]) == (1, 1, False)
            assert await lb.drain("nobody") == 0

    run(main())


def test_drain_without_connections_returns_at_once() -> None:
    async def main() -> None:
        backend = await Backend("b0").start()
        async with balancer(backend, drain_seconds=5.0) as lb:
            began = time.monotonic()
            assert await lb.drain("b0") == 0
            assert time.monotonic() - began < 0.1
            assert lb.pool() == []

    run(main())


def test_remove_cuts_at_once() -> None:
    async def main() -> None:
        slow, other = await Backend("slow", delay=2.0).start(), await Backend("other").start()
        async with balancer(slow, other) as lb:
            request = asyncio.create_task(get(lb.port))
            await until(lambda: slow.in_flight == 1)
            began = time.monotonic()
            lb.remove("slow")
            with pytest.raises(RequestFailedError):
                await request
            assert time.monotonic() - began < 0.3
            assert lb.pool() == ["other"]
            assert "slow" not in lb.stats()["backends"]
            assert lb.stats()["cut"] == 1
            lb.remove("slow")  # twice: nothing happens

    run(main())


def test_failover_to_the_next_member_when_a_backend_refuses() -> None:
    async def main() -> None:
        alive = await Backend("alive").start()
        async with balancer(alive) as lb:
            lb.upsert("dead", host=HOST, port=closed_port(), in_pool=True)
            assert [await get(lb.port) for _ in range(4)] == ["alive"] * 4
            stats = lb.stats()
            assert stats["backends"]["dead"]["failedConnects"] == 2
            assert stats["backends"]["alive"]["total"] == 4
            lb.remove("alive")
            with pytest.raises(RequestFailedError):
                await get(lb.port)
            assert lb.stats()["failed"] == 1

    run(main())


def test_half_close_and_a_large_transfer_both_ways() -> None:
    async def main() -> None:
        echo = await Backend("echo", echo=True).start()
        async with balancer(echo) as lb:
            payload = os.urandom(4 * 1024 * 1024)
            reader, writer = await asyncio.open_connection(HOST, lb.port)

            async def send() -> None:
                writer.write(payload)
                await writer.drain()
                writer.write_eof()  # half-close: the echo must still come back whole

            sender = asyncio.create_task(send())
            received = await reader.read(-1)
            await sender
            writer.close()
            await writer.wait_closed()
            assert received == payload
            await until(lambda: lb.stats()["active"] == 0)

    run(main())


def test_connection_limit() -> None:
    async def main() -> None:
        echo = await Backend("echo", echo=True).start()
        async with balancer(echo, max_connections=2) as lb:
            streams = [await asyncio.open_connection(HOST, lb.port) for _ in range(2)]
            for reader, writer in streams:  # both connections are through to the backend
                writer.write(b"ping")
                assert await reader.readexactly(4) == b"ping"
            reader, writer = await asyncio.open_connection(HOST, lb.port)
            with contextlib.suppress(ConnectionResetError):
                assert await reader.read() == b""
            writer.close()
            assert lb.stats()["refusedOverLimit"] == 1
            for _, w in streams:
                w.close()
            await until(lambda: lb.stats()["active"] == 0)
            assert await get_echo(lb.port) == b"again"

    async def get_echo(port: int) -> bytes:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"again")
        writer.write_eof()
        data = await reader.read()
        writer.close()
        return data

    run(main())


def test_stop_closes_the_listener_and_every_connection() -> None:
    async def main() -> None:
        echo = await Backend("echo", echo=True).start()
        lb = LoadBalancer("test")
        lb.upsert("echo", host=HOST, port=echo.port, in_pool=True)
        port = await lb.start()
        with pytest.raises(RuntimeError):
            await lb.start()
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        began = time.monotonic()
        await lb.stop()
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""
        assert time.monotonic() - began < 0.5
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, port)
        await until(lambda: not echo.writers)  # the backend side was closed too
        await lb.stop()  # twice is fine
        await echo.stop()

    run(main())


def test_loopback_by_default_and_a_warning_otherwise(caplog: pytest.LogCaptureFixture) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.com")

    async def main() -> None:
        lb = LoadBalancer("open", host="0.0.0.0")
        await lb.start()
        await lb.stop()

    with caplog.at_level(logging.WARNING, logger="scaleset.lb"):
        run(main())
    assert any("not a loopback address" in r.message for r in caplog.records)


def test_rolling_replacement_under_load_drops_nothing() -> None:
    """20 clients, 200 requests, each on a new connection; meanwhile each backend in turn is drained, stopped,
    replaced by a new one on a new port, and put back. Every request succeeds."""

    async def main() -> None:
        keys = ["b0", "b1", "b2"]
        current = {key: await Backend(key, delay=0.01).start() for key in keys}
        replaced: list[Backend] = []
        results: Counter[str] = Counter()
        failures: list[str] = []
        lb = LoadBalancer("rollout", drain_seconds=1.0)
        for key, backend in current.items():
            lb.upsert(key, host=HOST, port=backend.port, in_pool=True)
        await lb.start()

        async def client() -> None:
            for _ in range(10):
                try:
                    results[await get(lb.port)] += 1
                except RequestFailedError as exc:
                    failures.append(str(exc))
                await asyncio.sleep(0.005)

        async def rollout() -> list[int]:
            cuts = []
            for step, key in enumerate(keys):
                await until(lambda step=step: results.total() + len(failures) >= 40 * (step + 1), within=5.0)
                cuts.append(await lb.drain(key))
                await current[key].stop()
                fresh = await Backend(f"{key}-v2", delay=0.01).start()
                replaced.append(fresh)
                lb.upsert(key, host=HOST, port=fresh.port, in_pool=True)
            return cuts

        try:
            upgrade = asyncio.create_task(rollout())
            await asyncio.gather(*(client() for _ in range(20)))
            cuts = await upgrade
        finally:
            await lb.stop()
            for backend in [*current.values(), *replaced]:
                await backend.stop()
        assert failures == []
        assert cuts == [0, 0, 0]
        assert results.total() == 200
        assert sum(results[f"{key}-v2"] for key in keys) > 0  # the new backends took traffic during the run
        stats = lb.stats()
        assert (stats["accepted"], stats["refusedEmptyPool"], stats["failed"], stats["cut"]) == (200, 0, 0, 0)

    run(main())
