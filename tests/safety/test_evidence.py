"""``scaleset evidence``: the report model from hand-written activity logs (pure), its three renderings, a live run
against a real ``scaleset serve --backend simulated``, and the HTML opened in headless Chromium."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scaleset.domain.validation import parse_scale_set
from scaleset.main import main
from scaleset.safety.evidence import Evidence, build, derive, rollout_status
from scaleset.safety.evidence_render import render_chart, render_html, render_json, render_markdown
from scaleset.safety.evidence_schema import SCHEMA
from scaleset.safety.inputs import InstanceFacts, ScaleSetInput

HEALTH = {
    "name": "HealthExtension",
    "properties": {
        "publisher": "Microsoft.ManagedServices",
        "type": "ApplicationHealthLinux",
        "typeHandlerVersion": "2.0",
        "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
    },
}
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SET_ID = "/subscriptions/s/resourcegroups/g/providers/microsoft.compute/virtualmachinescalesets/web"


def body(capacity: int = 5, image: str = "1.0.0", **policy: Any) -> dict[str, Any]:
    rolling = {"maxBatchInstancePercent": 40, "maxUnhealthyInstancePercent": 20, **policy}
    return {
        "location": "westus",
        "sku": {"name": "Standard_D2s_v3", "tier": "Standard", "capacity": capacity},
        "properties": {
            "upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": rolling},
            "virtualMachineProfile": {
                "storageProfile": {
                    "imageReference": {"publisher": "Contoso", "offer": "web", "sku": "stable", "version": image}
                },
                "extensionProfile": {"extensions": [HEALTH]},
            },
        },
    }


def scale_set(capacity: int = 5, **policy: Any) -> ScaleSetInput:
    arm = body(capacity, **policy)
    instances = tuple(
        InstanceFacts(instance_id=str(i), zone=None, image_version="2.0.0", latest_model_applied=True, health="Healthy")
        for i in range(capacity)
    )
    return ScaleSetInput(
        name="web",
        origin="test",
        body=arm,
        model=parse_scale_set(arm),
        instances=instances,
        resource_group="g",
        kind="live",
    )


def event(offset: float, kind: str, **data: Any) -> dict[str, Any]:
    return {"time": T0 + offset, "scaleSet": SET_ID, "kind": kind, "rolloutId": "r1", **data}


def check(batch: int, unhealthy: int = 0, total: int = 5) -> dict[str, Any]:
    return event(
        0,
        "preBatchCheck",
        batch=batch,
        unhealthy=unhealthy,
        total=total,
        thresholdPercent=20,
        tolerated=1,
        passed=True,
    )


def healthy_log() -> list[dict[str, Any]]:
    """Five instances in batches of two, two and one, thirty seconds between batches."""
    started = event(0, "rolloutStarted", targetModelVersion="2", instances=5, policy={"maxSurge": False})
    log = [
        {"time": T0 - 3600, "scaleSet": SET_ID, "kind": "scaleSetCreated", "capacity": 5, "mode": "Rolling"},
        started,
    ]
    at = 0.0
    for number, ids in enumerate((["0", "1"], ["2", "3"], ["4"]), start=1):
        log.append({**check(number), "time": T0 + at})
        log.append(event(at, "batchStarted", batch=number, size=len(ids), plannedSize=2, zone=None, instanceIds=ids))
        at += 60
        log.append(
            event(
                at,
                "batchCompleted",
                batch=number,
                succeededIds=ids,
                failedIds=[],
                upgradedUnhealthy=0,
                upgraded=2 * number - (1 if number == 3 else 0),
                thresholdPercent=20,
                passed=True,
            )
        )
        at += 30
    log.append(event(at, "rolloutCompleted", batches=3, succeeded=5))
    for seq, row in enumerate(log, start=1):
        row["seq"] = seq
    return log


def faulted_log() -> list[dict[str, Any]]:
    """A bad image: batch 1's two instances fail, the rollout faults and rolls them back."""
    return [
        event(0, "rolloutStarted", targetModelVersion="2", instances=5, policy={}),
        {**check(1), "seq": 2},
        event(0, "batchStarted", batch=1, size=2, plannedSize=2, zone="1", instanceIds=["0", "1"], seq=3),
        {"time": T0 + 20, "scaleSet": SET_ID, "kind": "healthInjected", "instanceIds": ["0"], "answer": "unhealthy"},
        event(
            300,
            "batchCompleted",
            batch=1,
            succeededIds=[],
            failedIds=["0", "1"],
            upgradedUnhealthy=2,
            upgraded=2,
            thresholdPercent=20,
            passed=False,
            seq=5,
        ),
        event(300, "rolloutFaulted", code="MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade", message="m"),
        event(300, "rollbackStarted", instanceIds=["0", "1"]),
        event(420, "rollbackCompleted", instanceIds=["0", "1"], healthyIds=["0", "1"]),
    ]


