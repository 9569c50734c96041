"""The text form of a what-if report (rich): the question, the batch plan as a table, the verdict, duration and
capacity, and the Monte Carlo's figures."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from scaleset.backends.simulated import Fault
from scaleset.safety.whatif import WhatIf
from scaleset.safety.whatif_results import MonteCarlo, Outcome


def ranges(ids: Sequence[int]) -> str:
    """``0, 1, 2, 3, 7`` -> ``0-3, 7``."""
    out: list[str] = []
    ordered = sorted(ids)
    index = 0
    while index < len(ordered):
        end = index
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[index], ordered[end]
        out.append(str(first) if first == last else f"{first}, {last}" if last == first + 1 else f"{first}-{last}")
        index = end + 1
    return ", ".join(out) or "-"


def human(seconds: float) -> str:
    """``754.2`` -> ``12m 34s``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] if hours else []
    if minutes or hours:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{key}:{value}" for key, value in counts.items())


def _policy(whatif: WhatIf) -> str:
    p = whatif.policy
    if whatif.mode != "Rolling":
        return f"{whatif.mode} mode: no rolling upgrade policy applies"
    flags = [
        f"batches {p['maxBatchInstancePercent']}%",
        f"max unhealthy {p['maxUnhealthyInstancePercent']}%",
        f"max unhealthy upgraded {p['maxUnhealthyUpgradedInstancePercent']}%",
        f"pause {p['pauseTimeBetweenBatches']}",
        "cross-zone" if p["enableCrossZoneUpgrade"] else "zone by zone",
    ]
    optional = {
        "prioritizeUnhealthyInstances": "unhealthy first",
        "maxSurge": "maxSurge",
        "rollbackFailedInstancesOnPolicyBreach": "rollback on breach",
    }
    flags += [text for name, text in optional.items() if p[name]]
    return " · ".join(flags)


def print_text(
    whatif: WhatIf, outcome: Outcome, summary: MonteCarlo | None, max_abort: float, console: Console
) -> None:
    scale_set, options = whatif.scale_set, whatif.options
    lines = [
        ("what-if", f"[bold]{scale_set.name}[/bold] ({scale_set.origin}) · {whatif.mode} · capacity {whatif.capacity}"),
        ("change", _change(whatif)),
        ("policy", _policy(whatif)),
        ("fleet", _fleet(whatif)),
        (
            "simulation",
            f"seed {options.seed} · boot {_span(options.boot)} · app start {_span(options.app_start)} · "
            f"health wait {human(options.health_wait)}" + "".join(f" · {_fault(f)}" for f in whatif.faults),
        ),
    ]
    for label, text in lines:
        console.print(f"[dim]{label:<10}[/dim] {text}")
    console.print()
    if outcome.batches:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("batch", "zone", "instances", "start", "end", "result"):
            if column == "instances":
                table.add_column(column, min_width=12, overflow="fold")
            else:
                table.add_column(column, no_wrap=True)
        for batch in outcome.batches:
            ids = ranges(batch.instance_ids)
            if batch.surge_ids:
                ids += f" (new: {ranges(batch.surge_ids)})"
            table.add_row(
                str(batch.number),
                batch.zone or "-",
                ids,
                f"+{human(batch.start)}",
                f"+{human(batch.end)}" if batch.end is not None else "-",
                _batch_result(batch.succeeded, batch.failed, batch.passed, batch.end),
            )
        console.print(table)
        console.print()
    console.print(f"[dim]{'verdict':<10}[/dim] {_verdict(outcome)}")
    if outcome.error and outcome.error.get("message"):
        console.print(f"{'':<10} {outcome.error['message']}", highlight=False, markup=False)
    console.print(f"[dim]{'duration':<10}[/dim] {human(outcome.duration)} (virtual)")
    during = f", during batch {outcome.lowest_batch}" if outcome.lowest_batch is not None else ""
    console.print(
        f"[dim]{'capacity':<10}[/dim] lowest {outcome.lowest} of {outcome.capacity} in service "
        f"({outcome.lowest_percent:.0f}%) at +{human(outcome.lowest_at)}{during}; highest {outcome.highest}; "
        f"{outcome.final} once settled (a health wait after the end)"
    )
    if summary is not None:
        _print_monte_carlo(summary, max_abort, console)


