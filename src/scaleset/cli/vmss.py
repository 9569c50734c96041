"""``scaleset vmss ...``: the ``az vmss`` verbs, through azure-mgmt-compute.

Each handler takes the session and the parsed arguments and returns what to print (the ``az`` shape: flattened,
with ``resourceGroup``), or None for actions, which print nothing, as in ``az``.
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

from azure.mgmt.compute import models

from scaleset.cli import policies, tables
from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.cli.output import shaped
from scaleset.cli.parsing import (
    add_three_state,
    iso_duration,
    non_negative_int,
    percent,
)
from scaleset.cli.progress import RolloutView, finish, latest_start, lro_kwargs
from scaleset.cli.registry import Parents, leaf
from scaleset.cli.setpath import apply_set, assignment

IMAGE_ALIASES = {
    "ubuntu2204": "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
    "ubuntu2404": "Canonical:ubuntu-24_04-lts:server:latest",
    "debian12": "Debian:debian-12:12-gen2:latest",
}
DEFAULT_IMAGE = "Ubuntu2204"
DEFAULT_VM_SKU = "Standard_DS1_v2"
MODES = {"manual": "Manual", "automatic": "Automatic", "rolling": "Rolling"}
ROLLING_FLAGS = (
    ("max_batch_instance_percent", "maxBatchInstancePercent"),
    ("max_unhealthy_instance_percent", "maxUnhealthyInstancePercent"),
    ("max_unhealthy_upgraded_instance_percent", "maxUnhealthyUpgradedInstancePercent"),
    ("pause_time_between_batches", "pauseTimeBetweenBatches"),
    ("enable_cross_zone_upgrade", "enableCrossZoneUpgrade"),
    ("prioritize_unhealthy_instances", "prioritizeUnhealthyInstances"),
    ("max_surge", "maxSurge"),
    ("rollback_failed_instances_on_policy_breach", "rollbackFailedInstancesOnPolicyBreach"),
)
READ_ONLY_TOP = ("id", "name", "type", "etag", "systemData", "resourceGroup")
READ_ONLY_PROPERTIES = ("provisioningState", "uniqueId", "timeCreated", "instanceView", "latestModelApplied", "vmId")


# ---------------------------------------------------------------------- value types


def image_reference(text: str) -> dict[str, str]:
    """``publisher:offer:sku:version``, an alias (``Ubuntu2204``) or an image id (a gallery image version)."""
    stripped = text.strip()
    if stripped.startswith("/"):
        return {"id": stripped}
    urn = IMAGE_ALIASES.get(stripped.lower(), stripped)
    parts = urn.split(":")
    if len(parts) != 4 or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected publisher:offer:sku:version, an image id or one of {', '.join(sorted(IMAGE_ALIASES))}; "
            f"got '{text}'"
        )
    return dict(zip(("publisher", "offer", "sku", "version"), parts, strict=True))


def health_settings(text: str) -> dict[str, Any]:
    """``http:80:/health``, ``https:443:/ready`` or ``tcp:22``: the Application Health extension's settings."""
    parts = text.split(":", 2)
    protocol = parts[0].strip().lower()
    if protocol not in ("http", "https", "tcp") or len(parts) < 2 or not parts[1].isdigit():
        raise argparse.ArgumentTypeError(f"expected PROTOCOL:PORT[:PATH] (http, https or tcp), got '{text}'")
    settings: dict[str, Any] = {"protocol": protocol, "port": int(parts[1])}
    if protocol != "tcp":
        settings["requestPath"] = parts[2] if len(parts) == 3 and parts[2] else "/"
    elif len(parts) == 3:
        raise argparse.ArgumentTypeError("a tcp health probe takes no path")
    return settings


def upgrade_mode(text: str) -> str:
    mode = MODES.get(text.strip().lower())
    if mode is None:
        raise argparse.ArgumentTypeError(f"expected Manual, Automatic or Rolling, got '{text}'")
    return mode