LATEST_DONE = {
    "properties": {
        "policy": {},
        "runningStatus": {
            "code": "Completed",
            "startTime": "2026-01-01T00:00:00Z",
            "lastAction": "Start",
            "lastActionTime": "2026-01-01T00:04:30Z",
        },
        "progress": {"successfulInstanceCount": 5, "failedInstanceCount": 0},
    }
}


def validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


# ---------------------------------------------------------------------------------------------------- the model


def test_batches_and_in_service_timeline_of_a_healthy_rollout() -> None:
    report = build(scale_set(), latest=LATEST_DONE, events=healthy_log(), source="emulator", generated=T0 + 999)
    assert [b.number for b in report.batches] == [1, 2, 3]
    assert [b.instance_ids for b in report.batches] == [["0", "1"], ["2", "3"], ["4"]]
    assert [b.verdict for b in report.batches] == ["Passed"] * 3
    assert [(b.start, b.end) for b in report.batches] == [(T0, T0 + 60), (T0 + 90, T0 + 150), (T0 + 180, T0 + 240)]
    assert report.batches[0].pre_check is not None and report.batches[0].pre_check["tolerated"] == 1
    assert [(p.time - T0, p.in_service) for p in report.series] == [
        (0, 3),
        (60, 5),
        (90, 3),
        (150, 5),
        (180, 4),
        (240, 5),
        (270, 5),
    ]
    assert report.capacity == 5 and report.min_in_service == 4  # 20% of 5 tolerates one
    assert report.outcome is not None and report.outcome["kind"] == "rolloutCompleted"
    assert report.status is not None and report.status["code"] == "Completed"
    assert report.status["endTime"] == "2026-01-01T00:04:30Z"
    assert report.policy["rollingUpgradePolicy"]["maxSurge"] is False, "defaults are explicit"
    assert report.policy["rollingUpgradePolicy"]["pauseTimeBetweenBatches"] == "PT0S"
    assert report.faults == [] and report.rollback is None
    validate(report.to_json())


def test_a_faulted_rollout_with_rollback() -> None:
    events = faulted_log()
    batches, rollback, outcome, series, faults = derive(events, 5, max_surge=False)
    assert [b.verdict for b in batches] == ["Breached"] and batches[0].failed_ids == ["0", "1"]
    assert batches[0].zone == "1"
    assert outcome is not None and outcome["code"] == "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
    assert rollback is not None and rollback.healthy_ids == ["0", "1"] and rollback.end == T0 + 420
    assert [(p.time - T0, p.in_service) for p in series] == [(0, 3), (300, 3), (420, 5)]
    assert [at - T0 for at, _ in faults] == [20, 300, 300]  # the injection, the failed batch, the fault
    latest = {"properties": {"runningStatus": {"code": "Faulted"}, "error": {"code": "X", "message": "bad"}}}
    status = rollout_status(latest)
    assert status is not None and status["error"] == {"code": "X", "message": "bad"}
    report = build(scale_set(), latest=latest, events=events, source="emulator", generated=T0)
    validate(report.to_json())
    assert "## Rollback" in render_markdown(report)


def test_healthy_counts_follow_the_checks_and_max_surge_keeps_everyone_in_service() -> None:
    events = [
        event(0, "rolloutStarted", targetModelVersion="2", instances=5, policy={}),
        {**check(1, unhealthy=1), "time": T0},
        event(0, "batchStarted", batch=1, size=2, zone=None, instanceIds=["0", "1"], surgeInstanceIds=["5", "6"]),
        event(60, "batchCompleted", batch=1, succeededIds=["5", "6"], failedIds=[], upgradedUnhealthy=0, upgraded=2),
    ]
    _, _, _, series, _ = derive(events, 5, max_surge=True)
    assert {p.in_service for p in series} == {5}
    assert [p.healthy for p in series] == [4, 4]
    in_place = [
        *events[:2],
        event(0, "batchStarted", batch=1, size=2, zone=None, instanceIds=["0", "1"]),
        event(60, "batchCompleted", batch=1, succeededIds=["0", "1"], failedIds=[], upgradedUnhealthy=0, upgraded=2),
    ]
    _, _, _, series, _ = derive(in_place, 5, max_surge=False)
    assert [(p.in_service, p.healthy) for p in series] == [(3, 2), (5, 4)]


def test_without_an_activity_log_the_report_says_so() -> None:
    report = build(scale_set(), latest=None, events=None, source="azure", generated=T0)
    doc = report.to_json()
    validate(doc)
    assert doc["activityLog"] == {"available": False, "events": []}
    assert doc["status"] is None and doc["batches"] == []
    assert any("No activity log" in note for note in doc["notes"])
    assert "Not available" in render_markdown(report)
    assert render_chart(report).startswith(b"\x89PNG")


