"""Where the CLI's requests go and with which credential: the local ``scaleset serve`` (found by itself) or Azure.

Local: the endpoint is ``--endpoint``, else ``$SCALESET_ENDPOINT``, else ``https://127.0.0.1:8443``; the data dir is
``--data-dir``, else ``$SCALESET_DATA_DIR``, else ``$XDG_DATA_HOME/scaleset`` (``~/.local/share/scaleset``): the
same rules as ``scaleset serve``. The CA there (``tls/ca.pem``) is trusted for this endpoint only, and the client
secret there (``client-secret``) buys a token from the server's own token endpoint, exactly as any SDK client would.

Azure (``--cloud azure``): ``azure-identity``'s ``DefaultAzureCredential`` and ``$AZURE_SUBSCRIPTION_ID`` (or
``--subscription``), against ``https://management.azure.com``.

The id constants below duplicate ``scaleset.api.serve``'s: this package talks to the server only over HTTP and
never imports it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from azure.core.credentials import TokenCredential
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from scaleset.cli.errors import CliError, UsageError

SUBSCRIPTION = "5ca1e5e7-5ca1-45e7-a000-000000000001"
TENANT = "5ca1e5e7-5ca1-45e7-a000-0000000000aa"
CLIENT_ID = "5ca1e5e7-5ca1-45e7-a000-0000000000c1"
DEFAULT_PORT = 8443

Cloud = Literal["local", "azure"]

# A server on this machine is there or not: one quick retry, not azure-core's three with 0.8 s backoff (about 6 s).
LOCAL_RETRIES: dict[str, Any] = {"retry_connect": 1, "retry_backoff_factor": 0.1, "retry_backoff_max": 1.0}


def default_data_dir() -> Path:
    """``scaleset serve``'s default data dir (the same rules, duplicated: see the module docstring)."""
    configured = os.environ.get("SCALESET_DATA_DIR")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "scaleset"


def default_endpoint() -> str:
    return os.environ.get("SCALESET_ENDPOINT") or f"https://127.0.0.1:{DEFAULT_PORT}"


@dataclass(frozen=True)
class Target:
    """One resolved destination: the cloud, the ARM base URL, the subscription and how to authenticate."""

    cloud: Cloud
    subscription: str
    credential: TokenCredential
    endpoint: str | None = None  # None: the SDK's default, Azure's public ARM endpoint
    ca: Path | None = None

    @property
    def local(self) -> bool:
        return self.cloud == "local"

    @property
    def poll_interval(self) -> float:
        """How often progress views ask for the rollout status (seconds)."""
        return 0.2 if self.local else 5.0

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.endpoint is not None:
            kwargs["base_url"] = self.endpoint
        if self.ca is not None:
            kwargs["connection_verify"] = str(self.ca)
        if self.local:
            kwargs.update(LOCAL_RETRIES)
            kwargs["polling_interval"] = 1.0  # only when the server sends no retry-after; it always does
        return kwargs


def local_target(*, endpoint: str | None, data_dir: Path | None, subscription: str | None) -> Target:
    base = (endpoint or default_endpoint()).rstrip("/")
    if not base.lower().startswith("https://"):
        raise UsageError(f"--endpoint must be an https:// URL (got {base}); scaleset serve speaks HTTPS only")
    directory = data_dir or default_data_dir()
    secret_file = directory / "client-secret"
    ca = directory / "tls" / "ca.pem"
    if not secret_file.is_file() or not ca.is_file():
        raise CliError(
            "ServerNotFound",
            f"No scaleset server data in {directory} (it needs client-secret and tls/ca.pem). Start one with "
            "'scaleset serve', or point at it with --data-dir / $SCALESET_DATA_DIR and --endpoint / "
            "$SCALESET_ENDPOINT.",
        )
    credential = ClientSecretCredential(
        os.environ.get("SCALESET_TENANT") or TENANT,
        CLIENT_ID,
        secret_file.read_text().strip(),
        authority=base,
        disable_instance_discovery=True,
        connection_verify=str(ca),
        **LOCAL_RETRIES,
    )
    return Target("local", subscription or SUBSCRIPTION, credential, endpoint=base, ca=ca)


def azure_target(*, subscription: str | None) -> Target:
    chosen = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not chosen:
        raise CliError(
            "SubscriptionNotFound",
            "--cloud azure needs a subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID.",
        )
    return Target("azure", chosen, DefaultAzureCredential())


def resolve_target(cloud: Cloud, *, endpoint: str | None, data_dir: Path | None, subscription: str | None) -> Target:
    if cloud == "azure":
        if endpoint is not None or data_dir is not None:
            raise UsageError("--endpoint and --data-dir apply to the local emulator, not to --cloud azure")
        return azure_target(subscription=subscription)
    return local_target(endpoint=endpoint, data_dir=data_dir, subscription=subscription)


@dataclass
class Session:
    """The SDK clients of one command, built on first use (a command that fails its own checks builds none)."""

    target: Target

    @property
    def subscription(self) -> str:
        return self.target.subscription

    @cached_property
    def compute(self) -> ComputeManagementClient:
        return ComputeManagementClient(self.target.credential, self.target.subscription, **self.target.client_kwargs())

    @cached_property
    def resources(self) -> ResourceManagementClient:
        return ResourceManagementClient(self.target.credential, self.target.subscription, **self.target.client_kwargs())

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """A request to the emulator's own routes (``/_scaleset/...``), through the SDK pipeline (same token)."""
        if not self.target.local:
            raise UsageError("fault injection exists only on the local emulator; drop --cloud azure")
        request = HttpRequest(method, path, json=body) if body is not None else HttpRequest(method, path)
        return admin_answer(self.compute.send_request(request))


def admin_answer(response: Any) -> Any:
    """The JSON of an answer from the emulator's own routes; an error answer raises :class:`CliError` with the ARM
    envelope's code and message (exit 3 for 404, 1 otherwise)."""
    text = response.text()
    try:
        data: Any = json.loads(text) if text else None
    except ValueError:
        data = None
    if response.status_code >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("code")), str(error.get("message"))
        else:
            code, message = f"HTTP{response.status_code}", text.strip() or (response.reason or "")
        raise CliError(code, message, exit_code=3 if response.status_code == 404 else 1)
    return data
