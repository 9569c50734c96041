"""``scaleset load``: against a tiny HTTP server started here (made to fail for a window), and with a live
``scaleset serve`` whose rolling upgrade the load attributes batch by batch.

Real sockets and real time: each run is a second or less, and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.cli.conftest import LiveServer, Result, Run

from scaleset.cli import load
from scaleset.main import main

IMAGE_SET = "virtualMachineProfile.storageProfile.imageReference.version"
Behaviour = Callable[[float], str]


class TinyServer(ThreadingHTTPServer):
    """HTTP/1.1 keep-alive on a free loopback port; ``behaviour(t)`` (t: seconds since the first request) says how
    each request is answered: ``ok`` (200), ``500``, ``slow`` (200 after ``slow_seconds``) or ``reset`` (RST)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TinyHandler)
        self.behaviour: Behaviour = lambda t: "ok"
        self.slow_seconds = 0.5
        self.first: float | None = None
        self.hits = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/app?x=1"

    def decide(self) -> str:
        with self.lock:
            now = time.monotonic()
            if self.first is None:
                self.first = now
            self.hits += 1
            return self.behaviour(now - self.first)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and left is expected here; nothing to print."""


class TinyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else the body waits for the client's delayed ACK (40 ms)
    server: TinyServer

    def do_GET(self) -> None:
        answer = self.server.decide()
        if answer == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if answer == "slow":
            time.sleep(self.server.slow_seconds)
        status = 500 if answer == "500" else 200
        body = b"ok\n" if status == 200 else b"boom\n"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client gave up (a timeout): expected

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def tiny() -> Iterator[TinyServer]:
    server = TinyServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load(run: Run, target: str, *extra: str, rps: str = "200", duration: str = "1") -> Result:
    return run("load", "--target", target, "--rps", rps, "--duration", duration, "-o", "json", *extra)


FIGURES = {"requests", "failures", "errorRate", "failureKinds", "p50Ms", "p95Ms", "p99Ms"}


# ---------------------------------------------------------------------- counting, rate, shape


def test_requests_counted_rate_achieved_and_json_shape(tiny: TinyServer, run_cli: Run) -> None:
    result = _load(run_cli, tiny.url)
    assert result.code == 0, result.err
    assert result.err == ""
    report = result.json()
    assert set(report) == {
        "target", "rps", "durationSeconds", "timeoutSeconds", "connections", "plannedRequests", "totals", "perSecond",
    }  # fmt: skip
    assert "batches" not in report  # only with --scale-set
    totals = report["totals"]
    assert set(totals) == FIGURES | {"succeeded", "elapsedSeconds", "achievedRps", "maxSchedulerLagMs"}
    assert report["plannedRequests"] == 200 and totals["requests"] == 200 == tiny.hits
    assert (totals["failures"], totals["succeeded"], totals["failureKinds"]) == (0, 200, {})
    assert 180 <= totals["achievedRps"] <= 220
    assert 0.9 <= totals["elapsedSeconds"] <= 2.0
    assert 0 < totals["p50Ms"] <= totals["p95Ms"] <= totals["p99Ms"] < 1000
    assert [row["second"] for row in report["perSecond"]] == [0]
    assert set(report["perSecond"][0]) == FIGURES | {"second"}
    assert report["perSecond"][0]["requests"] == 200

    table = run_cli("load", "--target", tiny.url, "--rps", "100", "--duration", "0.2")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].startswith(f"load: {tiny.url}") and "requests 20 (planned 20), failed 0" in lines[1]
    assert lines[4].split()[:3] == ["Second", "Requests", "Failed"] and lines[6].split()[:3] == ["0", "20", "0"]


def test_failures_classified_by_window_and_max_failures(tiny: TinyServer, run_cli: Run) -> None:
    windows = [(0.2, "ok"), (0.4, "500"), (0.6, "slow"), (0.8, "reset")]  # then ok again

    def behaviour(t: float) -> str:
        return next((answer for end, answer in windows if t < end), "ok")

    tiny.behaviour = behaviour
    # 30 requests wait out each 0.15 s timeout at 200/s: 64 connections keep "saturated" out of this test
    result = _load(run_cli, tiny.url, "--timeout", "0.15", "--connections", "64", "--max-failures", "5")
    assert result.code == 1
    assert result.err.splitlines()[-1].startswith("(TooManyFailures) ")
    totals = result.json()["totals"]
    kinds = totals["failureKinds"]
    assert totals["requests"] == 200 and totals["failures"] == sum(kinds.values())
    assert set(kinds) <= {"http_500", "timeout", "reset"}, kinds
    # 40 requests fall in each 0.2 s window at 200/s; the edges move by a request or two (first request, latency)
    assert 35 <= kinds["http_500"] <= 45, kinds
    assert 30 <= kinds["timeout"] <= 45, kinds
    assert 30 <= kinds["reset"] <= 45, kinds
    assert totals["succeeded"] >= 75

    refused = _load(run_cli, f"http://127.0.0.1:{_free_port()}/", rps="50", duration="0.2")
    assert refused.code == 0, refused.err  # the run completed: failures are the report, not the exit code
    assert refused.json()["totals"]["failureKinds"] == {"refused": 10}
    assert refused.json()["totals"]["p99Ms"] is None  # no answers, no latency


def test_busy_connections_make_saturated_failures(tiny: TinyServer, run_cli: Run) -> None:
    tiny.behaviour = lambda t: "slow"
    tiny.slow_seconds = 0.3
    result = _load(run_cli, tiny.url, "--connections", "2", "--timeout", "2", rps="40", duration="0.5")
    assert result.code == 0, result.err
    totals = result.json()["totals"]
    assert totals["requests"] == 20
    assert totals["failureKinds"]["saturated"] >= 10
    assert totals["succeeded"] + totals["failureKinds"]["saturated"] == 20
    assert tiny.hits == totals["succeeded"] <= 6  # never more than two in flight, each 0.3 s


# ---------------------------------------------------------------------- refusals and bounds


@pytest.mark.parametrize(
    "target",
    ["http://192.0.2.10/", "https://10.1.2.3:8443/health", "http://[2001:db8::1]:80/", "http://0.0.0.0:80/"],
)
def test_non_loopback_targets_are_refused(run_cli: Run, target: str) -> None:
    result = _load(run_cli, target)
    assert result.code == 2 and result.out == ""
    assert len(result.err.splitlines()) == 1 and result.err.startswith("(NonLoopbackTarget) "), result.err


@pytest.mark.parametrize(
    "argv",
    [
        ["--target", "ftp://127.0.0.1/", "--rps", "1", "--duration", "1"],
        ["--target", "http://127.0.0.1/", "--rps", "5001", "--duration", "1"],
        ["--target", "http://127.0.0.1/", "--rps", "0", "--duration", "1"],
        ["--target", "http://127.0.0.1/", "--rps", "10", "--duration", "3601"],
        ["--target", "http://127.0.0.1/", "--rps", "10", "--duration", "2h"],
        ["--target", "http://127.0.0.1/", "--rps", "0.5", "--duration", "1"],
        ["--target", "http://127.0.0.1/", "--rps", "10", "--duration", "1", "--connections", "0"],
        ["--target", "http://127.0.0.1/", "--rps", "10", "--duration", "1", "-g", "rg"],
    ],
)
def test_usage_errors_exit_2_in_one_line(run_cli: Run, argv: list[str]) -> None:
    result = run_cli("load", *argv)
    assert result.code == 2 and result.out == ""
    assert len(result.err.splitlines()) == 1, result.err


def test_target_checks_and_durations() -> None:
    checked = load.check_target("http://LOCALHOST:8080/a/b?c=d#frag")
    assert checked.addresses and all(load.is_loopback(a) for a in checked.addresses)
    assert checked.path == "/a/b?c=d"
    assert b"Host: localhost:8080\r\n" in checked.request_bytes()
    assert load.check_target("https://[::1]/").addresses == ("::1",)
    assert load.is_loopback("127.8.9.10") and load.is_loopback("::ffff:127.0.0.1")
    assert not load.is_loopback("::ffff:10.0.0.1") and not load.is_loopback("not-an-ip")
    spelled = ("30", "1.5", "500ms", "2m", "1h", "PT1M30S")
    assert [load.seconds_value(t) for t in spelled] == [30, 1.5, 0.5, 120, 3600, 90]
    assert load.planned_requests(200, 1) == 200 and load.planned_requests(0.1, 3 * 10) == 3


def _read(raw: bytes, *, eof: bool = True) -> tuple[int, bool]:
    async def go() -> tuple[int, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        if eof:
            reader.feed_eof()
        return await load.read_response(reader)

    return asyncio.run(go())


def test_responses_are_read_whole_and_keep_alive_follows_the_headers() -> None:
    assert _read(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", eof=False) == (200, True)
    chunked = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    assert _read(chunked, eof=False) == (503, True)
    assert _read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", eof=False) == (204, True)
    assert _read(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") == (200, False)
    assert _read(b"HTTP/1.0 200 OK\r\n\r\nbody until the end") == (200, False)
    with pytest.raises(load.ClosedError) as closed:
        _read(b"")
    assert not closed.value.answered  # nothing came back: a kept-alive connection the server had closed
    with pytest.raises(load.ClosedError) as cut:
        _read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    assert cut.value.answered
    with pytest.raises(load.ProtocolError):
        _read(b"SSH-2.0-OpenSSH\r\n")


# ---------------------------------------------------------------------- per rollout batch, with a live server


def test_requests_are_attributed_to_rollout_batches(scaleset: Run, live_server: LiveServer, tiny: TinyServer) -> None:
    assert scaleset("group", "create", "-n", "cli-load", "-l", "westus", "-o", "none").code == 0
    created = scaleset(
        "vmss", "create", "-g", "cli-load", "-n", "web", "--image", "Contoso:app:stable:1.0.0",
        "--instance-count", "4", "--upgrade-policy-mode", "Rolling", "--health-extension",
        "--max-batch-instance-percent", "25", "--pause-time-between-batches", "PT2M", "-o", "none",
    )  # fmt: skip
    assert created.code == 0, created.err

    codes: list[int] = []

    def update() -> None:  # prints nothing (--no-wait, -o none): the load's output stays its own
        codes.append(main(["vmss", "update", "-g", "cli-load", "-n", "web", "--set", f"{IMAGE_SET}=1.1.0",
                           "--no-wait", "-o", "none"]))  # fmt: skip

    later = threading.Timer(0.8, update)
    later.start()
    try:
        result = scaleset(
            "load", "--target", tiny.url, "--rps", "200", "--duration", "3", "--scale-set", "-g", "cli-load",
            "-n", "web", "-o", "json",
        )  # fmt: skip
    finally:
        later.join(timeout=30)
    assert codes == [0] and result.code == 0, result.err
    report = result.json()
    assert report["scaleSet"] == load.scale_set_id(load.SUBSCRIPTION, "cli-load", "web")
    assert report["clock"]["timeScale"] == 600 and report["events"] == {"complete": True, "readErrors": 0}
    rows = report["batches"]
    totals = report["totals"]
    assert sum(row["requests"] for row in rows) == totals["requests"] == 600
    assert sum(row["failures"] for row in rows) == totals["failures"] == 0

    phases = [row["phase"] for row in rows]
    assert phases[0] == "before rollout" and rows[0]["requests"] > 0
    batches = [row for row in rows if row["phase"].startswith("batch ")]
    assert [row["batch"] for row in batches] == [1, 2, 3, 4]
    assert [row["instanceIds"] for row in batches] == [["0"], ["1"], ["2"], ["3"]]
    assert len({row["rolloutId"] for row in batches}) == 1 and batches[0]["outcome"] == "Completed"
    for row in batches:
        assert set(row) >= FIGURES | {"phase", "batch", "instanceIds", "start", "end", "fromSecond", "toSecond"}
        assert 0 < row["fromSecond"] < row["toSecond"] < 3
        # open loop: a request every 5 ms, so a batch holds the requests due while it ran
        expected = (row["toSecond"] - row["fromSecond"]) * 200
        assert row["requests"] > 0 and abs(row["requests"] - expected) <= 2, row
    starts = [row["fromSecond"] for row in batches]
    assert starts == sorted(starts)
    assert "between batches" in phases and phases[-1] == "after rollout"

    # https (not verified: it is this machine): the server's open OpenAPI route
    https = scaleset("load", "--target", f"{live_server.base}/_scaleset/openapi.json", "--rps", "20",
                     "--duration", "0.5", "-o", "json")  # fmt: skip
    assert https.code == 0, https.err
    assert json.loads(https.out)["totals"]["succeeded"] == 10

    missing = scaleset("load", "--target", tiny.url, "--rps", "10", "--duration", "0.1", "--scale-set",
                       "-g", "cli-load", "-n", "nope")  # fmt: skip
    assert missing.code == 3 and missing.err.startswith("(ResourceNotFound) "), missing.err
