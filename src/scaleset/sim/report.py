"""What a finished scenario run shows: the activity log as a timeline, the final state, and the expectations.

The JSON document has ``events``, ``rollingUpgrade`` (the ``rollingUpgrades/latest`` body as Azure returns it),
``instances``, ``operations`` and ``expectations``. The text form is the same story for a person.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from scaleset.domain.durations import format_duration
from scaleset.domain.records import Operation
from scaleset.domain.upgrade.status import status_document
from scaleset.engine.clock import render_time
from scaleset.sim.runner import ScenarioRun


@dataclass(frozen=True)
class Check:
    what: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return bool(self.expected == self.actual)


def build_report(run: ScenarioRun) -> dict[str, Any]:
    engine = run.engine
    now = engine.clock.now()
    events = []
    for _, event in engine.store.list_events():
        offset = float(event["time"]) - run.start
        row = {"at": format_duration(offset), "offsetSeconds": round(offset, 3), **event}
        row["time"] = render_time(float(event["time"]))
        events.append(row)
    state = next(iter(engine.states()), None)
    rolling = None
    instances: list[dict[str, Any]] = []
    if state is not None:
        location = state.vmss.location or ""
        if state.rollout is not None:
            rolling = status_document(state.rollout, location=location, render_time=render_time)
        for view in engine.observe(state, now):
            record = state.instances[view.instance_id]
            instances.append(
                {
                    "instanceId": str(view.instance_id),
                    "zone": view.zone,
                    "imageVersion": record.image_version,
                    "extensionVersions": dict(record.extension_versions),
                    "modelVersion": view.model_version,
                    "latestModelApplied": view.model_version == state.record.model_version,
                    "provisioningState": view.provisioning.value,
                    "powerState": view.power.value,
                    "health": view.health.value if view.health is not None else None,
                    "protectFromScaleIn": view.protect_from_scale_in,
                    "protectFromScaleSetActions": view.protect_from_scale_set_actions,
                }
            )
    operations = [Operation.model_validate(data) for _, data in engine.store.list_operations()]
    report: dict[str, Any] = {
        "scenario": run.scenario.name,
        "seed": run.seed,
        "virtualDuration": format_duration(now - run.start),
        "events": events,
        "rollingUpgrade": rolling,
        "instances": instances,
        "operations": [
            {"kind": op.kind, "status": op.status.value, **({"error": op.error} if op.error else {})}
            for op in operations
        ],
    }
    checks = evaluate_expectations(run, report)
    report["expectations"] = [{"check": c.what, "expected": c.expected, "actual": c.actual, "ok": c.ok} for c in checks]
    return report


def _dig(document: Any, path: str) -> Any:
    node = document
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for key, inner in value.items() for pair in _flatten(f"{prefix}.{key}" if prefix else key, inner)]
    return [(prefix, value)]


def evaluate_expectations(run: ScenarioRun, report: dict[str, Any]) -> list[Check]:
    expect = run.scenario.expect
    if expect is None:
        return []
    checks: list[Check] = []
    if expect.rollingUpgrade is not None:
        properties = (report["rollingUpgrade"] or {}).get("properties", {})
        for path, expected in _flatten("", expect.rollingUpgrade):
            checks.append(Check(f"rollingUpgrade.{path}", expected, _dig(properties, path)))
    if expect.instances is not None:
        rows = report["instances"]
        wanted = expect.instances
        if wanted.count is not None:
            checks.append(Check("instances.count", wanted.count, len(rows)))
        if wanted.byImageVersion is not None:
            actual = dict(sorted(Counter(str(r["imageVersion"]) for r in rows).items()))
            checks.append(Check("instances.byImageVersion", dict(sorted(wanted.byImageVersion.items())), actual))
        if wanted.latestModelApplied is not None:
            checks.append(
                Check(
                    "instances.latestModelApplied",
                    wanted.latestModelApplied,
                    sum(1 for r in rows if r["latestModelApplied"]),
                )
            )
        if wanted.staleModel is not None:
            checks.append(
                Check("instances.staleModel", wanted.staleModel, sum(1 for r in rows if not r["latestModelApplied"]))
            )
        if wanted.healthy is not None:
            checks.append(
                Check(
                    "instances.healthy",
                    wanted.healthy,
                    sum(
                        1
                        for r in rows
                        if r["health"] in ("Healthy", None)
                        and r["provisioningState"] == "Succeeded"
                        and r["powerState"] == "running"
                    ),
                )
            )
    if expect.operations is not None:
        checks.append(Check("operations", expect.operations, [op["status"] for op in report["operations"]]))
    if expect.rejected is not None:
        checks.append(
            Check("rejected", expect.rejected, [e["code"] for e in report["events"] if e["kind"] == "requestRejected"])
        )
    return checks


# ---------------------------------------------------------------------- text


def _ids(values: list[str]) -> str:
    if len(values) > 12:
        return ", ".join(values[:10]) + f", ... ({len(values)} in all)"
    return ", ".join(values) if values else "none"


def describe(event: dict[str, Any]) -> str:
    """One activity-log event as a sentence."""
    kind = event["kind"]
    e = event
    match kind:
        case "scaleSetCreated":
            return f"scale set created: capacity {e['capacity']}, upgrade mode {e['mode']}"
        case "scaleSetUpdated":
            model = f"model changed (version {e['modelVersion']})" if e["modelChanged"] else "model unchanged"
            cap = e["capacity"]
            capacity = f", capacity {cap['from']} -> {cap['to']}" if cap["from"] != cap["to"] else ""
            return f"{e['verb']}: {model}{capacity}, mode {e['mode']}"
        case "rolloutStarted":
            p = e["policy"]
            who = "platform" if e.get("startedBy") == "Platform" else "user-started"
            if e.get("rolloutKind") == "OSUpgrade":
                what = f"{who} OS upgrade to image {e['targetImageVersion']}"
            elif e.get("rolloutKind") == "ExtensionUpgrade":
                versions = ", ".join(f"{k} {v}" for k, v in sorted(e["targetExtensions"].items())) or "nothing newer"
                what = f"{who} extension upgrade ({versions})"
            else:
                what = f"rolling upgrade started to model version {e['targetModelVersion']}"
            return (
                f"{what}: batches of at most "
                f"{p['maxBatchInstancePercent']}%, unhealthy <= {p['maxUnhealthyInstancePercent']}%, upgraded "
                f"unhealthy <= {p['maxUnhealthyUpgradedInstancePercent']}%, pause {p['pauseTimeBetweenBatches']}"
                f"{', maxSurge' if p['maxSurge'] else ''}{', cross-zone' if p['enableCrossZoneUpgrade'] else ''}"
                f"{', rollback on breach' if p['rollbackFailedInstancesOnPolicyBreach'] else ''}"
                f"{', unhealthy first' if p['prioritizeUnhealthyInstances'] else ''}"
            )
        case "preBatchCheck":
            verdict = "ok" if e["passed"] else "BREACHED"
            return (
                f"check before batch {e['batch']}: {e['unhealthy']}/{e['total']} unhealthy, tolerated "
                f"{e['tolerated']} ({e['thresholdPercent']}%): {verdict}"
            )
        case "batchStarted":
            zone = f" in zone {e['zone']}" if e.get("zone") else ""
            surge = f", new instances {_ids(e['surgeInstanceIds'])}" if "surgeInstanceIds" in e else ""
            return f"batch {e['batch']} started{zone}: {e['size']} instance(s) {_ids(e['instanceIds'])}{surge}"
        case "batchCompleted":
            verdict = "ok" if e["passed"] else "BREACHED"
            return (
                f"batch {e['batch']} done: healthy {_ids(e['succeededIds'])}; failed {_ids(e['failedIds'])}; "
                f"upgraded unhealthy {e['upgradedUnhealthy']}/{e['upgraded']} (threshold "
                f"{e['thresholdPercent']}%): {verdict}"
            )
        case "pause":
            return f"pausing {format_duration(e['seconds'])} between batches"
        case "rolloutFaulted":
            return f"rolling upgrade FAULTED: ({e['code']}) {e['message']}"
        case "rollbackStarted":
            return f"rolling back failed instances {_ids(e['instanceIds'])} to their previous model"
        case "rollbackCompleted":
            return f"rollback done: {_ids(e['instanceIds'])} (healthy again: {_ids(e['healthyIds'])})"
        case "rolloutCompleted":
            return f"rolling upgrade completed after {e['batches']} batch(es), {e['succeeded']} instance(s) upgraded"
        case "rolloutCancelled":
            return f"rolling upgrade stopped after {e['batchesCompleted']} batch(es): cancelled"
        case "cancelRequested":
            return f"cancel requested; batch in flight: {_ids(e['batchInFlight'])}"
        case "scaleOut":
            return f"scale out {e['from']} -> {e['to']}: new instances {_ids(e['instanceIds'])}"
        case "scaleIn":
            return f"scale in {e['from']} -> {e['to']}: deleting {_ids(e['instanceIds'])}"
        case "manualUpgrade":
            extra = f"; skipped protected {_ids(e['skippedProtected'])}" if e["skippedProtected"] else ""
            return f"update-instances: {_ids(e['instanceIds'])}{extra}"
        case "automaticUpgrade":
            return f"automatic upgrade of every stale instance at once: {_ids(e['instanceIds'])}"
        case "operationFinished":
            error = f": ({e['error']['code']}) {e['error']['message']}" if "error" in e else ""
            return f"operation {e['operation']} {e['status']}{error}"
        case "requestRejected":
            return f"request '{e['action']}' refused: ({e['code']}) {e['message']}"
        case "imagePublished":
            hidden = " (excluded from latest)" if e.get("excludeFromLatest") else ""
            starting = e.get("automaticOSUpgrades") or []
            follow = f"; automatic OS upgrade due on {len(starting)} scale set(s)" if starting else ""
            return f"image version {e['version']} published{hidden}{follow}"
        case "repairWaiting":
            why = {
                "gracePeriod": f"waits for its grace period (until {render_time(float(e['until']))}" + ")"
                if "until" in e
                else "waits for its grace period",
                "batchLimit": "waits: repairs already at the batch limit",
                "protected": "is protected: never repaired",
                "heldByRollingUpgrade": "waits: repairs are held while a rolling upgrade runs",
            }.get(e["reason"], e["reason"])
            return f"repair of instance {e['instanceId']} {why}"
        case "repairStarted":
            new = f", new instance {e['newInstanceId']}" if e.get("newInstanceId") else ""
            return f"repair of instance {e['instanceId']} ({e['reason']}): {e['action']}{new}"
        case "repairSucceeded":
            return f"repair succeeded: instance {e['instanceId']} healthy ({e['action']} of {e['originalInstanceId']})"
        case "repairFailed":
            return (
                f"repair FAILED: instance {e['instanceId']} ({e['action']} of {e['originalInstanceId']}): "
                f"{e.get('reason', '')}, {e.get('consecutiveFailures', '?')} in a row"
            )
        case "repairsSuspended":
            return f"automatic repairs suspended by {e.get('by', '?')}"
        case "repairsResumed":
            return "automatic repairs resumed"
        case "extensionPublished":
            return f"extension {e['publisher']}/{e['type']} {e['version']} published"
        case "extensionUpgradeRequested":
            return "extensionRollingUpgrade requested"
        case "osUpgradeRequested":
            return "osRollingUpgrade requested"
        case "instanceRollbackStarted":
            return f"rolling instances {_ids(e['instanceIds'])} back to their previous image"
        case "instanceRollbackCompleted":
            return f"instance {e['instanceId']} rollback {e['outcome']}"
        case "approvalRequested":
            return f"OS upgrade deferred: instances {_ids(e['instanceIds'])} wait for approveRollingUpgrade"
        case "rollingUpgradeApproved":
            ids = e["instanceIds"]
            return f"approveRollingUpgrade: {'every instance' if ids == '*' else _ids(ids)}"
        case "healthInjected":
            return f"fault injected: instances {_ids(e['instanceIds'])} now answer '{e['answer']}'"
        case _:
            facts = ", ".join(
                f"{k}={v}"
                for k, v in e.items()
                if k not in ("kind", "time", "at", "offsetSeconds", "scaleSet", "rolloutId")
            )
            return f"{kind}: {facts}" if facts else kind


def _clock(seconds: float) -> str:
    """An offset as ``+H:MM:SS`` (``+0:16:28``), or with days (``+2d 3:00:00``)."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    prefix = f"+{days}d " if days else "+"
    return f"{prefix}{hours}:{minutes:02d}:{secs:02d}"


