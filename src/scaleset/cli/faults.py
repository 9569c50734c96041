"""``scaleset fault add | list | clear | health``: the emulator's fault injection (``/_scaleset/...``).

Faults use the vocabulary of scenario files (``simulation.faults``): a kind, what it matches (image version,
extension, instance ids, zone, a fraction of the matches) and its timing. They apply to every scale set on the
server, from the next time an instance is deployed or observed. ``fault health`` sets the health answer of running
instances directly. These routes exist only on the local emulator.
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

from scaleset.cli import tables
from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.cli.parsing import duration_value
from scaleset.cli.registry import Parents, SubParsers, leaf
from scaleset.cli.vmss import instance_id_list

KINDS = ("never_healthy", "crash", "slow_boot", "flapping", "unknown", "extension_failure", "zone_outage")
ANSWERS = ("healthy", "unhealthy", "invalid", "none")
MATCH_AND_TIMING = ("image_version", "extension", "instances", "zone", "fraction", "respond")
DURATIONS = ("after", "delay", "period", "at", "duration")


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 to 1, got {text}")
    return value


def fault_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "zone_outage" and args.zone is None:
        raise UsageError("--kind zone_outage needs --zone")
    if args.kind == "extension_failure" and args.extension is None:
        raise UsageError("--kind extension_failure needs --extension")
    body: dict[str, Any] = {"kind": args.kind}
    for key in (*MATCH_AND_TIMING, *DURATIONS):
        value = getattr(args, key)
        if value is not None:
            body[key] = value
    return body


def add(session: Session, args: argparse.Namespace) -> Any:
    return session.admin("POST", "/_scaleset/faults", fault_body(args))


def list_faults(session: Session, args: argparse.Namespace) -> Any:
    data = session.admin("GET", "/_scaleset/faults")
    return data.get("value", []) if isinstance(data, dict) else data


def clear(session: Session, args: argparse.Namespace) -> Any:
    if args.id is not None:
        session.admin("DELETE", f"/_scaleset/faults/{quote(args.id, safe='')}")
        return {"removed": 1}
    return session.admin("DELETE", "/_scaleset/faults")


def health(session: Session, args: argparse.Namespace) -> Any:
    ids = [ident for value in args.instance_ids for ident in value]
    path = "/".join(quote(p, safe="") for p in (session.subscription, args.resource_group, args.name))
    return session.admin("POST", f"/_scaleset/health/{path}", {"instanceIds": ids, "answer": args.answer})


def register(sub: SubParsers, parents: Parents) -> None:
    p = leaf(sub, "add", add, "inject a fault (scenario-file vocabulary)", [parents.globals])
    p.add_argument("--kind", choices=KINDS, required=True, help="what goes wrong")
    match = p.add_argument_group("which instances (all given must match)")
    match.add_argument("--image-version", dest="image_version", default=None, help="instances deployed with it")
    match.add_argument("--extension", default=None, help="instances whose model has this extension (by name)")
    match.add_argument("--instances", nargs="+", type=int, default=None, metavar="ID", help="these instance ids")
    match.add_argument("--zone", default=None, help="instances in this zone (zone_outage: the zone that fails)")
    match.add_argument("--fraction", type=fraction, default=None, help="only this share of the matches (0..1)")
    timing = p.add_argument_group("behaviour and timing (seconds or ISO 8601; virtual time)")
    timing.add_argument("--respond", choices=("none", "unhealthy"), default=None, help="never_healthy: the answer")
    timing.add_argument("--after", type=duration_value, default=None, help="crash: healthy for this long first")
    timing.add_argument("--delay", type=duration_value, default=None, help="slow_boot: healthy only after this")
    timing.add_argument("--period", type=duration_value, default=None, help="flapping: the half-period")
    timing.add_argument("--at", type=duration_value, default=None, help="zone_outage: starts at this clock reading")
    timing.add_argument("--duration", type=duration_value, default=None, help="zone_outage: lasts this long")

    leaf(sub, "list", list_faults, "list the injected faults", [parents.globals], table=tables.faults)

    p = leaf(sub, "clear", clear, "remove every fault, or one with --id", [parents.globals])
    p.add_argument("--id", default=None, help="remove only this fault")

    p = leaf(sub, "health", health, "set the health answer of running instances", [parents.globals, parents.target])
    p.add_argument(
        "--instance-ids",
        nargs="+",
        type=instance_id_list,
        default=[["*"]],
        metavar="ID",
        help="instance ids (default: *)",
    )
    p.add_argument("--answer", choices=ANSWERS, required=True, help="what their application answers from now on")
