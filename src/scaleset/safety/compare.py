"""``scaleset compare A B``: two scale sets (staging and production, a template and the live set, ...) side by side.

Every upgrade-relevant field of :func:`scaleset.safety.fields.upgrade_fields`, with Azure's defaults made explicit,
the differences first, and for each the consequence where there is one, computed for each side's own instance
count with :mod:`scaleset.domain.fenceposts` ("batches of 2 (6 batches, zone by zone) vs batches of 1 (3
batches, zone by zone)", "tolerates 3 unhealthy vs 0").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from scaleset.cli.output import AZ_BOX
from scaleset.safety.fields import (
    AUTO_OS,
    REPAIRS,
    ROLLING,
    UPGRADE,
    BatchPlan,
    Field,
    batch_plan,
    upgrade_fields,
)
from scaleset.safety.inputs import ScaleSetInput

MODE_EFFECT = {
    "Manual": "changes reach instances only through update-instances or reimage",
    "Automatic": "every instance takes a change at once, no health gate",
    "Rolling": "changes roll out in batches with health checks",
}


@dataclass(frozen=True)
class Row:
    key: str
    group: str
    label: str
    a: Field
    b: Field
    same: bool
    consequence: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "group": self.group,
            "field": self.label,
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "same": self.same,
            "consequence": self.consequence,
        }


@dataclass(frozen=True)
class Comparison:
    a: ScaleSetInput
    b: ScaleSetInput
    rows: tuple[Row, ...]

    @property
    def differences(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if not r.same)

    def ordered(self) -> list[Row]:
        return [r for r in self.rows if not r.same] + [r for r in self.rows if r.same]

    def to_json(self) -> dict[str, Any]:
        return {
            "a": _side(self.a),
            "b": _side(self.b),
            "differences": len(self.differences),
            "fields": [r.to_json() for r in self.ordered()],
        }


def _side(inp: ScaleSetInput) -> dict[str, Any]:
    return {
        "name": inp.name,
        "origin": inp.origin,
        "resourceGroup": inp.resource_group,
        "capacity": inp.capacity,
        "unresolved": inp.unresolved,
    }


def _normal(value: Any) -> Any:
    """Compared as deployed: enum and id strings without case, ``"8080"`` as 8080, ``"true"`` as true."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text.lstrip("-").isdigit():
            return int(text)
        return {"true": True, "false": False}.get(text, text)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------- consequences


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs or not whole else ""]
    return "".join(parts)


def _versus(a: str, b: str) -> str:
    return a if a == b else f"{a} vs {b}"


def _per_side(plan_a: BatchPlan, plan_b: BatchPlan, text: Callable[[BatchPlan], str], a: Field, b: Field) -> str:
    def one(plan: BatchPlan, mode: str) -> str:
        return text(plan) if plan.in_use else f"unused ({mode} mode)"

    return _versus(one(plan_a, a.text), one(plan_b, b.text))


def _batches(p: BatchPlan) -> str:
    return p.text


def _tolerance(p: BatchPlan) -> str:
    return f"tolerates {p.tolerated_unhealthy} unhealthy of {p.total}"


def _upgraded(p: BatchPlan) -> str:
    first = min(p.size, p.total)
    return f"{p.tolerated_first_batch} failed after the first batch of {first}, {p.tolerated_upgraded} at the end"


def _pauses(p: BatchPlan) -> str:
    total = None if p.pause_seconds is None else p.pause_seconds * p.pauses
    return f"{p.pauses} pause{'s' if p.pauses != 1 else ''} add {_time(total)}"


def _surge(p: BatchPlan) -> str:
    if p.surge:
        return f"{p.size} extra instance{'s' if p.size != 1 else ''} per batch, none out of service"
    return f"up to {p.size} instance{'s' if p.size != 1 else ''} out of service per batch"


def _health_timing(rows: dict[str, tuple[Field, Field]]) -> str:
    def registers(index: int) -> str:
        interval, probes = rows["health.intervalInSeconds"][index].value, rows["health.numberOfProbes"][index].value
        try:
            return f"~{int(interval) * int(probes)}s"
        except (TypeError, ValueError):
            return "unknown"

    return f"a state change registers after {_versus(registers(0), registers(1))}"


