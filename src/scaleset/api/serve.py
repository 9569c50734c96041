"""``scaleset serve``: the local ARM endpoint for scale sets, over HTTPS.

On first start the data dir gets a local CA and server certificate (``tls/ca.pem``), a client secret
(``client-secret``, mode 0600), a token signing key and the SQLite store. Every later start reuses them and
resumes whatever was running.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn

from scaleset.api.app import create_app
from scaleset.api.auth import load_identity
from scaleset.api.runtime import BACKENDS, Runtime
from scaleset.api.tls import ensure_tls
from scaleset.domain.durations import parse_duration
from scaleset.store import open_store

SUBSCRIPTION = "5ca1e5e7-5ca1-45e7-a000-000000000001"
TENANT = "5ca1e5e7-5ca1-45e7-a000-0000000000aa"
CLIENT_ID = "5ca1e5e7-5ca1-45e7-a000-0000000000c1"
DEFAULT_PORT = 8443


def default_data_dir() -> Path:
    configured = os.environ.get("SCALESET_DATA_DIR")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "scaleset"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the local ARM endpoint for VM scale sets (HTTPS)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="state, certificates and secrets (default: $SCALESET_DATA_DIR or ~/.local/share/scaleset)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="virtual time runs this many times faster than the wall clock (default: 1)",
    )
    parser.add_argument("--subscription", default=SUBSCRIPTION, help="the subscription id to serve")
    parser.add_argument("--tenant", default=TENANT, help="the tenant id tokens carry")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="process",
        help="process: every instance a real local process behind a real load balancer (default); simulated: "
        "virtual instances with fault injection, for any --time-scale",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=3.0,
        help="how long an instance's open connections may finish after it leaves the load balancer (process)",
    )
    parser.add_argument(
        "--health-wait",
        default="PT5M",
        help="how long an upgraded instance has to report Healthy before it counts as failed (ISO 8601, default "
        "PT5M, Azure's documented wait; a shorter one makes real-process rehearsals quicker)",
    )
    parser.add_argument(
        "--repairs-grace",
        default=None,
        help="use this grace period for automatic repairs instead of each scale set's gracePeriod (ISO 8601, such "
        "as PT20S; Azure's minimum is PT10M, so this is for real-process rehearsals only)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="create resource group 'demo' and a Rolling scale set 'web' of the demo application, if missing",
    )
    parser.add_argument(
        "--retry-after-ms",
        type=int,
        default=100,
        help="how soon clients should poll long-running operations (milliseconds)",
    )
    parser.set_defaults(run=run)


class Server(uvicorn.Server):
    """uvicorn's server, with a prompt shutdown over TLS.

    uvicorn closes idle keep-alive connections gracefully, and a graceful TLS close waits for the client's
    ``close_notify``, which a pooled, idle client connection never sends: every SIGTERM then sat out the whole
    graceful-shutdown timeout. Idle connections are aborted instead; requests in flight still finish.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


@contextlib.contextmanager
def clean_exit_on_signals(server: uvicorn.Server) -> Iterator[None]:
    """After a graceful shutdown uvicorn re-raises the signal that asked for it, which would end the process
    with -SIGTERM (or a KeyboardInterrupt traceback). Under these handlers the re-raise only asks the (already
    stopped) server to stop, so ``scaleset serve`` exits 0 after a clean shutdown; a signal that comes before
    uvicorn installs its own handlers stops the server as soon as it starts."""

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def environment_lines(base: str, data_dir: Path, ca: Path, *, tenant: str, subscription: str) -> list[str]:
    secret = data_dir / "client-secret"
    return [
        "# Azure SDK for Python (azure-identity ClientSecretCredential with authority=ENDPOINT):",
        f"export REQUESTS_CA_BUNDLE={ca}",
        f"export SCALESET_ENDPOINT={base}",
        f"export AZURE_TENANT_ID={tenant} AZURE_CLIENT_ID={CLIENT_ID} AZURE_CLIENT_SECRET=$(cat {secret})",
        f"export AZURE_SUBSCRIPTION_ID={subscription}",
        "# az (service-principal login; the proxy guard keeps every request on this machine):",
        f"export AZURE_CONFIG_DIR={data_dir / 'azure-cli'} AZURE_CORE_INSTANCE_DISCOVERY=false "
        "AZURE_CORE_COLLECT_TELEMETRY=false",
        "export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost",
        f"az cloud register -n scaleset --endpoint-resource-manager {base}/ && az cloud set -n scaleset",
        f"az login --service-principal -u {CLIENT_ID} -p $(cat {secret}) --tenant {tenant}",
    ]


