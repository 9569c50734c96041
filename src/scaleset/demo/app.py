"""The demo application: a tiny HTTP server that the built-in image versions run, healthy or broken on purpose.

``python -m scaleset.demo.app --port P --version V --instance-id I [--mode M] [--crash-after S] [--start-delay S]
[--zone Z] [--data-dir D] [--os-dir D]``

* Listens on ``127.0.0.1:P`` (``0`` picks a free port; the start line says which).
* ``GET /`` answers 200 with JSON: version, instance id, zone, mode, pid, and how many times this instance started
  (counted in ``{data-dir}/starts``, which survives a reimage). It is what a load balancer's traffic hits.
* ``GET /health`` answers the Application Health extension per ``--mode``:

  ========  =========================================================================================
  healthy   200 ``{"ApplicationHealthState": "Healthy"}``
  never     500 ``{"ApplicationHealthState": "Unhealthy"}`` (and ``GET /`` answers 500 too: a broken release)
  crash     healthy, then the process exits with code 1 ``--crash-after`` seconds after it starts listening
  slow      listens only ``--start-delay`` seconds after it starts; healthy from then on
  unknown   200 with a body lacking ``ApplicationHealthState`` (rich health reads Unknown, binary Healthy)
  ========  =========================================================================================

  ``--crash-after`` and ``--start-delay`` apply in any mode (``crash`` defaults to 20 s, ``slow`` to 45 s).
* Each response closes its connection (HTTP/1.0), so a TCP load balancer places every request anew and a drained
  instance holds no idle connections.
* SIGTERM (or SIGINT) stops it promptly with exit code 0, after letting requests in flight finish (at most 0.5 s).
* One line on stdout per event (start, customData, listening, crash, stop); requests are not logged.
* ``{os-dir}/customdata``, when present, is read and its size logged (Azure's customData, delivered as a file).

It imports only the standard library and starts in well under half a second.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

MODES = ("healthy", "never", "crash", "slow", "unknown")
DEFAULT_CRASH_AFTER = 20.0
DEFAULT_START_DELAY = 45.0
DRAIN_SECONDS = 0.5
CRASH_EXIT_CODE = 1


STEP = 0.05  # how often the main thread looks for a stop request


class StopFlag:
    """Set by the SIGTERM/SIGINT handler; the handler does nothing else (raising from a signal handler could land
    inside the server's request loop, which would swallow it)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signal.Signals(signum).name

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` in short steps; True as soon as a stop was requested."""
        deadline = time.monotonic() + seconds
        while self.signal is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(STEP, left))
        return True


@dataclass(frozen=True)
class Settings:
    port: int
    version: str
    instance_id: str
    mode: str = "healthy"
    zone: str = ""
    crash_after: float | None = None
    start_delay: float = 0.0
    data_dir: Path | None = None
    os_dir: Path | None = None


def health_answer(mode: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of ``GET /health`` once the application listens."""
    if mode == "never":
        return 500, {"ApplicationHealthState": "Unhealthy"}
    if mode == "unknown":
        return 200, {"status": "up"}
    return 200, {"ApplicationHealthState": "Healthy"}


def log(settings: Settings, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{stamp} demo {settings.version} instance {settings.instance_id}: {message}", flush=True)


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, settings: Settings, starts: int) -> None:
        self.settings = settings
        self.starts = starts
        self.active = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", settings.port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without DNS; the name is known.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.active == 0:
                    return
            time.sleep(0.01)


class Handler(BaseHTTPRequestHandler):
    server: DemoServer
    server_version = "scaleset-demo"
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.active += 1
        try:
            self._answer()
        finally:
            with self.server.lock:
                self.server.active -= 1

    def _answer(self) -> None:
        settings = self.server.settings
        path = self.path.split("?", 1)[0]
        if path == "/health":
            status, body = health_answer(settings.mode)
        elif path == "/":
            status = 500 if settings.mode == "never" else 200
            body = {
                "version": settings.version,
                "instanceId": settings.instance_id,
                "zone": settings.zone or None,
                "mode": settings.mode,
                "pid": os.getpid(),
                "starts": self.server.starts,
            }
            if status != 200:
                body["error"] = "this release is broken on purpose (--mode never)"
        else:
            status, body = 404, {"error": f"no such path: {path}"}
        payload = json.dumps(body).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per request would swamp the instance's log under load


def parse(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m scaleset.demo.app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--version", required=True, help="the image version it reports")
    parser.add_argument("--instance-id", required=True, help="the instance id it reports")
    parser.add_argument("--mode", choices=MODES, default="healthy", help="how it behaves (default: healthy)")
    parser.add_argument("--crash-after", type=float, default=None, metavar="S", help="exit(1) S s after listening")
    parser.add_argument("--start-delay", type=float, default=None, metavar="S", help="listen only after S s")
    parser.add_argument("--zone", default="", help="the instance's zone, reported by GET /")
    parser.add_argument("--data-dir", type=Path, default=None, help="kept across reimage: start count")
    parser.add_argument("--os-dir", type=Path, default=None, help="fresh per reimage: customdata is read from it")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0..65535, got {args.port}")
    crash_after = args.crash_after
    if crash_after is None and args.mode == "crash":
        crash_after = DEFAULT_CRASH_AFTER
    start_delay = args.start_delay
    if start_delay is None:
        start_delay = DEFAULT_START_DELAY if args.mode == "slow" else 0.0
    if (crash_after is not None and crash_after < 0) or start_delay < 0:
        parser.error("--crash-after and --start-delay must not be negative")
    return Settings(
        port=args.port,
        version=args.version,
        instance_id=args.instance_id,
        mode=args.mode,
        zone=args.zone,
        crash_after=crash_after,
        start_delay=start_delay,
        data_dir=args.data_dir,
        os_dir=args.os_dir,
    )


def count_start(settings: Settings) -> int:
    """Append this start to ``{data-dir}/starts`` and return how many starts it holds (0 without a data dir)."""
    if settings.data_dir is None:
        return 0
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        starts = settings.data_dir / "starts"
        with starts.open("a", encoding="utf-8") as sink:
            sink.write(f"{time.time():.3f} {settings.version} {os.getpid()}\n")
        with starts.open(encoding="utf-8") as source:
            return sum(1 for _ in source)
    except OSError as exc:
        log(settings, f"cannot record the start in {settings.data_dir}: {exc}")
        return 0


def read_custom_data(settings: Settings) -> None:
    if settings.os_dir is None:
        return
    path = settings.os_dir / "customdata"
    try:
        size = len(path.read_bytes())
    except FileNotFoundError:
        log(settings, "customData: none")
    except OSError as exc:
        log(settings, f"customData: unreadable ({exc})")
    else:
        log(settings, f"customData: {size} bytes")


def _crash(settings: Settings) -> None:
    log(settings, f"crashing on purpose (--crash-after {settings.crash_after:g})")
    os._exit(CRASH_EXIT_CODE)


def run(settings: Settings, stop: StopFlag) -> int:
    zone = f" zone {settings.zone}" if settings.zone else ""
    log(settings, f"starting: mode {settings.mode}{zone} pid {os.getpid()}")
    read_custom_data(settings)
    starts = count_start(settings)
    if settings.start_delay > 0:
        log(settings, f"waiting {settings.start_delay:g} s before listening (--start-delay)")
        if stop.wait(settings.start_delay):
            return 0
    try:
        server = DemoServer(settings, starts)
    except OSError as exc:
        log(settings, f"cannot listen on 127.0.0.1:{settings.port}: {exc}")
        return 1
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": STEP}, name="serve")
    try:
        serving.start()
        log(settings, f"listening on http://127.0.0.1:{server.server_port}")
        if settings.crash_after is not None:
            timer = threading.Timer(settings.crash_after, _crash, args=(settings,))
            timer.daemon = True
            timer.start()
        while serving.is_alive() and not stop.wait(STEP):
            pass
        server.shutdown()  # returns once serve_forever has left its loop (within one poll interval)
        server.drain(DRAIN_SECONDS)
    finally:
        server.server_close()
    if stop.signal is None:
        log(settings, "the server loop ended on its own")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    settings = parse(argv)
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = run(settings, stop)
    if stop.signal is not None:
        log(settings, f"stopping ({stop.signal})")
    return code


if __name__ == "__main__":
    sys.exit(main())
