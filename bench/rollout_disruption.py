"""What a rolling upgrade of real processes costs in failed requests, and how far its wall time is from the floor.

Setup: ``scaleset serve --backend process`` (a temporary data dir, a free loopback port, ``--health-wait`` and
``--drain-seconds`` below) with two identical fleets, ``bench/a`` and ``bench/b``: 6 instances of the built-in demo
application ``scaleset:demo:app`` 1.0.0, each fleet behind its own TCP load balancer; the Application Health
extension 2.0 (rich) over http on ``/health`` with ``intervalInSeconds`` 5 and ``numberOfProbes`` 1 (``gracePeriod``
left to its default, interval x probes); a Rolling policy with ``maxBatchInstancePercent`` 20 (floor(6 x 20%) = 1
instance per batch, so 6 batches), ``pauseTimeBetweenBatches`` ``--pause`` seconds,
``rollbackFailedInstancesOnPolicyBreach`` true, the unhealthy thresholds at their defaults (20%).

Each rollout runs under steady open-loop load through the fleet's load balancer: ``scaleset load --target <lb url>
--rps R --duration D --connections C --scale-set -g bench -n <fleet> -o json`` as a subprocess, started before the
image change, its duration sized from a generous estimate of the rollout; the bench checks that the load was
sending before the rollout started and still after it ended (else the run fails: raise ``--margin``).

(a) ``bench/a`` 1.0.0 -> 1.1.0: requests, failed requests (must be 0), error rate, one row per batch (and the
    phases around them) from the load's report.
(b) ``bench/b`` 1.0.0 -> 3.0.0 (never healthy): the rollout must be Faulted after batch 1, the failed instance
    rolled back, and every instance on 1.0.0 by the VM list (``storageProfile.imageReference.exactVersion``);
    the failed-request count and share, and the rows for batch 1 and the rollback.
(c) The orchestration overhead of rollout (a): its wall time over its physical floor (target at most 1.15).

How (c) is measured. Every time is a wall-clock epoch second on this machine; the server runs at time scale 1, so
the times of its activity log are wall times too.

* The activity log (``GET /_scaleset/events``): ``rolloutStarted`` R0, per batch i ``batchStarted`` S_i and
  ``batchCompleted`` C_i (the pass that judged every instance of the batch healthy), ``pause`` events, and
  ``rolloutCompleted`` R1.
* A port watcher: the bench tries a TCP connect to every instance's own port (the load balancer's backend
  address) every 20 ms. L_i, the moment the batch's new process listens: the first accepted connect after one was
  refused after S_i (an upper bound, 20 ms resolution). Cross-checked with the application's own stamp: the demo
  application appends ``time.time()`` to ``{data_dir}/starts`` just before it binds (and logs ``listening on``
  to ``logs/app.log``); the bench fails if the two disagree by more than 0.25 s.
* A pool watcher: the bench reads ``GET /_scaleset/loadbalancers`` every 100 ms. The process backend puts an
  instance back in its pool within 0.1 s of its prober reading Healthy, so H_i, the first reading after L_i that
  has the instance in the pool, bounds the moment the probe read Healthy from above (as C_i does).

Per batch i (of n), with P the policy's pause (the engine records one between batches, none after the last):

    start_i  = L_i - S_i                 draining the old instance, stopping it, spawning the new one, up to listening
    detect_i = min(H_i, C_i) - L_i       listening -> a probe reads Healthy (at most interval x numberOfProbes plus
                                         the watchers' resolution; the bench fails beyond that)
    pause_i  = P for i < n, 0 for i = n

    floor = sum_i (start_i + detect_i + pause_i)
    wall  = R1 - R0
    ratio = wall / floor                 target <= 1.15

L_i only splits a batch between start and detect: start_i + detect_i = min(H_i, C_i) - S_i whatever L_i is.
Whatever else the rollout took is orchestration, printed per part so that it adds up to ``wall - floor`` exactly:
``lead`` = S_1 - R0, ``judge_i`` = C_i - min(H_i, C_i) (Healthy -> batch judged), ``gap_i`` = S_{i+1} - C_i - P
(the pause's overrun) and ``tail`` = R1 - C_n.

The profile printed with it (diagnostics, not part of the ratio): per batch the timeline batchStarted -> left the
pool -> port refused (``down``: the old process is gone) -> ``spawn`` (the new process's start time in
``/proc/<pid>/stat``, 10 ms resolution, pid from the ``starts`` record) -> app stamp -> listening -> ``tick`` -> judged
-> back in the pool -> next batchStarted, with start split into ``stop`` = down - S_i and ``boot`` = L_i - down.
``tick`` is inferred, not observed: the prober sends its first probe as the process is spawned and one every
interval after, so the probe that reads Healthy is the first tick after L_i (plus ``numberOfProbes - 1``); ``tick ->
judged`` estimates the engine's share inside detect_i, which the 0.1 s pool watcher is too coarse to see.

Loopback only; bounded: every wait has a deadline, the load is ``floor(rps x duration)`` requests, and the whole
run takes about 100 s on a 2-CPU machine (well under five minutes). Exit 0 when every check holds and the target
is met, 1 otherwise (each failed check printed as ``CHECK FAILED: ...``).

    python bench/rollout_disruption.py [--rps 100] [--pause 2] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests

SUB = "5ca1e5e7-5ca1-45e7-a000-000000000001"
TENANT = "5ca1e5e7-5ca1-45e7-a000-0000000000aa"
API = "api-version=2024-11-01"
GROUP = "bench"
FLEET = 6
BATCH_PERCENT = 20
PROBE_INTERVAL = 5
PROBES = 1
DEMO = {"publisher": "scaleset", "offer": "demo", "sku": "app"}
OLD, NEW, BROKEN = "1.0.0", "1.1.0", "3.0.0"
TARGET_RATIO = 1.15

PORT_STEP = 0.02  # the port watcher's period
POOL_STEP = 0.1  # the pool watcher's period
STAMP_TOLERANCE = 0.25  # the app's own start stamp vs the port watcher's listening moment
DETECT_SLACK = 0.4  # watcher resolution and the pool keeper's 0.1 s cadence, on top of interval x probes
LEAD_SECONDS = 2.0  # load before the image change
BOOT_ALLOWANCE = 1.5  # per batch, on top of the probe interval, in the load's duration estimate
STEP = 0.1  # the longest sleep of any poll

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- waiting


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, step: float = STEP) -> T:
    """Poll ``condition`` until it returns something other than None or False, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


