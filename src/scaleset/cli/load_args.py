"""``scaleset load``'s arguments: bounded values (rate, seconds, connections) and the loopback-only target."""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from scaleset import __version__
from scaleset.cli.errors import EXIT_USAGE, CliError, UsageError
from scaleset.cli.parsing import non_negative_int

MAX_RPS = 5000.0
MAX_DURATION = 3600.0
MAX_CONNECTIONS = 512
MAX_TIMEOUT = 300.0
DEFAULT_CONNECTIONS = 32
DEFAULT_TIMEOUT = 5.0
RESOLVE_SECONDS = 5.0  # a name lookup that takes longer is refused

# ---------------------------------------------------------------------------------------------- argument values


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got '{text}'") from None
    if not 0 < value <= MAX_RPS:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most {MAX_RPS:g} requests per second")
    return value


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$", re.IGNORECASE)
_ISO = re.compile(r"^PT(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$", re.IGNORECASE)
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds_value(text: str) -> float:
    """Seconds: ``30``, ``1.5``, ``500ms``, ``30s``, ``2m``, ``1h`` or ISO 8601 (``PT2M``)."""
    stripped = text.strip()
    plain = _DURATION.match(stripped)
    iso = _ISO.match(stripped)
    if plain is not None:
        unit = plain.group(2).lower() if plain.group(2) else None
        return float(plain.group(1)) * _UNIT[unit]
    if iso is not None:
        hours, minutes, secs = (float(part) if part else 0.0 for part in iso.groups())
        return hours * 3600 + minutes * 60 + secs
    raise argparse.ArgumentTypeError(f"expected seconds (30, 2m, 1h or PT30S), got '{text}'")


def _bounded_seconds(text: str, high: float, what: str) -> float:
    value = seconds_value(text)
    if not 0 < value <= high:
        raise argparse.ArgumentTypeError(f"expected {what} more than 0 and at most {high:g} seconds, got '{text}'")
    return value


def duration(text: str) -> float:
    return _bounded_seconds(text, MAX_DURATION, "a duration")


def timeout(text: str) -> float:
    return _bounded_seconds(text, MAX_TIMEOUT, "a timeout")


def connections(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of connections, got '{text}'") from None
    if not 1 <= value <= MAX_CONNECTIONS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_CONNECTIONS} connections, got {value}")
    return value


failures_allowed = non_negative_int  # --max-failures: a whole number, 0 or more


def planned_requests(rps: float, seconds: float) -> int:
    """``floor(rps * duration)``, without a float's 0.9999... losing the last request."""
    return math.floor(rps * seconds + 1e-9)


# ---------------------------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class HttpTarget:
    """Where the requests go: the URL as given, and the loopback addresses it was checked to resolve to."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def request_bytes(self) -> bytes:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        authority = host if self.port == default else f"{host}:{self.port}"
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {authority}",
            f"User-Agent: scaleset-load/{__version__}",
            "Accept: */*",
            "Connection: keep-alive",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class NotLoopbackError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__("NonLoopbackTarget", message, exit_code=EXIT_USAGE)


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _lookup(host: str, port: int) -> list[str]:
    """The addresses of a name, bounded by RESOLVE_SECONDS (a daemon thread: a hung resolver never holds us)."""
    found: list[list[str]] = []
    failed: list[str] = []

    def work() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append([str(info[4][0]) for info in infos])
        except OSError as exc:
            failed.append(str(exc))

    worker = threading.Thread(target=work, name="scaleset-load-resolve", daemon=True)
    worker.start()
    worker.join(RESOLVE_SECONDS)
    if found:
        return found[0]
    reason = failed[0] if failed else f"no answer within {RESOLVE_SECONDS:g} s"
    raise NotLoopbackError(
        f"--target host '{host}' could not be resolved ({reason}); scaleset load sends to this machine only"
    )


def check_target(url: str) -> HttpTarget:
    """The target, if its host is this machine; else NotLoopbackError (exit 2) before anything is sent."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(f"--target must be an http:// or https:// URL, got '{url}'")
    host = (parts.hostname or "").lower()
    if not host:
        raise UsageError(f"--target has no host: '{url}'")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"--target has an invalid port: '{url}'") from None
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = _lookup(host, port)
    outside = [a for a in addresses if not is_loopback(a)]
    if not addresses or outside:
        where = f" ({', '.join(sorted(set(outside)))})" if outside and outside != [host] else ""
        raise NotLoopbackError(
            f"--target host '{host}'{where} is not a loopback address; scaleset load sends traffic to this machine "
            "only (127.0.0.0/8, ::1, localhost)"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpTarget(url.strip(), scheme, host, port, path, tuple(dict.fromkeys(addresses)))
