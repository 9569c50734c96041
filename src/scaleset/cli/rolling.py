"""``scaleset vmss rolling-upgrade start | get-latest | cancel | wait``.

``start`` is ``az vmss rolling-upgrade start``: ``POST {vmss}/osRollingUpgrade``, an upgrade of every instance to the
latest OS image version. While it waits it shows the rollout as ``update`` and ``wait`` do; it prints nothing.

``wait`` is for pipelines: it follows the latest rolling upgrade (the live view on stderr) until it ends, prints the
final status, and exits 0 when it Completed, 1 when it Faulted or was Cancelled (the error on stderr as
``(Code) message``), 1 when ``--timeout`` passes first, 3 when the scale set or any rolling upgrade is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from scaleset.cli import tables
from scaleset.cli.connect import Session
from scaleset.cli.errors import EXIT_FAILED, EXIT_OK, CliError
from scaleset.cli.output import add_resource_group, shaped
from scaleset.cli.parsing import positive_seconds
from scaleset.cli.progress import TERMINAL, RolloutView, Snapshot, finish, latest_start, lro_kwargs
from scaleset.cli.registry import Parents, SubParsers, leaf
from scaleset.cli.runner import Outcome


def start(session: Session, args: argparse.Namespace) -> Any:
    """Start an OS rolling upgrade (``osRollingUpgrade``) and, unless ``--no-wait``, follow it to its end."""
    upgrades = session.compute.virtual_machine_scale_set_rolling_upgrades
    view: RolloutView | None = None
    if not args.no_wait:
        # the rollout that was latest before this command is history, not this one's
        since = latest_start(session, args.resource_group, args.name)
        view = RolloutView(session, args.resource_group, args.name, since=since, tolerant=True)
    poller = upgrades.begin_start_os_upgrade(args.resource_group, args.name, **lro_kwargs(args))
    finish(poller, args, view=view, interval=session.target.poll_interval)
    return None


def get_latest(session: Session, args: argparse.Namespace) -> Any:
    upgrades = session.compute.virtual_machine_scale_set_rolling_upgrades
    return shaped(upgrades.get_latest(args.resource_group, args.name).as_dict())


def cancel(session: Session, args: argparse.Namespace) -> Any:
    upgrades = session.compute.virtual_machine_scale_set_rolling_upgrades
    finish(upgrades.begin_cancel(args.resource_group, args.name, **lro_kwargs(args)), args)
    return None


def wait(session: Session, args: argparse.Namespace) -> Any:
    interval: float = args.interval or session.target.poll_interval
    deadline = time.monotonic() + args.timeout
    snapshot: Snapshot | None = None
    with RolloutView(session, args.resource_group, args.name) as view:
        while True:
            snapshot = view.poll()
            if snapshot is not None and snapshot.code in TERMINAL:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                code = snapshot.code if snapshot is not None else "unknown"
                raise CliError(
                    "OperationTimedOut",
                    f"The rolling upgrade of '{args.name}' is still {code} after {args.timeout:g} s (--timeout).",
                )
            time.sleep(min(interval, remaining))
    status = add_resource_group(snapshot.status)
    if snapshot.code == "Completed":
        return Outcome(status, EXIT_OK)
    error = (snapshot.status or {}).get("error")
    if isinstance(error, dict) and error.get("code"):
        print(f"({error.get('code')}) {error.get('message')}", file=sys.stderr)
    elif snapshot.code == "Cancelled":
        print(f"(RollingUpgradeCancelled) The rolling upgrade of '{args.name}' was cancelled.", file=sys.stderr)
    else:
        print(f"(RollingUpgradeFaulted) The rolling upgrade of '{args.name}' ended {snapshot.code}.", file=sys.stderr)
    return Outcome(status, EXIT_FAILED)


def register(sub: SubParsers, parents: Parents) -> None:
    target, lro = [parents.globals, parents.target], [parents.globals, parents.target, parents.lro]
    leaf(sub, "start", start, "start an OS rolling upgrade to the latest image version (osRollingUpgrade)", lro)
    leaf(sub, "get-latest", get_latest, "the status of the latest rolling upgrade", target, table=tables.rolling_status)
    leaf(sub, "cancel", cancel, "cancel the rolling upgrade in progress", lro)
    p = leaf(
        sub,
        "wait",
        wait,
        "wait for the latest rolling upgrade to end: exit 0 Completed, 1 Faulted or Cancelled",
        target,
        table=tables.rolling_status,
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="give up after this many seconds (default: 3600)",
    )
    p.add_argument(
        "--interval",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds between looks (default: 0.2 local, 5 Azure)",
    )