# ---------------------------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, *, health_wait: float, drain: float) -> tuple[subprocess.Popen[bytes], str]:
    """``scaleset serve --backend process`` on a free loopback port, its output in ``serve.log``."""
    port = free_port()
    with (data_dir / "serve.log").open("ab") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scaleset.main",
                "serve",
                "--backend",
                "process",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--health-wait",
                f"PT{health_wait:g}S",
                "--drain-seconds",
                f"{drain:g}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"scaleset serve exited {process.returncode}: {tail(data_dir / 'serve.log')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline:
                stop(process)
                raise RuntimeError("scaleset serve did not listen within 60 s") from None
            time.sleep(0.05)
    return process, f"https://127.0.0.1:{port}"


def stop(process: subprocess.Popen[Any], timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(none)"


class Api:
    """ARM and ``/_scaleset`` calls with the server's own CA and a bearer token; every call has a timeout.

    One instance per thread (a ``requests.Session`` is not thread-safe)."""

    def __init__(self, base: str, data_dir: Path, token: str | None = None) -> None:
        self.base = base
        self.data_dir = data_dir
        self.http = requests.Session()
        self.http.trust_env = False  # an ambient REQUESTS_CA_BUNDLE would override the server's CA
        self.http.verify = str(data_dir / "tls" / "ca.pem")
        if token is None:
            secret = (data_dir / "client-secret").read_text().strip()
            answer = self.http.post(
                f"{base}/{TENANT}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "bench",
                    "client_secret": secret,
                    "scope": "https://management.azure.com/.default",
                },
                timeout=30,
            )
            answer.raise_for_status()
            token = str(answer.json()["access_token"])
        self.token = token
        self.http.headers["Authorization"] = f"Bearer {token}"

    def clone(self) -> Api:
        return Api(self.base, self.data_dir, self.token)

    @staticmethod
    def set_path(name: str) -> str:
        return f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"

    def call(self, method: str, path: str, body: Any = None, *, arm: bool = True, **params: Any) -> Any:
        url = f"{self.base}{path}" + (f"?{API}" if arm else "")
        answer = self.http.request(method, url, json=body, params=params or None, timeout=30)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def events(self, name: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.call("GET", "/_scaleset/events", arm=False, scaleSet=self.set_path(name), after=after)
            out.extend(page["value"])
            if not page["value"]:
                return out
            after = int(page["next"])

    def balancer(self, name: str) -> dict[str, Any]:
        wanted = self.set_path(name).lower()
        for entry in self.call("GET", "/_scaleset/loadbalancers", arm=False)["value"]:
            if str(entry["scaleSet"]).lower() == wanted:
                return dict(entry)
        raise RuntimeError(f"no load balancer for {wanted}")

    def vms(self, name: str) -> list[dict[str, Any]]:
        path = self.set_path(name) + "/virtualMachines"
        answer = self.http.get(f"{self.base}{path}?$expand=instanceView&{API}", timeout=30)
        answer.raise_for_status()
        return list(answer.json()["value"])

    def latest(self, name: str) -> dict[str, Any]:
        return dict(self.call("GET", self.set_path(name) + "/rollingUpgrades/latest"))


def fleet_body() -> dict[str, Any]:
    health = {
        "name": "HealthExtension",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "ApplicationHealthLinux",
            "typeHandlerVersion": "2.0",
            "settings": {
                "protocol": "http",
                "port": 8080,
                "requestPath": "/health",
                "intervalInSeconds": PROBE_INTERVAL,
                "numberOfProbes": PROBES,
            },
        },
    }
    return {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": FLEET},
        "properties": {
            "upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": {}},  # filled in by create_fleets
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "bench", "adminUsername": "azureuser"},
                "storageProfile": {"imageReference": {**DEMO, "version": OLD}},
                "extensionProfile": {"extensions": [health]},
            },
        },
    }


