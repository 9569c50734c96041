"""Live scale sets, through the Azure SDK: the local emulator (found as the ``scaleset`` client finds it, see
:mod:`scaleset.cli.connect`) or real Azure (``cloud="azure"``: ``DefaultAzureCredential``).

One GET of the scale set, one of its instance view (for ``orchestrationServices``), and one list of its VMs with
``$expand=instanceView``; each VM becomes an :class:`InstanceFacts` (image ``exactVersion``,
``latestModelApplied``, ``vmHealth``, statuses, protection, zone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from scaleset.cli.connect import Cloud, Session, resolve_target
from scaleset.cli.errors import describe
from scaleset.safety.inputs_shapes import InputError, InstanceFacts, ScaleSetInput, to_input

HEALTH_STATES = {"initializing": "Initializing", "healthy": "Healthy", "unhealthy": "Unhealthy", "unknown": "Unknown"}


def session_for(cloud: str | None, *, endpoint: str | None, data_dir: str | None, subscription: str | None) -> Session:
    chosen = (cloud or "local").lower()
    if chosen not in ("local", "azure"):
        raise InputError(f"unknown cloud '{cloud}': use local (the emulator) or azure")
    try:
        target = resolve_target(
            cast("Cloud", chosen),
            endpoint=endpoint,
            data_dir=Path(data_dir) if data_dir else None,
            subscription=subscription,
        )
    except Exception as exc:  # CliError and UsageError: no server data, no subscription, a bad endpoint
        raise InputError(describe(exc)[0]) from None
    return Session(target)


def instance_facts(vm: dict[str, Any]) -> InstanceFacts:
    """One ``VirtualMachineScaleSetVM`` (ARM JSON, with ``instanceView`` when expanded) as facts."""
    properties = vm.get("properties") or {}
    view = properties.get("instanceView") or {}
    image = (properties.get("storageProfile") or {}).get("imageReference") or {}
    version = image.get("exactVersion") or image.get("version")
    statuses = tuple(str(s.get("code")) for s in view.get("statuses") or [] if isinstance(s, dict) and s.get("code"))
    power = next((code.split("/", 1)[1] for code in statuses if code.lower().startswith("powerstate/")), None)
    health_code = str(((view.get("vmHealth") or {}).get("status") or {}).get("code") or "")
    health = HEALTH_STATES.get(health_code.split("/", 1)[-1].lower()) if health_code else None
    protection = properties.get("protectionPolicy") or {}
    zones = vm.get("zones") or []
    fault_domain = view.get("platformFaultDomain")
    return InstanceFacts(
        instance_id=str(vm.get("instanceId") or str(vm.get("name", "")).rsplit("_", 1)[-1]),
        zone=str(zones[0]) if zones else None,
        image_version=str(version) if version else None,
        latest_model_applied=properties.get("latestModelApplied"),
        health=health,
        provisioning_state=properties.get("provisioningState"),
        power_state=power,
        protect_from_scale_in=bool(protection.get("protectFromScaleIn")),
        protect_from_scale_set_actions=bool(protection.get("protectFromScaleSetActions")),
        fault_domain=int(fault_domain) if isinstance(fault_domain, int) else None,
        statuses=statuses,
    )


def _instance_sort_key(facts: InstanceFacts) -> tuple[int, int | str]:
    return (0, int(facts.instance_id)) if facts.instance_id.isdigit() else (1, facts.instance_id)


def load_live(
    *,
    resource_group: str | None,
    name: str | None,
    cloud: str | None,
    endpoint: str | None,
    data_dir: str | None,
    subscription: str | None,
) -> list[ScaleSetInput]:
    if not resource_group or not name:
        raise InputError("a live scale set needs its resource group and name (-g GROUP -n NAME, or live:GROUP/NAME)")
    session = session_for(cloud, endpoint=endpoint, data_dir=data_dir, subscription=subscription)
    where = "azure" if session.target.cloud == "azure" else "emulator"
    try:
        compute = session.compute
        wire = compute.virtual_machine_scale_sets.get(resource_group, name).as_dict()
        vms = [
            vm.as_dict()
            for vm in compute.virtual_machine_scale_set_vms.list(resource_group, name, expand="instanceView")
        ]
        set_view = compute.virtual_machine_scale_sets.get_instance_view(resource_group, name).as_dict()
    except Exception as exc:  # the SDK's errors, as the client prints them: "(ResourceNotFound) ..."
        endpoint_shown = session.target.endpoint if session.target.local else None
        raise InputError(f"live {resource_group}/{name}: {describe(exc, endpoint=endpoint_shown)[0]}") from None
    body = {k: v for k, v in wire.items() if k not in ("id", "name", "type", "etag", "systemData")}
    services = set_view.get("orchestration_services") or set_view.get("orchestrationServices")
    if services:  # what the rules read of the scale set's instance view (SS027: repairs suspended)
        body["instanceView"] = {
            "orchestrationServices": [
                {
                    "serviceName": s.get("service_name") or s.get("serviceName"),
                    "serviceState": s.get("service_state") or s.get("serviceState"),
                }
                for s in services
            ]
        }
    instances = tuple(sorted((instance_facts(vm) for vm in vms), key=_instance_sort_key))
    return [
        to_input(
            body,
            name=str(wire.get("name") or name),
            origin=f"live ({where})",
            kind="live",
            resource_group=resource_group,
            instances=instances,
        )
    ]
