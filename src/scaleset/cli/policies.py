"""``vmss create`` / ``vmss update`` flags for automatic OS upgrades, automatic repairs and the scale-in policy.

Names, value forms and checks follow ``az`` (azure-cli ``src/azure-cli/azure/cli/command_modules/vm/``:
``_params.py`` for the flags, ``_validators.py`` for the checks and the minutes-to-ISO conversion,
``_template_builder.py`` for what create sends, ``custom.py`` ``update_vmss`` for what update changes):

* ``--enable-auto-os-upgrade [true|false]`` → ``upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade``;
* ``--enable-automatic-repairs [true|false]`` (create also takes ``--enable-auto-repairs``) →
  ``automaticRepairsPolicy.enabled``; ``--automatic-repairs-grace-period MINUTES`` → ``gracePeriod`` as
  ``PT{n}M``; ``--automatic-repairs-action Replace|Restart|Reimage`` → ``repairAction``;
* ``--scale-in-policy RULE ...`` → ``scaleInPolicy.rules``; update's ``--force-deletion`` →
  ``scaleInPolicy.forceDeletion``.

``az`` has no flags for ``disableAutomaticRollback``, ``useRollingUpgradePolicy`` or ``osRollingUpgradeDeferral``:
``vmss update --set upgradePolicy.automaticOSUpgradePolicy.<field>=true`` sets them, here as there.
"""

from __future__ import annotations

import argparse
from typing import Any

from scaleset.cli.errors import UsageError
from scaleset.cli.parsing import add_three_state, enum_choice, three_state

REPAIR_ACTIONS = ("Replace", "Restart", "Reimage")
SCALE_IN_RULES = ("Default", "OldestVM", "NewestVM")
DEFAULT_GRACE_PERIOD = "PT10M"  # what az's create template sends when only the action is given
DEFAULT_REPAIR_ACTION = "Replace"

# (attribute, flag) of every flag here, for "does not apply with --instance-id"
FLAGS = (
    ("enable_auto_os_upgrade", "--enable-auto-os-upgrade"),
    ("enable_automatic_repairs", "--enable-automatic-repairs"),
    ("automatic_repairs_grace_period", "--automatic-repairs-grace-period"),
    ("automatic_repairs_action", "--automatic-repairs-action"),
    ("scale_in_policy", "--scale-in-policy"),
    ("force_deletion", "--force-deletion"),
)


def grace_minutes(text: str) -> str:
    """``--automatic-repairs-grace-period``: whole minutes, sent as ISO 8601 ``PT{n}M`` (as ``az`` converts it)."""
    stripped = text.strip()
    if not stripped.isdigit():
        raise argparse.ArgumentTypeError(f"expected whole minutes (e.g. 30, sent as PT30M), got '{text}'")
    return f"PT{int(stripped)}M"


repair_action = enum_choice(*REPAIR_ACTIONS)
scale_in_rule = enum_choice(*SCALE_IN_RULES)


def given(args: argparse.Namespace) -> list[str]:
    """The flags of this module given on the command line."""
    return [flag for attribute, flag in FLAGS if getattr(args, attribute, None) is not None]


def _merge(owner: dict[str, Any], key: str, changes: dict[str, Any]) -> None:
    current = owner.get(key)
    owner[key] = {**(current if isinstance(current, dict) else {}), **changes}


def _auto_os_upgrade(props: dict[str, Any], args: argparse.Namespace) -> None:
    if args.enable_auto_os_upgrade is None:
        return
    policy = props.get("upgradePolicy")
    if not isinstance(policy, dict):
        policy = props["upgradePolicy"] = {}
    _merge(policy, "automaticOSUpgradePolicy", {"enableAutomaticOSUpgrade": args.enable_auto_os_upgrade})


def _repair_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.enable_automatic_repairs is not None:
        changes["enabled"] = args.enable_automatic_repairs
    if args.automatic_repairs_grace_period is not None:
        changes["gracePeriod"] = args.automatic_repairs_grace_period
    if args.automatic_repairs_action is not None:
        changes["repairAction"] = args.automatic_repairs_action
    return changes