def vm_version(vm: dict[str, Any]) -> str:
    return str(vm["properties"]["storageProfile"]["imageReference"].get("exactVersion"))


def vm_healthy(vm: dict[str, Any]) -> bool:
    view = vm["properties"].get("instanceView") or {}
    health = ((view.get("vmHealth") or {}).get("status") or {}).get("code")
    running = any(s.get("code") == "PowerState/running" for s in view.get("statuses") or [])
    return vm["properties"].get("provisioningState") == "Succeeded" and running and health == "HealthState/healthy"


def create_fleets(api: Api, names: list[str], pause: float) -> None:
    api.call("PUT", f"/subscriptions/{SUB}/resourceGroups/{GROUP}", {"location": "westus"})
    body = fleet_body()
    body["properties"]["upgradePolicy"]["rollingUpgradePolicy"] = {
        "maxBatchInstancePercent": BATCH_PERCENT,
        "pauseTimeBetweenBatches": f"PT{pause:g}S",
        "rollbackFailedInstancesOnPolicyBreach": True,
    }
    for name in names:
        api.call("PUT", api.set_path(name), body)
    for name in names:

        def ready(name: str = name) -> bool:
            vms = api.vms(name)
            return len(vms) == FLEET and all(vm_healthy(vm) and vm_version(vm) == OLD for vm in vms)

        wait_for(ready, timeout=90, what=f"{FLEET} healthy instances of {name}", step=0.5)


def instance_home(data_dir: Path, name: str, instance_id: int) -> Path:
    """``DATA_DIR/processes/instances/{set}/{id}``: the set's folder name ends with its id, ``/`` as ``_``."""
    root = data_dir / "processes" / "instances"
    suffix = f"virtualmachinescalesets_{name}".lower()
    found = [d for d in root.iterdir() if d.name.lower().endswith(suffix)]
    if len(found) != 1:
        raise RuntimeError(f"instance folders of {name}: {sorted(d.name for d in root.iterdir())}")
    return found[0] / str(instance_id)


def app_starts(data_dir: Path, name: str, instance_id: int) -> list[tuple[float, str, int]]:
    """The demo application's own start records: (``time.time()`` just before it binds, version, pid)."""
    path = instance_home(data_dir, name, instance_id) / "data" / "starts"
    out = []
    for line in path.read_text().splitlines():
        stamp, version, pid = line.split()
        out.append((float(stamp), version, int(pid)))
    return out


def process_started(pid: int) -> float | None:
    """When ``pid`` was forked, in epoch seconds (10 ms resolution): its ``/proc/<pid>/stat`` start time, in clock
    ticks since boot, over the boot time from ``/proc/uptime``. None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return None
    now = time.time()
    ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime; the fields after ")" start at 3
    return now - uptime + ticks / os.sysconf("SC_CLK_TCK")


def app_log_listening(data_dir: Path, name: str, instance_id: int, version: str) -> list[str]:
    """The ``listening on`` lines of ``version`` in the instance's app log (whole seconds, UTC)."""
    path = instance_home(data_dir, name, instance_id) / "logs" / "app.log"
    pattern = re.compile(rf"^(\S+) demo {re.escape(version)} instance {instance_id}: listening on ")
    return [m.group(1) for line in path.read_text(errors="replace").splitlines() if (m := pattern.match(line))]


# ---------------------------------------------------------------------------------------------- watchers


Transitions = dict[int, list[tuple[float, bool]]]


