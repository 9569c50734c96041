"""The ``virtualMachineProfile`` of an azurerm scale set in a Terraform plan, in ARM's shape.

Image (``source_image_reference`` / ``source_image_id``), OS and data disks, the OS configuration
(``disable_password_authentication``, ``automatic_updates_enabled`` / ``enable_automatic_updates``, ``patch_mode``,
``provision_vm_agent``, custom data), ``encryption_at_host_enabled``, secure boot and vTPM, network interfaces (with
their public IP configuration), extensions (``settings`` is a JSON string) and ``health_probe_id``. Values known only
after apply become placeholders whose paths are returned as unresolved.
"""

from __future__ import annotations

import json
from typing import Any

from scaleset.safety.inputs_shapes import InputError

UNIFORM_TYPES = {
    "azurerm_linux_virtual_machine_scale_set": "Linux",
    "azurerm_windows_virtual_machine_scale_set": "Windows",
}
FLEXIBLE_TYPE = "azurerm_orchestrated_virtual_machine_scale_set"
KNOWN_AFTER_APPLY = "<known after apply>"
PROFILE = "properties.virtualMachineProfile"


def block(values: dict[str, Any], key: str) -> dict[str, Any] | None:
    """A nested block (a list of at most one object in plan JSON; an object is accepted too)."""
    value = values.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, dict) else None