def check_create(args: argparse.Namespace) -> None:
    """``az``'s create check (``_validate_vmss_create_automatic_repairs``), before any request."""
    details = args.automatic_repairs_grace_period is not None or args.automatic_repairs_action is not None
    if details and args.enable_automatic_repairs is False:
        raise UsageError(
            "--enable-automatic-repairs cannot be false when --automatic-repairs-action or "
            "--automatic-repairs-grace-period are used"
        )


def check_update(args: argparse.Namespace) -> None:
    """``az``'s update checks (``_validate_vmss_update_automatic_repairs``), before any request."""
    details = args.automatic_repairs_grace_period is not None or args.automatic_repairs_action is not None
    if args.enable_automatic_repairs is False and details:
        raise UsageError(
            "please enable --enable-automatic-repairs: with false it takes no grace period or repair action"
        )
    if args.enable_automatic_repairs is True and not details:
        raise UsageError("please set --automatic-repairs-grace-period or --automatic-repairs-action")


def apply_create(body: dict[str, Any], args: argparse.Namespace) -> None:
    """The flags onto a create body. With a grace period or an action the policy is whole, enabled, with az's
    defaults for what is missing (``PT10M``, ``Replace``); ``--enable-automatic-repairs`` alone sends only
    ``enabled``, and the server fills in the rest."""
    props: dict[str, Any] = body.setdefault("properties", {})
    _auto_os_upgrade(props, args)
    repairs = _repair_changes(args)
    if "gracePeriod" in repairs or "repairAction" in repairs:
        repairs = {
            "enabled": True,
            "gracePeriod": repairs.get("gracePeriod", DEFAULT_GRACE_PERIOD),
            "repairAction": repairs.get("repairAction", DEFAULT_REPAIR_ACTION),
        }
    if repairs:
        props["automaticRepairsPolicy"] = repairs
    if args.scale_in_policy is not None:
        props["scaleInPolicy"] = {"rules": list(args.scale_in_policy)}


def apply_update(document: dict[str, Any], args: argparse.Namespace) -> None:
    """The flags onto a scale set's GET result (wire shape), changing only what they name."""
    props = document.setdefault("properties", {})
    if not isinstance(props, dict):
        raise UsageError("the resource's 'properties' is not an object")
    _auto_os_upgrade(props, args)
    repairs = _repair_changes(args)
    if repairs:
        _merge(props, "automaticRepairsPolicy", repairs)
    scale_in: dict[str, Any] = {}
    if args.scale_in_policy is not None:
        scale_in["rules"] = list(args.scale_in_policy)
    if args.force_deletion is not None:
        scale_in["forceDeletion"] = args.force_deletion
    if scale_in:
        _merge(props, "scaleInPolicy", scale_in)


def add_flags(parser: argparse.ArgumentParser, *, create: bool) -> None:
    """The flags on ``vmss create`` (``create=True``) or ``vmss update``."""
    os_group = parser.add_argument_group("automatic OS upgrades")
    add_three_state(
        os_group, "--enable-auto-os-upgrade", "upgrade the OS image automatically when a newer version is published"
    )
    repairs = parser.add_argument_group("automatic repairs")
    repairs.add_argument(
        *(("--enable-automatic-repairs", "--enable-auto-repairs") if create else ("--enable-automatic-repairs",)),
        dest="enable_automatic_repairs",
        type=three_state,
        nargs="?",
        const=True,
        default=None,
        metavar="{true,false}",
        help="enable (or disable) automatic repairs of unhealthy instances",
    )
    repairs.add_argument(
        "--automatic-repairs-grace-period",
        type=grace_minutes,
        default=None,
        metavar="MINUTES",
        help="minutes repairs wait after a state change (sent as PT{n}M; Azure allows 10 to 90)",
    )
    repairs.add_argument(
        "--automatic-repairs-action",
        type=repair_action,
        default=None,
        metavar="{Replace,Restart,Reimage}",
        help="how an unhealthy instance is repaired (default Replace)",
    )
    scale_in = parser.add_argument_group("scale-in")
    scale_in.add_argument(
        "--scale-in-policy",
        nargs="+",
        type=scale_in_rule,
        default=None,
        metavar="{Default,OldestVM,NewestVM}",
        help="which instances scale-in removes first (space-separated rules)",
    )
    if not create:
        add_three_state(scale_in, "--force-deletion", "scale-in force-deletes the instances it removes (preview)")
