"""The evidence report as Markdown, JSON, and self-contained HTML with a timeline chart (matplotlib, Agg, PNG as a
data URI: the page fetches nothing)."""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

from scaleset.safety.evidence import Evidence, iso

IN_SERVICE_COLOUR = "#1f77b4"
HEALTHY_COLOUR = "#2ca02c"
CAPACITY_COLOUR = "#555555"
THRESHOLD_COLOUR = "#d62728"
FAULT_COLOUR = "#ff7f0e"
PASSED_SPAN = "#9ecae1"
BREACHED_SPAN = "#fcae91"
ROLLBACK_SPAN = "#dadaeb"


def render_json(evidence: Evidence) -> str:
    return json.dumps(evidence.to_json(), indent=2) + "\n"


# ---------------------------------------------------------------------------------------------- Markdown


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _check(check: dict[str, Any] | None, first: str, second: str) -> str:
    if check is None:
        return "-"
    verdict = "ok" if check.get("passed") else "BREACHED"
    return f"{check.get(first)}/{check.get(second)} (<= {check.get('thresholdPercent')}%) {verdict}"


def _event_line(event: dict[str, Any]) -> str:
    facts = ", ".join(
        f"{k}={json.dumps(v)}"
        for k, v in event.items()
        if k not in ("kind", "time", "timeIso", "seq", "scaleSet", "rolloutId", "policy")
    )
    return facts


