"""The real prober: one probe's answer for every kind of response, and the schedule feeding the health tracker.

Real sockets on loopback and real time, kept short: probe intervals of 0.05-0.2 s and every wait bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scaleset.api.tls import ensure_tls
from scaleset.backends import prober as prober_module
from scaleset.backends.prober import MAX_BODY, Prober, probe_once, probe_timeout
from scaleset.domain.health import Answer, HealthState, HealthTracker, ProbeSettings

HOST = "127.0.0.1"


def run(coro: Coroutine[Any, Any, None], *, limit: float = 10.0) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await coro

    asyncio.run(bounded())


# ---------------------------------------------------------------- a tiny application whose answer the test switches


@dataclass
class Reply:
    """What the application does with the next request.

    ``kind``: ``length`` (Content-Length framing), ``chunked``, ``eof`` (body ends at close), ``interim`` (a 100
    Continue first), ``garbage`` (not HTTP), ``close`` (close without a byte), ``hang`` (never answer), ``stall``
    (a status line, then nothing).
    """

    status: int = 200
    body: bytes = b""
    kind: str = "length"


def healthy_body(state: str = "Healthy") -> bytes:
    return json.dumps({"ApplicationHealthState": state}).encode()


@dataclass
class App:
    reply: Reply = field(default_factory=Reply)
    requests: list[bytes] = field(default_factory=list)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            reply = self.reply
            if reply.kind == "hang":
                await reader.read()  # until the prober gives up and closes
                return
            if reply.kind == "close":
                return
            if reply.kind == "stall":  # a status line, then nothing
                writer.write(b"HTTP/1.1 %d X\r\n" % reply.status)
                await writer.drain()
                await reader.read()
                return
            if reply.kind == "garbage":
                writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
                await writer.drain()
                return
            head = f"HTTP/1.1 {reply.status} X\r\nContent-Type: application/json\r\nConnection: close\r\n"
            if reply.kind == "interim":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if reply.kind == "chunked":
                middle = len(reply.body) // 2
                chunks = [reply.body[:middle], reply.body[middle:]]
                payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
                writer.write((head + "Transfer-Encoding: chunked\r\n\r\n").encode() + payload)
            elif reply.kind == "eof":
                writer.write((head + "\r\n").encode() + reply.body)
            else:
                writer.write((head + f"Content-Length: {len(reply.body)}\r\n\r\n").encode() + reply.body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


@contextlib.asynccontextmanager
async def serving(app: App, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(app.handle, HOST, 0, ssl=tls)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in list(app.writers):
            writer.transport.abort()
        await asyncio.sleep(0.01)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def tcp_listener() -> AsyncIterator[int]:
    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(accept, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_tls(tmp_path: Path) -> ssl.SSLContext:
    files = ensure_tls(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    return context


BINARY = ProbeSettings("extension", protocol="http", request_path="/health", interval=0.05, probes=1, grace=0.1)
RICH = ProbeSettings(
    "extension", protocol="http", request_path="/health", interval=0.05, probes=1, grace=0.3, rich=True
)


# ---------------------------------------------------------------- one probe


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200), Answer.HEALTHY),
        (Reply(200, b"anything"), Answer.HEALTHY),
        (Reply(200, b"ok", kind="eof"), Answer.HEALTHY),
        (Reply(200, b"ok", kind="chunked"), Answer.HEALTHY),
        (Reply(200, kind="interim"), Answer.HEALTHY),
        (Reply(200, healthy_body("Unhealthy")), Answer.HEALTHY),  # binary health reads the status only
        (Reply(204), Answer.UNHEALTHY),
        (Reply(301), Answer.UNHEALTHY),
        (Reply(404), Answer.UNHEALTHY),
        (Reply(500, healthy_body()), Answer.UNHEALTHY),
        (Reply(kind="garbage"), Answer.UNHEALTHY),
        (Reply(kind="close"), Answer.NONE),
    ],
)
def test_binary_http_answers(reply: Reply, expected: Answer) -> None:
    async def main() -> None:
        app = App(reply)
        async with serving(app) as port:
            assert await probe_once(BINARY, host=HOST, port=port, timeout=1.0) is expected

    run(main())


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, healthy_body()), Answer.HEALTHY),
        (Reply(200, healthy_body("Unhealthy")), Answer.UNHEALTHY),
        (Reply(201, healthy_body()), Answer.HEALTHY),
        (Reply(200, healthy_body(), kind="chunked"), Answer.HEALTHY),
        (Reply(200, healthy_body("Unhealthy"), kind="eof"), Answer.UNHEALTHY),
        (Reply(200, healthy_body(), kind="interim"), Answer.HEALTHY),
        (Reply(200), Answer.INVALID),  # 2xx, no body
        (Reply(204), Answer.INVALID),
        (Reply(200, b"Healthy"), Answer.INVALID),  # not JSON
        (Reply(200, b'["Healthy"]'), Answer.INVALID),  # JSON, not an object
        (Reply(200, b'{"state": "Healthy"}'), Answer.INVALID),  # no ApplicationHealthState
        (Reply(200, healthy_body("Degraded")), Answer.INVALID),
        (Reply(200, healthy_body("healthy")), Answer.INVALID),  # the spelling is exact
        (Reply(200, healthy_body() + b" " * MAX_BODY), Answer.INVALID),  # over the size cap
        (Reply(200, healthy_body() + b" " * MAX_BODY, kind="eof"), Answer.INVALID),
        (Reply(500, healthy_body()), Answer.INVALID),  # non-2xx, whatever the body says
        (Reply(503, healthy_body("Unhealthy")), Answer.INVALID),
        (Reply(kind="garbage"), Answer.INVALID),
        (Reply(kind="close"), Answer.NONE),
    ],
)
def test_rich_http_answers(reply: Reply, expected: Answer) -> None:
    async def main() -> None:
        app = App(reply)
        async with serving(app) as port:
            assert await probe_once(RICH, host=HOST, port=port, timeout=1.0) is expected

    run(main())


@pytest.mark.parametrize("settings", [BINARY, RICH], ids=["binary", "rich"])
def test_no_answer_is_none(settings: ProbeSettings) -> None:
    async def main() -> None:
        assert await probe_once(settings, host=HOST, port=closed_port(), timeout=1.0) is Answer.NONE
        app = App(Reply(kind="hang"))
        async with serving(app) as port:
            began = time.monotonic()
            assert await probe_once(settings, host=HOST, port=port, timeout=0.15) is Answer.NONE
            assert time.monotonic() - began < 0.5

    run(main())


def test_binary_health_needs_only_the_status_line() -> None:
    async def main() -> None:
        async with serving(App(Reply(200, kind="stall"))) as port:
            began = time.monotonic()
            assert await probe_once(BINARY, host=HOST, port=port, timeout=2.0) is Answer.HEALTHY
            assert time.monotonic() - began < 1.0  # the rest is waited for a short while only

    run(main())


def test_request_is_a_minimal_http11_get() -> None:
    async def main() -> None:
        app = App(Reply(200))
        settings = ProbeSettings("extension", protocol="http", request_path="health/ready", interval=1)
        async with serving(app) as port:
            assert await probe_once(settings, host=HOST, port=port, timeout=1.0) is Answer.HEALTHY
            await probe_once(ProbeSettings("loadBalancer", protocol="http"), host=HOST, port=port, timeout=1.0)
        lines = app.requests[0].decode().split("\r\n")
        assert lines[0] == "GET /health/ready HTTP/1.1"
        assert f"Host: {HOST}:{port}" in lines
        assert "Connection: close" in lines
        assert app.requests[1].startswith(b"GET / HTTP/1.1\r\n")  # no request path: the root

    run(main())


def test_tcp_answers() -> None:
    async def main() -> None:
        tcp = ProbeSettings("loadBalancer", protocol="tcp", interval=0.05)
        async with tcp_listener() as port:
            assert await probe_once(tcp, host=HOST, port=port, timeout=1.0) is Answer.HEALTHY
        assert await probe_once(tcp, host=HOST, port=closed_port(), timeout=1.0) is Answer.NONE

    run(main())


def test_https_without_certificate_verification(tmp_path: Path) -> None:
    async def main() -> None:
        tls = server_tls(tmp_path)
        binary = ProbeSettings("extension", protocol="https", request_path="/health", interval=1)
        rich = ProbeSettings("extension", protocol="https", request_path="/health", interval=1, rich=True)
        app = App(Reply(200, healthy_body("Unhealthy")))
        async with serving(app, tls=tls) as port:
            assert await probe_once(binary, host=HOST, port=port, timeout=2.0) is Answer.HEALTHY
            assert await probe_once(rich, host=HOST, port=port, timeout=2.0) is Answer.UNHEALTHY
            app.reply = Reply(200, healthy_body(), kind="chunked")
            assert await probe_once(rich, host=HOST, port=port, timeout=2.0) is Answer.HEALTHY
        async with serving(App(Reply(200))) as plain:  # https against a plain-http application: no answer
            assert await probe_once(binary, host=HOST, port=plain, timeout=0.3) is Answer.NONE

    run(main())


def test_unknown_protocol_is_refused() -> None:
    udp = ProbeSettings("extension", protocol="udp")
    with pytest.raises(ValueError, match="udp"):
        asyncio.run(probe_once(udp, host=HOST, port=1, timeout=0.1))
    with pytest.raises(ValueError, match="udp"):
        Prober(udp, host=HOST, port=1, clock=time.monotonic)


def test_probe_timeout_is_below_the_interval_and_at_most_five_seconds() -> None:
    assert probe_timeout(ProbeSettings("extension", interval=30)) == pytest.approx(4.5)
    assert probe_timeout(ProbeSettings("extension", interval=5)) == pytest.approx(4.5)
    assert probe_timeout(ProbeSettings("extension", interval=0.1)) == pytest.approx(0.09)


# ---------------------------------------------------------------- the prober on its schedule


async def until(predicate: Callable[[], bool], *, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


def replayed(prober: Prober) -> HealthTracker:
    """A fresh tracker fed the prober's answers: the prober must agree with it."""
    tracker = HealthTracker(prober.settings, started_at=prober.started_at)
    for record in prober.history:
        tracker.observe(record.answer, record.at)
    return tracker


