"""Real instances: each one a local process of the application its image version names, behind a real TCP load
balancer per scale set, with health from real probes.

Every action runs as an asyncio task on the server's event loop:

* create: directories (a data dir kept for the instance's life, an OS dir that reimages replace), ``customData``
  written to ``{os_dir}/customdata``, custom-script extensions run, then the application is started;
* upgrade / reimage: leave the load balancer's pool, drain, stop, a fresh OS dir, extensions, start on the new image
  (an upgrade that keeps the image is applied in place: the OS dir stays, extensions run again; reimageall empties
  the data dir too);
* restart: drain, stop, start; start: start; power off / deallocate: drain, stop; delete: drain, stop, remove dirs;
  a forced delete (``forceDeletion``): out of the pool at once (open connections reset, no drain window), the
  process group killed with SIGKILL (no SIGTERM, no grace), remove dirs.

Provisioning ends when the application process has been started (and every extension succeeded); whether the
application then turns healthy is the health source's business, as in Azure. A custom script that fails fails the
provisioning with ``VMExtensionProvisioningError`` and the script's exit status and last output.

No orphans: every process is started in its own session with ``PR_SET_PDEATHSIG`` (so it dies with the server,
even on SIGKILL), :meth:`ProcessBackend.close` stops them all, and :meth:`ProcessBackend.adopt` restarts instances
from their records when the server starts again, first killing what is left of the process group the instance's
pid file names. (The parent-death signal reaches only the process the backend started: what an image's start
script starts in turn outlives a SIGKILL of the server until the next server adopts the instance.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaleset.backends import base
from scaleset.backends.prober import Prober
from scaleset.domain.catalogue import ImageVersion, render_command
from scaleset.domain.health import Answer, HealthState, ProbeSettings
from scaleset.domain.instances import InstanceView, PowerState, ProvisioningState
from scaleset.domain.records import InstanceRecord
from scaleset.domain.resources import ImageReference
from scaleset.lb.balancer import LoadBalancer

log = logging.getLogger("scaleset.process")

STOP_GRACE = 5.0
EXTENSION_TIMEOUT = 300.0
CUSTOM_SCRIPT_TYPES = {("microsoft.azure.extensions", "customscript"), ("microsoft.compute", "customscriptextension")}
_PR_SET_PDEATHSIG = 1
GUARD = ("/bin/sh", "-c", 'trap "trap - TERM; kill -TERM 0" TERM; "$@" & child=$!; wait "$child"', "instance")
"""Every instance runs under a small shell that owns its process group: when it is told to stop, or its parent
(this server) dies and the kernel sends it SIGTERM, it passes the signal to the whole group, so whatever the
image's command started ends with it."""
MARKER = "SCALESET_INSTANCE"  # in every process we start, so a leftover one can be recognised as ours

ImageFinder = Callable[[ImageReference | None, str | None], ImageVersion | None]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Instance:
    """What the backend knows of one instance beyond its record: the process, its prober, the action running."""

    key: str
    set_id: str
    instance_id: int
    port: int
    phase: ProvisioningState = ProvisioningState.CREATING
    power: PowerState = PowerState.STARTING
    error: dict[str, str] | None = None
    ready_at: float | None = None
    process: asyncio.subprocess.Process | None = None
    prober: Prober | None = None
    prober_task: asyncio.Task[None] | None = None
    action: asyncio.Task[None] | None = None
    gone: bool = False
    log_path: Path | None = None


@dataclass
class ScaleSetNetwork:
    balancer: LoadBalancer
    port: int | None = None
    started: asyncio.Task[int] | None = None