Sample = dict[int, tuple[float, bool]]  # instance id -> (when it was looked at, state)


class Watcher:
    """A daemon thread calling ``sample`` every ``period`` seconds; the changes of state are kept per instance as
    ``(time, state)``."""

    def __init__(self, name: str, period: float, sample: Callable[[], Sample]) -> None:
        self.period = period
        self.sample = sample
        self.changes: Transitions = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> Transitions:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.changes

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                states = self.sample()
            except Exception:
                self.errors += 1
            else:
                for key, (at, state) in states.items():
                    seen = self.changes.setdefault(key, [])
                    if not seen or seen[-1][1] != state:
                        seen.append((at, state))
            self._stop.wait(max(0.0, self.period - (time.monotonic() - began)))


def port_sampler(ports: dict[int, int]) -> Callable[[], Sample]:
    """Whether each instance's port accepts a TCP connection (refused on loopback is immediate), and when the
    connect returned."""

    def sample() -> Sample:
        states: Sample = {}
        for instance_id, port in ports.items():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    states[instance_id] = (time.time(), True)
            except OSError:
                states[instance_id] = (time.time(), False)
        return states

    return sample


def pool_sampler(api: Api, name: str) -> Callable[[], Sample]:
    """Whether each instance is in the load balancer's pool (the reading's time: the request's midpoint)."""

    def sample() -> Sample:
        before = time.time()
        entry = api.balancer(name)
        at = (before + time.time()) / 2
        pool = set(entry["pool"])
        return {int(key.rsplit("#", 1)[1]): (at, key in pool) for key in entry["stats"]["backends"]}

    return sample


def first_change(changes: list[tuple[float, bool]], state: bool, after: float) -> float | None:
    return next((at for at, value in changes if value is state and at > after), None)


# ---------------------------------------------------------------------------------------------- one rollout


@dataclass
class Run:
    """One rollout under load, and what the bench saw of it."""

    name: str
    version: str
    load: dict[str, Any]
    events: list[dict[str, Any]]
    ports: Transitions
    pool: Transitions
    vms: list[dict[str, Any]]
    latest: dict[str, Any]
    changed_at: float
    watcher_errors: int
    problems: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]


def rollout_over(events: list[dict[str, Any]]) -> bool:
    kinds = [e["kind"] for e in events]
    if "rolloutCompleted" in kinds or "rolloutCancelled" in kinds:
        return True
    if "rolloutFaulted" in kinds:
        return "rollbackStarted" not in kinds or "rollbackCompleted" in kinds
    return False


def run_rollout(
    api: Api, name: str, version: str, *, estimate: float, rps: float, connections: int, margin: float
) -> Run:
    """Start the load, change the image to ``version``, wait for the rollout (and any rollback) to end and for
    the load to finish; bounded by the estimate and ``margin``."""
    entry = api.balancer(name)
    url = str(entry["url"])
    ports = {int(k.rsplit("#", 1)[1]): int(b["port"]) for k, b in entry["stats"]["backends"].items()}
    history = len(api.events(name))
    accepted = int(entry["stats"]["accepted"])
    duration = math.ceil(LEAD_SECONDS + estimate + margin)
    command = [
        sys.executable,
        "-m",
        "scaleset.main",
        "load",
        "--target",
        url,
        "--rps",
        f"{rps:g}",
        "--duration",
        f"{duration}s",
        "--connections",
        str(connections),
        "--scale-set",
        "-g",
        GROUP,
        "-n",
        name,
        "--endpoint",
        api.base,
        "--data-dir",
        str(api.data_dir),
        "--output",
        "json",
    ]
    port_watch = Watcher(f"ports-{name}", PORT_STEP, port_sampler(ports)).start()
    pool_watch = Watcher(f"pool-{name}", POOL_STEP, pool_sampler(api.clone(), name)).start()
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(
            lambda: int(api.balancer(name)["stats"]["accepted"]) > accepted or load.poll() is not None,
            timeout=30,
            what=f"the load on {url} to start",
            step=0.05,
        )
        if load.poll() is not None:
            raise RuntimeError(f"scaleset load exited {load.returncode}: {load.communicate()[1].strip()[-2000:]}")
        time.sleep(LEAD_SECONDS)
        changed_at = time.time()
        patch = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": version}}}}}
        api.call("PATCH", api.set_path(name), patch)
        wait_for(
            lambda: rollout_over(api.events(name)[history:]),
            timeout=estimate + margin + 60,
            what=f"the rollout of {name} to {version} to end",
            step=0.25,
        )
        out, err = load.communicate(timeout=duration + 90)
    finally:
        if load.poll() is None:
            load.kill()
            load.communicate()
        ports_seen = port_watch.stop()
        pool_seen = pool_watch.stop()
    if load.returncode != 0:
        raise RuntimeError(f"scaleset load exited {load.returncode}: {err.strip()[-2000:]}")
    run = Run(
        name=name,
        version=version,
        load=json.loads(out),
        events=api.events(name)[history:],
        ports=ports_seen,
        pool=pool_seen,
        vms=api.vms(name),
        latest=api.latest(name),
        changed_at=changed_at,
        watcher_errors=port_watch.errors + pool_watch.errors,
    )
    if err.strip():
        run.problems.append(f"scaleset load said: {err.strip()[-500:]}")
    check_coverage(run)
    return run