def blocks(values: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = values.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def either(values: dict[str, Any], *keys: str) -> Any:
    return next((values[k] for k in keys if values.get(k) is not None), None)


def clean(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def is_unknown(plan_unknown: Any, *keys: str | int) -> bool:
    """Whether ``after_unknown`` marks the value at ``keys`` as known only after apply."""
    node = plan_unknown
    for key in keys:
        if isinstance(node, dict) and isinstance(key, str):
            node = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return False
    return node is True


def _image(values: dict[str, Any], unknown: Any, unresolved: dict[str, str]) -> dict[str, Any] | None:
    reference = block(values, "source_image_reference")
    if reference is not None:
        return clean({k: reference.get(k) for k in ("publisher", "offer", "sku", "version")})
    image_id = values.get("source_image_id")
    if image_id is None and is_unknown(unknown, "source_image_id"):
        unresolved[f"{PROFILE}.storageProfile.imageReference.id"] = "source_image_id (known after apply)"
        image_id = KNOWN_AFTER_APPLY
    if not image_id:
        return None
    lowered = str(image_id).lower()
    if "/sharedgalleries/" in lowered:
        return {"sharedGalleryImageId": image_id}
    if "/communitygalleries/" in lowered:
        return {"communityGalleryImageId": image_id}
    return {"id": image_id}


def _extension(item: dict[str, Any], index: int, unknown: Any, *, where: str) -> tuple[dict[str, Any], bool]:
    """One ``extension`` block as an ARM extension; the flag says its settings are known only after apply."""
    raw = item.get("settings")
    settings: dict[str, Any] | None = None
    later = raw is None and is_unknown(unknown, "extension", index, "settings")
    if isinstance(raw, str) and raw.strip():
        try:
            settings = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"{where} extension[{index}].settings is not JSON: {exc}") from None
    elif isinstance(raw, dict):
        settings = raw
    if settings is not None and not isinstance(settings, dict):
        raise InputError(f"{where} extension[{index}].settings is not a JSON object")
    properties = clean(
        {
            "publisher": item.get("publisher"),
            "type": item.get("type"),
            "typeHandlerVersion": item.get("type_handler_version"),
            "autoUpgradeMinorVersion": either(item, "auto_upgrade_minor_version", "auto_upgrade_minor_version_enabled"),
            "enableAutomaticUpgrade": item.get("automatic_upgrade_enabled"),
            "forceUpdateTag": either(item, "force_update_tag", "force_extension_execution_on_change") or None,
            "settings": settings if settings is not None else ({} if later else None),
            "provisionAfterExtensions": either(
                item, "provision_after_extensions", "extensions_to_provision_after_vm_creation"
            )
            or None,
            "suppressFailures": item.get("failure_suppression_enabled"),
        }
    )
    return {"name": item.get("name"), "properties": properties}, later


def _linux(config: dict[str, Any]) -> dict[str, Any]:
    patch = clean({"patchMode": config.get("patch_mode"), "assessmentMode": config.get("patch_assessment_mode")})
    return clean(
        {
            "disablePasswordAuthentication": config.get("disable_password_authentication"),
            "provisionVMAgent": config.get("provision_vm_agent"),
            "patchSettings": patch or None,
        }
    )


def _windows(config: dict[str, Any]) -> dict[str, Any]:
    patch = clean(
        {
            "patchMode": config.get("patch_mode"),
            "assessmentMode": config.get("patch_assessment_mode"),
            "enableHotpatching": config.get("hotpatching_enabled"),
        }
    )
    return clean(
        {
            "enableAutomaticUpdates": either(config, "automatic_updates_enabled", "enable_automatic_updates"),
            "provisionVMAgent": config.get("provision_vm_agent"),
            "timeZone": config.get("timezone") or None,
            "patchSettings": patch or None,
        }
    )


def _os_profile(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    if kind in UNIFORM_TYPES:
        config, custom_data = values, values.get("custom_data")
        linux = _linux(values) if UNIFORM_TYPES[kind] == "Linux" else None
        windows = _windows(values) if UNIFORM_TYPES[kind] == "Windows" else None
    else:
        profile = block(values, "os_profile") or {}
        linux_block, windows_block = block(profile, "linux_configuration"), block(profile, "windows_configuration")
        config, custom_data = linux_block or windows_block or {}, profile.get("custom_data")
        linux = _linux(linux_block) if linux_block is not None else None
        windows = _windows(windows_block) if windows_block is not None else None
    return clean(
        {
            "computerNamePrefix": config.get("computer_name_prefix"),
            "adminUsername": config.get("admin_username"),
            "customData": custom_data or None,
            "linuxConfiguration": linux,
            "windowsConfiguration": windows,
        }
    )


def _ids(values: dict[str, Any], key: str) -> list[dict[str, str]] | None:
    return [{"id": str(i)} for i in values.get(key) or []] or None


def _ip_configuration(ip: dict[str, Any]) -> dict[str, Any]:
    public = block(ip, "public_ip_address")
    public_ip = None
    if public is not None:
        label = public.get("domain_name_label")
        prefix = public.get("public_ip_prefix_id")
        public_ip = {
            "name": public.get("name"),
            "properties": clean(
                {
                    "idleTimeoutInMinutes": public.get("idle_timeout_in_minutes"),
                    "dnsSettings": {"domainNameLabel": label} if label else None,
                    "publicIPPrefix": {"id": prefix} if prefix else None,
                    "publicIPAddressVersion": public.get("version"),
                }
            ),
        }
    subnet = ip.get("subnet_id")
    return {
        "name": ip.get("name"),
        "properties": clean(
            {
                "primary": ip.get("primary"),
                "subnet": {"id": subnet} if subnet else None,
                "privateIPAddressVersion": ip.get("version"),
                "loadBalancerBackendAddressPools": _ids(ip, "load_balancer_backend_address_pool_ids"),
                "loadBalancerInboundNatPools": _ids(ip, "load_balancer_inbound_nat_rules_ids"),
                "applicationGatewayBackendAddressPools": _ids(ip, "application_gateway_backend_address_pool_ids"),
                "applicationSecurityGroups": _ids(ip, "application_security_group_ids"),
                "publicIPAddressConfiguration": public_ip,
            }
        ),
    }


def _network_interfaces(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for nic in blocks(values, "network_interface"):
        group = nic.get("network_security_group_id")
        dns = nic.get("dns_servers")
        out.append(
            {
                "name": nic.get("name"),
                "properties": clean(
                    {
                        "primary": nic.get("primary"),
                        "enableAcceleratedNetworking": either(
                            nic, "accelerated_networking_enabled", "enable_accelerated_networking"
                        ),
                        "enableIPForwarding": either(nic, "ip_forwarding_enabled", "enable_ip_forwarding"),
                        "networkSecurityGroup": {"id": group} if group else None,
                        "dnsSettings": {"dnsServers": dns} if dns else None,
                        "ipConfigurations": [_ip_configuration(ip) for ip in blocks(nic, "ip_configuration")],
                    }
                ),
            }
        )
    return out


def _security(values: dict[str, Any]) -> dict[str, Any] | None:
    uefi = clean({"secureBootEnabled": values.get("secure_boot_enabled"), "vTpmEnabled": values.get("vtpm_enabled")})
    security = clean({"encryptionAtHost": values.get("encryption_at_host_enabled"), "uefiSettings": uefi or None})
    return security or None


def _storage(kind: str, values: dict[str, Any], unknown: Any, unresolved: dict[str, str]) -> dict[str, Any]:
    storage: dict[str, Any] = {}
    image = _image(values, unknown, unresolved)
    if image is not None:
        storage["imageReference"] = image
    disk = block(values, "os_disk")
    if disk is not None:
        account = disk.get("storage_account_type")
        storage["osDisk"] = clean(
            {
                "createOption": "FromImage",
                "caching": disk.get("caching"),
                "diskSizeGB": disk.get("disk_size_gb"),
                "osType": UNIFORM_TYPES.get(kind),
                "managedDisk": {"storageAccountType": account} if account else None,
            }
        )
    disks = blocks(values, "data_disk")
    if disks:
        storage["dataDisks"] = [
            clean(
                {
                    "lun": d.get("lun"),
                    "createOption": d.get("create_option") or "Empty",
                    "caching": d.get("caching"),
                    "diskSizeGB": d.get("disk_size_gb"),
                    "managedDisk": {"storageAccountType": d["storage_account_type"]}
                    if d.get("storage_account_type")
                    else None,
                }
            )
            for d in disks
        ]
    return storage


def vm_profile(kind: str, values: dict[str, Any], unknown: Any, *, where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``virtualMachineProfile`` and the paths in it that hold placeholders."""
    unresolved: dict[str, str] = {}
    extensions = []
    for index, item in enumerate(blocks(values, "extension")):
        extension, later = _extension(item, index, unknown, where=where)
        if later:
            unresolved[f"{PROFILE}.extensionProfile.extensions[{index}].properties.settings"] = (
                f"extension[{index}].settings (known after apply)"
            )
        extensions.append(extension)
    network: dict[str, Any] = {}
    probe = values.get("health_probe_id")
    if probe is None and is_unknown(unknown, "health_probe_id"):
        unresolved[f"{PROFILE}.networkProfile.healthProbe.id"] = "health_probe_id (known after apply)"
        probe = KNOWN_AFTER_APPLY
    if probe:
        network["healthProbe"] = {"id": probe}
    nics = _network_interfaces(values)
    if nics:
        network["networkInterfaceConfigurations"] = nics
    if values.get("network_api_version"):
        network["networkApiVersion"] = values["network_api_version"]
    profile = clean(
        {
            "osProfile": _os_profile(kind, values),
            "storageProfile": _storage(kind, values, unknown, unresolved),
            "networkProfile": network or None,
            "securityProfile": _security(values),
            "extensionProfile": clean(
                {"extensions": extensions, "extensionsTimeBudget": values.get("extensions_time_budget")}
            ),
        }
    )
    return profile, unresolved
