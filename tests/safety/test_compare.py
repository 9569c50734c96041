"""``scaleset compare``: fields side by side with defaults explicit, differences first, consequences computed per
side with the fencepost arithmetic; text and JSON output and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scaleset.main import main
from scaleset.safety.compare import Comparison, Row, compare
from scaleset.safety.fields import batch_plan, upgrade_fields
from scaleset.safety.inputs import ScaleSetInput, load_one, to_input

FIXTURES = Path(__file__).parent / "fixtures" / "inputs"
TEMPLATE = str(FIXTURES / "web.template.json")
PROD = f"{TEMPLATE}?parameters={FIXTURES / 'web.prod.parameters.json'}"
ROLLING = "properties.upgradePolicy.rollingUpgradePolicy"
HEALTH = {
    "name": "HealthExtension",
    "properties": {
        "publisher": "Microsoft.ManagedServices",
        "type": "ApplicationHealthLinux",
        "typeHandlerVersion": "1.0",
        "settings": {"protocol": "http", "port": 80, "requestPath": "/health"},
    },
}


def scale_set(
    name: str,
    *,
    capacity: int,
    mode: str = "Rolling",
    rolling: dict[str, Any] | None = None,
    zones: list[str] | None = None,
    extensions: list[dict[str, Any]] | None = None,
) -> ScaleSetInput:
    body: dict[str, Any] = {
        "sku": {"name": "Standard_D2s_v5", "capacity": capacity},
        "properties": {
            "upgradePolicy": {"mode": mode, "rollingUpgradePolicy": rolling or {}},
            "virtualMachineProfile": {
                "storageProfile": {"imageReference": {"publisher": "P", "offer": "O", "sku": "S", "version": "1.0.0"}},
                "extensionProfile": {"extensions": [HEALTH] if extensions is None else extensions},
            },
        },
    }
    if zones:
        body["zones"] = zones
    return to_input(body, name=name, origin=f"test {name}", kind="resource-json")


def row(result: Comparison, key: str) -> Row:
    return next(r for r in result.rows if r.key == key)


def test_staging_and_production_from_one_template() -> None:
    result = compare(load_one(TEMPLATE), load_one(PROD))
    assert [r.key for r in result.differences] == ["capacity", f"{ROLLING}.maxUnhealthyInstancePercent"]
    assert result.ordered()[:2] == list(result.differences)
    capacity = row(result, "capacity")
    assert capacity.consequence == (
        "batches of 1 (3 batches, zone by zone) vs batches of 2 (6 batches, zone by zone); "
        "tolerates 0 unhealthy of 3 vs tolerates 3 unhealthy of 10"
    )
    assert row(result, f"{ROLLING}.maxUnhealthyInstancePercent").consequence is not None
    assert row(result, f"{ROLLING}.maxUnhealthyInstancePercent").consequence.startswith("tolerates 0 unhealthy vs 3")
    # same value, different effect (each side's own instance count): the consequence stays
    assert row(result, f"{ROLLING}.pauseTimeBetweenBatches").consequence == "2 pauses add 2m vs 5 pauses add 5m"
    # same value, same effect: nothing to point out
    assert row(result, "properties.upgradePolicy.mode").consequence is None


def test_batch_and_tolerance_arithmetic_for_each_side() -> None:
    ten = scale_set("ten", capacity=10, rolling={"maxBatchInstancePercent": 20})
    three = scale_set("three", capacity=3, rolling={"maxBatchInstancePercent": 20, "maxUnhealthyInstancePercent": 34})
    result = compare(ten, three)
    assert row(result, "capacity").consequence == (
        "batches of 2 (5 batches) vs batches of 1 (3 batches); "
        "tolerates 2 unhealthy of 10 vs tolerates 1 unhealthy of 3"
    )
    assert row(result, f"{ROLLING}.maxUnhealthyInstancePercent").consequence == (
        "tolerates 2 unhealthy vs 1; batches of 2 (5 batches) vs batches of 1 (3 batches)"
    )
    assert row(result, f"{ROLLING}.maxUnhealthyUpgradedInstancePercent").consequence == (
        "tolerates 0 failed after the first batch of 2, 2 at the end "
        "vs 0 failed after the first batch of 1, 0 at the end"
    )


def test_in_place_batches_shrink_to_the_unhealthy_budget_and_surge_does_not() -> None:
    in_place = scale_set("in-place", capacity=10, rolling={"maxBatchInstancePercent": 50})
    surge = scale_set("surge", capacity=10, rolling={"maxBatchInstancePercent": 50, "maxSurge": True})
    assert (batch_plan(in_place).size, batch_plan(surge).size) == (2, 5)
    result = compare(in_place, surge)
    assert row(result, f"{ROLLING}.maxSurge").consequence == (
        "up to 2 instances out of service per batch vs 5 extra instances per batch, none out of service"
    )


def test_zones_and_cross_zone() -> None:
    zonal = scale_set("zonal", capacity=6, zones=["1", "2", "3"], rolling={"maxBatchInstancePercent": 50})
    across = scale_set(
        "across",
        capacity=6,
        zones=["1", "2", "3"],
        rolling={"maxBatchInstancePercent": 50, "maxUnhealthyInstancePercent": 50, "enableCrossZoneUpgrade": True},
    )
    assert batch_plan(zonal).text == "batches of 1 (6 batches, zone by zone)"  # 50% shrunk to the 20% budget: 1
    result = compare(zonal, across)
    assert row(result, f"{ROLLING}.enableCrossZoneUpgrade").consequence == (
        "batches of 1 (6 batches, zone by zone) vs batches of 3 (2 batches)"
    )


def test_rolling_fields_unused_outside_rolling_mode_and_missing_health() -> None:
    manual = scale_set("manual", capacity=4, mode="Manual", extensions=[])
    rolling = scale_set("rolling", capacity=4)
    result = compare(manual, rolling)
    assert row(result, "properties.upgradePolicy.mode").consequence == (
        "changes reach instances only through update-instances or reimage vs changes roll out in batches with "
        "health checks"
    )
    assert row(result, "capacity").same
    assert row(result, "health.source").consequence == (
        "no health source on A: Rolling mode, automatic OS upgrades and repairs are refused"
    )
    plan_row = row(result, f"{ROLLING}.pauseTimeBetweenBatches")
    assert plan_row.same and plan_row.consequence == "unused (Manual mode) vs 3 pauses add 0s"


def test_defaults_are_explicit() -> None:
    fields = {f.key: f for f in upgrade_fields(load_one(TEMPLATE))}
    assert fields[f"{ROLLING}.maxBatchInstancePercent"].default is False  # from a parameter's default value
    assert fields[f"{ROLLING}.rollbackFailedInstancesOnPolicyBreach"].default is True
    assert fields[f"{ROLLING}.rollbackFailedInstancesOnPolicyBreach"].value is False
    assert (
        fields["properties.scaleInPolicy.rules"].value == ["Default"]
        and fields["properties.scaleInPolicy.rules"].default
    )
    assert fields["health.gracePeriod"].value == 600 and not fields["health.gracePeriod"].default
    assert fields["health.states"].value == "rich"
    assert fields["image.strategy"].text == "pinned 1.4.0"


def test_template_against_az_show_export() -> None:
    result = compare(load_one(TEMPLATE), load_one(str(FIXTURES / "web-prod.az-show.json")))
    keys = {r.key for r in result.differences}
    assert {
        "capacity",
        f"{ROLLING}.maxBatchInstancePercent",
        f"{ROLLING}.maxUnhealthyUpgradedInstancePercent",
        f"{ROLLING}.rollbackFailedInstancesOnPolicyBreach",
        "properties.automaticRepairsPolicy.enabled",
        "health.source",
        "image.strategy",
        "properties.scaleInPolicy.rules",
    } <= keys
    assert "properties.upgradePolicy.mode" not in keys
    source = row(result, "health.source")
    assert source.a.text == "extension HealthExtension (ApplicationHealthLinux 2.0)"
    assert source.b.text == "load balancer probe web-prod-lb/probes/http"
    assert row(result, "health.intervalInSeconds").b.text == "5 (probe default, assumed)"
    strategy = row(result, "image.strategy").consequence
    assert strategy is not None and strategy.startswith("B: scale-out, reimage and repairs take the newest version")
    assert row(result, f"{ROLLING}.maxBatchInstancePercent").consequence == (
        "batches of 1 (3 batches, zone by zone) vs batches of 1 (10 batches, zone by zone)"
    )


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("tf-linux.plan.json", "tf-windows.plan.json"),
        ("tf-orchestrated.plan.json", "sdk-snake.json"),
        ("sdk-list.json?name=api", "sdk-list.json?name=worker"),
    ],
)
def test_every_input_kind_compares(left: str, right: str) -> None:
    result = compare(load_one(str(FIXTURES / left)), load_one(str(FIXTURES / right)))
    assert result.differences
    assert json.loads(json.dumps(result.to_json()))["differences"] == len(result.differences)


def test_gallery_and_managed_image_strategies() -> None:
    api, worker = (load_one(f"{FIXTURES / 'sdk-list.json'}?name={n}") for n in ("api", "worker"))
    result = compare(api, worker)
    strategy = row(result, "image.strategy")
    assert (strategy.a.text, strategy.b.text) == (
        "gallery image version 2.3.1 (pinned)",
        "gallery image without a version (latest)",
    )
    assert strategy.consequence is not None and strategy.consequence.startswith("B:")


# ---------------------------------------------------------------------------------------------- the command


def test_cli_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    flat, nested = str(FIXTURES / "web-prod.az-show.json"), str(FIXTURES / "web-prod.arm-get.json")
    assert main(["compare", flat, nested, "-o", "json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["differences"] == 0 and same["a"]["resourceGroup"] == "PROD-RG"
    assert main(["compare", TEMPLATE, PROD, "-o", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["differences"] == 2
    first = out["fields"][0]
    assert first["key"] == "capacity" and first["same"] is False
    assert first["a"] == {"value": 3, "text": "3", "default": False}
    assert first["consequence"].startswith("batches of 1 (3 batches, zone by zone)")


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", TEMPLATE, PROD]) == 1
    out = capsys.readouterr().out
    assert "A: web-staging" in out and "B: web-prod" in out
    assert "4 values not resolved offline, in location, networkProfile, osProfile (not compared)" in out
    assert "2 differences in 33 fields" in out
    assert out.index("maxUnhealthyInstancePercent") < out.index("orchestrationMode")  # differences first


def test_cli_input_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["compare", TEMPLATE, str(FIXTURES / "arm-unresolvable.template.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaleset compare: ") and err.count("\n") == 1 and "[parameters('upgradeMode')]" in err
    assert main(["compare", TEMPLATE, "live"]) == 2
    assert "needs its resource group and name" in capsys.readouterr().err
    assert main(["compare", TEMPLATE, "live:g/n", "--data-dir", str(tmp_path)]) == 2
    assert "(ServerNotFound)" in capsys.readouterr().err


def test_values_compare_as_deployed() -> None:
    text_port = dict(HEALTH, properties={**HEALTH["properties"], "settings": {"protocol": "HTTP", "port": "80"}})
    result = compare(scale_set("a", capacity=2), scale_set("b", capacity=2, extensions=[text_port]))
    assert row(result, "health.port").same and row(result, "health.protocol").same
    assert not row(result, "health.requestPath").same  # "/health" vs not set
