"""Terraform plans (``terraform show -json plan``): the azurerm scale-set resources, mapped to the ARM model.

Resources are read from ``resource_changes[].change.after`` (with ``after_unknown``, so a value known only after
apply is recognised), else from ``planned_values.root_module`` and its ``child_modules``, else from a state's
``values.root_module``. Resources being destroyed are left out.

Types: ``azurerm_linux_virtual_machine_scale_set`` and ``azurerm_windows_virtual_machine_scale_set`` (Uniform) and
``azurerm_orchestrated_virtual_machine_scale_set`` (Flexible). Attribute names of provider 3.x and 4.x are both
read (``enable_automatic_os_upgrade`` / ``automatic_os_upgrade_enabled``, ``force_deletion`` /
``force_deletion_enabled``, ...). A block the plan leaves out is left out of the body, so Azure's defaults apply,
except ``extension``: a plan without extension blocks means no extensions (``extensions: []``). The mapping choices
are listed in docs/semantics.md ("Inputs").
"""

from __future__ import annotations

from typing import Any

from scaleset.safety.inputs_shapes import InputError, ScaleSetInput, to_input
from scaleset.safety.inputs_terraform_profile import (
    FLEXIBLE_TYPE,
    UNIFORM_TYPES,
    block,
    clean,
    either,
    vm_profile,
)

TYPES = (*UNIFORM_TYPES, FLEXIBLE_TYPE)


def is_plan(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    if "planned_values" in document or "resource_changes" in document:
        return True
    values = document.get("values")
    return "terraform_version" in document or (isinstance(values, dict) and "root_module" in values)


def _module_resources(module: Any) -> list[tuple[dict[str, Any], Any]]:
    if not isinstance(module, dict):
        return []
    out = [(r, None) for r in module.get("resources") or [] if isinstance(r, dict)]
    for child in module.get("child_modules") or []:
        out += _module_resources(child)
    return out


def _resources(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], Any]]:
    """``(address, type, values, unknown)`` of every managed resource the plan will have."""
    changes = document.get("resource_changes")
    if isinstance(changes, list) and changes:
        found = []
        for change in changes:
            if not isinstance(change, dict) or change.get("mode", "managed") != "managed":
                continue
            body = change.get("change") or {}
            after = body.get("after")
            if isinstance(after, dict):
                found.append((str(change.get("address")), str(change.get("type")), after, body.get("after_unknown")))
        return found
    root = (document.get("planned_values") or document.get("values") or {}).get("root_module")
    return [
        (str(r.get("address")), str(r.get("type")), r.get("values") or {}, unknown)
        for r, unknown in _module_resources(root)
        if r.get("mode", "managed") == "managed"
    ]


def _upgrade_policy(values: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = {"mode": values.get("upgrade_mode") or "Manual"}
    rolling = block(values, "rolling_upgrade_policy")
    if rolling is not None:
        policy["rollingUpgradePolicy"] = clean(
            {
                "maxBatchInstancePercent": rolling.get("max_batch_instance_percent"),
                "maxUnhealthyInstancePercent": rolling.get("max_unhealthy_instance_percent"),
                "maxUnhealthyUpgradedInstancePercent": rolling.get("max_unhealthy_upgraded_instance_percent"),
                "pauseTimeBetweenBatches": rolling.get("pause_time_between_batches"),
                "enableCrossZoneUpgrade": rolling.get("cross_zone_upgrades_enabled"),
                "prioritizeUnhealthyInstances": rolling.get("prioritize_unhealthy_instances_enabled"),
                "maxSurge": rolling.get("maximum_surge_instances_enabled"),
            }
        )
    automatic = block(values, "automatic_os_upgrade_policy")
    if automatic is not None:
        policy["automaticOSUpgradePolicy"] = clean(
            {
                "enableAutomaticOSUpgrade": either(
                    automatic, "automatic_os_upgrade_enabled", "enable_automatic_os_upgrade"
                ),
                "disableAutomaticRollback": automatic.get("disable_automatic_rollback"),
            }
        )
    return policy


def _scale_in(values: dict[str, Any]) -> dict[str, Any] | None:
    found = block(values, "scale_in")
    if found is not None:
        rule = found.get("rule")
        return clean(
            {
                "rules": [rule] if rule else None,
                "forceDeletion": either(found, "force_deletion_enabled", "force_deletion"),
            }
        )
    legacy = values.get("scale_in_policy")
    return {"rules": [legacy]} if isinstance(legacy, str) and legacy else None


def map_resource(
    kind: str, values: dict[str, Any], unknown: Any, *, where: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The ARM body of one azurerm scale set, and the paths that hold placeholders."""
    flexible = kind == FLEXIBLE_TYPE
    profile, unresolved = vm_profile(kind, values, unknown, where=where)
    repair = block(values, "automatic_instance_repair")
    properties = clean(
        {
            "orchestrationMode": "Flexible" if flexible else "Uniform",
            "upgradePolicy": _upgrade_policy(values),
            "automaticRepairsPolicy": clean(
                {
                    "enabled": repair.get("enabled"),
                    "gracePeriod": repair.get("grace_period"),
                    "repairAction": repair.get("action"),
                }
            )
            if repair is not None
            else None,
            "scaleInPolicy": _scale_in(values),
            "overprovision": values.get("overprovision"),
            "doNotRunExtensionsOnOverprovisionedVMs": values.get("do_not_run_extensions_on_overprovisioned_machines"),
            "singlePlacementGroup": values.get("single_placement_group"),
            "platformFaultDomainCount": values.get("platform_fault_domain_count"),
            "zoneBalance": values.get("zone_balance"),
            "virtualMachineProfile": profile,
        }
    )
    sku_name = values.get("sku_name") if flexible else values.get("sku")
    body = clean(
        {
            "location": values.get("location"),
            "tags": values.get("tags") or None,
            "sku": clean({"name": sku_name, "capacity": values.get("instances")}),
            "zones": [str(z) for z in values["zones"]] if values.get("zones") else None,
            "properties": properties,
        }
    )
    return body, unresolved


def from_plan(document: dict[str, Any], *, label: str) -> list[ScaleSetInput]:
    out = []
    for address, kind, values, unknown in _resources(document):
        if kind not in TYPES:
            continue
        where = f"{label}: {address}"
        body, unresolved = map_resource(kind, values, unknown, where=where)
        out.append(
            to_input(
                body,
                name=str(values.get("name") or address),
                origin=f"Terraform plan {label} ({address})",
                kind="terraform-plan",
                resource_group=values.get("resource_group_name"),
                unresolved=unresolved,
            )
        )
    if not out:
        raise InputError(f"{label}: the Terraform plan has no {', '.join(TYPES)} resource")
    return out