@contextlib.asynccontextmanager
async def running(prober: Prober) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(prober.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_binary_prober_needs_number_of_probes_in_a_row() -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="http", request_path="/", interval=0.05, probes=3, grace=1.0)
        app = App(Reply(200))
        changes: list[HealthState] = []
        async with serving(app) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic, on_change=changes.append)
            assert prober.state is HealthState.INITIALIZING
            assert (prober.probes, prober.last_answer) == (0, None)
            async with running(prober):
                await until(lambda: prober.state is HealthState.HEALTHY)
                healthy = [r for r in prober.history if r.answer is Answer.HEALTHY]
                assert prober.since == healthy[2].at  # the third answer in a row settles it
                app.reply = Reply(500)
                await until(lambda: prober.state is HealthState.UNHEALTHY)
                unhealthy = [r for r in prober.history if r.answer is Answer.UNHEALTHY]
                assert len(unhealthy) == 3
                assert prober.since == unhealthy[2].at
                assert prober.last_answer is Answer.UNHEALTHY
                tracker = replayed(prober)
                assert (prober.state, prober.since) == (tracker.state, tracker.since)
        assert changes == [HealthState.HEALTHY, HealthState.UNHEALTHY]

    run(main())


def test_probes_follow_the_interval() -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="http", interval=0.05, probes=1, grace=1.0)
        async with serving(App(Reply(200))) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic)
            async with running(prober):
                await until(lambda: prober.probes >= 6)
            gaps = [b.at - a.at for a, b in zip(prober.history, prober.history[1:], strict=False)]
            assert all(0.03 < gap < 0.15 for gap in gaps), gaps
            assert prober.history[0].at - prober.started_at < 0.05  # the first probe goes at once

    run(main())


