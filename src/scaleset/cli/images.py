"""``scaleset image publish | list | show | delete``: the emulator's image catalogue (``/_scaleset/images``).

An image version says what an instance of it runs: a command line (``--command`` as one shell-like string, or
``--arg`` repeated), environment, a working directory; ``{python}``, ``{port}``, ``{instance_id}``, ``{zone}``,
``{data_dir}``, ``{os_dir}`` and ``{version}`` are filled in per instance (the server checks them). The built-in
versions (``scaleset:demo:app``) can be neither replaced nor deleted. These routes exist only on the local emulator.

A publish that starts automatic OS upgrades (the answer's ``automaticOSUpgrades``: scale set ids) says so in one
line on stderr; stdout keeps the answer.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from typing import Any
from urllib.parse import quote

from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.cli.registry import Parents, SubParsers, leaf

NAME_FIELDS = ("publisher", "offer", "sku", "version")
_SCALE_SET_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/(?P<group>[^/]+)/providers/Microsoft\.Compute/"
    r"virtualMachineScaleSets/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


def image_path(publisher: str, offer: str, sku: str, version: str) -> str:
    return "/_scaleset/images/" + "/".join(quote(part, safe="") for part in (publisher, offer, sku, version))


def urn_parts(args: argparse.Namespace) -> tuple[str, str, str, str]:
    """``--urn P:O:S:V`` or all of ``--publisher --offer --sku --version`` (not both)."""
    given = [getattr(args, name) for name in NAME_FIELDS]
    if args.urn is not None:
        if any(value is not None for value in given):
            raise UsageError("give either --urn or --publisher/--offer/--sku/--version, not both")
        parts = args.urn.split(":")
        if len(parts) != 4 or not all(parts):
            raise UsageError(f"--urn must be publisher:offer:sku:version, got '{args.urn}'")
        return parts[0], parts[1], parts[2], parts[3]
    missing = [f"--{name}" for name, value in zip(NAME_FIELDS, given, strict=True) if value is None]
    if missing:
        raise UsageError(f"the image version needs --urn, or {', '.join(missing)}")
    return given[0], given[1], given[2], given[3]


def env_pairs(values: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--env takes NAME=VALUE, got '{item}'")
        env[name] = value
    return env


def command_line(args: argparse.Namespace) -> list[str]:
    if args.command_line is not None:
        try:
            argv = shlex.split(args.command_line)
        except ValueError as exc:
            raise UsageError(f"--command is not a valid shell-like command line: {exc}") from None
    else:
        argv = list(args.arg or [])
    if not argv:
        raise UsageError("the image version needs a command: --command '...' or --arg repeated")
    return argv


def publish_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command_line(args), "env": env_pairs(args.env or [])}
    if args.cwd is not None:
        body["cwd"] = args.cwd
    if args.gallery is not None:
        body["gallery"] = args.gallery
    if args.exclude_from_latest:
        body["excludeFromLatest"] = True
    if args.description is not None:
        body["description"] = args.description
    return body


def upgrades_line(answer: Any) -> str | None:
    """The line saying which scale sets this publish started automatic OS upgrades on (the answer's
    ``automaticOSUpgrades``, a list of scale set ids), or None when it started none (or an older server)."""
    started = answer.get("automaticOSUpgrades") if isinstance(answer, dict) else None
    if not isinstance(started, list) or not started:
        return None
    names = []
    for ident in started:
        found = _SCALE_SET_ID.match(str(ident))
        names.append(f"{found.group('group')}/{found.group('name')}" if found else str(ident))
    return f"started automatic OS upgrades on: {', '.join(names)}"


def publish(session: Session, args: argparse.Namespace) -> Any:
    body = publish_body(args)
    answer = session.admin("PUT", image_path(*urn_parts(args)), body)
    line = upgrades_line(answer)
    if line is not None:
        print(line, file=sys.stderr)  # stdout keeps only the result, which lists them too
    return answer


def list_images(session: Session, args: argparse.Namespace) -> Any:
    data = session.admin("GET", "/_scaleset/images")
    images = data.get("value", []) if isinstance(data, dict) else []
    for name in ("publisher", "offer", "sku"):
        wanted = getattr(args, name)
        if wanted is not None:
            images = [i for i in images if str(i.get(name, "")).lower() == wanted.lower()]
    return images


def show(session: Session, args: argparse.Namespace) -> Any:
    return session.admin("GET", image_path(*urn_parts(args)))


def delete(session: Session, args: argparse.Namespace) -> Any:
    session.admin("DELETE", image_path(*urn_parts(args)))
    return None


def table(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [
        {
            "Publisher": image.get("publisher"),
            "Offer": image.get("offer"),
            "Sku": image.get("sku"),
            "Version": image.get("version"),
            "BuiltIn": image.get("builtIn"),
            "ExcludeFromLatest": image.get("excludeFromLatest"),
            "Description": image.get("description"),
        }
        for image in items
        if isinstance(image, dict)
    ]


def _version_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("which image version: --urn, or all four names")
    which.add_argument("--urn", default=None, metavar="P:O:S:V", help="publisher:offer:sku:version")
    which.add_argument("--publisher", default=None, help="the publisher (compared without case)")
    which.add_argument("--offer", default=None, help="the offer")
    which.add_argument("--sku", default=None, help="the sku")
    which.add_argument("--version", default=None, help="the version: dotted numbers, as 1.0.0")


def register(sub: SubParsers, parents: Parents) -> None:
    p = leaf(sub, "publish", publish, "publish an image version (or replace a published one)", [parents.globals])
    _version_options(p)
    run = p.add_argument_group(
        "what an instance runs ({python} {port} {instance_id} {zone} {data_dir} {os_dir} {version})"
    )
    what = run.add_mutually_exclusive_group()
    what.add_argument(
        "--command",
        dest="command_line",
        default=None,
        metavar="COMMAND",
        help="the command line as one shell-like string, split as a shell would (shlex)",
    )
    what.add_argument(
        "--arg",
        action="append",
        default=None,
        metavar="ARG",
        help="one argument of the command line, repeated in order (--arg=-m for one that starts with '-')",
    )
    run.add_argument("--env", nargs="+", action="extend", default=None, metavar="NAME=VALUE", help="environment")
    run.add_argument("--cwd", default=None, help="working directory (default: the backend's choice)")
    more = p.add_argument_group("catalogue")
    more.add_argument(
        "--gallery",
        default=None,
        metavar="ID",
        help="a gallery image id (/subscriptions/.../galleries/G/images/I) that also addresses this image",
    )
    more.add_argument(
        "--exclude-from-latest", action="store_true", help="deployable only by naming it; 'latest' never picks it"
    )
    more.add_argument("--description", default=None, help="what this version does")

    p = leaf(
        sub, "list", list_images, "list the image versions, built-in and published", [parents.globals], table=table
    )
    p.add_argument("--publisher", default=None, help="only this publisher")
    p.add_argument("--offer", default=None, help="only this offer")
    p.add_argument("--sku", default=None, help="only this sku")

    p = leaf(sub, "show", show, "show one image version", [parents.globals], table=table)
    _version_options(p)

    p = leaf(sub, "delete", delete, "delete a published image version", [parents.globals])
    _version_options(p)