def consequence(key: str, a: ScaleSetInput, b: ScaleSetInput, rows: dict[str, tuple[Field, Field]]) -> str | None:
    """What a difference in ``key`` does, for each side's own numbers (None when there is nothing to compute)."""
    fa, fb = rows[key]
    mode_a, mode_b = rows[f"{UPGRADE}.mode"]
    plan_a, plan_b = batch_plan(a), batch_plan(b)
    if key in ("capacity", "zones", f"{ROLLING}.maxBatchInstancePercent", f"{ROLLING}.enableCrossZoneUpgrade"):
        text = _per_side(plan_a, plan_b, _batches, mode_a, mode_b)
        if key == "capacity":
            text += "; " + _per_side(plan_a, plan_b, _tolerance, mode_a, mode_b)
        return text
    if key == f"{ROLLING}.maxUnhealthyInstancePercent":
        text = _versus(f"tolerates {plan_a.tolerated_unhealthy} unhealthy", str(plan_b.tolerated_unhealthy))
        if plan_a.text != plan_b.text:
            text += "; " + _per_side(plan_a, plan_b, _batches, mode_a, mode_b)
        return text
    if key == f"{ROLLING}.maxUnhealthyUpgradedInstancePercent":
        return "tolerates " + _per_side(plan_a, plan_b, _upgraded, mode_a, mode_b)
    if key == f"{ROLLING}.pauseTimeBetweenBatches":
        return _per_side(plan_a, plan_b, _pauses, mode_a, mode_b)
    if key == f"{ROLLING}.maxSurge":
        return _per_side(plan_a, plan_b, _surge, mode_a, mode_b)
    if key == f"{ROLLING}.prioritizeUnhealthyInstances":
        return _versus(*("unhealthy instances first" if f.value else "instance-id order" for f in (fa, fb)))
    if key == f"{ROLLING}.rollbackFailedInstancesOnPolicyBreach":
        return _versus(
            *("on a breach, failed instances go back" if f.value else "failed instances stay" for f in (fa, fb))
        )
    if key == f"{UPGRADE}.mode":
        return _versus(MODE_EFFECT.get(fa.text, fa.text), MODE_EFFECT.get(fb.text, fb.text))
    if key == f"{AUTO_OS}.enableAutomaticOSUpgrade":
        return _versus(
            *("new OS image versions roll out by themselves" if f.value else "only model changes" for f in (fa, fb))
        )
    if key == f"{AUTO_OS}.useRollingUpgradePolicy":
        return _versus(
            *("OS upgrades follow the rolling policy" if f.value else "OS upgrades use 20% batches" for f in (fa, fb))
        )
    if key == f"{REPAIRS}.gracePeriod":
        return f"waits {_versus(fa.text, fb.text)} before repairing an unhealthy instance"
    if key == f"{REPAIRS}.enabled":
        grace_a, grace_b = rows[f"{REPAIRS}.gracePeriod"]
        return _versus(
            *(
                f"unhealthy instances repaired after {g.text}" if f.value else "never repaired"
                for f, g in ((fa, grace_a), (fb, grace_b))
            )
        )
    if key == "health.source":
        if "none" in (fa.value, fb.value):
            side = "A" if fa.value == "none" else "B"
            return f"no health source on {side}: Rolling mode, automatic OS upgrades and repairs are refused"
        return None
    if key in ("health.intervalInSeconds", "health.numberOfProbes"):
        return _health_timing(rows)
    if key == "health.gracePeriod" and fa.value is not None and fb.value is not None:
        return f"an instance may stay Initializing up to {_versus(f'{fa.text}s', f'{fb.text}s')}"
    if key == "health.states":
        return _versus(
            *("Initializing and Unknown hold a rollout" if f.value == "rich" else "healthy or not" for f in (fa, fb))
        )
    if key == "image.strategy":
        drifting = [side for side, f in (("A", fa), ("B", fb)) if f.value.endswith("latest")]
        if drifting:
            return (
                f"{' and '.join(drifting)}: scale-out, reimage and repairs take the newest version without a model "
                "change, so instances drift apart"
            )
    return None


# ---------------------------------------------------------------------------------------------- compare


def compare(a: ScaleSetInput, b: ScaleSetInput) -> Comparison:
    fields_a, fields_b = upgrade_fields(a), upgrade_fields(b)
    pairs = {fa.key: (fa, fb) for fa, fb in zip(fields_a, fields_b, strict=True)}
    rows = []
    for key, (fa, fb) in pairs.items():
        same = _normal(fa.value) == _normal(fb.value)
        effect = consequence(key, a, b, pairs)
        if same and effect is not None and " vs " not in effect:
            effect = None  # the same value with the same effect: nothing to point out
        rows.append(Row(key, fa.group, fa.label, fa, fb, same, effect))
    return Comparison(a, b, tuple(rows))


def unresolved_summary(inp: ScaleSetInput) -> str:
    """``4 values not resolved offline, in location, networkProfile, osProfile (none compared)``."""
    areas = sorted({_area(path) for path in inp.unresolved})
    count = len(inp.unresolved)
    return f"{count} value{'s' if count != 1 else ''} not resolved offline, in {', '.join(areas)} (not compared)"


def _area(path: str) -> str:
    marker = "virtualMachineProfile."
    tail = path.split(marker, 1)[1] if marker in path else path
    return tail.split(".", 1)[0].split("[", 1)[0]


def _cell(field: Field) -> Text:
    text = Text(field.text)
    if field.default:
        text.append(" (default)", style="dim")
    return text


def print_text(result: Comparison, console: Console) -> None:
    a, b = result.a, result.b
    console.print(f"A: [bold]{a.name}[/bold] - {a.origin}, {a.capacity} instances")
    console.print(f"B: [bold]{b.name}[/bold] - {b.origin}, {b.capacity} instances")
    for side, inp in (("A", a), ("B", b)):
        if inp.unresolved:
            console.print(f"{side}: {unresolved_summary(inp)}")
    table = Table(box=AZ_BOX, show_lines=False, pad_edge=False, expand=False)
    for column in ("", "group", "field", "A", "B", "consequence"):
        table.add_column(column, overflow="fold")
    for row in result.ordered():
        marker = Text("≠", style="bold red") if not row.same else Text(" ")
        style = None if not row.same else "dim"
        table.add_row(marker, row.group, row.label, _cell(row.a), _cell(row.b), row.consequence or "", style=style)
    console.print(table)
    count = len(result.differences)
    console.print(f"{count} difference{'s' if count != 1 else ''} in {len(result.rows)} fields")