def instance_id_list(text: str) -> list[str]:
    """One ``--instance-ids`` value: ``3``, ``*`` or ``0,1,2``."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    for ident in ids:
        if ident != "*" and not ident.isdigit():
            raise argparse.ArgumentTypeError(f"'{ident}' is not an instance id (a number, or * for all)")
    return ids


def instance_ids(values: list[list[str]] | None) -> list[str] | None:
    """``--instance-ids 0 1`` or ``--instance-ids '*'`` (each value already checked), as one list."""
    if not values:
        return None
    return [ident for value in values for ident in value]


# ---------------------------------------------------------------------- bodies


def _properties(document: dict[str, Any]) -> dict[str, Any]:
    props = document.setdefault("properties", {})
    if not isinstance(props, dict):
        raise UsageError("the resource's 'properties' is not an object")
    return props


def apply_policy_flags(document: dict[str, Any], args: argparse.Namespace) -> None:
    """``--upgrade-policy-mode`` and the rolling flags, onto a scale set's wire body (only the flags given)."""
    props = _properties(document)
    mode = getattr(args, "upgrade_policy_mode", None)
    rolling = {wire: getattr(args, flag) for flag, wire in ROLLING_FLAGS if getattr(args, flag, None) is not None}
    if mode is None and not rolling:
        return
    policy = props.setdefault("upgradePolicy", {})
    if mode is not None:
        policy["mode"] = mode
    if rolling:
        current = policy.get("rollingUpgradePolicy")
        policy["rollingUpgradePolicy"] = {**(current if isinstance(current, dict) else {}), **rolling}


def create_body(args: argparse.Namespace, location: str) -> dict[str, Any]:
    image: dict[str, str] = args.image
    profile: dict[str, Any] = {
        "osProfile": {
            "computerNamePrefix": args.computer_name_prefix or args.name[:9],
            "adminUsername": args.admin_username,
        },
        "storageProfile": {"imageReference": dict(image)},
    }
    if args.health_extension is not None:
        windows = image.get("publisher", "").lower() == "microsoftwindowsserver"
        profile["extensionProfile"] = {
            "extensions": [
                {
                    "name": "HealthExtension",
                    "properties": {
                        "publisher": "Microsoft.ManagedServices",
                        "type": "ApplicationHealthWindows" if windows else "ApplicationHealthLinux",
                        "typeHandlerVersion": "2.0",
                        "autoUpgradeMinorVersion": True,
                        "settings": args.health_extension,
                    },
                }
            ]
        }
    if args.health_probe is not None:
        profile["networkProfile"] = {"healthProbe": {"id": args.health_probe}}
    body: dict[str, Any] = {
        "location": location,
        "sku": {"name": args.vm_sku, "tier": "Standard", "capacity": args.instance_count},
        "properties": {
            "upgradePolicy": {"mode": args.upgrade_policy_mode or "Manual"},
            "virtualMachineProfile": profile,
        },
    }
    if args.zones:
        body["zones"] = list(args.zones)
    apply_policy_flags(body, args)
    policies.apply_create(body, args)
    return body


def writable(document: dict[str, Any]) -> dict[str, Any]:
    """A GET result made into a PUT body: read-only fields out (the server would ignore them anyway)."""
    body = copy.deepcopy(document)
    for key in READ_ONLY_TOP:
        body.pop(key, None)
    props = body.get("properties")
    if isinstance(props, dict):
        for key in READ_ONLY_PROPERTIES:
            props.pop(key, None)
    return body


def _is_rolling(document: dict[str, Any]) -> bool:
    mode = ((document.get("properties") or {}).get("upgradePolicy") or {}).get("mode")
    return str(mode).lower() == "rolling"


def _watch(session: Session, args: argparse.Namespace, document: dict[str, Any]) -> RolloutView | None:
    """The live view for a change to a Rolling set (none with ``--no-wait``), set up before the change is sent."""
    if args.no_wait or not _is_rolling(document):
        return None
    since = latest_start(session, args.resource_group, args.name)
    return RolloutView(session, args.resource_group, args.name, since=since, tolerant=True)