def _change(whatif: WhatIf) -> str:
    described = "; ".join(whatif.change.describe()) or "none (an empty update)"
    image = (
        f"image {whatif.image_from} → {whatif.image_to}"
        if whatif.image_from != whatif.image_to
        else f"image {whatif.image_to} (unchanged)"
    )
    model = "the model changes" if whatif.model_changed else "the model is unchanged"
    return f"{described} · {image} · {model}"


def _fleet(whatif: WhatIf) -> str:
    fleet = whatif.fleet
    parts = [f"{fleet.instances} instances"]
    if fleet.zones:
        parts.append(f"zones {_counts(fleet.zones)}")
    parts.append(f"images {_counts(fleet.image_versions)}")
    for label, ids in (
        ("stale", fleet.stale),
        ("unhealthy", fleet.unhealthy),
        ("stopped", fleet.stopped),
        ("protected", fleet.protected),
    ):
        if ids:
            parts.append(f"{label} {len(ids)} ({ranges(ids)})")
    return " · ".join(parts)


def _span(bounds: tuple[float, float]) -> str:
    low, high = bounds
    return f"{low:g} s" if low == high else f"{low:g}-{high:g} s"


def _fault(item: Fault) -> str:
    data = item.model_dump(mode="json", exclude_defaults=True)
    kind = data.pop("kind")
    return f"fault {kind}" + (f" ({', '.join(f'{k}={v}' for k, v in data.items())})" if data else "")


def _batch_result(succeeded: Sequence[int], failed: Sequence[int], passed: bool | None, end: float | None) -> str:
    if passed is None:
        return "started" if end is None else "updated (no health gate)"
    text = f"{len(succeeded)} healthy"
    if failed:
        text += f", [red]{len(failed)} failed ({ranges(failed)})[/red]"
    if passed is False:
        text += " · [red]threshold breached[/red]"
    return text


def _verdict(outcome: Outcome) -> str:
    verdict = outcome.verdict
    if verdict == "Completed":
        gate = " (Automatic mode: no health gate)" if outcome.mode == "Automatic" else ""
        return f"[green]Completed[/green]{gate}"
    if verdict == "NoRollout":
        why = (
            "Manual mode: instances stay on their model until update-instances"
            if outcome.mode == "Manual"
            else ("nothing to upgrade: no unprotected instance is behind the model")
        )
        return f"NoRollout ({why})"
    code = (outcome.error or {}).get("code", "")
    if verdict == "Faulted":
        when = "before the first batch" if not outcome.after_batch else f"after batch {outcome.after_batch}"
        return f"[red]Faulted[/red] {when}: {code}"
    return f"[red]{verdict}[/red]" + (f": {code}" if code else "")


def _print_monte_carlo(summary: MonteCarlo, max_abort: float, console: Console) -> None:
    console.print()
    last = summary.first_seed + summary.runs - 1
    console.print(f"[bold]Monte Carlo[/bold]: {summary.runs} runs, seeds {summary.first_seed}-{last}")
    low, high = summary.interval
    passed = summary.abort_probability <= max_abort
    mark = "[green]within[/green]" if passed else "[red]over[/red]"
    console.print(
        f"  [dim]{'aborted':<9}[/dim] {summary.aborted} ({summary.abort_probability:.1%}, 95% CI "
        f"{low:.1%}-{high:.1%}) · {mark} --max-abort-probability {max_abort:g}"
    )
    p5, p50, p95 = summary.duration
    console.print(f"  [dim]{'duration':<9}[/dim] p5 {human(p5)} · p50 {human(p50)} · p95 {human(p95)}")
    c5, c50, c95 = summary.lowest_percent
    console.print(f"  [dim]{'capacity':<9}[/dim] lowest in service p5 {c5:.0f}% · p50 {c50:.0f}% · p95 {c95:.0f}%")
    if summary.fault_code is not None:
        code, runs = summary.fault_code
        text = f"most often {code} ({runs} runs)"
        if summary.fault_batch is not None:
            batch, times = summary.fault_batch
            when = "before the first batch" if batch == 0 else f"after batch {batch}"
            text += f", most often {when} ({times} runs)"
        console.print(f"  [dim]{'faults':<9}[/dim] {text}")
    verdicts = ", ".join(f"{name} {count}" for name, count in summary.verdicts.items())
    console.print(f"  [dim]{'verdicts':<9}[/dim] {verdicts}")
