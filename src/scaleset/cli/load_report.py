"""``scaleset load``'s report: the figures as a JSON document, per second and per rollout phase, and as tables."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from scaleset.cli.load_events import Following
from scaleset.cli.load_http import LoadPlan, LoadRunner
from scaleset.cli.load_stats import Bucket, ClockMap, Recorder, _ms
from scaleset.cli.load_timeline import AFTER, BATCH, BEFORE, BETWEEN, ROLLBACK, Key, RolloutSpan, Span, Timeline
from scaleset.cli.output import AZ_BOX

# ---------------------------------------------------------------------------------------------- the report


def _phase_label(key: Key) -> str:
    return f"batch {key[2]}" if key[0] == BATCH else key[0]


def phase_rows(recorder: Recorder, timeline: Timeline, clock: ClockMap) -> list[dict[str, Any]]:
    """One row per batch of the rollouts that overlap the run, and the phases around them that saw requests."""
    order: list[tuple[Key, Span | None, RolloutSpan | None]] = [((BEFORE, None, None), None, None)]
    for each in timeline.relevant():
        for number in sorted(each.batches):
            order.append(((BATCH, each.rollout_id, number), each.batches[number], each))
        order.append(((BETWEEN, each.rollout_id, None), None, each))
        if each.rollback is not None:
            order.append(((ROLLBACK, each.rollout_id, None), each.rollback, each))
    order.append(((AFTER, None, None), None, None))
    listed = {key for key, _, _ in order}
    order += [(key, None, None) for key in recorder.phases if key not in listed]  # never drop a request

    rows: list[dict[str, Any]] = []
    for key, span, rollout in order:
        bucket = recorder.phases.get(key)
        if span is None and (bucket is None or bucket.requests == 0):
            continue
        row: dict[str, Any] = {
            "phase": _phase_label(key),
            "rolloutId": key[1],
            "batch": key[2],
            "instanceIds": list(span.instance_ids) if span is not None else [],
            "outcome": rollout.outcome if rollout is not None else None,
            "start": _iso(span.start) if span is not None else None,
            "end": _iso(span.end) if span is not None and span.end is not None else None,
            "fromSecond": round(clock.offset(span.start), 3) if span is not None else None,
            "toSecond": round(clock.offset(span.end), 3) if span is not None and span.end is not None else None,
        }
        row.update((bucket or Bucket()).figures())
        rows.append(row)
    return rows


def _iso(when: float) -> str:
    stamp = datetime.fromtimestamp(when, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def build_report(
    plan: LoadPlan,
    recorder: Recorder,
    runner: LoadRunner,
    *,
    scale_set: str | None = None,
    following: Following | None = None,
) -> dict[str, Any]:
    elapsed = max(runner.finished - runner.start, 1e-9)
    sending = max(runner.last_sent - runner.start, 0.0) + 1.0 / plan.rps  # the window the requests went out in
    totals = recorder.totals.figures()
    totals.update(
        {
            "succeeded": recorder.totals.requests - recorder.totals.failures,
            "elapsedSeconds": round(elapsed, 3),
            "achievedRps": round(recorder.totals.requests / sending, 3),
            "maxSchedulerLagMs": _ms(recorder.max_lag),
        }
    )
    report: dict[str, Any] = {
        "target": plan.target.url,
        "rps": plan.rps,
        "durationSeconds": plan.duration,
        "timeoutSeconds": plan.timeout,
        "connections": plan.connections,
        "plannedRequests": plan.total,
        "totals": totals,
        "perSecond": [{"second": s, **recorder.seconds[s].figures()} for s in sorted(recorder.seconds)],
    }
    if scale_set is not None and following is not None and recorder.clock is not None:
        report["scaleSet"] = scale_set
        report["clock"] = {"start": _iso(recorder.clock.virtual_start), "timeScale": recorder.clock.scale}
        report["events"] = {"complete": following.errors == 0, "readErrors": following.errors}
        report["batches"] = phase_rows(recorder, following.timeline, recorder.clock)
    return report


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in kinds.items()) or "-"


def _table(columns: list[str], rows: list[list[str]], right: int) -> Table:
    table = Table(box=AZ_BOX, show_edge=False, pad_edge=False, header_style="")
    for position, column in enumerate(columns):
        table.add_column(column, no_wrap=True, justify="right" if position >= right else "left")
    for row in rows:
        table.add_row(*row)
    return table


def write_tables(report: dict[str, Any], stream: TextIO) -> None:
    """The report as rich tables (no frame, as the other table outputs), the same figures as the JSON."""
    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, width=4096, soft_wrap=False, force_terminal=False)
    totals = report["totals"]
    console.print(
        f"load: {report['target']}  {report['rps']:g} req/s for {report['durationSeconds']:g} s  "
        f"({report['connections']} connections, timeout {report['timeoutSeconds']:g} s)"
    )
    console.print(
        f"requests {totals['requests']} (planned {report['plannedRequests']}), failed {totals['failures']} "
        f"({totals['errorRate'] * 100:.2f}%), p50 {_num(totals['p50Ms'])} ms, p95 {_num(totals['p95Ms'])} ms, "
        f"p99 {_num(totals['p99Ms'])} ms, {totals['achievedRps']:g} req/s over {totals['elapsedSeconds']:g} s"
    )
    console.print(f"failures: {_kinds(totals['failureKinds'])}")
    console.print()
    rows = [
        [
            str(s["second"]),
            str(s["requests"]),
            str(s["failures"]),
            _num(s["p50Ms"]),
            _num(s["p95Ms"]),
            _num(s["p99Ms"]),
            _kinds(s["failureKinds"]),
        ]
        for s in report["perSecond"]
    ]
    console.print(_table(["Second", "Requests", "Failed", "p50 ms", "p95 ms", "p99 ms", "Failures"], rows, 1))
    if "batches" in report:
        console.print()
        console.print(f"per rollout phase: {report['scaleSet']} (server time x{report['clock']['timeScale']:g})")
        rows = [
            [
                b["phase"],
                ",".join(b["instanceIds"]) or "-",
                _num(b["fromSecond"], 2),
                _num(b["toSecond"], 2),
                str(b["requests"]),
                str(b["failures"]),
                f"{b['errorRate'] * 100:.2f}%",
                _num(b["p99Ms"]),
                _kinds(b["failureKinds"]),
            ]
            for b in report["batches"]
        ]
        console.print(
            _table(
                ["Phase", "Instances", "From s", "To s", "Requests", "Failed", "Error rate", "p99 ms", "Failures"],
                rows,
                2,
            )
        )
        if not report["events"]["complete"]:
            console.print(f"(the activity log could not be read {report['events']['readErrors']} time(s))")
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
    stream.flush()