def _ids_body(ids: list[str] | None) -> models.VirtualMachineScaleSetVMInstanceIDs | None:
    return None if ids is None else models.VirtualMachineScaleSetVMInstanceIDs(instance_ids=ids)


def _required_ids(ids: list[str] | None) -> models.VirtualMachineScaleSetVMInstanceRequiredIDs:
    if not ids:
        raise UsageError("--instance-ids is required (instance ids, or * for all)")
    return models.VirtualMachineScaleSetVMInstanceRequiredIDs(instance_ids=ids)


# ---------------------------------------------------------------------- handlers


def create(session: Session, args: argparse.Namespace) -> Any:
    """Create (or overwrite) a scale set with one direct PUT."""
    if args.health_extension is not None and args.health_probe is not None:
        raise UsageError("use --health-extension or --health-probe, not both")
    policies.check_create(args)
    location = args.location
    if location is None:
        location = session.resources.resource_groups.get(args.resource_group).location
    body = create_body(args, location)
    poller = session.compute.virtual_machine_scale_sets.begin_create_or_update(
        args.resource_group, args.name, models.VirtualMachineScaleSet(body), **lro_kwargs(args)
    )
    result = finish(poller, args)
    return None if result is None else {"vmss": shaped(result.as_dict())}


def list_sets(session: Session, args: argparse.Namespace) -> Any:
    sets = session.compute.virtual_machine_scale_sets
    found = sets.list(args.resource_group) if args.resource_group else sets.list_all()
    return [shaped(vmss.as_dict()) for vmss in found]


def show(session: Session, args: argparse.Namespace) -> Any:
    if args.instance_id is not None:
        vm = session.compute.virtual_machine_scale_set_vms.get(args.resource_group, args.name, args.instance_id)
        return shaped(vm.as_dict())
    return shaped(session.compute.virtual_machine_scale_sets.get(args.resource_group, args.name).as_dict())


def update(session: Session, args: argparse.Namespace) -> Any:
    """GET, apply ``--set`` and the flags, PUT the whole model back (as ``az vmss update``)."""
    if args.instance_id is not None:
        return _update_instance(session, args)
    if args.protect_from_scale_in is not None or args.protect_from_scale_set_actions is not None:
        raise UsageError("--protect-from-scale-in and --protect-from-scale-set-actions need --instance-id")
    policies.check_update(args)
    sets = session.compute.virtual_machine_scale_sets
    document = sets.get(args.resource_group, args.name).as_dict()
    for change in args.set or []:
        apply_set(document, change, force_string=args.force_string)
    apply_policy_flags(document, args)
    policies.apply_update(document, args)
    if args.vm_sku is not None:
        document.setdefault("sku", {})["name"] = args.vm_sku
    view = _watch(session, args, document)
    poller = sets.begin_create_or_update(
        args.resource_group, args.name, models.VirtualMachineScaleSet(writable(document)), **lro_kwargs(args)
    )
    result = finish(poller, args, view=view, interval=session.target.poll_interval)
    return None if result is None else shaped(result.as_dict())


def _update_instance(session: Session, args: argparse.Namespace) -> Any:
    if args.upgrade_policy_mode is not None or any(getattr(args, f) is not None for f, _ in ROLLING_FLAGS):
        raise UsageError("the upgrade policy flags apply to the scale set, not with --instance-id")
    scale_set_only = policies.given(args) + (["--vm-sku"] if args.vm_sku is not None else [])
    if scale_set_only:
        raise UsageError(f"{', '.join(scale_set_only)}: scale set flags, not for an instance (--instance-id)")
    vms = session.compute.virtual_machine_scale_set_vms
    document = vms.get(args.resource_group, args.name, args.instance_id).as_dict()
    for change in args.set or []:
        apply_set(document, change, force_string=args.force_string)
    protection = {
        wire: value
        for wire, value in (
            ("protectFromScaleIn", args.protect_from_scale_in),
            ("protectFromScaleSetActions", args.protect_from_scale_set_actions),
        )
        if value is not None
    }
    if protection:
        props = _properties(document)
        current = props.get("protectionPolicy")
        props["protectionPolicy"] = {**(current if isinstance(current, dict) else {}), **protection}
    poller = vms.begin_update(
        args.resource_group,
        args.name,
        args.instance_id,
        models.VirtualMachineScaleSetVM(writable(document)),
        **lro_kwargs(args),
    )
    result = finish(poller, args)
    return None if result is None else shaped(result.as_dict())


