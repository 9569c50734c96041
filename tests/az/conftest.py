"""The real Azure CLI (pip package ``azure-cli``, in its own virtualenv) against a live ``scaleset serve``.

Every ``az`` process runs with an isolated ``AZURE_CONFIG_DIR``, the server's CA in ``REQUESTS_CA_BUNDLE``, instance
discovery and telemetry off, and a proxy guard: everything not addressed to loopback goes to a local trap that
refuses it and records the attempt, so nothing can leave this machine (and a test fails if anything tried to).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import Server, start_server, stop_server

AZ_TIMEOUT = 120.0  # seconds, one az process at most
DEFAULT_VENV = Path.home() / ".cache" / "scaleset" / "az-venv"
# What az itself tries to reach, which the proxy guard refuses: the CLI's version check (a HEAD to its release
# storage) on the first run with a fresh config dir (azure.cli.core.util.handle_version_update). Anything else
# that tries to leave loopback fails the module.
EXPECTED_OUTBOUND = ("CONNECT azcliprod.blob.core.windows.net:443 ",)
INSTALL_HINT = "install it with scripts/install-az.sh and export SCALESET_AZ=<the path it prints>"


def find_az() -> tuple[str | None, str]:
    """The az executable to test (``$SCALESET_AZ``, else the install script's venv, else ``az`` on PATH), or why not."""
    configured = os.environ.get("SCALESET_AZ")
    if configured:
        if os.access(configured, os.X_OK) and Path(configured).is_file():
            return configured, ""
        return None, f"SCALESET_AZ={configured} is not an executable file"
    venv = Path(os.environ.get("SCALESET_AZ_VENV") or DEFAULT_VENV)
    candidate = venv / "bin" / "az"
    if os.access(candidate, os.X_OK):
        return str(candidate), ""
    on_path = shutil.which("az")
    if on_path:
        return on_path, ""
    return None, f"the Azure CLI (az) was not found: not in $SCALESET_AZ, {candidate} or PATH; {INSTALL_HINT}"


@pytest.fixture(scope="session")
def az_executable() -> str:
    """Skip without az locally; in CI (``CI`` set) a missing az is a failure: CI must run these tests."""
    path, reason = find_az()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the az tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@dataclass
class ProxyTrap:
    """A loopback listener standing in for the proxy: it refuses every connection and records what was asked."""

    sock: socket.socket
    attempts: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(0.5)
                try:
                    first = conn.recv(512).split(b"\r\n", 1)[0].decode(errors="replace")
                except OSError:
                    first = "(nothing sent)"
                self.attempts.append(first)


@pytest.fixture(scope="module")
def proxy_trap() -> Iterator[ProxyTrap]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    trap = ProxyTrap(sock)
    thread = threading.Thread(target=trap.serve, name="az-proxy-trap", daemon=True)
    thread.start()
    try:
        yield trap
    finally:
        trap.stop.set()
        thread.join(timeout=5)
        sock.close()
    unexpected = [attempt for attempt in trap.attempts if not attempt.startswith(EXPECTED_OUTBOUND)]
    assert unexpected == [], f"az tried to leave loopback (refused by the proxy guard): {unexpected}"


@pytest.fixture(scope="module")
def az_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live server per module: a real process on a free port with its own data dir, CA and secret."""
    process, server = start_server(tmp_path_factory.mktemp("az-serve"))
    try:
        yield server
    finally:
        stop_server(process)


@dataclass(frozen=True)
class AzResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None


_SCRUBBED_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "ARM_")
_SCRUBBED = {
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
}


@dataclass
class Az:
    """Runs the real ``az`` with the isolated environment; every call is bounded by ``AZ_TIMEOUT``."""

    executable: str
    server: Server
    config_dir: Path
    workdir: Path
    proxy: str
    calls: list[AzResult] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.upper().startswith(_SCRUBBED_PREFIXES) and key.upper() not in _SCRUBBED
        }
        env.update(
            {
                "AZURE_CONFIG_DIR": str(self.config_dir),
                "REQUESTS_CA_BUNDLE": str(self.server.ca),
                "AZURE_CORE_INSTANCE_DISCOVERY": "false",
                "AZURE_CORE_COLLECT_TELEMETRY": "false",
                "AZURE_CORE_NO_COLOR": "true",
                "AZURE_CORE_SURVEY_MESSAGE": "false",
                "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
                "AZURE_CORE_DISABLE_CONFIRM_PROMPT": "true",
            }
        )
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = self.proxy
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def run(self, *args: str, timeout: float = AZ_TIMEOUT) -> AzResult:
        started = time.monotonic()
        try:
            done = subprocess.run(
                [self.executable, *args],
                env=self.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"az {' '.join(args)} did not finish within {timeout:g} s") from exc
        result = AzResult(args, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        self.calls.append(result)
        return result

    def ok(self, *args: str) -> AzResult:
        """Run and require exit 0."""
        result = self.run(*args)
        assert result.returncode == 0, f"az {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        """Run with ``-o json``, require exit 0, return the parsed output."""
        return self.ok(*args, "-o", "json").json()

    def put_body(self, name: str, body: dict[str, Any]) -> Path:
        path = self.workdir / f"{name}.json"
        path.write_text(json.dumps(body))
        return path


def login(az: Az) -> None:
    """The README's setup: a custom cloud found through ``/metadata/endpoints``, then a service-principal login."""
    server = az.server
    az.ok("cloud", "register", "-n", "scaleset", "--endpoint-resource-manager", f"{server.base}/", "-o", "none")
    az.ok("cloud", "set", "-n", "scaleset", "-o", "none")
    az.ok(
        "login",
        "--service-principal",
        "-u",
        server.client_id,
        "-p",
        server.secret,
        "--tenant",
        server.tenant,
        "-o",
        "none",
    )


@pytest.fixture(scope="module")
def az(az_executable: str, az_server: Server, proxy_trap: ProxyTrap, tmp_path_factory: pytest.TempPathFactory) -> Az:
    """``az`` logged in to the module's server (custom cloud + service principal), in its own config dir."""
    workdir = tmp_path_factory.mktemp("az")
    client = Az(az_executable, az_server, workdir / "config", workdir, proxy_trap.url)
    try:
        login(client)
    except AssertionError as first:
        # One more try in a fresh config dir: az's first run in a new config dir does extra work (a version
        # check, MSAL caches) that once failed here on a loaded 2-core machine. A second failure fails the tests,
        # with both messages.
        client = Az(az_executable, az_server, workdir / "config-again", workdir, proxy_trap.url)
        try:
            login(client)
        except AssertionError as second:
            raise AssertionError(f"az login failed twice:\n{first}\n--- then ---\n{second}") from second
    return client