# ---------------------------------------------------------------------------------------------------- renderings


def healthy_report() -> Evidence:
    return build(scale_set(), latest=LATEST_DONE, events=healthy_log(), source="emulator", generated=T0 + 999)


def test_markdown_lists_the_policy_the_batches_and_the_events() -> None:
    text = render_markdown(healthy_report())
    assert "## Policy in force" in text and "| rollingUpgradePolicy.maxBatchInstancePercent | 40 |" in text
    assert "| 1 | 0, 1 |" in text and "| 2 | 2, 3 |" in text and "| 3 | 4 |" in text
    assert "status: **Completed**" in text
    assert "| rolloutCompleted |" in text


def distinct_colours(png: bytes) -> int:
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")
    rgb = (pixels[:, :, :3] * 255).astype("uint8").reshape(-1, 3)
    return len({tuple(int(c) for c in p) for p in rgb[::7]})


def test_chart_and_self_contained_html() -> None:
    report = healthy_report()
    png = render_chart(report)
    assert png.startswith(b"\x89PNG") and distinct_colours(png) > 20
    page = render_html(report, png)
    assert 'src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page.replace("https://json-schema.org", "")
    assert json.loads(render_json(report))["batches"][2]["instanceIds"] == ["4"]


# ---------------------------------------------------------------------------------------------------- live


def test_live_rollout_on_a_simulated_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.api.conftest import start_server, stop_server

    (tmp_path / "serve").mkdir()
    process, server = start_server(tmp_path / "serve")
    try:
        compute = server.compute()
        server.resources().resource_groups.create_or_update("g", {"location": "westus"})
        compute.virtual_machine_scale_sets.begin_create_or_update("g", "web", body(5)).result()
        patch = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"version": "2.0.0"}}}}}
        compute.virtual_machine_scale_sets.begin_update("g", "web", patch).result()
        deadline = time.monotonic() + 60
        code = None
        while time.monotonic() < deadline:
            try:
                latest = compute.virtual_machine_scale_set_rolling_upgrades.get_latest("g", "web")
                code = latest.running_status.code if latest.running_status else None
            except Exception:  # no rollout yet
                code = None
            if code in ("Completed", "Faulted", "Cancelled"):
                break
            time.sleep(0.1)
        assert code == "Completed"
        out_dir = tmp_path / "out"
        where = ["--endpoint", server.base, "--data-dir", str(server.data_dir)]
        assert main(["evidence", "-g", "g", "-n", "web", "--output-dir", str(out_dir), *where]) == 0
        assert main(["evidence", "-g", "g", "-n", "nope", "--output-dir", str(out_dir), *where]) == 3
    finally:
        stop_server(process)
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == ["evidence-web.html", "evidence-web.json", "evidence-web.md"]
    doc = json.loads((out_dir / "evidence-web.json").read_text())
    validate(doc)
    assert doc["status"]["code"] == "Completed" and doc["activityLog"]["available"] is True
    assert doc["rollout"]["outcome"]["kind"] == "rolloutCompleted"
    assert doc["policy"]["mode"] == "Rolling"
    upgraded = sorted(int(i) for b in doc["batches"] for i in b["instanceIds"])
    assert upgraded == [0, 1, 2, 3, 4] and all(b["verdict"] == "Passed" for b in doc["batches"])
    largest = max(len(b["instanceIds"]) for b in doc["batches"])
    assert min(p["inService"] for p in doc["timeSeries"]) == 5 - largest  # in place: a batch is out at a time
    assert doc["timeSeries"][-1]["inService"] == 5
    markdown = (out_dir / "evidence-web.md").read_text()
    for batch in doc["batches"]:
        assert f"| {batch['number']} | {', '.join(batch['instanceIds'])} |" in markdown
    assert "data:image/png;base64," in (out_dir / "evidence-web.html").read_text()


def test_format_subset_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", "-g", "g", "-n", "web", "--format", "pdf"]) == 2
    assert "expected a comma-separated list" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- Chromium


def test_html_opens_in_headless_chromium_and_shows_the_chart(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI is set: the screenshot test must run in CI")
        pytest.skip("chromium is not installed here (apt-get install -y chromium); CI installs it")
    page = tmp_path / "evidence.html"
    page.write_text(render_html(healthy_report()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            page.as_uri(),
        ],
        check=False,
        capture_output=True,
        timeout=90,
    )
    assert shot.exists(), "chromium wrote no screenshot"
    png = shot.read_bytes()
    assert distinct_colours(png) > 20, "the page shows no chart: the screenshot is (nearly) blank or colourless"