def scale(session: Session, args: argparse.Namespace) -> Any:
    """As ``az vmss scale``: nothing to do (and no output) when the capacity is already the target."""
    sets = session.compute.virtual_machine_scale_sets
    document = sets.get(args.resource_group, args.name).as_dict()
    sku = dict(document.get("sku") or {})
    if sku.get("capacity") == args.new_capacity:
        return None
    sku["capacity"] = args.new_capacity
    view = _watch(session, args, document)
    body = models.VirtualMachineScaleSet({"location": document.get("location"), "sku": sku})
    poller = sets.begin_create_or_update(args.resource_group, args.name, body, **lro_kwargs(args))
    result = finish(poller, args, view=view, interval=session.target.poll_interval)
    return None if result is None else shaped(result.as_dict())


def delete(session: Session, args: argparse.Namespace) -> Any:
    options: dict[str, Any] = {} if args.force_deletion is None else {"force_deletion": args.force_deletion}
    poller = session.compute.virtual_machine_scale_sets.begin_delete(
        args.resource_group, args.name, **options, **lro_kwargs(args)
    )
    finish(poller, args)
    return None


def list_instances(session: Session, args: argparse.Namespace) -> Any:
    vms = session.compute.virtual_machine_scale_set_vms.list(
        args.resource_group, args.name, filter=args.filter, select=args.select, expand=args.expand
    )
    return [shaped(vm.as_dict()) for vm in vms]


def get_instance_view(session: Session, args: argparse.Namespace) -> Any:
    compute = session.compute
    if args.instance_id is None:
        return shaped(compute.virtual_machine_scale_sets.get_instance_view(args.resource_group, args.name).as_dict())
    if args.instance_id == "*":
        vms = compute.virtual_machine_scale_set_vms.list(
            args.resource_group, args.name, select="instanceView", expand="instanceView"
        )
        return [shaped((vm.as_dict().get("properties") or {}).get("instanceView")) for vm in vms]
    view = compute.virtual_machine_scale_set_vms.get_instance_view(args.resource_group, args.name, args.instance_id)
    return shaped(view.as_dict())


def update_instances(session: Session, args: argparse.Namespace) -> Any:
    ids = _required_ids(instance_ids(args.instance_ids))
    poller = session.compute.virtual_machine_scale_sets.begin_update_instances(
        args.resource_group, args.name, ids, **lro_kwargs(args)
    )
    finish(poller, args)
    return None


def reimage(session: Session, args: argparse.Namespace) -> Any:
    """As ``az vmss reimage``: with ``--instance-ids``, ``reimageall`` of those instances; without, ``reimage``."""
    sets = session.compute.virtual_machine_scale_sets
    ids = instance_ids(args.instance_ids)
    if ids is not None:
        poller = sets.begin_reimage_all(args.resource_group, args.name, _ids_body(ids), **lro_kwargs(args))
    else:
        poller = sets.begin_reimage(args.resource_group, args.name, **lro_kwargs(args))
    finish(poller, args)
    return None


def restart(session: Session, args: argparse.Namespace) -> Any:
    ids = _ids_body(instance_ids(args.instance_ids))
    finish(
        session.compute.virtual_machine_scale_sets.begin_restart(
            args.resource_group, args.name, ids, **lro_kwargs(args)
        ),
        args,
    )
    return None


def start(session: Session, args: argparse.Namespace) -> Any:
    ids = _ids_body(instance_ids(args.instance_ids))
    finish(
        session.compute.virtual_machine_scale_sets.begin_start(args.resource_group, args.name, ids, **lro_kwargs(args)),
        args,
    )
    return None


