"""The loader: every input kind (ARM template with parameters and variables, az vmss show flattened and not, SDK
JSON, Terraform plans for the three azurerm scale-set resources), the errors, and the live instance mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scaleset.domain.resources import OrchestrationMode, RepairAction, UpgradeMode
from scaleset.safety.inputs import InputError, ScaleSetInput, detect_kind, load, load_one
from scaleset.safety.inputs_arm import read_parameters
from scaleset.safety.inputs_expressions import Context, UnresolvableError
from scaleset.safety.inputs_live import instance_facts

FIXTURES = Path(__file__).parent / "fixtures" / "inputs"
TEMPLATE = str(FIXTURES / "web.template.json")
PROD_PARAMETERS = str(FIXTURES / "web.prod.parameters.json")
PROFILE = "properties.virtualMachineProfile"


def fixture(name: str) -> str:
    return str(FIXTURES / name)


def write(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


# ---------------------------------------------------------------------------------------------- ARM templates


def test_template_resolves_parameters_variables_and_functions() -> None:
    found = load(TEMPLATE)
    assert len(found) == 1  # the load balancer in the same template is not a scale set
    web = found[0]
    assert (web.name, web.kind, web.origin) == ("web-staging", "arm-template", f"ARM template {TEMPLATE}")
    assert web.model.capacity == 3 and web.model.zones == ["1", "2", "3"]
    policy = web.model.rolling_policy
    assert (policy.maxBatchInstancePercent, policy.maxUnhealthyInstancePercent) == (20, 20)
    assert policy.pauseTimeBetweenBatches == "PT1M"
    assert web.model.profile.osProfile is not None
    assert web.model.profile.osProfile.computerNamePrefix == "web-staging-vm"  # toLower(format(...))
    settings = web.model.extensions[0].properties.settings
    assert settings == {
        "protocol": "http",
        "port": 8080,  # a parameter inside a variable's object, kept an integer
        "requestPath": "/healthz",
        "intervalInSeconds": 10,
        "numberOfProbes": 2,
        "gracePeriod": 600,
    }
    assert web.model.image is not None and web.model.image.version == "1.4.0"


def test_template_leaves_irrelevant_expressions_as_placeholders() -> None:
    web = load_one(TEMPLATE)
    assert web.body["location"] == "<unresolved: [parameters('location')]>"
    assert "resourceGroup().location" in web.unresolved["location"]
    assert f"{PROFILE}.osProfile.adminPassword" in web.unresolved  # a securestring without a value
    nic = web.body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    ip = nic["properties"]["ipConfigurations"][0]["properties"]
    assert ip["subnet"]["id"].startswith("<unresolved: [reference(")
    pool = ip["loadBalancerBackendAddressPools"][0]["id"]
    assert pool == (
        "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Network/"
        "loadBalancers/web-staging-lb/backendAddressPools/pool"
    )
    assert any(path.endswith("loadBalancerBackendAddressPools[0].id") for path in web.unresolved)


def test_resource_group_and_subscription_complete_resource_ids() -> None:
    web = load_one(TEMPLATE, resource_group="shop", subscription="0000-sub")
    nic = web.body["properties"]["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0]
    pool = nic["properties"]["ipConfigurations"][0]["properties"]["loadBalancerBackendAddressPools"][0]["id"]
    assert pool.startswith("/subscriptions/0000-sub/resourceGroups/shop/providers/Microsoft.Network/loadBalancers/")
    assert not any(path.endswith("loadBalancerBackendAddressPools[0].id") for path in web.unresolved)
    assert web.resource_group == "shop"


@pytest.mark.parametrize("how", ["query", "argument"])
def test_parameters_file(how: str) -> None:
    if how == "query":
        found = load(f"{TEMPLATE}?parameters={PROD_PARAMETERS}")
    else:
        found = load(TEMPLATE, parameters=PROD_PARAMETERS)
    prod = found[0]
    assert prod.name == "web-prod" and prod.model.capacity == 10
    assert prod.model.rolling_policy.maxUnhealthyInstancePercent == 30
    assert prod.model.rolling_policy.maxBatchInstancePercent == 20  # not in the file: the default value
    assert f"{PROFILE}.osProfile.adminPassword" in prod.unresolved  # a Key Vault reference stays unresolved


def test_unresolvable_expression_in_a_relevant_field_names_resource_and_expression() -> None:
    source = fixture("arm-unresolvable.template.json")
    with pytest.raises(InputError) as caught:
        load(source)
    message = str(caught.value)
    assert "resource 'api'" in message and "properties.upgradePolicy.mode" in message
    assert "[parameters('upgradeMode')]" in message and "--parameters" in message


def test_unresolvable_parameter_supplied_by_a_parameters_file(tmp_path: Path) -> None:
    parameters = write(tmp_path, "p.json", {"parameters": {"upgradeMode": {"value": "Rolling"}}})
    api = load_one(fixture("arm-unresolvable.template.json"), parameters=parameters)
    assert api.model.upgrade_mode is UpgradeMode.ROLLING
    assert "location" in api.unresolved  # [resourceGroup().location]: a placeholder, the commands do not need it


def test_bare_parameters_file_shape() -> None:
    assert read_parameters({"a": {"value": 1}, "b": 2}, label="p") == {"a": 1, "b": 2}


def _ctx(**parameters: Any) -> Context:
    definitions = {name: {"type": "string", "defaultValue": value} for name, value in parameters.items()}
    variables = {
        "zones": ["1", "2", "3"],
        "cfg": {"inner": {"value": "[parameters('name')]"}},
        "loop": "[variables('loop')]",
    }
    return Context(definitions, {}, variables, resource_group="rg")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("[concat('a', parameters('name'), 'c')]", "abc"),
        ("[concat(variables('zones'), createArray('4'))]", ["1", "2", "3", "4"]),
        ("[format('{0}-{1}', parameters('name'), 7)]", "b-7"),
        ("[if(equals(parameters('name'), 'b'), 10, 20)]", 10),
        ("[variables('cfg').inner.value]", "b"),
        ("[variables('zones')[1]]", "2"),
        ("[variables('CFG')['inner']['value']]", "b"),
        ("[toUpper('it''s')]", "IT'S"),
        ("[resourceGroup().name]", "rg"),
        ("[add(length(variables('zones')), 1)]", 4),
        ("[json('{\"a\": [1]}').a[0]]", 1),
        ("[string(true())]", "True"),
        ("[[literal]", "[literal]"),
    ],
)
def test_expressions(expression: str, expected: Any) -> None:
    assert _ctx(name="b").resolve(expression) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("[uniqueString(resourceGroup().id)]", "uniqueString() depends on the deployment"),
        ("[reference('x').id]", "reference() depends on the deployment"),
        ("[resourceGroup().location]", "depends on the deployment"),
        ("[variables('loop')]", "refers to itself"),
        ("[parameters('missing')]", "declares no parameter 'missing'"),
        ("[concat('a',]", "not a valid template expression"),
    ],
)
def test_unresolvable_expressions(expression: str, reason: str) -> None:
    with pytest.raises(UnresolvableError, match=re.escape(reason)):
        _ctx(name="b").resolve(expression)


def _template(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "resources": [{"type": "Microsoft.Compute/virtualMachineScaleSets", "name": "s", **resource}],
    }


def test_template_conditions_copy_loops_and_empty_templates(tmp_path: Path) -> None:
    skipped = write(tmp_path, "off.json", _template({"condition": "[equals('a', 'b')]", "sku": {"capacity": 1}}))
    with pytest.raises(InputError, match=r"no resource of type Microsoft\.Compute/virtualMachineScaleSets"):
        load(skipped)
    copied = write(tmp_path, "copy.json", _template({"copy": {"name": "c", "count": 2}}))
    with pytest.raises(InputError, match="copy loops are not supported"):
        load(copied)
    with pytest.raises(InputError, match="parameters file"):
        load(PROD_PARAMETERS)
    with pytest.raises(InputError, match="applies to ARM templates"):
        load(fixture("sdk-list.json"), parameters=PROD_PARAMETERS)


# ---------------------------------------------------------------------------------------------- resource JSON


def test_az_show_flattened_and_arm_get_nested_are_the_same_scale_set() -> None:
    flat = load_one(fixture("web-prod.az-show.json"))
    nested = load_one(fixture("web-prod.arm-get.json"))
    assert flat.model == nested.model
    assert flat.origin.startswith("flattened scale-set JSON") and flat.kind == "resource-json"
    assert (flat.name, flat.resource_group) == ("web-prod", "PROD-RG")
    extension = flat.model.extensions[0]
    assert (extension.name, extension.properties.type) == ("CustomScript", "CustomScript")  # typePropertiesType
    probe = flat.body["properties"]["virtualMachineProfile"]["networkProfile"]["healthProbe"]
    assert set(probe) == {"id"}  # the resourceGroup az adds next to ids is gone
    assert flat.model.rolling_policy.maxUnhealthyUpgradedInstancePercent == 0


def test_sdk_list_and_picking_by_name() -> None:
    source = fixture("sdk-list.json")
    assert [s.name for s in load(source)] == ["api", "worker"]
    assert load(f"{source}?name=WORKER")[0].model.upgrade_mode is UpgradeMode.AUTOMATIC
    assert load(source, name="api")[0].model.capacity == 6
    with pytest.raises(InputError, match=r"no scale set named 'db' \(it has: api, worker\)"):
        load(source, name="db")
    with pytest.raises(InputError, match="holds 2 scale sets"):
        load_one(source)


def test_old_sdk_snake_case() -> None:
    batch = load_one(fixture("sdk-snake.json"))
    policy = batch.model.rolling_policy
    assert (policy.maxBatchInstancePercent, policy.pauseTimeBetweenBatches) == (40, "PT30S")
    assert policy.enableCrossZoneUpgrade and policy.prioritizeUnhealthyInstances
    assert batch.model.properties.upgradePolicy.automaticOSUpgradePolicy.disableAutomaticRollback is True
    scale_in = batch.model.properties.scaleInPolicy
    assert scale_in.prioritizeUnhealthyVMs is True and scale_in.forceDeletion is True
    assert batch.model.extensions[0].properties.type == "ApplicationHealthLinux"
    assert batch.model.extensions[0].properties.settings == {"protocol": "https", "port": 443, "requestPath": "/ready"}
    storage = batch.model.profile.storageProfile
    assert storage is not None and storage.osDisk is not None and storage.osDisk.diskSizeGB == 64
    assert batch.resource_group == "legacy"


def test_az_vmss_create_output_is_unwrapped(tmp_path: Path) -> None:
    created = write(tmp_path, "created.json", {"vmss": {"upgradePolicy": {"mode": "Rolling"}, "sku": {"capacity": 2}}})
    assert load_one(created).model.upgrade_mode is UpgradeMode.ROLLING


def test_shape_errors_name_the_dotted_target_and_bad_values_still_load(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.json", {"upgradePolicy": {"rollingUpgradePolicy": {"maxBatchInstancePercent": "lots"}}})
    with pytest.raises(InputError, match=r"properties\.upgradePolicy\.rollingUpgradePolicy\.maxBatchInstancePercent"):
        load(bad)
    odd = write(tmp_path, "odd.json", {"upgradePolicy": {"rollingUpgradePolicy": {"maxBatchInstancePercent": 0}}})
    assert load_one(odd).model.rolling_policy.maxBatchInstancePercent == 0  # out of range, kept for the audit


def test_other_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an ARM template, scale-set JSON"):
        load(fixture("not-a-scale-set.json"))
    with pytest.raises(InputError, match="no such input file"):
        load(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1,\n "b": }')
    with pytest.raises(InputError, match="line 2: not JSON"):
        load(str(broken))
    with pytest.raises(InputError, match="unknown option 'param'"):
        load(f"{TEMPLATE}?param=x")
    vm = write(tmp_path, "vm.json", {"type": "Microsoft.Compute/virtualMachines", "properties": {}})
    with pytest.raises(InputError, match=r"not a Microsoft\.Compute/virtualMachineScaleSets"):
        load(vm)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("web.template.json", "arm-template"),
        ("web.prod.parameters.json", "arm-parameters"),
        ("web-prod.az-show.json", "resource-json"),
        ("sdk-list.json", "resource-json"),
        ("tf-linux.plan.json", "terraform-plan"),
        ("not-a-scale-set.json", "unknown"),
    ],
)
def test_detect_kind(name: str, kind: str) -> None:
    assert detect_kind(json.loads((FIXTURES / name).read_text())) == kind


# ---------------------------------------------------------------------------------------------- Terraform


def test_terraform_linux_plan_in_a_child_module() -> None:
    web = load_one(fixture("tf-linux.plan.json"))
    assert (web.name, web.resource_group, web.kind) == ("shop-web", "shop-rg", "terraform-plan")
    assert "module.shop.azurerm_linux_virtual_machine_scale_set.web" in web.origin
    m = web.model
    assert (m.capacity, m.zones, m.sku.name) == (6, ["1", "2"], "Standard_D2s_v5")
    assert m.properties.orchestrationMode is OrchestrationMode.UNIFORM
    policy = m.rolling_policy
    assert (policy.maxBatchInstancePercent, policy.maxUnhealthyInstancePercent) == (50, 20)
    assert (policy.maxUnhealthyUpgradedInstancePercent, policy.pauseTimeBetweenBatches) == (5, "PT2M")
    assert policy.prioritizeUnhealthyInstances and policy.maxSurge and not policy.enableCrossZoneUpgrade
    assert m.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade is True  # provider 3.x name
    repairs = m.properties.automaticRepairsPolicy
    assert repairs is not None and (repairs.enabled, repairs.gracePeriod) == (True, "PT15M")
    assert repairs.repairAction is RepairAction.REIMAGE
    assert [str(r) for r in m.properties.scaleInPolicy.rules] == ["OldestVM"]
    assert m.image is not None and m.image.version == "latest"
    settings = m.extensions[0].properties.settings
    assert settings is not None and settings["port"] == 8080 and settings["numberOfProbes"] == 3
    storage = m.profile.storageProfile
    assert storage is not None and storage.osDisk is not None and storage.osDisk.osType == "Linux"
    assert storage.dataDisks is not None and storage.dataDisks[0].lun == 0
    network = m.profile.networkProfile
    assert network is not None and network.healthProbe is None  # no health_probe_id
    assert network.networkInterfaceConfigurations is not None
    ip = network.networkInterfaceConfigurations[0]["properties"]["ipConfigurations"][0]["properties"]
    assert ip["subnet"]["id"].endswith("/subnets/s") and ip["loadBalancerBackendAddressPools"][0]["id"].endswith("/web")
    assert ip["publicIPAddressConfiguration"] == {
        "name": "pub",
        "properties": {"idleTimeoutInMinutes": 15, "publicIPAddressVersion": "IPv4"},
    }
    os_profile = web.body["properties"]["virtualMachineProfile"]["osProfile"]
    assert os_profile["linuxConfiguration"] == {"disablePasswordAuthentication": True}
    assert web.body["properties"]["virtualMachineProfile"]["securityProfile"] == {"encryptionAtHost": True}
    assert m.properties.overprovision is False


def test_terraform_windows_plan_from_resource_changes() -> None:
    found = load(fixture("tf-windows.plan.json"))
    assert [s.name for s in found] == ["winapp"]  # the deleted scale set and the probe are left out
    app = found[0]
    m = app.model
    assert m.upgrade_mode is UpgradeMode.AUTOMATIC and m.zones is None
    assert m.properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade is True  # provider 4.x name
    assert m.image is not None and m.image.id is not None and m.image.id.endswith("/images/winapp/versions/3.1.0")
    assert m.extensions == []
    probe = f"{PROFILE}.networkProfile.healthProbe.id"
    assert app.unresolved == {probe: "health_probe_id (known after apply)"}
    network = m.profile.networkProfile
    assert network is not None and network.healthProbe is not None and network.healthProbe.id == "<known after apply>"
    assert m.properties.scaleInPolicy.forceDeletion is True
    storage = m.profile.storageProfile
    assert storage is not None and storage.osDisk is not None and storage.osDisk.osType == "Windows"
    windows = app.body["properties"]["virtualMachineProfile"]["osProfile"]["windowsConfiguration"]
    assert windows == {"enableAutomaticUpdates": False}  # provider 3.x enable_automatic_updates


def test_terraform_orchestrated_plan() -> None:
    flex = load_one(fixture("tf-orchestrated.plan.json"))
    m = flex.model
    assert m.properties.orchestrationMode is OrchestrationMode.FLEXIBLE
    assert (m.sku.name, m.capacity, m.zones) == ("Standard_D2s_v5", 9, ["1", "2", "3"])
    assert m.rolling_policy.enableCrossZoneUpgrade is True and m.rolling_policy.maxBatchInstancePercent == 34
    repairs = m.properties.automaticRepairsPolicy
    assert repairs is not None and repairs.repairAction is RepairAction.RESTART
    assert m.profile.osProfile is not None and m.profile.osProfile.computerNamePrefix == "flex"
    extension = m.extensions[0].properties
    assert extension.autoUpgradeMinorVersion is True and extension.settings == {"protocol": "tcp", "port": 22}
    assert m.properties.platformFaultDomainCount == 1
    linux = flex.body["properties"]["virtualMachineProfile"]["osProfile"]["linuxConfiguration"]
    assert linux == {"disablePasswordAuthentication": True}


def test_terraform_bad_extension_settings(tmp_path: Path) -> None:
    plan = {
        "planned_values": {
            "root_module": {
                "resources": [
                    {
                        "address": "azurerm_linux_virtual_machine_scale_set.x",
                        "mode": "managed",
                        "type": "azurerm_linux_virtual_machine_scale_set",
                        "values": {"name": "x", "extension": [{"name": "h", "settings": "{not json"}]},
                    }
                ]
            }
        }
    }
    with pytest.raises(InputError, match=r"azurerm_linux_virtual_machine_scale_set\.x extension\[0\]\.settings"):
        load(write(tmp_path, "plan.json", plan))
    plan["planned_values"]["root_module"]["resources"][0]["type"] = "azurerm_linux_virtual_machine"
    with pytest.raises(InputError, match="has no azurerm_linux_virtual_machine_scale_set"):
        load(write(tmp_path, "plan.json", plan))


# ---------------------------------------------------------------------------------------------- live


def test_live_sources_need_a_group_and_a_name(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="live:GROUP/NAME"):
        load("live:onlygroup")
    with pytest.raises(InputError, match="needs its resource group and name"):
        load("live")
    with pytest.raises(InputError, match="ServerNotFound"):
        load("live:g/n", data_dir=str(tmp_path))


def test_live_azure_needs_a_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    with pytest.raises(InputError, match=r"\(SubscriptionNotFound\) --cloud azure needs a subscription"):
        load("live:prod/web", cloud="azure")
    with pytest.raises(InputError, match="unknown cloud 'mars'"):
        load("live:prod/web", cloud="mars")


def test_instance_facts_from_a_vm() -> None:
    vm = {
        "instanceId": "7",
        "zones": ["2"],
        "properties": {
            "latestModelApplied": False,
            "provisioningState": "Succeeded",
            "protectionPolicy": {"protectFromScaleIn": True, "protectFromScaleSetActions": True},
            "storageProfile": {"imageReference": {"version": "latest", "exactVersion": "1.2.3"}},
            "instanceView": {
                "platformFaultDomain": 3,
                "statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}],
                "vmHealth": {"status": {"code": "HealthState/unhealthy"}},
            },
        },
    }
    facts = instance_facts(vm)
    assert (facts.instance_id, facts.zone, facts.image_version) == ("7", "2", "1.2.3")
    assert (facts.latest_model_applied, facts.health, facts.power_state) == (False, "Unhealthy", "running")
    assert facts.protect_from_scale_in and facts.protect_from_scale_set_actions
    assert (facts.fault_domain, facts.statuses) == (3, ("ProvisioningState/succeeded", "PowerState/running"))
    bare = instance_facts({"name": "web_3", "properties": {}})
    assert (bare.instance_id, bare.health, bare.image_version) == ("3", None, None)


def test_capacity_of_a_file_input_is_the_sku() -> None:
    web: ScaleSetInput = load_one(TEMPLATE)
    assert web.instances is None and web.capacity == 3