def check_coverage(run: Run) -> None:
    """The load must have been sending before the rollout started and after it ended."""
    rows = run.load.get("batches") or []
    phases = {row["phase"]: row for row in rows}
    if not run.load.get("events", {}).get("complete", False):
        run.problems.append("the load could not read the whole activity log")
    if phases.get("before rollout", {}).get("requests", 0) == 0:
        run.problems.append("no request was sent before the rollout started")
    if phases.get("after rollout", {}).get("requests", 0) == 0:
        run.problems.append("the load ended before the rollout did: raise --margin")


# ---------------------------------------------------------------------------------------------- (c) the floor


@dataclass
class Batch:
    number: int
    instance: int
    started: float  # S_i
    completed: float  # C_i
    left_pool: float | None
    port_down: float | None
    listening: float | None  # L_i
    spawned: float | None  # the new process's fork (/proc)
    stamp: float | None  # the app's own start stamp
    in_pool: float | None  # H_i
    pause: float
    next_started: float | None

    @property
    def healthy_by(self) -> float:
        return self.completed if self.in_pool is None else min(self.in_pool, self.completed)

    @property
    def start(self) -> float:
        return (self.listening or math.nan) - self.started

    @property
    def detect(self) -> float:
        return self.healthy_by - (self.listening or math.nan)

    @property
    def judge(self) -> float:
        return self.completed - self.healthy_by

    @property
    def tick(self) -> float | None:
        """The probe that read Healthy, as the prober schedules probes (a diagnostic, not a measurement): the first
        at spawn, then one every interval; the first tick after listening, plus ``numberOfProbes - 1`` more."""
        if self.spawned is None or self.listening is None:
            return None
        ticks = max(1, math.ceil((self.listening - self.spawned) / PROBE_INTERVAL)) + PROBES - 1
        return self.spawned + ticks * PROBE_INTERVAL

    @property
    def gap(self) -> float:
        return 0.0 if self.next_started is None else self.next_started - self.completed - self.pause


@dataclass
class Overhead:
    batches: list[Batch]
    rollout_started: float
    rollout_completed: float

    @property
    def wall(self) -> float:
        return self.rollout_completed - self.rollout_started

    @property
    def floor(self) -> float:
        return sum(b.start + b.detect + b.pause for b in self.batches)

    @property
    def ratio(self) -> float:
        return self.wall / self.floor

    @property
    def lead(self) -> float:
        return self.batches[0].started - self.rollout_started

    @property
    def tail(self) -> float:
        return self.rollout_completed - self.batches[-1].completed