def _cli_environment(args: argparse.Namespace, data_dir: Path) -> str:
    """What the ``scaleset`` CLI must be told when this server is not where it looks by default."""
    parts = []
    if args.port != DEFAULT_PORT or args.host not in ("127.0.0.1", "localhost"):
        parts.append(f"SCALESET_ENDPOINT=https://{args.host}:{args.port}")
    if data_dir != default_data_dir():
        parts.append(f"SCALESET_DATA_DIR={data_dir}")
    return " ".join(parts)


def _duration_flag(flag: str, text: str) -> float | None:
    """The flag's ISO 8601 duration in seconds; None, with a one-line message, when it is not one."""
    try:
        return parse_duration(text)
    except ValueError:
        print(f"scaleset serve: {flag} {text!r} is not an ISO 8601 duration such as PT30S", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    if args.time_scale <= 0:
        print("scaleset serve: --time-scale must be positive", file=sys.stderr)
        return 2
    if args.backend == "process" and args.time_scale != 1:
        print(
            "scaleset serve: real processes run in wall-clock time: use --backend simulated with --time-scale",
            file=sys.stderr,
        )
        return 2
    health_wait = _duration_flag("--health-wait", args.health_wait)
    repairs_grace = _duration_flag("--repairs-grace", args.repairs_grace) if args.repairs_grace is not None else None
    if health_wait is None or (args.repairs_grace is not None and repairs_grace is None):
        return 2
    if args.drain_seconds < 0:
        print("scaleset serve: --drain-seconds must not be negative", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print("scaleset serve: --port must be between 1 and 65535", file=sys.stderr)
        return 2
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print(
            f"warning: binding {args.host}, which is not a loopback address: other machines may reach this emulator",
            file=sys.stderr,
        )
    data_dir: Path = args.data_dir or default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    tls = ensure_tls(data_dir)
    identity = load_identity(data_dir, tenant=args.tenant, subscription=args.subscription, client_id=CLIENT_ID)
    store = open_store(str(data_dir / "scaleset.db"))
    runtime = Runtime(
        store=store,
        identity=identity,
        time_scale=args.time_scale,
        retry_after_ms=args.retry_after_ms,
        backend_kind=args.backend,
        data_dir=data_dir,
        drain_seconds=args.drain_seconds,
        demo=args.demo,
        health_wait=health_wait,
        repairs_grace=repairs_grace,
        endpoint_hint=_cli_environment(args, data_dir),
    )
    host = args.host if ":" not in args.host else f"[{args.host}]"
    base = f"https://{host}:{args.port}"
    print(f"scaleset serving Microsoft.Compute scale sets at {base}")
    print(f"  data dir: {data_dir}   CA: {tls.ca}   backend: {args.backend}   time scale: {args.time_scale:g}x")
    print(f"  subscription {args.subscription}, tenant {args.tenant}, client id {CLIENT_ID}")
    for line in environment_lines(base, data_dir, tls.ca, tenant=args.tenant, subscription=args.subscription):
        print(f"  {line}")
    sys.stdout.flush()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        create_app(runtime),
        host=args.host,
        port=args.port,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,  # clients keep connections alive; do not wait on them for ever
    )
    server = Server(config)
    with clean_exit_on_signals(server):
        server.run()
    return 0 if server.started else 1
