"""``scaleset load``: bounded HTTP traffic at a fixed rate against a service on this machine, measured per second
and, with ``--scale-set``, per rollout batch.

* **Loopback only.** The target's host must resolve to a loopback address (127.0.0.0/8, ::1; ``localhost``), and
  the connections go to the addresses checked, so a name that resolves elsewhere later cannot redirect the traffic.
  Anything else is refused (exit 2) before a request is sent.
* **Bounded.** ``--rps`` at most 5000, ``--duration`` at most an hour, exactly ``floor(rps * duration)`` requests,
  at most ``--connections`` in flight, each bounded by ``--timeout``.
* **Open loop.** Request ``i`` is due at ``start + i / rps`` and is sent then whatever the earlier ones are doing
  (latency counts from that due time). A request that is due while every connection is busy is not queued: it is a
  failure of kind ``saturated``. Requests are HTTP/1.1 keep-alive ``GET``s over asyncio streams; ``https`` is not
  verified (the target is this machine). A request sent on a kept-alive connection that the server had already
  closed (no byte of an answer) is sent again once on a new connection, as HTTP clients do for idempotent requests.
* **Failures** by kind: ``refused`` and ``connect`` (connecting failed), ``reset`` (the connection broke before a
  whole answer), ``timeout``, ``http_<status>`` (an answer outside 2xx), ``protocol`` (not HTTP), ``saturated``
  (and ``error`` for anything else).
  Latency percentiles are over the requests that got an answer (any status).
* **Per batch.** With ``--scale-set`` the command follows the scale set's activity log on the ``scaleset serve``
  it finds as the other client commands do (``GET /_scaleset/events``, with the bearer token) and attributes each
  request to what the rollout was doing at its send time: a batch (number and instance ids), between batches,
  rolling back, before or after the rollout. The server's clock may run faster than the wall clock: its reading and
  ``timeScale`` are sampled at the start (``GET /_scaleset/clock``) and a send time maps to
  ``virtual_now + (wall - wall_start) * timeScale``. Attribution waits until the log covers a request's send time.

Exit 0 when the run completed, whatever failed (the report says); 1 with ``--max-failures N`` when more than N
requests failed, or when the scale set's server cannot be used; 2 for invalid usage, a non-loopback target included;
3 when the scale set is not found.

The command is split by responsibility: ``load_args`` (argument values, the loopback target), ``load_http`` (the
HTTP/1.1 client and the open-loop runner), ``load_stats`` (histograms, per-second and per-phase figures),
``load_timeline`` (the rollout timeline from activity-log events), ``load_events`` (reading and following the
activity log) and ``load_report`` (the JSON report and tables). This module registers the command and runs it; it
re-exports their public names.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaleset.cli.connect import SUBSCRIPTION, Session, default_endpoint, local_target
from scaleset.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, describe
from scaleset.cli.load_args import (
    DEFAULT_CONNECTIONS,
    DEFAULT_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_DURATION,
    MAX_RPS,
    MAX_TIMEOUT,
    RESOLVE_SECONDS,
    HttpTarget,
    NotLoopbackError,
    check_target,
    connections,
    duration,
    failures_allowed,
    is_loopback,
    planned_requests,
    rate,
    seconds_value,
    timeout,
)
from scaleset.cli.load_events import (
    COVER_MARGIN,
    EVENTS_PAGE,
    POLL_SECONDS,
    RESOURCE_TYPE,
    SERVER_TIMEOUT,
    STALE_SECONDS,
    EventFollower,
    Following,
    parse_time,
    scale_set_id,
    server_get,
)
from scaleset.cli.load_http import (
    MAX_HEADERS,
    READ_CHUNK,
    ClosedError,
    ConnectError,
    Connection,
    LoadPlan,
    LoadRunner,
    ProtocolError,
    read_response,
)
from scaleset.cli.load_report import build_report, phase_rows, write_tables
from scaleset.cli.load_stats import Bucket, ClockMap, Histogram, Recorder
from scaleset.cli.load_timeline import AFTER, BATCH, BEFORE, BETWEEN, ROLLBACK, Key, RolloutSpan, Span, Timeline
from scaleset.cli.registry import SubParsers
from scaleset.cli.runner import _quiet_sdk_logging

__all__ = [
    "AFTER",
    "BATCH",
    "BEFORE",
    "BETWEEN",
    "COVER_MARGIN",
    "DEFAULT_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "EVENTS_PAGE",
    "MAX_CONNECTIONS",
    "MAX_DURATION",
    "MAX_HEADERS",
    "MAX_RPS",
    "MAX_TIMEOUT",
    "POLL_SECONDS",
    "READ_CHUNK",
    "RESOLVE_SECONDS",
    "RESOURCE_TYPE",
    "ROLLBACK",
    "SERVER_TIMEOUT",
    "STALE_SECONDS",
    "SUBSCRIPTION",
    "Bucket",
    "ClockMap",
    "ClosedError",
    "ConnectError",
    "Connection",
    "EventFollower",
    "FollowSetup",
    "Following",
    "Histogram",
    "HttpTarget",
    "Key",
    "LoadPlan",
    "LoadRunner",
    "NotLoopbackError",
    "ProtocolError",
    "Recorder",
    "RolloutSpan",
    "Span",
    "Timeline",
    "build_report",
    "check_target",
    "connections",
    "duration",
    "failures_allowed",
    "is_loopback",
    "parse_time",
    "phase_rows",
    "planned_requests",
    "rate",
    "read_response",
    "register",
    "run",
    "scale_set_id",
    "seconds_value",
    "server_get",
    "timeout",
    "write_tables",
]

# ---------------------------------------------------------------------------------------------- the command


@dataclass
class FollowSetup:
    scale_set: str
    following: Following
    virtual_now: float
    scale: float
    sampled_at: float


def _prepare_follow(args: argparse.Namespace) -> FollowSetup | None:
    given = [args.resource_group is not None, args.name is not None]
    if not args.scale_set and not any(given):
        return None
    if not all(given):
        raise UsageError("--scale-set needs -g/--resource-group and -n/--name")
    target = local_target(endpoint=args.endpoint, data_dir=args.data_dir, subscription=args.subscription)
    session = Session(target)
    # The scale set must exist (a typo would give a report with no batches); this also fetches the token.
    session.compute.virtual_machine_scale_sets.get(
        args.resource_group, args.name, connection_timeout=SERVER_TIMEOUT, read_timeout=SERVER_TIMEOUT
    )
    set_id = scale_set_id(args.subscription or SUBSCRIPTION, args.resource_group, args.name)
    follower = EventFollower(session, set_id.lower())
    following = Following(follower, Timeline())
    following.apply(follower.fetch())  # the history: a rollout may already be running
    now, scale, sampled_at = follower.sample_clock()
    return FollowSetup(set_id, following, now, scale, sampled_at)


async def _run(plan: LoadPlan, setup: FollowSetup | None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    recorder = Recorder(None)
    runner = LoadRunner(plan, recorder)
    if setup is None:
        await runner.run()
        return build_report(plan, recorder, runner)
    # loop.time() is time.monotonic(), as the clock sample's instant: the sample maps onto the run's start.
    start = loop.time()
    clock = ClockMap(setup.virtual_now + (start - setup.sampled_at) * setup.scale, setup.scale)
    setup.following.timeline.since = clock.virtual_start
    recorder.clock = clock
    runner.start = start
    done = asyncio.Event()
    follow = loop.create_task(setup.following.follow(runner, recorder, done))
    try:
        await runner.run(start)
    finally:
        done.set()
        await follow
    return build_report(plan, recorder, runner, scale_set=setup.scale_set, following=setup.following)


def run(args: argparse.Namespace) -> int:
    """``scaleset load``: exit 0 when the run completed; 1 past ``--max-failures``; 2 on invalid usage."""
    _quiet_sdk_logging()  # the SDK's own warnings about failures this command reports in one line
    try:
        target = check_target(args.target)
        plan = LoadPlan(target, args.rps, args.duration, args.timeout, args.connections)
        if plan.total < 1:
            raise UsageError(f"--rps {args.rps:g} for --duration {args.duration:g} s is less than one request")
        setup = _prepare_follow(args)
        report = asyncio.run(_run(plan, setup))
        if setup is not None and setup.following.errors:
            print(
                f"(EventsUnavailable) the activity log could not be read {setup.following.errors} time(s): "
                f"{setup.following.last_error}",
                file=sys.stderr,
            )
        if args.output == "json":
            sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            write_tables(report, sys.stdout)
        failed = int(report["totals"]["failures"])
        if args.max_failures is not None and failed > args.max_failures:
            print(
                f"(TooManyFailures) {failed} of {report['totals']['requests']} requests failed, more than "
                f"--max-failures {args.max_failures}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK
    except BrokenPipeError:
        return EXIT_OK
    except (Exception, KeyboardInterrupt) as exc:
        following = args.scale_set or args.resource_group is not None
        line, code = describe(exc, endpoint=(args.endpoint or default_endpoint()) if following else None)
        print(line, file=sys.stderr)
        return code


def register(sub: SubParsers) -> None:
    summary = "send bounded HTTP load to a local service and report failures and latency per second and per batch"
    parser = sub.add_parser(
        "load", help=summary, description=summary[:1].upper() + summary[1:] + " (loopback targets only)."
    )
    parser.add_argument("--target", required=True, metavar="URL", help="http:// or https:// URL on this machine")
    parser.add_argument("--rps", type=rate, required=True, metavar="N", help=f"requests per second (<= {MAX_RPS:g})")
    parser.add_argument(
        "--duration", type=duration, required=True, metavar="D", help="how long: 30, 30s, 2m, 1h or PT30S (<= 1 h)"
    )
    parser.add_argument(
        "--timeout",
        type=timeout,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"per request, connecting included (default: {DEFAULT_TIMEOUT:g} s)",
    )
    parser.add_argument(
        "--connections",
        type=connections,
        default=DEFAULT_CONNECTIONS,
        metavar="C",
        help=f"at most this many requests in flight (default: {DEFAULT_CONNECTIONS})",
    )
    parser.add_argument(
        "--max-failures",
        type=failures_allowed,
        default=None,
        metavar="N",
        help="exit 1 when more than N requests failed (for CI); default: exit 0 whatever failed",
    )
    parser.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="report format (default: table)"
    )
    follow = parser.add_argument_group("per rollout batch (a scale set on the local scaleset serve)")
    follow.add_argument(
        "--scale-set", action="store_true", help="attribute requests to the batches of -g/-n's rolling upgrades"
    )
    follow.add_argument("-g", "--resource-group", default=None, help="the scale set's resource group")
    follow.add_argument("-n", "--name", "--vmss-name", dest="name", default=None, help="the scale set's name")
    follow.add_argument("--endpoint", default=None, metavar="URL", help="the emulator's URL (as the other commands)")
    follow.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR", help="the emulator's data dir (as the other commands)"
    )
    follow.add_argument("--subscription", default=None, metavar="ID", help="subscription id (default: the emulator's)")
    parser.set_defaults(run=run)