def print_text(report: dict[str, Any], console: Console) -> None:
    title = report["scenario"] or "scenario"
    console.print(f"[bold]{title}[/bold]  (seed {report['seed']}, {report['virtualDuration']} of virtual time)")
    for event in report["events"]:
        style = "red" if event["kind"] in ("rolloutFaulted", "requestRejected") else ""
        console.print(
            f"{_clock(event['offsetSeconds']):>10}  {describe(event)}",
            style=style,
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    rolling = report["rollingUpgrade"]
    if rolling is not None:
        p = rolling["properties"]
        status = p["runningStatus"]["code"]
        progress = p["progress"]
        console.print(
            f"rolling upgrade: {status}; succeeded {progress['successfulInstanceCount']}, failed "
            f"{progress['failedInstanceCount']}, in progress {progress['inProgressInstanceCount']}, pending "
            f"{progress['pendingInstanceCount']}",
            highlight=False,
        )
    table = Table(title="instances by image version")
    for column in ("image version", "instances", "latest model", "healthy"):
        table.add_column(column)
    versions = sorted({str(r["imageVersion"]) for r in report["instances"]})
    for version in versions:
        rows = [r for r in report["instances"] if str(r["imageVersion"]) == version]
        table.add_row(
            version,
            str(len(rows)),
            str(sum(1 for r in rows if r["latestModelApplied"])),
            str(
                sum(
                    1
                    for r in rows
                    if r["health"] in ("Healthy", None)
                    and r["powerState"] == "running"
                    and r["provisioningState"] == "Succeeded"
                )
            ),
        )
    console.print(table)
    for check in report["expectations"]:
        mark = "[green]ok[/green]" if check["ok"] else "[red]FAILED[/red]"
        console.print(
            f"expect {check['check']} = {check['expected']!r}: {mark}"
            + ("" if check["ok"] else f" (got {check['actual']!r})"),
            highlight=False,
        )