@dataclass
class ProcessBackend:
    """An :class:`~scaleset.backends.base.InstanceBackend` of real local processes."""

    root: Path
    find_image: ImageFinder
    clock: Callable[[], float]
    on_change: Callable[[str], None] = lambda _set_id: None
    drain_seconds: float = 3.0
    python: str = sys.executable
    _instances: dict[str, Instance] = field(default_factory=dict)
    _networks: dict[str, ScaleSetNetwork] = field(default_factory=dict)
    _pool_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the protocol

    def apply(self, record: InstanceRecord, *, set_id: str, model: base.InstanceModel, now: float) -> None:
        inst = self._instance(record, set_id)
        if inst.action is not None and not inst.action.done():
            inst.action.cancel()
        action = record.action
        inst.error = None
        inst.ready_at = None
        if action == base.DELETE:
            inst.phase, inst.power = ProvisioningState.DELETING, PowerState.STOPPING
        elif action == base.CREATE:
            inst.phase, inst.power = ProvisioningState.CREATING, PowerState.STARTING
        else:
            inst.phase = ProvisioningState.UPDATING
            inst.power = PowerState.STOPPING if action in (base.POWER_OFF, base.DEALLOCATE) else PowerState.STARTING
        record.backend = {"port": inst.port, "pid": record.backend.get("pid")}
        inst.action = self._loop().create_task(self._run(inst, record, model, action))

    def observe(
        self, record: InstanceRecord, *, set_id: str, model: base.InstanceModel, now: float
    ) -> InstanceView | None:
        inst = self._instances.get(self._key(set_id, record.instance_id))
        if inst is None or inst.gone:
            return None if (inst is not None and inst.gone) or record.action == base.DELETE else _unknown(record, now)
        health: HealthState | None = None
        if inst.phase is ProvisioningState.SUCCEEDED and inst.power is PowerState.RUNNING and inst.prober is not None:
            health = inst.prober.state
        return base.instance_view(
            record,
            provisioning=inst.phase,
            power=inst.power,
            health=health,
            ready_at=inst.ready_at,
            stable_until=now,  # real instances can change at any moment: never cached, looked at again soon
            error_code=inst.error["code"] if inst.error else None,
            error_message=inst.error["message"] if inst.error else None,
        )

    def inject_health(self, record: InstanceRecord, answer: Answer, *, now: float) -> None:
        raise NotImplementedError(
            "health injection is for simulated instances; with real processes, make the application answer so"
        )

    def close(self) -> None:
        """Stop every process now (synchronously: it runs at shutdown, when the loop may be stopping)."""
        for inst in self._instances.values():
            if inst.action is not None and not inst.action.done():
                inst.action.cancel()
            if inst.prober_task is not None:
                inst.prober_task.cancel()
            _kill_tree(inst.process.pid if inst.process is not None else None)
        if self._pool_task is not None:
            self._pool_task.cancel()

    async def aclose(self) -> None:
        """Stop every instance gracefully, then the load balancers."""
        stops = [self._stop_process(inst) for inst in self._instances.values()]
        await asyncio.gather(*stops, return_exceptions=True)
        self.close()
        for network in self._networks.values():
            with contextlib.suppress(Exception):
                await network.balancer.stop()

    # ------------------------------------------------------------------ restart of the server

    def adopt(self, record: InstanceRecord, *, set_id: str, model: base.InstanceModel) -> None:
        """Bring a recorded instance back after a server restart: what is left of the process group the record
        (or the instance's pid file) names is killed, and the instance is started again on the model and image its
        record says, unless it was stopped or deleted."""
        key = self._key(set_id, record.instance_id)
        try:
            written: object = int(self._pid_file(set_id, record.instance_id).read_text())
        except (OSError, ValueError):
            written = None
        for pid in {record.backend.get("pid"), written}:
            _kill_leftovers(pid, key)
        inst = self._instance(record, set_id)
        if record.action == base.DELETE:
            inst.phase = ProvisioningState.DELETING
            inst.action = self._loop().create_task(self._run(inst, record, model, base.DELETE))
            return
        if record.power_goal != "running":
            inst.phase, inst.power, inst.ready_at = ProvisioningState.SUCCEEDED, PowerState(record.power_goal), None
            return
        inst.phase, inst.power = ProvisioningState.UPDATING, PowerState.STARTING
        inst.action = self._loop().create_task(self._run(inst, record, model, base.START))

    # ------------------------------------------------------------------ load balancers

    def balancer(self, set_id: str) -> tuple[LoadBalancer, int | None] | None:
        network = self._networks.get(set_id)
        return (network.balancer, network.port) if network is not None else None

    def balancers(self) -> dict[str, tuple[int | None, list[str], dict[str, Any]]]:
        return {
            set_id: (network.port, network.balancer.pool(), network.balancer.stats())
            for set_id, network in self._networks.items()
        }

    def _network(self, set_id: str) -> ScaleSetNetwork:
        network = self._networks.get(set_id)
        if network is None:
            saved = self._saved_ports().get(set_id, 0)
            balancer = LoadBalancer(set_id, port=saved, drain_seconds=self.drain_seconds)
            network = ScaleSetNetwork(balancer)
            self._networks[set_id] = network
            network.started = self._loop().create_task(self._start_balancer(set_id, network))
        if self._pool_task is None or self._pool_task.done():
            self._pool_task = self._loop().create_task(self._keep_pools())
        return network

    async def _start_balancer(self, set_id: str, network: ScaleSetNetwork) -> int:
        try:
            port = await network.balancer.start()
        except OSError:  # the saved port is taken: take a new one
            network.balancer = LoadBalancer(set_id, port=0, drain_seconds=self.drain_seconds)
            port = await network.balancer.start()
        network.port = port
        ports = self._saved_ports()
        ports[set_id] = port
        self._write_ports(ports)
        return port

    def _saved_ports(self) -> dict[str, int]:
        path = self.root / "load-balancers.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_ports(self, ports: dict[str, int]) -> None:
        path = self.root / "load-balancers.json"
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(ports, indent=1, sort_keys=True))
        os.replace(scratch, path)

    async def _keep_pools(self) -> None:
        """Keep each load balancer's pool equal to the instances that are running, not being acted on, and
        healthy by the scale set's health source (just running, when it has none)."""
        while True:
            for inst in list(self._instances.values()):
                self._sync_pool(inst)
            await asyncio.sleep(0.1)

    def _sync_pool(self, inst: Instance) -> None:
        """Put ``inst`` in its load balancer's pool or take it out, as :meth:`_in_service` says. Called at once
        when its health changes or its action ends (the engine may act on that straight away: with no pause
        between batches, the next batch leaves the pool in the same instant), and every 0.1 s as a backstop."""
        network = self._networks.get(inst.set_id)
        if network is None or inst.gone:
            return
        network.balancer.upsert(inst.key, host="127.0.0.1", port=inst.port, in_pool=self._in_service(inst))

    def _in_service(self, inst: Instance) -> bool:
        if inst.phase is not ProvisioningState.SUCCEEDED or inst.power is not PowerState.RUNNING:
            return False
        if inst.action is not None and not inst.action.done():
            return False
        if inst.prober is None:
            return inst.process is not None and inst.process.returncode is None
        return inst.prober.state is HealthState.HEALTHY

    # ------------------------------------------------------------------ actions

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    @staticmethod
    def _key(set_id: str, instance_id: int) -> str:
        return f"{set_id}#{instance_id}"

    def _dirs(self, set_id: str, instance_id: int) -> tuple[Path, Path, Path]:
        digest = set_id.strip("/").replace("/", "_")[-120:]
        home = self.root / "instances" / digest / str(instance_id)
        return home / "data", home / "os", home / "logs"

    def _instance(self, record: InstanceRecord, set_id: str) -> Instance:
        key = self._key(set_id, record.instance_id)
        inst = self._instances.get(key)
        if inst is None:
            port = int(record.backend.get("port") or 0) or free_port()
            inst = Instance(key, set_id, record.instance_id, port)
            self._instances[key] = inst
            self._network(set_id)
        return inst

    async def _run(self, inst: Instance, record: InstanceRecord, model: base.InstanceModel, action: str) -> None:
        try:
            if action == base.DELETE and record.force:
                self._cut_from_pool(inst)
                await self._stop_process(inst, force=True)
            elif action in (base.UPGRADE, base.REIMAGE, base.RESTART, base.POWER_OFF, base.DEALLOCATE, base.DELETE):
                await self._leave_pool(inst)
                await self._stop_process(inst)
            if action == base.DELETE:
                data, os_dir, logs = self._dirs(inst.set_id, inst.instance_id)
                shutil.rmtree(data.parent, ignore_errors=True)
                inst.gone = True
                self._instances.pop(inst.key, None)
                network = self._networks.get(inst.set_id)
                if network is not None:
                    network.balancer.remove(inst.key)
                return
            if action in (base.POWER_OFF, base.DEALLOCATE):
                inst.phase = ProvisioningState.SUCCEEDED
                inst.power = PowerState(record.power_goal)
                inst.ready_at = self.clock()
                return
            # An upgrade that keeps the image is applied in place: the OS dir stays, extensions run again (the
            # model changed) and the application restarts. A new image, a reimage or a create gets a fresh OS dir.
            image_changed = action == base.UPGRADE and record.previous_image_version != record.image_version
            fresh_os = action in (base.CREATE, base.REIMAGE) or image_changed
            run_extensions = fresh_os or action == base.UPGRADE
            image = self.find_image(model.image, record.image_version)
            if image is None:
                wanted = record.image_version or "?"
                raise ProvisioningFailedError(
                    "ImageNotFound",
                    f"The image version '{wanted}' of {_describe(model.image)} is not in the image catalogue.",
                )
            # reimageall reimages "all the disks (including data disks)": the data dir starts empty too
            fresh_data = action == base.REIMAGE and record.action_reason == "reimageAll"
            data, os_dir, logs = self._prepare_dirs(inst, fresh_os=fresh_os, fresh_data=fresh_data, model=model)
            if run_extensions:
                await self._run_extensions(inst, model, os_dir=os_dir, logs=logs)
            await self._start_process(inst, record, image, data=data, os_dir=os_dir, logs=logs, model=model)
            inst.phase, inst.power = ProvisioningState.SUCCEEDED, PowerState.RUNNING
            inst.ready_at = self.clock()
        except asyncio.CancelledError:
            raise
        except ProvisioningFailedError as failure:
            inst.phase, inst.error = ProvisioningState.FAILED, {"code": failure.code, "message": failure.message}
            inst.power = PowerState.RUNNING if inst.process is not None else PowerState.STOPPED
            inst.ready_at = self.clock()
        except Exception as exc:  # an unexpected failure is the instance's, never the server's
            log.exception("action %s on %s failed", action, inst.key)
            inst.phase = ProvisioningState.FAILED
            inst.error = {"code": "VMProvisioningFailed", "message": f"The instance could not be provisioned: {exc}"}
            inst.ready_at = self.clock()
        finally:
            # Queued before the engine hears of it: the pool is right by the time the engine's pass runs (the
            # task is done then, so the instance counts as in service).
            self._loop().call_soon(self._sync_pool, inst)
            self.on_change(inst.set_id)

    def _prepare_dirs(
        self, inst: Instance, *, fresh_os: bool, model: base.InstanceModel, fresh_data: bool = False
    ) -> tuple[Path, Path, Path]:
        data, os_dir, logs = self._dirs(inst.set_id, inst.instance_id)
        if fresh_os and os_dir.exists():
            shutil.rmtree(os_dir)
        if fresh_data and data.exists():
            shutil.rmtree(data)
        for folder in (data, os_dir, logs):
            folder.mkdir(parents=True, exist_ok=True)
        profile = ((model.body or {}).get("properties") or {}).get("virtualMachineProfile") or {}
        custom = (profile.get("osProfile") or {}).get("customData")
        if fresh_os and custom:
            try:
                (os_dir / "customdata").write_bytes(base64.b64decode(custom, validate=False))
            except ValueError:
                (os_dir / "customdata").write_text(custom)
        return data, os_dir, logs

    async def _run_extensions(self, inst: Instance, model: base.InstanceModel, *, os_dir: Path, logs: Path) -> None:
        profile = ((model.body or {}).get("properties") or {}).get("virtualMachineProfile") or {}
        extensions = (profile.get("extensionProfile") or {}).get("extensions") or []
        for ext in extensions:
            props = ext.get("properties") or {}
            kind = ((props.get("publisher") or "").lower(), (props.get("type") or "").lower())
            if kind not in CUSTOM_SCRIPT_TYPES:
                continue
            settings = {**(props.get("settings") or {}), **(props.get("protectedSettings") or {})}
            command = settings.get("commandToExecute")
            if not command:
                continue
            name = ext.get("name") or "customScript"
            out_path = logs / f"extension-{name}.log"
            with out_path.open("wb") as out:
                process = await asyncio.create_subprocess_shell(
                    str(command),
                    cwd=str(os_dir),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "SCALESET_INSTANCE_ID": str(inst.instance_id), MARKER: inst.key},
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
                try:
                    code = await asyncio.wait_for(process.wait(), EXTENSION_TIMEOUT)
                except TimeoutError:
                    _kill_tree(process.pid)
                    raise ProvisioningFailedError(
                        "VMExtensionProvisioningError",
                        f"VM has reported a failure when processing extension '{name}': the script did not finish "
                        f"within {EXTENSION_TIMEOUT:g} seconds.",
                    ) from None
            if code != 0:
                tail = out_path.read_text(errors="replace")[-400:].strip()
                raise ProvisioningFailedError(
                    "VMExtensionProvisioningError",
                    f"VM has reported a failure when processing extension '{name}'. Error message: 'Enable failed: "
                    f"the command exited with status {code}'. Output: {tail or '(none)'}",
                )

    async def _start_process(
        self,
        inst: Instance,
        record: InstanceRecord,
        image: ImageVersion,
        *,
        data: Path,
        os_dir: Path,
        logs: Path,
        model: base.InstanceModel,
    ) -> None:
        argv, env, cwd = render_command(
            image,
            python=self.python,
            port=str(inst.port),
            instance_id=str(inst.instance_id),
            zone=record.zone or "",
            data_dir=str(data),
            os_dir=str(os_dir),
            version=image.version,
        )
        inst.log_path = logs / "app.log"
        if shutil.which(argv[0], path=env.get("PATH", os.environ.get("PATH"))) is None and not Path(argv[0]).is_file():
            raise ProvisioningFailedError(
                "VMProvisioningFailed", f"The image's command could not be started: '{argv[0]}' was not found."
            )
        with inst.log_path.open("ab") as out:
            try:
                inst.process = await asyncio.create_subprocess_exec(
                    *GUARD,
                    *argv,
                    cwd=cwd or str(os_dir),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env, MARKER: inst.key},
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise ProvisioningFailedError(
                    "VMProvisioningFailed", f"The image's command could not be started: {exc.strerror or exc}."
                ) from exc
        record.backend = {**record.backend, "pid": inst.process.pid, "port": inst.port}
        # The store keeps ``record.backend`` only when the engine next writes the record, which may never come
        # before a SIGKILL; the pid file is what the next server's adopt reads.
        self._pid_file(inst.set_id, inst.instance_id).write_text(f"{inst.process.pid}\n")
        await self._start_prober(inst, model.probe)

    def _pid_file(self, set_id: str, instance_id: int) -> Path:
        return self._dirs(set_id, instance_id)[0].parent / "pid"

    async def _start_prober(self, inst: Instance, settings: ProbeSettings | None) -> None:
        if inst.prober_task is not None:
            inst.prober_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await inst.prober_task
        inst.prober, inst.prober_task = None, None
        if settings is None:
            return
        # The settings name the application's port inside a VM; here every instance has a port of its own.
        set_id = inst.set_id

        def changed(_state: HealthState) -> None:
            self._sync_pool(inst)  # the pool follows health before the engine acts on it
            self.on_change(set_id)

        prober = Prober(
            settings,
            host="127.0.0.1",
            port=inst.port,
            clock=self.clock,
            started_at=self.clock(),
            on_change=changed,
        )
        inst.prober = prober
        inst.prober_task = self._loop().create_task(prober.run())

    async def _leave_pool(self, inst: Instance) -> None:
        network = self._networks.get(inst.set_id)
        if network is None:
            return
        with contextlib.suppress(Exception):
            await network.balancer.drain(inst.key)

    def _cut_from_pool(self, inst: Instance) -> None:
        """Out of the load balancer now, its open connections reset: no drain window (a forced delete)."""
        network = self._networks.get(inst.set_id)
        if network is not None:
            network.balancer.remove(inst.key)

    async def _stop_process(self, inst: Instance, *, force: bool = False) -> None:
        """SIGTERM to the instance's process group, SIGKILL after ``STOP_GRACE``; with ``force``, SIGKILL at once."""
        if inst.prober_task is not None:
            inst.prober_task.cancel()
            inst.prober_task = None
        inst.prober = None
        process = inst.process
        inst.process = None
        if process is None:
            return
        if force:
            _kill_tree(process.pid)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            _kill_tree(process.pid)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.wait(), STOP_GRACE)
        # The guard shell can end before the application it signalled: the instance is stopped only when its
        # whole process group is gone (its port is free for the next start).
        deadline = asyncio.get_running_loop().time() + STOP_GRACE
        while _group_alive(process.pid):
            if asyncio.get_running_loop().time() > deadline:
                _kill_tree(process.pid)
                break
            await asyncio.sleep(0.01)


