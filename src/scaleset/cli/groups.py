"""``scaleset group create | list | show | delete``: resource groups, through azure-mgmt-resource."""

from __future__ import annotations

import argparse
from typing import Any

from azure.mgmt.resource.resources import models

from scaleset.cli import tables
from scaleset.cli.connect import Session
from scaleset.cli.progress import finish, lro_kwargs
from scaleset.cli.registry import Parents, SubParsers, leaf


def _name_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-n", "--name", "-g", "--resource-group", dest="name", required=True, help="the group's name")
    return parent


def create(session: Session, args: argparse.Namespace) -> Any:
    group = models.ResourceGroup(location=args.location, tags=dict(args.tags or []) or None)
    return session.resources.resource_groups.create_or_update(args.name, group).as_dict()


def list_groups(session: Session, args: argparse.Namespace) -> Any:
    return [group.as_dict() for group in session.resources.resource_groups.list()]


def show(session: Session, args: argparse.Namespace) -> Any:
    return session.resources.resource_groups.get(args.name).as_dict()


def delete(session: Session, args: argparse.Namespace) -> Any:
    finish(session.resources.resource_groups.begin_delete(args.name, **lro_kwargs(args)), args)
    return None


def _tag(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    return key, value


def register(sub: SubParsers, parents: Parents) -> None:
    name = _name_options()
    p = leaf(sub, "create", create, "create (or update) a resource group", [parents.globals, name], table=tables.groups)
    p.add_argument("-l", "--location", required=True, help="the group's region, e.g. westus")
    p.add_argument("--tags", nargs="+", type=_tag, default=None, metavar="KEY=VALUE", help="tags")
    leaf(sub, "list", list_groups, "list resource groups", [parents.globals], table=tables.groups)
    leaf(sub, "show", show, "show a resource group", [parents.globals, name], table=tables.groups)
    p = leaf(
        sub, "delete", delete, "delete a resource group and everything in it", [parents.globals, name, parents.lro]
    )
    p.add_argument("-y", "--yes", action="store_true", help="accepted for az compatibility; scaleset never prompts")