def test_rich_prober_unknown_after_grace_then_healthy() -> None:
    async def main() -> None:
        # probes at 0, 0.2, 0.4 s; the grace period ends at 0.3 s, between two probes
        settings = ProbeSettings("extension", protocol="http", interval=0.2, probes=1, grace=0.3, rich=True)
        app = App(Reply(200, b'{"status": "starting"}'))  # a 2xx without a state: Initializing holds
        changes: list[HealthState] = []
        async with serving(app) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic, on_change=changes.append)
            async with running(prober):
                await until(lambda: prober.probes >= 2)
                assert prober.state is HealthState.INITIALIZING
                await until(lambda: prober.state is not HealthState.INITIALIZING)
                # applied when the grace period ends, not at the next probe
                assert time.monotonic() - prober.started_at < 0.39
                assert prober.probes == 2
                assert prober.state is HealthState.UNKNOWN
                assert prober.since == pytest.approx(prober.started_at + settings.grace)
                tracker = replayed(prober)
                tracker.expire(time.monotonic())
                assert (prober.state, prober.since) == (tracker.state, tracker.since)
                app.reply = Reply(200, healthy_body())
                await until(lambda: prober.state is HealthState.HEALTHY)
                tracker = replayed(prober)
                assert (prober.state, prober.since) == (tracker.state, tracker.since)
        assert changes == [HealthState.UNKNOWN, HealthState.HEALTHY]

    run(main())