class ProvisioningFailedError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _describe(image: ImageReference | None) -> str:
    if image is None:
        return "the scale set's image"
    if image.id:
        return image.id
    return ":".join(str(part) for part in (image.publisher, image.offer, image.sku))


def _unknown(record: InstanceRecord, now: float) -> InstanceView:
    """An instance the backend has not (yet) adopted: shown as starting, so nothing acts on it by mistake."""
    return base.instance_view(
        record, provisioning=ProvisioningState.UPDATING, power=PowerState.UNKNOWN, health=None, stable_until=now
    )


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(_group_members(pgid))


def _kill_tree(pid: object) -> None:
    """SIGKILL a process group this server started."""
    if isinstance(pid, int) and pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def _kill_leftovers(pgid: object, key: str) -> None:
    """SIGKILL what is left of the process group an earlier server started for instance ``key``: the members whose
    environment carries that instance's marker, so a recycled pid of some other program is never touched.

    The members are looked for even when the group's leader is gone: when an image's command is a start script,
    the script dies with the server (PR_SET_PDEATHSIG) while the application it started lives on in the group,
    holding the instance's port.
    """
    if not isinstance(pgid, int) or pgid <= 0:
        return
    try:
        os.killpg(pgid, 0)  # cheap: is anything left in that group at all (the usual answer is no)?
    except (ProcessLookupError, PermissionError):
        return
    wanted = f"{MARKER}={key}".encode()
    for member in _group_members(pgid):
        try:
            environ = Path(f"/proc/{member}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(member, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    """The pids of the live processes in process group ``pgid`` (from ``/proc``; empty where there is none)."""
    members = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state, ppid, pgrp, ...
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members