def stop(session: Session, args: argparse.Namespace) -> Any:
    ids = _ids_body(instance_ids(args.instance_ids))
    options: dict[str, Any] = {"skip_shutdown": True} if args.skip_shutdown else {}
    poller = session.compute.virtual_machine_scale_sets.begin_power_off(
        args.resource_group, args.name, ids, **options, **lro_kwargs(args)
    )
    finish(poller, args)
    return None


def deallocate(session: Session, args: argparse.Namespace) -> Any:
    ids = _ids_body(instance_ids(args.instance_ids))
    poller = session.compute.virtual_machine_scale_sets.begin_deallocate(
        args.resource_group, args.name, ids, **lro_kwargs(args)
    )
    finish(poller, args)
    return None


def delete_instances(session: Session, args: argparse.Namespace) -> Any:
    ids = _required_ids(instance_ids(args.instance_ids))
    options: dict[str, Any] = {} if args.force_deletion is None else {"force_deletion": args.force_deletion}
    poller = session.compute.virtual_machine_scale_sets.begin_delete_instances(
        args.resource_group, args.name, ids, **options, **lro_kwargs(args)
    )
    finish(poller, args)
    return None


# ---------------------------------------------------------------------- parsers


def add_policy_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("upgrade policy")
    group.add_argument(
        "--upgrade-policy-mode", type=upgrade_mode, default=None, metavar="MODE", help="Manual, Automatic or Rolling"
    )
    group.add_argument(
        "--max-batch-instance-percent", type=percent, default=None, metavar="PERCENT", help="instances per batch, %%"
    )
    group.add_argument(
        "--max-unhealthy-instance-percent",
        type=percent,
        default=None,
        metavar="PERCENT",
        help="unhealthy instances allowed, %%",
    )
    group.add_argument(
        "--max-unhealthy-upgraded-instance-percent",
        type=percent,
        default=None,
        metavar="PERCENT",
        help="upgraded instances allowed to be unhealthy, %%",
    )
    group.add_argument(
        "--pause-time-between-batches",
        type=iso_duration,
        default=None,
        metavar="DURATION",
        help="ISO 8601 (PT30S) or seconds",
    )
    add_three_state(group, "--enable-cross-zone-upgrade", "batches may span zones")
    add_three_state(group, "--prioritize-unhealthy-instances", "upgrade unhealthy instances first")
    add_three_state(group, "--max-surge", "create new instances for each batch before removing old ones")
    add_three_state(
        group, "--rollback-failed-instances-on-policy-breach", "roll failed instances back when the policy is breached"
    )