def measure(run: Run, data_dir: Path, pause: float) -> Overhead:
    started = {int(e["batch"]): e for e in run.of("batchStarted")}
    completed = {int(e["batch"]): e for e in run.of("batchCompleted")}
    pauses = run.of("pause")
    numbers = sorted(started)
    batches: list[Batch] = []
    for position, number in enumerate(numbers):
        begin, end = started[number], completed[number]
        (instance,) = (int(i) for i in begin["instanceIds"])
        s, c = float(begin["time"]), float(end["time"])
        ports = run.ports.get(instance, [])
        port_down = first_change(ports, False, s)
        listening = first_change(ports, True, port_down) if port_down is not None else None
        stamps = [(t, pid) for t, version, pid in app_starts(data_dir, run.name, instance) if version == run.version]
        stamp, pid = next(((t, pid) for t, pid in stamps if t > s), (None, None))
        spawned = process_started(pid) if pid is not None else None
        if spawned is not None and stamp is not None and not s - 0.02 <= spawned <= stamp + 0.02:
            spawned = None  # not the process that stamped: its pid was reused
        in_pool = first_change(run.pool.get(instance, []), True, listening or s)
        later = numbers[position + 1] if position + 1 < len(numbers) else None
        next_started = float(started[later]["time"]) if later is not None else None
        paused = [
            float(e["seconds"])
            for e in pauses
            if c <= float(e["time"]) and (next_started is None or float(e["time"]) <= next_started)
        ]
        batches.append(
            Batch(
                number=number,
                instance=instance,
                started=s,
                completed=c,
                left_pool=first_change(run.pool.get(instance, []), False, s - POOL_STEP),
                port_down=port_down,
                listening=listening,
                spawned=spawned,
                stamp=stamp,
                in_pool=in_pool,
                pause=pause if later is not None else 0.0,
                next_started=next_started,
            )
        )
        if later is not None and (len(paused) != 1 or abs(paused[0] - pause) > 1e-6):
            run.problems.append(f"batch {number}: expected one pause of {pause:g} s after it, the log has {paused}")
        if listening is None:
            run.problems.append(f"batch {number}: the port watcher did not see instance {instance} restart")
        elif stamp is None or abs(listening - stamp) > STAMP_TOLERANCE:
            run.problems.append(
                f"batch {number}: instance {instance} accepted connections at {listening:.3f}, its own start stamp "
                f"says {stamp}"
            )
        if not app_log_listening(data_dir, run.name, instance, run.version):
            run.problems.append(f"batch {number}: no 'listening on' line of {run.version} in instance {instance}'s log")
    (begun,) = run.of("rolloutStarted")
    (done,) = run.of("rolloutCompleted")
    overhead = Overhead(batches, float(begun["time"]), float(done["time"]))
    bound = PROBE_INTERVAL * PROBES + DETECT_SLACK
    for b in batches:
        if not b.detect <= bound:
            run.problems.append(f"batch {b.number}: probe detection {b.detect:.2f} s, more than {bound:g} s")
    return overhead


# ---------------------------------------------------------------------------------------------- printing


def pct(share: float) -> str:
    return f"{share * 100:.3f}%"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_load(run: Run, phases: set[str] | None = None) -> None:
    totals = run.load["totals"]
    print(
        f"  load: {totals['requests']} requests at {run.load['rps']:g} req/s over {run.load['durationSeconds']:g} s, "
        f"{totals['failures']} failed ({pct(totals['errorRate'])}), p50 {ms(totals['p50Ms'])} ms, "
        f"p99 {ms(totals['p99Ms'])} ms, failure kinds {totals['failureKinds'] or '-'}"
    )
    print(
        f"  {'phase':<16} {'instances':<9} {'from s':>7} {'to s':>7} {'requests':>8} {'failed':>6} "
        f"{'error rate':>10} {'p50 ms':>7} {'p99 ms':>7}  failure kinds"
    )
    for row in run.load["batches"]:
        if phases is not None and row["phase"] not in phases:
            continue
        frm = "-" if row["fromSecond"] is None else f"{row['fromSecond']:.2f}"
        to = "-" if row["toSecond"] is None else f"{row['toSecond']:.2f}"
        print(
            f"  {row['phase']:<16} {','.join(row['instanceIds']) or '-':<9} {frm:>7} {to:>7} {row['requests']:>8} "
            f"{row['failures']:>6} {pct(row['errorRate']):>10} {ms(row['p50Ms']):>7} {ms(row['p99Ms']):>7}  "
            f"{row['failureKinds'] or '-'}"
        )


