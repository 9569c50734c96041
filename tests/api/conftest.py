"""A live ``scaleset serve`` (a real process on a free loopback port, real TLS) and real Azure SDK clients for it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from scaleset.api.serve import CLIENT_ID, SUBSCRIPTION, TENANT

TIME_SCALE = 600.0  # a PT5M health wait passes in half a second


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    data_dir: Path
    ca: Path
    secret: str
    subscription: str = SUBSCRIPTION
    tenant: str = TENANT
    client_id: str = CLIENT_ID

    def credential(self) -> ClientSecretCredential:
        return ClientSecretCredential(
            self.tenant,
            self.client_id,
            self.secret,
            authority=self.base,
            disable_instance_discovery=True,
            connection_verify=str(self.ca),
        )

    def compute(self) -> ComputeManagementClient:
        return ComputeManagementClient(
            self.credential(),
            self.subscription,
            base_url=self.base,
            connection_verify=str(self.ca),
            polling_interval=0.1,
        )

    def resources(self) -> ResourceManagementClient:
        return ResourceManagementClient(
            self.credential(),
            self.subscription,
            base_url=self.base,
            connection_verify=str(self.ca),
            polling_interval=0.1,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, *, time_scale: float = TIME_SCALE) -> tuple[subprocess.Popen[bytes], Server]:
    port = free_port()
    with (data_dir / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scaleset.main",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--time-scale",
                str(time_scale),
                "--retry-after-ms",
                "50",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a real process and a real socket: waiting for it to listen is the test
        if process.poll() is not None:
            raise RuntimeError(f"scaleset serve exited: {(data_dir / 'serve.log').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("scaleset serve did not start listening within 30 s")
    server = Server(
        f"https://127.0.0.1:{port}",
        port,
        data_dir,
        data_dir / "tls" / "ca.pem",
        (data_dir / "client-secret").read_text().strip(),
    )
    return process, server


def stop_server(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("serve")
    process, info = start_server(data_dir)
    try:
        yield info
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def compute(server: Server) -> ComputeManagementClient:
    return server.compute()


@pytest.fixture(scope="session")
def resources(server: Server) -> ResourceManagementClient:
    return server.resources()


def health_extension(version: str = "2.0") -> dict[str, object]:
    return {
        "name": "HealthExtension",
        "properties": {
            "publisher": "Microsoft.ManagedServices",
            "type": "ApplicationHealthLinux",
            "typeHandlerVersion": version,
            "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
        },
    }


def scale_set_body(
    *,
    capacity: int = 4,
    mode: str = "Rolling",
    version: str = "1.0.0",
    rolling: dict[str, object] | None = None,
    zones: list[str] | None = None,
) -> dict[str, object]:
    body: dict[str, object] = {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "capacity": capacity},
        "properties": {
            "upgradePolicy": {"mode": mode, "rollingUpgradePolicy": rolling or {}},
            "virtualMachineProfile": {
                "osProfile": {"computerNamePrefix": "web", "adminUsername": "azureuser"},
                "storageProfile": {
                    "imageReference": {"publisher": "Contoso", "offer": "app", "sku": "stable", "version": version}
                },
                "extensionProfile": {"extensions": [health_extension()]},
            },
        },
    }
    if zones:
        body["zones"] = zones
    return body
