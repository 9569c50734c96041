"""A live ``scaleset serve --backend process``: every instance a real local process, real health probes, a real TCP
load balancer per scale set; and what the tests need around it (raw ARM calls, a load loop, a process scan).

Real time passes here. The Application Health extension probes at most every 5 s (``intervalInSeconds`` is
validated to 5..60), so an instance turns Healthy about 5 s after it starts: its first probe, sent as the process
is spawned, finds nothing listening yet, and the second one answers. ``--health-wait PT8S`` gives an upgraded
instance 8 s to turn Healthy, so a broken release fails its batch quickly. Every wait has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.mgmt.compute import ComputeManagementClient
from tests.api.conftest import Recorder, Server, start_server

from scaleset.domain.catalogue import DEMO_COMMAND

API = "2024-11-01"
HEALTH_WAIT = "PT8S"
DRAIN_SECONDS = 0.5
PYTHON = sys.executable
STEP = 0.1  # the longest sleep of any poll
OPERATION_STATES = ("Succeeded", "Failed", "Canceled")
DEMO_IMAGE = {"publisher": "scaleset", "offer": "demo", "sku": "app"}
TEST_IMAGE = {"publisher": "tests", "offer": "process", "sku": "app"}

# ---------------------------------------------------------------------- waiting


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, step: float = STEP) -> Any:
    """Poll ``condition`` until it returns something truthy (and return it), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(step, STEP))


# ---------------------------------------------------------------------- the server


def start_process_server(
    data_dir: Path, *, port: int | None = None, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], Server]:
    """``scaleset serve --backend process`` on a free loopback port (or ``port``), logging to ``serve.log``."""
    return start_server(
        data_dir,
        port=port,
        backend="process",
        extra=("--health-wait", HEALTH_WAIT, "--drain-seconds", str(DRAIN_SECONDS), *extra),
    )


def server_log(data_dir: Path) -> str:
    try:
        return (data_dir / "serve.log").read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"