def print_overhead(o: Overhead) -> None:
    r0 = o.rollout_started

    def rel(value: float | None) -> str:
        return "      -" if value is None else f"{value - r0:7.3f}"

    def span(begin: float | None, end: float | None) -> str:
        return "      -" if begin is None or end is None else f"{end - begin:7.3f}"

    print("  timeline, seconds since rolloutStarted (events; 'left LB'/'in LB' 0.1 s watcher, 'down'/'listen' 20 ms")
    print("  port watcher, 'spawn' /proc start time, 'stamp' the app's own, 'tick' inferred from the probe schedule):")
    print(
        f"  {'batch':>5} {'inst':>4} {'started':>7} {'left LB':>7} {'down':>7} {'spawn':>7} {'stamp':>7} "
        f"{'listen':>7} {'tick':>7} {'judged':>7} {'in LB':>7} {'next':>7}"
    )
    for b in o.batches:
        print(
            f"  {b.number:>5} {b.instance:>4} {rel(b.started)} {rel(b.left_pool)} {rel(b.port_down)} "
            f"{rel(b.spawned)} {rel(b.stamp)} {rel(b.listening)} {rel(b.tick)} {rel(b.completed)} "
            f"{rel(b.in_pool)} {rel(b.next_started)}"
        )
    print("  components, seconds (floor: start = stop + boot, detect, pause | overhead: judge, gap; tick->judged is")
    print("  the inferred share of detect after the Healthy probe):")
    print(
        f"  {'batch':>5} {'start':>7} {'stop':>7} {'boot':>7} {'detect':>7} {'pause':>7} | {'judge':>7} {'gap':>7} "
        f"| {'tick->judged':>12}"
    )
    for b in o.batches:
        print(
            f"  {b.number:>5} {b.start:7.3f} {span(b.started, b.port_down)} {span(b.port_down, b.listening)} "
            f"{b.detect:7.3f} {b.pause:7.3f} | {b.judge:7.3f} {b.gap:7.3f} | {span(b.tick, b.completed):>12}"
        )
    starts = sum(b.start for b in o.batches)
    detects = sum(b.detect for b in o.batches)
    pauses = sum(b.pause for b in o.batches)
    judges = sum(b.judge for b in o.batches)
    gaps = sum(b.gap for b in o.batches)
    print(
        f"  floor = start {starts:.3f} + probe detection {detects:.3f} + pauses {pauses:.3f} = {o.floor:.3f} s "
        f"(start per batch {starts / len(o.batches):.3f} s, detection per batch {detects / len(o.batches):.3f} s)"
    )
    print(f"  wall (rolloutStarted -> rolloutCompleted) = {o.wall:.3f} s")
    print(
        f"  overhead = wall - floor = {o.wall - o.floor:.3f} s: lead {o.lead:.3f} + judge {judges:.3f} + pause "
        f"overrun {gaps:.3f} + tail {o.tail:.3f}"
    )
    verdict = "met" if o.ratio <= TARGET_RATIO else "NOT met"
    print(f"  ratio wall / floor = {o.ratio:.3f} (target <= {TARGET_RATIO}): {verdict}")