def _ids_flag(parser: argparse.ArgumentParser, *, required: bool = False, what: str = "act on") -> None:
    parser.add_argument(
        "--instance-ids",
        nargs="+",
        type=instance_id_list,
        required=required,
        default=None,
        metavar="ID",
        help=f"instance ids to {what} (space-separated, or * for all)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: Parents) -> None:
    target, lro = [parents.globals, parents.target], [parents.globals, parents.target, parents.lro]

    p = leaf(sub, "create", create, "create a scale set (one direct PUT, with defaults)", lro, table=tables.created)
    p.add_argument(
        "--image",
        type=image_reference,
        default=image_reference(DEFAULT_IMAGE),
        help=(
            f"publisher:offer:sku:version, an image id (a gallery image version) or an alias (default: {DEFAULT_IMAGE})"
        ),
    )
    p.add_argument("--instance-count", type=non_negative_int, default=2, metavar="N", help="instances (default: 2)")
    p.add_argument("--vm-sku", default=DEFAULT_VM_SKU, help=f"VM size (default: {DEFAULT_VM_SKU})")
    p.add_argument("-l", "--location", default=None, help="region (default: the resource group's)")
    p.add_argument("--zones", nargs="+", default=None, metavar="ZONE", help="availability zones, e.g. 1 2 3")
    p.add_argument("--computer-name-prefix", default=None, help="computer name prefix (default: the name)")
    p.add_argument("--admin-username", default="azureuser", help="admin user (default: azureuser)")
    health = p.add_argument_group("health")
    health.add_argument(
        "--health-extension",
        type=health_settings,
        nargs="?",
        const=health_settings("http:80:/health"),
        default=None,
        metavar="PROTOCOL:PORT[:PATH]",
        help="add the Application Health extension (alone: http:80:/health)",
    )
    health.add_argument("--health-probe", default=None, metavar="ID", help="a load balancer probe's resource id")
    add_policy_flags(p)
    policies.add_flags(p, create=True)

    p = leaf(
        sub,
        "list",
        list_sets,
        "list scale sets (in a group, or the whole subscription)",
        [parents.globals],
        table=tables.scale_sets,
    )
    p.add_argument("-g", "--resource-group", default=None, help="the resource group (default: all)")

    p = leaf(sub, "show", show, "show a scale set, or one instance with --instance-id", target, table=tables.scale_sets)
    p.add_argument("--instance-id", default=None, help="show this instance instead")

    p = leaf(
        sub,
        "update",
        update,
        "change a scale set (or an instance): GET, --set / flags, PUT",
        lro,
        table=tables.scale_sets,
    )
    p.add_argument(
        "--set",
        nargs="+",
        type=assignment,
        action="extend",
        default=None,
        metavar="PATH=VALUE",
        help="set a property: dotted path as in the output, JSON values (e.g. upgradePolicy.mode=Rolling)",
    )
    p.add_argument("--instance-id", default=None, help="update this instance instead (e.g. its protection policy)")
    p.add_argument("--force-string", action="store_true", help="--set values are strings as written, never JSON")
    p.add_argument("--vm-sku", default=None, help="change the VM size")
    add_three_state(p, "--protect-from-scale-in", "with --instance-id: protect it from scale-in")
    add_three_state(p, "--protect-from-scale-set-actions", "with --instance-id: protect it from scale set actions")
    add_policy_flags(p)
    policies.add_flags(p, create=False)

    p = leaf(sub, "scale", scale, "change the instance count", lro, table=tables.scale_sets)
    p.add_argument("--new-capacity", type=non_negative_int, required=True, metavar="N", help="the new instance count")

    p = leaf(sub, "delete", delete, "delete a scale set", lro)
    add_three_state(p, "--force-deletion", "force-delete the scale set (preview)")

    p = leaf(sub, "list-instances", list_instances, "list the instances", target, table=tables.instances)
    p.add_argument("--expand", choices=("instanceView",), default=None, help="include each instance view")
    p.add_argument("--filter", default=None, help='OData filter, e.g. "properties/latestModelApplied eq false"')
    p.add_argument("--select", default=None, help="OData select")

    p = leaf(
        sub,
        "get-instance-view",
        get_instance_view,
        "the scale set's instance view, or an instance's",
        target,
        table=tables.instance_views,
    )
    p.add_argument("--instance-id", default=None, help="an instance id, or * for every instance")

    p = leaf(sub, "update-instances", update_instances, "bring instances to the latest model (manualupgrade)", lro)
    _ids_flag(p, required=True, what="upgrade")

    p = leaf(sub, "reimage", reimage, "reimage instances (all without --instance-ids)", lro)
    _ids_flag(p, what="reimage")
    p = leaf(sub, "restart", restart, "restart instances (all without --instance-ids)", lro)
    _ids_flag(p, what="restart")
    p = leaf(sub, "start", start, "start instances (all without --instance-ids)", lro)
    _ids_flag(p, what="start")
    p = leaf(sub, "stop", stop, "power off instances (all without --instance-ids)", lro)
    _ids_flag(p, what="power off")
    p.add_argument("--skip-shutdown", action="store_true", help="power off without a graceful shutdown")
    p = leaf(sub, "deallocate", deallocate, "deallocate instances (all without --instance-ids)", lro)
    _ids_flag(p, what="deallocate")
    p = leaf(sub, "delete-instances", delete_instances, "delete instances", lro)
    _ids_flag(p, required=True, what="delete")
    add_three_state(p, "--force-deletion", "force-delete the instances (az 2.91 has this on delete only)")