def test_rich_prober_settles_on_an_explicit_unhealthy() -> None:
    async def main() -> None:
        app = App(Reply(200, healthy_body("Unhealthy")))
        settings = ProbeSettings("extension", protocol="http", interval=0.05, probes=2, grace=5.0, rich=True)
        async with serving(app) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic)
            async with running(prober):
                await until(lambda: prober.state is not HealthState.INITIALIZING, within=1.0)
                assert prober.state is HealthState.UNHEALTHY
                assert prober.probes == 2
                app.reply = Reply(503)  # rich: a non-2xx reads Unknown
                await until(lambda: prober.state is HealthState.UNKNOWN)
                tracker = replayed(prober)
                assert (prober.state, prober.since) == (tracker.state, tracker.since)

    run(main())


def test_tcp_prober_grace_expiry_is_unhealthy_then_healthy_when_listening() -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="tcp", interval=0.05, probes=1, grace=0.2, rich=True)
        port = closed_port()
        prober = Prober(settings, host=HOST, port=port, clock=time.monotonic)
        async with running(prober):
            await until(lambda: prober.probes >= 2)
            assert prober.state is HealthState.INITIALIZING  # rich: silence does not settle Initializing
            await until(lambda: prober.state is not HealthState.INITIALIZING)
            assert prober.state is HealthState.UNHEALTHY  # tcp never reads Unknown
            assert prober.since == pytest.approx(prober.started_at + settings.grace)
            assert all(r.answer is Answer.NONE for r in prober.history)
        # the same prober, now that something listens on that port
        server = await asyncio.start_server(lambda _r, w: w.close(), HOST, port)
        try:
            async with running(prober):
                await until(lambda: prober.state is HealthState.HEALTHY)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


def test_load_balancer_probe_flavours() -> None:
    async def main() -> None:
        tcp = ProbeSettings("loadBalancer", protocol="tcp", interval=0.05, probes=2, grace=0.1)
        http = ProbeSettings("loadBalancer", protocol="http", request_path="/", interval=0.05, probes=2, grace=0.1)
        app = App(Reply(200))
        async with serving(app) as port, tcp_listener() as tcp_port:
            by_http = Prober(http, host=HOST, port=port, clock=time.monotonic)
            by_tcp = Prober(tcp, host=HOST, port=tcp_port, clock=time.monotonic)
            down = Prober(tcp, host=HOST, port=closed_port(), clock=time.monotonic)
            async with running(by_http), running(by_tcp), running(down):
                await until(lambda: by_http.state is HealthState.HEALTHY and by_tcp.state is HealthState.HEALTHY)
                await until(lambda: down.state is HealthState.UNHEALTHY)
                # binary: no answer counts at once; the second refused probe settles it
                assert down.since == down.history[1].at
                app.reply = Reply(500)
                await until(lambda: by_http.state is HealthState.UNHEALTHY)
                for prober in (by_http, by_tcp, down):
                    tracker = replayed(prober)
                    assert (prober.state, prober.since) == (tracker.state, tracker.since)

    run(main())


