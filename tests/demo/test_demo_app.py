"""The demo application as a real process on a real socket, in each of its modes.

Each process listens on a port the kernel picks (``--port 0``); the test reads the port from its start line. Every
wait is bounded (50 ms steps up to a deadline) and the broken modes use short delays, so the module takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def port(self, timeout: float = 5.0) -> int:
        def found() -> int | None:
            match = LISTENING.search(self.output())
            if match is None and self.process.poll() is not None:
                raise AssertionError(f"the demo exited with {self.process.returncode}: {self.output()}")
            return int(match.group(1)) if match else None

        return int(wait_for(found, timeout=timeout, what="the demo to listen"))

    def get(self, path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.port()}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def terminate(self, timeout: float = 2.0) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the exit took."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - began


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    started: list[Demo] = []

    def run(*flags: str, version: str = "1.0.0", instance_id: str = "3") -> Demo:
        log = tmp_path / f"demo-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scaleset.demo.app",
                    "--port",
                    "0",
                    "--version",
                    version,
                    "--instance-id",
                    instance_id,
                    *flags,
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        demo = Demo(process, log, time.monotonic())
        started.append(demo)
        return demo

    yield run
    for demo in started:  # no orphans, whatever the test did
        if demo.process.poll() is None:
            demo.process.kill()
        demo.process.wait(timeout=5)


def test_healthy_answers_traffic_and_health_and_stops_on_sigterm(start: Callable[..., Demo], tmp_path: Path) -> None:
    os_dir, data_dir = tmp_path / "os", tmp_path / "data"
    os_dir.mkdir()
    (os_dir / "customdata").write_bytes(b"#cloud-config\n")
    demo = start("--zone", "2", "--os-dir", str(os_dir), "--data-dir", str(data_dir), version="1.1.0")
    demo.port()
    assert time.monotonic() - demo.started < 3.0  # well under 0.5 s unloaded; generous for a busy CI machine
    status, body = demo.get("/")
    assert status == 200
    assert body | {"pid": 0} == {
        "version": "1.1.0",
        "instanceId": "3",
        "zone": "2",
        "mode": "healthy",
        "pid": 0,
        "starts": 1,
    }
    assert demo.get("/health") == (200, {"ApplicationHealthState": "Healthy"})
    assert demo.get("/health?probe=1") == (200, {"ApplicationHealthState": "Healthy"})
    assert demo.get("/nope")[0] == 404
    code, took = demo.terminate()
    assert code == 0 and took < 2.0
    output = demo.output()
    assert "starting: mode healthy zone 2" in output
    assert "customData: 14 bytes" in output
    assert "stopping (SIGTERM)" in output

    again = start("--os-dir", str(tmp_path / "fresh-os"), "--data-dir", str(data_dir))
    assert again.get("/")[1]["starts"] == 2  # the data dir outlives the process; the OS dir is new
    assert "customData: none" in again.output()
    assert again.terminate()[0] == 0


def test_never_healthy_fails_health_and_traffic(start: Callable[..., Demo]) -> None:
    demo = start("--mode", "never", version="3.0.0")
    assert demo.get("/health") == (500, {"ApplicationHealthState": "Unhealthy"})
    status, body = demo.get("/")
    assert status == 500 and body["version"] == "3.0.0"
    assert demo.terminate()[0] == 0


def test_crash_is_healthy_then_exits(start: Callable[..., Demo]) -> None:
    demo = start("--mode", "crash", "--crash-after", "0.6", version="3.1.0")
    assert demo.get("/health") == (200, {"ApplicationHealthState": "Healthy"})
    wait_for(lambda: demo.process.poll() is not None, timeout=5.0, what="the crash")
    assert demo.process.returncode == 1
    assert "crashing on purpose" in demo.output()


def test_slow_listens_only_after_the_start_delay(start: Callable[..., Demo]) -> None:
    demo = start("--mode", "slow", "--start-delay", "1.0", version="3.2.0")
    wait_for(lambda: "waiting 1 s before listening" in demo.output(), timeout=5.0, what="the start line")
    assert LISTENING.search(demo.output()) is None
    demo.port()
    assert time.monotonic() - demo.started >= 1.0
    assert demo.get("/health") == (200, {"ApplicationHealthState": "Healthy"})
    assert demo.terminate()[0] == 0


def test_sigterm_during_the_start_delay_exits_promptly(start: Callable[..., Demo]) -> None:
    demo = start("--mode", "slow", "--start-delay", "30", version="3.2.0")
    wait_for(lambda: "before listening" in demo.output(), timeout=5.0, what="the start line")
    code, took = demo.terminate()
    assert code == 0 and took < 2.0


def test_unknown_answers_200_without_a_health_state(start: Callable[..., Demo]) -> None:
    demo = start("--mode", "unknown", version="3.3.0")
    status, body = demo.get("/health")
    assert status == 200 and "ApplicationHealthState" not in body
    assert demo.get("/")[0] == 200
    assert demo.terminate()[0] == 0


def test_a_port_in_use_is_a_clean_failure(start: Callable[..., Demo]) -> None:
    first = start()
    port = first.port()
    clash = subprocess.run(
        [sys.executable, "-m", "scaleset.demo.app", "--port", str(port), "--version", "1.0.0", "--instance-id", "9"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    assert clash.returncode == 1
    assert b"cannot listen on 127.0.0.1:" in clash.stdout
    assert first.terminate()[0] == 0


def test_the_demo_imports_only_the_standard_library() -> None:
    probe = (
        "import sys; before = set(sys.modules); import scaleset.demo.app; "
        "new = set(sys.modules) - before; "
        "print(' '.join(sorted(m for m in new if m.split('.')[0] not in sys.stdlib_module_names)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=10, check=True)
    assert loaded.stdout.split() == ["scaleset", "scaleset.demo", "scaleset.demo.app"]
