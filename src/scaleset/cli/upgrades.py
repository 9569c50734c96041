"""OS upgrade history, orchestration services, extension upgrades and approving deferred OS upgrades.

``az`` names (azure-cli ``src/azure-cli/azure/cli/command_modules/vm/``):

* ``vmss get-os-upgrade-history`` (``aaz/latest/vmss/_get_os_upgrade_history.py``): ``GET {vmss}/osUpgradeHistory``,
  a list of flattened ``UpgradeOperationHistoricalStatusInfo``;
* ``vmss set-orchestration-service-state --service-name AutomaticRepairs --action Suspend|Resume``
  (``commands.py``, ``custom.py`` ``set_orchestration_service_state``): ``POST {vmss}/setOrchestrationServiceState``;
* ``vmss extension upgrade`` (``commands.py``, ``custom.py`` ``upgrade_vmss_extension``):
  ``POST {vmss}/extensionRollingUpgrade``.

``az`` has no command for ``approveRollingUpgrade`` (the approval of OS upgrades deferred by
``osRollingUpgradeDeferral``); ``scaleset vmss approve-rolling-upgrade`` is this CLI's own.
"""

from __future__ import annotations

import argparse
from typing import Any

from azure.mgmt.compute import models

from scaleset.cli import tables
from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.cli.output import shaped
from scaleset.cli.parsing import enum_choice
from scaleset.cli.progress import finish, lro_kwargs
from scaleset.cli.registry import Parents, SubParsers, leaf
from scaleset.cli.vmss import instance_id_list, instance_ids

SERVICE_NAMES = ("AutomaticRepairs",)  # az 2.91 allows only this one
SERVICE_ACTIONS = ("Resume", "Suspend")


def get_os_upgrade_history(session: Session, args: argparse.Namespace) -> Any:
    history = session.compute.virtual_machine_scale_sets.get_os_upgrade_history(args.resource_group, args.name)
    return [shaped(entry.as_dict()) for entry in history]


def set_orchestration_service_state(session: Session, args: argparse.Namespace) -> Any:
    body = models.OrchestrationServiceStateInput(service_name=args.service_name, action=args.action)
    poller = session.compute.virtual_machine_scale_sets.begin_set_orchestration_service_state(
        args.resource_group, args.name, body, **lro_kwargs(args)
    )
    finish(poller, args)
    return None


def approve_rolling_upgrade(session: Session, args: argparse.Namespace) -> Any:
    """Approve deferred OS upgrades: of the whole set or ``--instance-ids`` (one request), or of one instance
    through its own route (``--instance-id``)."""
    ids = instance_ids(args.instance_ids)
    if args.instance_id is not None:
        if ids is not None:
            raise UsageError("use --instance-id or --instance-ids, not both")
        poller = session.compute.virtual_machine_scale_set_vms.begin_approve_rolling_upgrade(
            args.resource_group, args.name, args.instance_id, **lro_kwargs(args)
        )
    else:
        body = None if ids is None else models.VirtualMachineScaleSetVMInstanceIDs(instance_ids=ids)
        poller = session.compute.virtual_machine_scale_sets.begin_approve_rolling_upgrade(
            args.resource_group, args.name, body, **lro_kwargs(args)
        )
    finish(poller, args)
    return None


def extension_upgrade(session: Session, args: argparse.Namespace) -> Any:
    upgrades = session.compute.virtual_machine_scale_set_rolling_upgrades
    finish(upgrades.begin_start_extension_upgrade(args.resource_group, args.name, **lro_kwargs(args)), args)
    return None


def register(sub: SubParsers, parents: Parents) -> None:
    """The ``vmss`` verbs of this module."""
    target, lro = [parents.globals, parents.target], [parents.globals, parents.target, parents.lro]
    leaf(
        sub,
        "get-os-upgrade-history",
        get_os_upgrade_history,
        "list the scale set's OS upgrades (osUpgradeHistory)",
        target,
        table=tables.os_upgrade_history,
    )

    p = leaf(
        sub,
        "set-orchestration-service-state",
        set_orchestration_service_state,
        "suspend or resume an orchestration service (automatic repairs)",
        lro,
    )
    p.add_argument(
        "--service-name",
        type=enum_choice(*SERVICE_NAMES),
        required=True,
        metavar="{" + ",".join(SERVICE_NAMES) + "}",
        help="the orchestration service",
    )
    p.add_argument(
        "--action",
        type=enum_choice(*SERVICE_ACTIONS),
        required=True,
        metavar="{" + ",".join(SERVICE_ACTIONS) + "}",
        help="what to do with it",
    )

    p = leaf(
        sub,
        "approve-rolling-upgrade",
        approve_rolling_upgrade,
        "approve deferred OS upgrades (osRollingUpgradeDeferral); no az counterpart",
        lro,
    )
    p.add_argument(
        "--instance-ids",
        nargs="+",
        type=instance_id_list,
        default=None,
        metavar="ID",
        help="approve these instances (space-separated; default: every pending one), in one request",
    )
    p.add_argument("--instance-id", default=None, help="approve this instance through its own route")


def register_extension(sub: SubParsers, parents: Parents) -> None:
    """``vmss extension upgrade``."""
    leaf(
        sub,
        "upgrade",
        extension_upgrade,
        "upgrade the extensions that allow automatic upgrade, in a rolling fashion (extensionRollingUpgrade)",
        [parents.globals, parents.target, parents.lro],
    )