def test_https_prober(tmp_path: Path) -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="https", request_path="/h", interval=0.1, grace=1.0, rich=True)
        app = App(Reply(200, healthy_body()))
        async with serving(app, tls=server_tls(tmp_path)) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic)
            async with running(prober):
                await until(lambda: prober.state is HealthState.HEALTHY)

    run(main())


def test_restart_starts_over_and_probes_at_once() -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="http", interval=0.2, probes=1, grace=1.0)
        app = App(Reply(200))
        changes: list[HealthState] = []
        async with serving(app) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic, on_change=changes.append)
            async with running(prober):
                await until(lambda: prober.state is HealthState.HEALTHY)
                await asyncio.sleep(0.02)  # now asleep until the next tick, 0.2 s away
                restarted = time.monotonic()
                prober.restart(started_at=restarted)
                assert (prober.state, prober.since, prober.probes, prober.history) == (
                    HealthState.INITIALIZING,
                    restarted,
                    0,
                    (),
                )
                await until(lambda: prober.state is HealthState.HEALTHY, within=0.1)  # no wait for the old tick
                assert prober.since >= restarted
                assert prober.started_at == restarted
        assert changes == [HealthState.HEALTHY, HealthState.INITIALIZING, HealthState.HEALTHY]

    run(main())


def test_restart_discards_the_probe_in_flight() -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="http", interval=0.2, probes=1, grace=5.0)
        app = App(Reply(kind="hang"))
        async with serving(app) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic)
            async with running(prober):
                await until(lambda: len(app.requests) == 1)  # the first probe is waiting for its answer
                prober.restart(started_at=time.monotonic())
                app.reply = Reply(200)
                await until(lambda: prober.state is HealthState.HEALTHY)
                assert [r.answer for r in prober.history] == [Answer.HEALTHY]

    run(main())


def test_run_survives_probe_errors_and_callback_errors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def broken(*_args: Any, **_kwargs: Any) -> Answer:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RuntimeError("probe exploded")
        return Answer.HEALTHY

    def bad_callback(_state: HealthState) -> None:
        raise RuntimeError("callback exploded")

    async def main() -> None:
        settings = ProbeSettings("extension", protocol="http", interval=0.05, probes=1, grace=5.0)
        prober = Prober(settings, host=HOST, port=1, clock=time.monotonic, on_change=bad_callback)
        async with running(prober) as task:
            await until(lambda: prober.state is HealthState.HEALTHY)
            assert not task.done()
        assert [r.answer for r in prober.history[:3]] == [Answer.NONE] * 3

    monkeypatch.setattr(prober_module, "probe_once", broken)
    with caplog.at_level(logging.DEBUG, logger="scaleset.prober"):
        run(main())
    assert any("probe of" in r.message and r.levelno == logging.DEBUG for r in caplog.records)
    assert any("callback failed" in r.message for r in caplog.records)


def test_cancelling_run_stops_it_promptly() -> None:
    async def main() -> None:
        settings = ProbeSettings("extension", protocol="http", interval=0.2, probes=1, grace=5.0)
        app = App(Reply(kind="hang"))
        async with serving(app) as port:
            prober = Prober(settings, host=HOST, port=port, clock=time.monotonic)
            task = asyncio.create_task(prober.run())
            await until(lambda: len(app.requests) == 1)  # mid-probe
            began = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - began < 0.1

    run(main())
