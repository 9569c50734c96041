"""``scaleset drift``: stale and protected instances, a file against the live model (offline, on fixture pairs),
and the whole command against a live simulated server (Manual mode, a model change, protected instances)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.mgmt.compute.models import VirtualMachineScaleSetVMInstanceIDs
from tests.api.conftest import Server, image_patch, scale_set_body, start_server, stop_server, wait_until

from scaleset.main import main
from scaleset.safety.drift import Difference, drift, model_differences, same
from scaleset.safety.inputs import InstanceFacts, ScaleSetInput, load, load_one, to_input

FIXTURES = Path(__file__).parent / "fixtures" / "inputs"
TEMPLATE = str(FIXTURES / "web.template.json")
ROLLING = "properties.upgradePolicy.rollingUpgradePolicy"
EXTENSIONS = "properties.virtualMachineProfile.extensionProfile.extensions"
IMAGE = "properties.virtualMachineProfile.storageProfile.imageReference"


def paths(found: list[Difference]) -> dict[str, tuple[Any, Any]]:
    return {d.path: (d.file, d.live) for d in found}


# ---------------------------------------------------------------------------------------------- offline


def test_template_against_a_live_body() -> None:
    """Fields the template sets and the live set differs on; what it leaves out keeps the live value."""
    template = load_one(TEMPLATE)
    live = load_one(str(FIXTURES / "web-prod.arm-get.json"))
    found = paths(model_differences(template, live))
    assert found == {
        "sku.capacity": (3, 10),
        f"{ROLLING}.maxBatchInstancePercent": (20, 10),
        f"{ROLLING}.pauseTimeBetweenBatches": ("PT1M", "PT0S"),
        "properties.automaticRepairsPolicy.enabled": (True, False),
        "properties.automaticRepairsPolicy.gracePeriod": ("PT30M", "PT10M"),
        f"{IMAGE}.version": ("1.4.0", "latest"),
        f"{EXTENSIONS}[HealthExtension]": ("HealthExtension", None),
        f"{EXTENSIONS}[CustomScript]": (None, "CustomScript"),
    }
    notes = {d.path: d.note for d in model_differences(template, live)}
    assert notes[f"{EXTENSIONS}[CustomScript]"] == "only live: deploying the file removes this"
    # not set in the template: no drift, although they differ (deploying keeps the live value)
    assert f"{ROLLING}.maxUnhealthyUpgradedInstancePercent" not in found
    assert "properties.virtualMachineProfile.networkProfile.healthProbe.id" not in found
    assert "properties.scaleInPolicy.rules" not in found


def test_terraform_plan_against_a_live_body() -> None:
    plan = load_one(str(FIXTURES / "tf-windows.plan.json"))
    live_body: dict[str, Any] = json.loads(json.dumps(plan.body))
    live_body["properties"]["virtualMachineProfile"]["extensionProfile"]["extensions"] = [
        {"name": "AppHealth", "properties": {"type": "ApplicationHealthWindows", "settings": {"port": 80}}}
    ]
    live_body["properties"]["virtualMachineProfile"]["networkProfile"]["healthProbe"]["id"] = "/subscriptions/s/x"
    live_body["properties"]["upgradePolicy"]["rollingUpgradePolicy"]["maxBatchInstancePercent"] = "25"  # a string
    live_body["properties"]["upgradePolicy"]["mode"] = "automatic"  # any case
    live = to_input(live_body, name="winapp", origin="live (test)", kind="live")
    found = model_differences(plan, live)
    assert paths(found) == {f"{EXTENSIONS}[AppHealth]": (None, "AppHealth")}  # the probe id is known after apply


def test_scale_set_json_against_itself_has_no_difference() -> None:
    flat = load_one(str(FIXTURES / "web-prod.az-show.json"))
    nested = load_one(str(FIXTURES / "web-prod.arm-get.json"))
    assert model_differences(flat, nested) == []
    assert model_differences(nested, flat) == []


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (None, [], True),
        (None, False, True),
        ({"a": 1, "b": None}, {"a": "1"}, True),
        ("Rolling", "rolling", True),
        ("/health", "/Health", False),
        ([1, 2], [1], False),
        (True, "true", True),
        (0, None, False),
    ],
)
def test_same(a: Any, b: Any, equal: bool) -> None:
    assert same(a, b, "x.requestPath" if a == "/health" else "x") is equal


def _instances(*specs: tuple[str, str, bool, bool, bool]) -> tuple[InstanceFacts, ...]:
    return tuple(
        InstanceFacts(i, image_version=v, latest_model_applied=latest, protect_from_scale_in=p_in or p_act,
                      protect_from_scale_set_actions=p_act)
        for i, v, latest, p_in, p_act in specs
    )  # fmt: skip


def test_instance_drift() -> None:
    live = replace(
        load_one(str(FIXTURES / "web-prod.arm-get.json")),
        instances=_instances(
            ("10", "1.0.0", False, False, True),
            ("2", "1.0.0", False, False, False),
            ("3", "1.1.0", True, False, False),
            ("4", "0.9.0", False, True, False),
            ("5", "1.1.0", True, False, True),
        ),
    )
    result = drift(live)
    assert result.stale == ("2", "4", "10")  # numeric order
    assert result.stale_by_version == {"0.9.0": ["4"], "1.0.0": ["2", "10"]}
    assert result.versions == {"0.9.0": 1, "1.0.0": 2, "1.1.0": 2}
    assert result.protected_actions == ("5", "10") and result.skipped == ("10",)
    assert result.protected_scale_in == ("4",)
    assert result.drifted
    document = result.to_json()
    assert document["instances"]["stale"] == {
        "count": 3,
        "ids": ["2", "4", "10"],
        "byImageVersion": {"0.9.0": ["4"], "1.0.0": ["2", "10"]},
    }
    assert document["instances"]["latestModel"] == 2 and document["against"] is None
    healthy = replace(live, instances=_instances(("0", "1.1.0", True, False, False)))
    assert not drift(healthy).drifted


# ---------------------------------------------------------------------------------------------- live


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process, info = start_server(tmp_path_factory.mktemp("drift-serve"))
    try:
        yield info
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def drifted(server: Server) -> tuple[str, str]:
    """A Manual scale set of 4 after a model change: instance 1 updated, 2 protected from scale-set actions, 3 from
    scale-in only; and a scale set nothing happened to."""
    compute, group, name = server.compute(), "drift", "web"
    server.resources().resource_groups.create_or_update(group, {"location": "westus"})
    sets, vms = compute.virtual_machine_scale_sets, compute.virtual_machine_scale_set_vms
    sets.begin_create_or_update(group, name, scale_set_body(capacity=4, mode="Manual")).result()
    sets.begin_create_or_update(group, "clean", scale_set_body(capacity=2, mode="Manual")).result()
    sets.begin_update(group, name, image_patch("1.1.0")).result()
    sets.begin_update_instances(group, name, VirtualMachineScaleSetVMInstanceIDs(instance_ids=["1"])).result()
    both = {"protectFromScaleIn": True, "protectFromScaleSetActions": True}
    vms.begin_update(group, name, "2", {"location": "westus", "properties": {"protectionPolicy": both}}).result()
    scale_in = {"protectFromScaleIn": True, "protectFromScaleSetActions": False}
    vms.begin_update(group, name, "3", {"location": "westus", "properties": {"protectionPolicy": scale_in}}).result()

    def updated_and_healthy() -> bool:
        vm = vms.get_instance_view(group, name, "1")
        return vm.vm_health is not None and vm.vm_health.status.code == "HealthState/healthy"

    wait_until(updated_and_healthy, timeout=30, what="instance 1 on the new model and healthy")
    return group, name


def _where(server: Server) -> list[str]:
    return ["--endpoint", server.base, "--data-dir", str(server.data_dir)]


def test_live_input_has_its_instances(server: Server, drifted: tuple[str, str]) -> None:
    group, name = drifted
    (web,) = load("live", resource_group=group, name=name, endpoint=server.base, data_dir=str(server.data_dir))
    assert (web.name, web.origin, web.kind, web.resource_group) == ("web", "live (emulator)", "live", "drift")
    assert web.instances is not None and [i.instance_id for i in web.instances] == ["0", "1", "2", "3"]
    by_id = {i.instance_id: i for i in web.instances}
    assert (by_id["1"].latest_model_applied, by_id["1"].image_version, by_id["1"].health) == (True, "1.1.0", "Healthy")
    assert (by_id["0"].latest_model_applied, by_id["0"].image_version) == (False, "1.0.0")
    assert by_id["0"].health is None  # Azure reports health only for instances on the latest model
    assert by_id["1"].power_state == "running" and "PowerState/running" in by_id["1"].statuses
    assert by_id["2"].protect_from_scale_set_actions and by_id["3"].protect_from_scale_in
    assert web.model.image is not None and web.model.image.version == "1.1.0"


def test_live_drift_json(server: Server, drifted: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    group, name = drifted
    assert main(["drift", "-g", group, "-n", name, *_where(server), "-o", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    instances = out["instances"]
    assert instances["total"] == 4 and instances["latestModel"] == 1
    assert instances["stale"] == {"count": 3, "ids": ["0", "2", "3"], "byImageVersion": {"1.0.0": ["0", "2", "3"]}}
    assert instances["imageVersions"] == {"1.0.0": 3, "1.1.0": 1}
    assert instances["protected"] == {"fromScaleSetActions": ["2"], "fromScaleIn": ["3"], "skippedByUpgrades": ["2"]}
    assert out["scaleSet"]["upgradeMode"] == "Manual" and out["drift"] is True


def test_live_drift_against_a_template(
    server: Server, drifted: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    group, name = drifted
    against = str(FIXTURES / "live-web.template.json")
    assert main(["drift", "-g", group, "-n", name, *_where(server), "--against", against, "-o", "json"]) == 1
    out = json.loads(capsys.readouterr().out)["against"]
    assert out["name"] == "web" and out["notCompared"] == ["location"]
    assert {d["path"]: (d["file"], d["live"]) for d in out["differences"]} == {
        f"{ROLLING}.maxBatchInstancePercent": (50, 20),
        f"{EXTENSIONS}[HealthExtension].properties.settings.port": (8080, 80),
    }
    assert main(["drift", "-g", group, "-n", name, *_where(server), "--against", against]) == 1
    text = capsys.readouterr().out
    assert "Not on the latest model: 3 of 4: 0, 2, 3" in text
    assert "image 1.0.0: 3 (0, 2, 3)" in text
    assert "Manual mode: they keep their model until update-instances or a reimage" in text
    assert "Protected from scale-set actions, skipped by every upgrade: 2 (1 of them not on the latest model)" in text
    assert "Protected from scale-in only (upgrades still take them): 3" in text
    assert "2 fields differ" in text and "settings.port" in text


def test_live_without_drift(server: Server, drifted: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    group, _ = drifted
    assert main(["drift", "-g", group, "-n", "clean", *_where(server)]) == 0
    assert "Every instance is on the latest model (2)." in capsys.readouterr().out


def test_compare_live_with_a_file(server: Server, drifted: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    group, name = drifted
    against = str(FIXTURES / "live-web.template.json")
    assert main(["compare", f"live:{group}/{name}", against, *_where(server), "-o", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["a"]["origin"] == "live (emulator)" and out["a"]["capacity"] == 4
    different = {f["key"]: (f["a"]["value"], f["b"]["value"]) for f in out["fields"] if not f["same"]}
    assert different == {f"{ROLLING}.maxBatchInstancePercent": (20, 50), "health.port": (80, 8080)}


def test_drift_errors(server: Server, drifted: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    group, _ = drifted
    assert main(["drift", "-g", group, "-n", "nothere", *_where(server)]) == 2
    assert "(ResourceNotFound)" in capsys.readouterr().err
    assert main(["drift", *_where(server)]) == 2
    assert "-g GROUP -n NAME" in capsys.readouterr().err
    several = str(FIXTURES / "sdk-list.json")
    assert main(["drift", "-g", group, "-n", "web", *_where(server), "--against", several]) == 2
    assert "holds several scale sets (api, worker) and none is named 'web'" in capsys.readouterr().err


def test_live_scale_set_input_type(server: Server, drifted: tuple[str, str]) -> None:
    group, name = drifted
    web: ScaleSetInput = load_one(f"live:{group}/{name}", endpoint=server.base, data_dir=str(server.data_dir))
    assert web.capacity == 4 and web.model.capacity == 4


def test_live_audit_sees_suspended_repairs(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """SS027 reads the live scale set's instance view: repairs enabled, but the service suspended."""
    compute, group = server.compute(), "drift-repairs"
    server.resources().resource_groups.create_or_update(group, {"location": "westus"})
    body: Any = scale_set_body(capacity=1, mode="Manual")
    body["properties"]["automaticRepairsPolicy"] = {"enabled": True, "gracePeriod": "PT30M"}
    sets = compute.virtual_machine_scale_sets
    sets.begin_create_or_update(group, "repairs", body).result()

    def ss027() -> list[Any]:
        main(["audit", "-g", group, "-n", "repairs", *_where(server), "-o", "json"])
        findings = json.loads(capsys.readouterr().out)["results"]
        return [f for f in findings if f["ruleId"] == "SS027"]

    assert ss027() == []
    suspend = {"serviceName": "AutomaticRepairs", "action": "Suspend"}
    sets.begin_set_orchestration_service_state(group, "repairs", suspend).result()
    [finding] = ss027()
    assert "Suspended" in json.dumps(finding)