def terminate(process: subprocess.Popen[bytes], *, timeout: float = 20.0) -> int:
    """SIGTERM and wait (bounded); a server that does not stop is killed and the test fails."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(process)
        raise


def kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


# ---------------------------------------------------------------------- the ARM API, raw


@dataclass
class Api:
    """Raw ARM and ``/_scaleset`` calls with a bearer token; every call has a timeout."""

    server: Server
    http: requests.Session = field(init=False)

    def __post_init__(self) -> None:
        self.http = self.server.session()

    def path(self, group: str, name: str | None = None) -> str:
        return self.server.group_path(group) if name is None else self.server.vmss_path(group, name)

    def call(self, method: str, path: str, body: Any = None, *, api: str | None = API) -> requests.Response:
        url = self.server.url(path, api) if path.startswith("/") else path
        return self.http.request(method, url, json=body, timeout=10)

    def ok(self, method: str, path: str, body: Any = None, *, api: str | None = API) -> Any:
        answer = self.call(method, path, body, api=api)
        assert answer.status_code < 300, (method, path, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def group(self, group: str) -> None:
        self.ok("PUT", self.path(group), {"location": "westus"})

    def publish(self, version: str, command: list[str], **more: Any) -> dict[str, Any]:
        where = "/_scaleset/images/{publisher}/{offer}/{sku}/".format(**TEST_IMAGE) + version
        return dict(self.ok("PUT", where, {"command": command, **more}, api=None))

    def start_operation(self, method: str, path: str, body: Any = None) -> str:
        """Start a long-running operation; its Azure-AsyncOperation URL."""
        answer = self.call(method, path, body)
        assert answer.status_code in (200, 201, 202), (method, path, answer.status_code, answer.text)
        return str(answer.headers["Azure-AsyncOperation"])

    def operation(self, url: str) -> dict[str, Any]:
        return dict(self.ok("GET", url))

    def finish(self, url: str, *, timeout: float) -> dict[str, Any]:
        """Wait for an operation to end; its last status document."""
        return dict(
            wait_for(
                lambda: (doc := self.operation(url))["status"] in OPERATION_STATES and doc,
                timeout=timeout,
                what=f"operation {url}",
            )
        )

    def create(self, group: str, name: str, body: dict[str, Any]) -> str:
        return self.start_operation("PUT", self.path(group, name), body)

    def vms(self, group: str, name: str) -> list[dict[str, Any]]:
        answer = self.call("GET", self.path(group, name) + "/virtualMachines?$expand=instanceView&api-version=" + API)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])

    def latest(self, group: str, name: str) -> dict[str, Any]:
        return dict(self.ok("GET", self.path(group, name) + "/rollingUpgrades/latest"))

    def balancer(self, group: str, name: str) -> dict[str, Any]:
        wanted = self.path(group, name).lower()
        for entry in self.ok("GET", "/_scaleset/loadbalancers", api=None)["value"]:
            if str(entry["scaleSet"]).lower() == wanted:
                return dict(entry)
        raise AssertionError(f"no load balancer for {wanted}")

    def events(self, group: str, name: str) -> list[dict[str, Any]]:
        scale_set = self.path(group, name)
        answer = self.http.get(f"{self.server.base}/_scaleset/events", params={"scaleSet": scale_set}, timeout=10)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])


def vm_health(vm: dict[str, Any]) -> str | None:
    """``HealthState/healthy`` and so on, or None while the instance view has no vmHealth."""
    status = ((vm["properties"].get("instanceView") or {}).get("vmHealth") or {}).get("status") or {}
    code = status.get("code")
    return str(code) if code else None


def vm_statuses(vm: dict[str, Any]) -> list[dict[str, Any]]:
    return list((vm["properties"].get("instanceView") or {}).get("statuses") or [])


def vm_version(vm: dict[str, Any]) -> str:
    return str(vm["properties"]["storageProfile"]["imageReference"].get("exactVersion"))


def all_healthy(api: Api, group: str, name: str, count: int) -> list[dict[str, Any]] | None:
    """The instances, when there are ``count`` and every one is Succeeded, running and Healthy."""
    vms = api.vms(group, name)
    good = [
        vm
        for vm in vms
        if vm["properties"]["provisioningState"] == "Succeeded"
        and vm_health(vm) == "HealthState/healthy"
        and any(s["code"] == "PowerState/running" for s in vm_statuses(vm))
    ]
    return vms if len(vms) == count and len(good) == count else None


# ---------------------------------------------------------------------- bodies


def health_extension(*, grace: int = 10) -> dict[str, Any]:
    """Rich Application Health on ``/health``, as fast as validation allows: a probe every 5 s, one settles."""
    return {
        "name": "HealthExtension",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "ApplicationHealthLinux",
            "typeHandlerVersion": "2.0",
            "settings": {
                "protocol": "http",
                "port": 8080,
                "requestPath": "/health",
                "intervalInSeconds": 5,
                "numberOfProbes": 1,
                "gracePeriod": grace,
            },
        },
    }


def custom_script(command: str, name: str = "setup") -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "publisher": "Microsoft.Azure.Extensions",
            "type": "CustomScript",
            "typeHandlerVersion": "2.1",
            "settings": {"commandToExecute": command},
        },
    }


def scale_set(
    *,
    capacity: int,
    version: str = "1.0.0",
    image: dict[str, str] | None = None,
    rolling: dict[str, Any] | None = None,
    extensions: list[dict[str, Any]] | None = None,
    custom_data: bytes | None = None,
    mode: str = "Rolling",
) -> dict[str, Any]:
    os_profile: dict[str, Any] = {"computerNamePrefix": "proc", "adminUsername": "azureuser"}
    if custom_data is not None:
        os_profile["customData"] = base64.b64encode(custom_data).decode()
    return {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
        "properties": {
            "upgradePolicy": {"mode": mode, **({"rollingUpgradePolicy": rolling} if rolling is not None else {})},
            "virtualMachineProfile": {
                "osProfile": os_profile,
                "storageProfile": {"imageReference": {**(image or DEMO_IMAGE), "version": version}},
                "extensionProfile": {"extensions": [health_extension()] if extensions is None else extensions},
            },
        },
    }


def image_patch(version: str) -> dict[str, Any]:
    return {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": version}}}}}


def demo_command(*flags: str) -> list[str]:
    """The demo application's command line with its placeholders, and ``flags`` (e.g. ``--mode crash``)."""
    return [*DEMO_COMMAND, *flags]


# ---------------------------------------------------------------------- instance directories and processes


def instance_home(data_dir: Path, name: str, instance_id: str | int) -> Path:
    """``DATA_DIR/processes/instances/{set}/{id}`` of the scale set called ``name`` (its folder ends with it)."""
    root = data_dir / "processes" / "instances"
    found = [d for d in root.iterdir() if d.name.lower().endswith(f"virtualmachinescalesets_{name.lower()}")]
    assert len(found) == 1, (name, sorted(d.name for d in root.iterdir()))
    return found[0] / str(instance_id)


@dataclass(frozen=True)
class Found:
    pid: int
    marker: str
    cwd: str


def our_processes(data_dir: Path) -> list[Found]:
    """Live (not zombie) processes that carry the process backend's ``SCALESET_INSTANCE=`` marker and run in a
    directory under ``data_dir``: the instances (and extension scripts) of that server."""
    root = str(data_dir.resolve())
    out: list[Found] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        marker = next((v for v in environ if v.startswith(b"SCALESET_INSTANCE=")), None)
        if marker is not None and (cwd == root or cwd.startswith(root + os.sep)):
            out.append(Found(int(entry.name), marker.decode(errors="replace").split("=", 1)[1], cwd))
    return out