def timeline(run: Run, kinds: tuple[str, ...]) -> str:
    (begun,) = run.of("rolloutStarted")
    return ", ".join(
        f"{e['kind']} {float(e['time']) - float(begun['time']):.3f}" for e in run.events if e["kind"] in kinds
    )


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=100.0, help="load, requests per second (default 100)")
    parser.add_argument("--connections", type=int, default=32, help="load, requests in flight at most (default 32)")
    parser.add_argument("--pause", type=float, default=2.0, help="pauseTimeBetweenBatches, seconds (default 2)")
    parser.add_argument("--health-wait", type=float, default=10.0, help="serve --health-wait, seconds (default 10)")
    parser.add_argument("--drain-seconds", type=float, default=3.0, help="serve --drain-seconds (default 3)")
    parser.add_argument("--margin", type=float, default=10.0, help="load seconds beyond the estimate (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir (logs, instance dirs) afterwards")
    args = parser.parse_args(argv)
    if not 0 < args.rps <= 1000 or args.pause < 0 or args.health_wait < PROBE_INTERVAL * PROBES + 2:
        parser.error("--rps must be in (0, 1000], --pause >= 0, --health-wait >= interval x probes + 2")

    batch = max(1, FLEET * BATCH_PERCENT // 100)
    batches = math.ceil(FLEET / batch)
    per_batch = PROBE_INTERVAL * PROBES + BOOT_ALLOWANCE
    estimate_a = batches * per_batch + (batches - 1) * args.pause
    estimate_b = max(args.health_wait, PROBE_INTERVAL * PROBES) + BOOT_ALLOWANCE + per_batch

    scratch = Path(tempfile.mkdtemp(prefix="scaleset-rollout-"))
    began = time.monotonic()
    problems: list[str] = []
    server: subprocess.Popen[bytes] | None = None
    try:
        server, base = start_server(scratch, health_wait=args.health_wait, drain=args.drain_seconds)
        api = Api(base, scratch)
        create_fleets(api, ["a", "b"], args.pause)
        print(
            f"rollout_disruption: {FLEET} x scaleset:demo:app {OLD}, rolling {BATCH_PERCENT}% batches ({batch} "
            f"instance each, {batches} batches), pause {args.pause:g} s; rich http /health every {PROBE_INTERVAL} s, "
            f"{PROBES} probe; serve --health-wait PT{args.health_wait:g}S --drain-seconds {args.drain_seconds:g}; "
            f"load {args.rps:g} req/s through the load balancer ({args.connections} connections); "
            f"{os.cpu_count()} CPUs"
        )
        common = {"rps": args.rps, "connections": args.connections, "margin": args.margin}
        a = run_rollout(api, "a", NEW, estimate=estimate_a, **common)
        b = run_rollout(api, "b", BROKEN, estimate=estimate_b, **common)
        overhead = measure(a, scratch, args.pause)

        # (a)
        print()
        status_a = a.latest["properties"]["runningStatus"]["code"]
        versions_a = Counter(vm_version(vm) for vm in a.vms)
        print(
            f"(a) {OLD} -> {NEW}: rollout {status_a} in {overhead.wall:.1f} s, {len(overhead.batches)} batches "
            f"(image change sent -> rolloutStarted {(overhead.rollout_started - a.changed_at) * 1000:.0f} ms)"
        )
        print_load(a)
        print(f"  versions after (VM list exactVersion): {dict(versions_a)}")
        failed_a = int(a.load["totals"]["failures"])
        if failed_a != 0:
            problems.append(f"(a) {failed_a} requests failed; must be 0")
        if status_a != "Completed" or versions_a != Counter({NEW: FLEET}):
            problems.append(f"(a) rollout {status_a}, versions {dict(versions_a)}")

        # (b)
        print()
        status_b = b.latest["properties"]["runningStatus"]["code"]
        error_b = (b.latest["properties"].get("error") or {}).get("code")
        versions_b = Counter(vm_version(vm) for vm in b.vms)
        batch_numbers = sorted(int(e["batch"]) for e in b.of("batchStarted"))
        rollbacks = b.of("rollbackCompleted")
        rolled = rollbacks[0]["instanceIds"] if rollbacks else []
        faulted = b.of("rolloutFaulted")
        span = float(rollbacks[-1]["time"]) - float(b.of("rolloutStarted")[0]["time"]) if rollbacks else float("nan")
        print(
            f"(b) {OLD} -> {BROKEN} (never healthy), rollback on: rollout {status_b} ({error_b}) after batch(es) "
            f"{batch_numbers}; rolled back {rolled}; rolloutStarted -> rollbackCompleted {span:.1f} s"
        )
        totals_b = b.load["totals"]
        print(
            f"  failed requests: {totals_b['failures']} of {totals_b['requests']} ({pct(totals_b['errorRate'])}); "
            f"in batch 1 and the rollback: "
            + ", ".join(
                f"{row['phase']} {row['failures']} of {row['requests']} ({pct(row['errorRate'])})"
                for row in b.load["batches"]
                if row["phase"] in ("batch 1", "rollback")
            )
        )
        print(
            "  timeline, seconds since rolloutStarted: "
            + timeline(b, ("batchStarted", "batchCompleted", "rolloutFaulted", "rollbackStarted", "rollbackCompleted"))
        )
        print_load(b)
        print(f"  versions after (VM list exactVersion): {dict(versions_b)}")
        if status_b != "Faulted" or batch_numbers != [1] or not faulted:
            problems.append(f"(b) expected Faulted after batch 1, got {status_b} after batches {batch_numbers}")
        if versions_b != Counter({OLD: FLEET}) or not rolled:
            problems.append(f"(b) expected every instance on {OLD} after a rollback, got {dict(versions_b)}")

        # (c)
        print()
        print(f"(c) orchestration overhead of (a), rollout started {iso(overhead.rollout_started)} UTC")
        print_overhead(overhead)
        if overhead.ratio > TARGET_RATIO:
            problems.append(f"(c) ratio {overhead.ratio:.3f} above the target {TARGET_RATIO}")
        for run in (a, b):
            problems.extend(f"({run.name}) {p}" for p in run.problems)
            if run.watcher_errors:
                problems.append(f"({run.name}) {run.watcher_errors} watcher samples failed")
        print()
        print(f"run time {time.monotonic() - began:.0f} s; data dir {scratch}{' (kept)' if args.keep else ''}")
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
        print(
            json.dumps(
                {
                    "a": {
                        "requests": a.load["totals"]["requests"],
                        "failures": failed_a,
                        "errorRate": a.load["totals"]["errorRate"],
                        "status": status_a,
                    },
                    "b": {
                        "requests": totals_b["requests"],
                        "failures": totals_b["failures"],
                        "errorRate": totals_b["errorRate"],
                        "status": status_b,
                        "error": error_b,
                        "versions": dict(versions_b),
                    },
                    "c": {
                        "wallSeconds": round(overhead.wall, 3),
                        "floorSeconds": round(overhead.floor, 3),
                        "startSeconds": round(sum(x.start for x in overhead.batches), 3),
                        "detectSeconds": round(sum(x.detect for x in overhead.batches), 3),
                        "pauseSeconds": round(sum(x.pause for x in overhead.batches), 3),
                        "ratio": round(overhead.ratio, 4),
                        "target": TARGET_RATIO,
                    },
                    "problems": problems,
                }
            )
        )
    except BaseException:
        print(f"serve.log:\n{tail(scratch / 'serve.log')}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            stop(server)
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
