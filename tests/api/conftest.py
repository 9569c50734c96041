"""A live ``scaleset serve`` (a real process on a free loopback port, real TLS) and real Azure SDK clients for it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.pipeline import PipelineResponse
from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from scaleset.api.serve import CLIENT_ID, SUBSCRIPTION, TENANT

TIME_SCALE = 600.0  # a PT5M health wait passes in half a second
SHARED_TOOLS = Path(__file__).resolve().parents[3] / "shared" / "tools"
NO_SCHEMA = f"the official-schema checker is absent ({SHARED_TOOLS / 'arm_schema.py'} not found)"
if (SHARED_TOOLS / "arm_schema.py").exists():
    sys.path.insert(0, str(SHARED_TOOLS))
    import arm_schema
else:  # pragma: no cover - CI always has ../shared
    arm_schema = None


# ---------------------------------------------------------------------- checking every Microsoft.Compute answer

_OPERATION_PATH = re.compile(r"/providers/Microsoft\.Compute/locations/[^/]+/operation(s|Results)/", re.IGNORECASE)
_CLOUD_ERROR_ANCHOR = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/n"  # default: CloudError
)
OPERATION_STATUSES = {"InProgress", "Succeeded", "Failed", "Canceled"}


@dataclass(frozen=True)
class Seen:
    method: str
    url: str
    status: int
    body: Any


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _cloud_error(body: Any) -> list[str]:
    """ARM's error envelope: the specification's ``CloudError``, whose fields it leaves optional, with the
    ``code`` and ``message`` ARM always sends."""
    assert arm_schema is not None
    error = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
        return [f"not the ARM error envelope: {body!r}"]
    return list(arm_schema.check_response("GET", _CLOUD_ERROR_ANCHOR, 400, body))


def schema_problems(seen: Seen) -> list[str]:
    """What the official specification says is wrong with one Microsoft.Compute answer (nothing for others).

    Every error must be ARM's envelope. Operation-status documents and ``operationResults`` have no schema in the
    specification; their ARM shape is checked by hand. A success on a route the specification lacks is a problem.
    """
    path = requests.utils.urlparse(seen.url).path
    if "/microsoft.compute/" not in path.lower() or arm_schema is None:
        return []
    where = f"{seen.method} {path} {seen.status}"
    operation = arm_schema.find_operation(seen.method, path)
    if seen.status >= 400:
        problems = _cloud_error(seen.body)
        if not problems and operation is not None:
            problems = arm_schema.check_response(seen.method, path, seen.status, seen.body)
    elif _OPERATION_PATH.search(path) and "/operations/" in path.lower():
        body = seen.body if isinstance(seen.body, dict) else {}
        problems = [] if body.get("status") in OPERATION_STATUSES else [f"status {body.get('status')!r}"]
        problems += [f"no {key}" for key in ("name", "startTime") if not body.get(key)]
        if body.get("status") in ("Failed", "Canceled"):
            problems += _cloud_error({"error": body.get("error")})
    elif _OPERATION_PATH.search(path):  # operationResults: empty, or the error of a failed operation
        problems = [] if seen.body is None else _cloud_error(seen.body)
    elif operation is None:
        problems = ["answered, but the specification has no such operation"]
    else:
        problems = arm_schema.check_response(seen.method, path, seen.status, seen.body)
    return [f"{where}: {p}" for p in problems]


@dataclass
class Recorder:
    """Every answer a test's clients received (SDK pipeline hook and ``requests`` hook), for the schema check."""

    seen: list[Seen] = field(default_factory=list)

    def sdk_hook(self, response: PipelineResponse[Any, Any]) -> None:
        http = response.http_response
        self.seen.append(Seen(http.request.method, http.request.url, http.status_code, _decode(http.body())))

    def requests_hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        self.seen.append(Seen(str(request.method), str(request.url), response.status_code, _decode(response.content)))

    def problems(self) -> list[str]:
        """Schema problems, and any server error at all: a 5xx is never a right answer from this server."""
        errors = [f"{s.method} {s.url} answered {s.status}: {s.body}" for s in self.seen if s.status >= 500]
        return errors + [p for seen in self.seen for p in schema_problems(seen)]

    def compute_answers(self) -> int:
        return sum("/microsoft.compute/" in s.url.lower() for s in self.seen)


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

    def compute(self, recorder: Recorder | None = None) -> ComputeManagementClient:
        hook = {"raw_response_hook": recorder.sdk_hook} if recorder is not None else {}
        return ComputeManagementClient(
            self.credential(),
            self.subscription,
            base_url=self.base,
            connection_verify=str(self.ca),
            polling_interval=0.1,
            **hook,
        )

    def resources(self) -> ResourceManagementClient:
        return ResourceManagementClient(
            self.credential(),
            self.subscription,
            base_url=self.base,
            connection_verify=str(self.ca),
            polling_interval=0.1,
        )

    def session(self, recorder: Recorder | None = None, *, token: str | None = None) -> requests.Session:
        """A ``requests`` session that trusts this server's CA (and ignores REQUESTS_CA_BUNDLE and proxies in the
        environment), with a bearer token from the service-principal route unless ``token`` is given."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca)
        if recorder is not None:
            session.hooks["response"].append(recorder.requests_hook)
        session.headers["Authorization"] = f"Bearer {token or self.token(session)}"
        return session

    def token(self, session: requests.Session | None = None) -> str:
        http = session or self.anonymous()
        answer = http.post(
            f"{self.base}/{self.tenant}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.secret,
                "scope": "https://management.azure.com/.default",
            },
            timeout=10,
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def anonymous(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca)
        return session

    def url(self, path: str, api_version: str | None = "2024-11-01") -> str:
        return f"{self.base}{path}" + (f"?api-version={api_version}" if api_version else "")

    def group_path(self, group: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{group}"

    def vmss_path(self, group: str, name: str) -> str:
        return f"{self.group_path(group)}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    data_dir: Path,
    *,
    time_scale: float = TIME_SCALE,
    port: int | None = None,
    backend: str = "simulated",
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[bytes], Server]:
    """``scaleset serve`` as a real process on a free loopback port (or ``port``), logging to ``serve.log``, once it
    listens. Every live-server fixture of the suite starts its server here."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    scale = ["--time-scale", str(time_scale)] if backend == "simulated" else []
    with (data_dir / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scaleset.main",
                "serve",
                "--backend",
                backend,
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *scale,
                "--retry-after-ms",
                "50",
                *extra,
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
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(autouse=True)
def official_schema(recorder: Recorder) -> Iterator[Recorder]:
    """Every Microsoft.Compute answer a test's clients see must pass the official 2024-11-01 specification.

    Checked at setup too: what module- and session-scoped fixtures received while being set up for this test.
    """
    early = recorder.problems()
    recorder.seen.clear()
    assert early == [], "fixtures received " + _UNFIT + "\n".join(early)
    yield recorder
    problems = recorder.problems()
    recorder.seen.clear()
    assert problems == [], _UNFIT + "\n".join(problems)


_UNFIT = "server errors, or answers that break the official specification:\n"


@pytest.fixture(scope="session")
def compute(server: Server, recorder: Recorder) -> ComputeManagementClient:
    return server.compute(recorder)


@pytest.fixture(scope="session")
def arm(server: Server, recorder: Recorder) -> requests.Session:
    """Raw HTTPS with a valid token, for what the SDK cannot express; its answers are schema-checked too."""
    return server.session(recorder)


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


def wait_until(
    condition: Callable[[], Any], *, timeout: float = 30.0, step: float = 0.05, what: str = "the condition"
) -> Any:
    """Poll ``condition`` until it returns something truthy, at most ``timeout`` seconds; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(step, 0.05))


def image_patch(version: str) -> dict[str, object]:
    """The PATCH body of an image change (a model change every instance must take)."""
    return {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": version}}}}}


def assert_arm_error(answer: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """An ARM error: the status, a JSON ``{"error": {"code", "message"}}`` body, a request id, no stack trace."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers.get("x-ms-request-id")
    assert answer.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)