def kill_leftovers(data_dir: Path) -> None:
    """After a test: never leave an instance of this data dir running (whatever the test found)."""
    for found in our_processes(data_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(found.pid, signal.SIGKILL)


# ---------------------------------------------------------------------- traffic


def get(port: int, *, timeout: float = 2.0) -> tuple[int, bytes]:
    """One ``GET /`` on a connection of its own (HTTP/1.0, as the demo application speaks): status and body.

    Raises OSError (refused, reset, timed out) or ValueError (no status line, a response cut short)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, sep, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if not sep or len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP response: {raw[:80]!r}")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        None,
    )
    if length is not None and len(body) != length:
        raise ValueError(f"body cut short: {len(body)} of {length} bytes")
    return int(parts[1]), body


def answering(port: int, requests: int) -> set[str]:
    """The instance ids that answered ``requests`` GETs through a load balancer (failed requests count for none)."""
    seen: set[str] = set()
    for _ in range(requests):
        try:
            status, body = get(port, timeout=1)
        except (OSError, ValueError):
            continue
        if status == 200:
            seen.add(str(json.loads(body)["instanceId"]))
    return seen


@dataclass
class Load:
    """A bounded load loop on its own threads: ``rps`` requests a second to ``port``, one per connection, each
    failure counted (connect error, reset, timeout, cut short, non-2xx)."""

    port: int
    rps: float = 40.0
    workers: int = 4
    timeout: float = 2.0
    sent: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    instances: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _started: float = 0.0

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, args=(index,), name=f"load-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 2)
        assert not any(t.is_alive() for t in self._threads), "the load loop did not stop"

    def _work(self, index: int) -> None:
        period = self.workers / self.rps
        due = time.monotonic() + index * period / self.workers
        while not self._stop.is_set():
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            due = max(due + period, time.monotonic() - period)  # a late request is not made up in a burst
            self._one()

    def _one(self) -> None:
        at = time.monotonic() - self._started
        try:
            status, body = get(self.port, timeout=self.timeout)
        except (OSError, ValueError) as exc:
            self._count(at, f"{type(exc).__name__}: {exc}", None)
            return
        if not 200 <= status < 300:
            self._count(at, f"HTTP {status}", None)
            return
        self._count(at, None, body)

    def _count(self, at: float, failure: str | None, body: bytes | None) -> None:
        answer = json.loads(body) if body else {}
        with self._lock:
            self.sent += 1
            if failure is not None:
                self.failures.append((round(at, 2), failure))
            else:
                self.instances[str(answer.get("instanceId"))] += 1
                self.versions[str(answer.get("version"))] += 1

    def summary(self) -> str:
        return (
            f"{self.sent} sent, {len(self.failures)} failed {self.failures[:10]}, instances {dict(self.instances)}, "
            f"versions {dict(self.versions)}"
        )


# ---------------------------------------------------------------------- fixtures


@dataclass
class Live:
    process: subprocess.Popen[bytes]
    server: Server
    api: Api

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir


@contextlib.contextmanager
def serving(data_dir: Path, extra: tuple[str, ...] = ()) -> Iterator[tuple[subprocess.Popen[bytes], Server]]:
    """A process-backend server; when done, it must exit 0 and leave no instance process behind."""
    process, server = start_process_server(data_dir, extra=extra)
    try:
        yield process, server
    finally:
        try:
            code = terminate(process)
            left = our_processes(data_dir)
        finally:
            kill_leftovers(data_dir)
        assert code == 0, server_log(data_dir)
        assert left == [], "instances outlived the server"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One process-backend server shared by a module's tests (each test uses scale sets of its own)."""
    with serving(tmp_path_factory.mktemp("process-serve")) as (process, server):
        yield Live(process, server, Api(server))


@dataclass
class Rig:
    """A module's own process-backend server, with an SDK client whose answers a recorder checks."""

    server: Server
    api: Api
    recorder: Recorder
    compute: ComputeManagementClient

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir


@contextlib.contextmanager
def rig_serving(data_dir: Path, extra: tuple[str, ...]) -> Iterator[Rig]:
    with serving(data_dir, extra) as (_process, server):
        recorder = Recorder()
        yield Rig(server, Api(server), recorder, server.compute(recorder))


def checked(rig: Rig) -> Iterator[ComputeManagementClient]:
    """The rig's SDK client for one test; every answer it got must pass the official specification."""
    rig.recorder.seen.clear()
    yield rig.compute
    problems = rig.recorder.problems()
    rig.recorder.seen.clear()
    assert problems == [], "\n".join(problems)