def render_markdown(evidence: Evidence) -> str:
    doc = evidence.to_json()
    lines = [f"# Rollout evidence: {evidence.name}", ""]
    lines.append(
        f"Scale set `{evidence.name}` in resource group `{evidence.resource_group or '-'}` ({evidence.source}); "
        f"report generated {doc['generated']}."
    )
    lines.append("")
    for note in evidence.notes:
        lines += [f"> {note}", ""]
    lines += ["## Policy in force", "", "| field | value |", "|---|---|"]
    lines.append(f"| mode | {_cell(evidence.policy.get('mode'))} |")
    for group in ("rollingUpgradePolicy", "automaticOSUpgradePolicy"):
        for key, value in (evidence.policy.get(group) or {}).items():
            lines.append(f"| {group}.{key} | {_cell(value)} |")
    lines.append(f"| capacity | {evidence.capacity} |")
    lines.append(
        f"| minimum in service allowed (maxUnhealthyInstancePercent {evidence.max_unhealthy_percent}) | "
        f"{evidence.min_in_service} |"
    )
    lines += ["", "## Rollout status", ""]
    status = evidence.status
    if status is None:
        lines.append("No rolling upgrade reported by `rollingUpgrades/latest`.")
    else:
        lines.append(f"- status: **{status.get('code')}**")
        lines.append(f"- started: {status.get('startTime') or '-'}")
        lines.append(f"- ended: {status.get('endTime') or '-'}")
        if status.get("progress"):
            lines.append(f"- progress: {_cell(json.dumps(status['progress']))}")
        error = status.get("error")
        lines.append(f"- error: ({error['code']}) {error['message']}" if error else "- error: none")
    if evidence.rollout_id:
        lines.append(f"- rollout id: {evidence.rollout_id}; target model version {evidence.target_model_version}")
    if evidence.outcome:
        lines.append(f"- outcome: {evidence.outcome['kind']} at {evidence.outcome['time']}")
    lines += ["", "## Batches", ""]
    if not evidence.batches:
        lines.append("No batches in the activity log.")
    else:
        lines.append(
            "| batch | instances | zone | start | end | check before (unhealthy/total) | "
            "upgraded unhealthy | verdict | healthy | failed |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for b in evidence.batches:
            row = b.to_json()
            lines.append(
                f"| {b.number} | {_cell(b.instance_ids)} | {_cell(b.zone)} | {_cell(row['start'])} | "
                f"{_cell(row['end'])} | {_check(b.pre_check, 'unhealthy', 'total')} | "
                f"{_check(b.post_check, 'upgradedUnhealthy', 'upgraded')} | {b.verdict} | "
                f"{_cell(b.succeeded_ids)} | {_cell(b.failed_ids)} |"
            )
    if evidence.rollback is not None:
        back = evidence.rollback.to_json()
        lines += ["", "## Rollback", ""]
        lines.append(
            f"Instances {_cell(back['instanceIds'])} rolled back from {back['start'] or '-'} to {back['end'] or '-'}; "
            f"healthy again: {_cell(back['healthyIds'])}."
        )
    if evidence.series:
        lowest = min(p.in_service for p in evidence.series)
        lines += ["", "## Capacity", ""]
        lines.append(
            f"Lowest in service: {lowest} of {evidence.capacity} (the policy allows down to {evidence.min_in_service})."
        )
    if evidence.faults:
        lines += ["", "## Faults", ""]
        lines += [f"- {iso(at)}: {label}" for at, label in evidence.faults]
    lines += ["", "## Activity log", ""]
    if evidence.events is None:
        lines.append("Not available for this scale set (real Azure).")
    elif not evidence.events:
        lines.append("No events.")
    else:
        lines += ["| time | event | details |", "|---|---|---|"]
        for event in evidence.events:
            when = event.get("timeIso") or iso(float(event.get("time", 0.0)))
            lines.append(f"| {when} | {event.get('kind')} | {_cell(_event_line(event))} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- the chart


def render_chart(evidence: Evidence) -> bytes:
    """The timeline as a PNG: batches as spans, in-service and healthy counts as step lines, the capacity and the
    lowest in-service count maxUnhealthyInstancePercent allows as horizontal lines, the faults marked."""
    import matplotlib  # noqa: PLC0415 - heavy, and only the chart needs it

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(10, 4.5), dpi=100)
    axes = figure.add_subplot()

    series = evidence.series
    origin = series[0].time if series else 0.0

    def when(seconds: float) -> float:
        """Minutes since the rollout started."""
        return (seconds - origin) / 60.0

    top = max(evidence.capacity, *(p.in_service for p in series)) if series else evidence.capacity
    if series:
        end = max(
            [series[-1].time]
            + [b.end for b in evidence.batches if b.end is not None]
            + [at for at, _ in evidence.faults]
        )
        times = [when(p.time) for p in series] + [when(end)]
        axes.step(
            times,
            [p.in_service for p in series] + [series[-1].in_service],
            where="post",
            color=IN_SERVICE_COLOUR,
            linewidth=2.2,
            label="in service",
        )
        axes.step(
            times,
            [p.healthy for p in series] + [series[-1].healthy],
            where="post",
            color=HEALTHY_COLOUR,
            linewidth=1.4,
            linestyle="--",
            label="healthy (at checks)",
        )
        for batch in evidence.batches:
            if batch.start is None:
                continue
            stop = batch.end if batch.end is not None else end
            colour = BREACHED_SPAN if batch.verdict == "Breached" else PASSED_SPAN
            axes.axvspan(when(batch.start), when(max(stop, batch.start)), color=colour, alpha=0.45, linewidth=0)
            middle = batch.start + (max(stop, batch.start) - batch.start) / 2
            axes.annotate(f"B{batch.number}", (when(middle), top + 0.3), ha="center", fontsize=8)
        back = evidence.rollback
        if back is not None and back.start is not None:
            stop = back.end if back.end is not None else end
            axes.axvspan(
                when(back.start), when(max(stop, back.start)), color=ROLLBACK_SPAN, alpha=0.5, label="rollback"
            )
        moments: dict[float, list[str]] = {}
        for at, label in evidence.faults:
            moments.setdefault(at, []).append(label)
        for number, (at, labels) in enumerate(sorted(moments.items())):
            axes.axvline(
                when(at), color=FAULT_COLOUR, linewidth=2, linestyle=":", label="fault" if number == 0 else None
            )
            text = "; ".join(labels)
            text = text if len(text) <= 48 else text[:47] + "…"
            axes.annotate(
                text, (when(at), top + 0.9), rotation=90, fontsize=7, color=FAULT_COLOUR, va="top", ha="right"
            )
        axes.set_xlabel(f"minutes since the rollout started ({iso(origin)})")
    else:
        axes.text(0.5, 0.5, "no activity log: no timeline", ha="center", va="center", transform=axes.transAxes)
    axes.axhline(evidence.capacity, color=CAPACITY_COLOUR, linewidth=1.2, label=f"capacity {evidence.capacity}")
    axes.axhline(
        evidence.min_in_service,
        color=THRESHOLD_COLOUR,
        linewidth=1.2,
        linestyle="-.",
        label=f"min in service at maxUnhealthyInstancePercent {evidence.max_unhealthy_percent}",
    )
    axes.set_ylim(0, top + 1)
    axes.set_ylabel("instances")
    axes.set_title(f"{evidence.name}: rollout timeline")
    axes.legend(loc="lower left", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.breached { color: #b00; font-weight: bold; }
.note { background: #fff8dc; padding: 0.5em 1em; border-left: 4px solid #e0c060; }
img { max-width: 100%; }
"""


def _table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(evidence: Evidence, chart: bytes | None = None) -> str:
    png = chart if chart is not None else render_chart(evidence)
    doc = evidence.to_json()
    title = f"Rollout evidence: {evidence.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Resource group {html.escape(evidence.resource_group or '-')} ({html.escape(evidence.source)}); "
        f"generated {html.escape(str(doc['generated']))}.</p>",
    ]
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in evidence.notes]
    parts.append("<h2>Timeline</h2>")
    encoded = base64.b64encode(png).decode("ascii")
    parts.append(f'<img id="timeline" alt="rollout timeline" src="data:image/png;base64,{encoded}">')
    parts.append("<h2>Policy in force</h2>")
    rows: list[list[Any]] = [["mode", evidence.policy.get("mode")]]
    for group in ("rollingUpgradePolicy", "automaticOSUpgradePolicy"):
        rows += [[f"{group}.{k}", v] for k, v in (evidence.policy.get(group) or {}).items()]
    rows += [["capacity", evidence.capacity], ["minimum in service allowed", evidence.min_in_service]]
    parts.append(_table(["field", "value"], rows))
    parts.append("<h2>Rollout status</h2>")
    status = evidence.status
    if status is None:
        parts.append("<p>No rolling upgrade reported by rollingUpgrades/latest.</p>")
    else:
        error = status.get("error")
        parts.append(
            _table(
                ["status", "started", "ended", "error"],
                [
                    [
                        status.get("code"),
                        status.get("startTime"),
                        status.get("endTime"),
                        f"({error['code']}) {error['message']}" if error else "none",
                    ]
                ],
            )
        )
    parts.append("<h2>Batches</h2>")
    if evidence.batches:
        parts.append(
            _table(
                ["batch", "instances", "zone", "start", "end", "check before", "upgraded unhealthy", "verdict"],
                [
                    [
                        b.number,
                        b.instance_ids,
                        b.zone,
                        iso(b.start),
                        iso(b.end),
                        _check(b.pre_check, "unhealthy", "total"),
                        _check(b.post_check, "upgradedUnhealthy", "upgraded"),
                        b.verdict,
                    ]
                    for b in evidence.batches
                ],
            )
        )
    else:
        parts.append("<p>No batches in the activity log.</p>")
    if evidence.rollback is not None:
        back = evidence.rollback.to_json()
        parts.append("<h2>Rollback</h2>")
        parts.append(
            _table(
                ["instances", "start", "end", "healthy again"],
                [[back["instanceIds"], back["start"], back["end"], back["healthyIds"]]],
            )
        )
    parts.append("<h2>Activity log</h2>")
    if evidence.events is None:
        parts.append("<p>Not available for this scale set (real Azure).</p>")
    else:
        parts.append(
            _table(
                ["time", "event", "details"],
                [
                    [e.get("timeIso") or iso(float(e.get("time", 0.0))), e.get("kind"), _event_line(e)]
                    for e in evidence.events
                ],
            )
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
