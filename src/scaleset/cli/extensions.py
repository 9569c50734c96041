"""``scaleset extension publish | list | show | delete``: the emulator's extension catalogue, ``/_scaleset/extensions``.

An extension version is a publisher, a type and a version (dotted numbers, at least major and minor: ``1.1``,
``2.0.3``; the server checks it), with an optional description. Instances deployed from then on get the newest
published version of the major version their ``typeHandlerVersion`` names, and scale sets whose extension has
``enableAutomaticUpgrade: true`` start an extension rolling upgrade to a newer minor version. Azure has no API for
publishing extensions: these routes exist only on the local emulator.

A publish whose answer counts scale sets that may start an upgrade (``extensionUpgradesDue`` above 0) says so in one
line on stderr; stdout keeps the answer.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote

from scaleset.cli.connect import Session
from scaleset.cli.errors import UsageError
from scaleset.cli.registry import Parents, SubParsers, leaf

NAME_FIELDS = ("publisher", "type", "version")


def extension_path(publisher: str, kind: str, version: str) -> str:
    return "/_scaleset/extensions/" + "/".join(quote(part, safe="") for part in (publisher, kind, version))


def non_blank(text: str) -> str:
    """A value type for the names: anything but empty or spaces (checked at parse time, before any request)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def name_parts(args: argparse.Namespace) -> tuple[str, str, str]:
    """``--publisher``, ``--type`` and ``--version`` (the parser requires all three)."""
    publisher, kind, version = (getattr(args, name) for name in NAME_FIELDS)
    if publisher is None or kind is None or version is None:  # a Namespace built by hand
        raise UsageError("the extension version needs --publisher, --type and --version")
    return publisher, kind, version


def publish_body(args: argparse.Namespace) -> dict[str, Any]:
    return {} if args.description is None else {"description": args.description}


def upgrades_line(answer: Any) -> str | None:
    """The line saying how many scale sets this publish may start an extension upgrade on (the answer's
    ``extensionUpgradesDue``), or None when none (or the field is absent)."""
    due = answer.get("extensionUpgradesDue") if isinstance(answer, dict) else None
    if not isinstance(due, int) or isinstance(due, bool) or due <= 0:
        return None
    return f"extension upgrades may start on {due} scale set(s)"


def publish(session: Session, args: argparse.Namespace) -> Any:
    path = extension_path(*name_parts(args))
    answer = session.admin("PUT", path, publish_body(args))
    line = upgrades_line(answer)
    if line is not None:
        print(line, file=sys.stderr)  # stdout keeps only the result, which has the count too
    return answer


def list_extensions(session: Session, args: argparse.Namespace) -> Any:
    data = session.admin("GET", "/_scaleset/extensions")
    extensions = data.get("value", []) if isinstance(data, dict) else []
    for name in ("publisher", "type"):
        wanted = getattr(args, name)
        if wanted is not None:
            extensions = [e for e in extensions if str(e.get(name, "")).lower() == wanted.lower()]
    return extensions


def show(session: Session, args: argparse.Namespace) -> Any:
    return session.admin("GET", extension_path(*name_parts(args)))


def delete(session: Session, args: argparse.Namespace) -> Any:
    session.admin("DELETE", extension_path(*name_parts(args)))
    return None


def table(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [
        {
            "Publisher": extension.get("publisher"),
            "Type": extension.get("type"),
            "Version": extension.get("version"),
            "Description": extension.get("description"),
        }
        for extension in items
        if isinstance(extension, dict)
    ]


def _version_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_argument_group("which extension version (all three required)")
    which.add_argument(
        "--publisher", required=True, type=non_blank, help="the publisher, as Microsoft.Azure.Monitor (any case)"
    )
    which.add_argument(
        "--type", required=True, type=non_blank, help="the extension type, as AzureMonitorLinuxAgent (any case)"
    )
    which.add_argument(
        "--version", required=True, type=non_blank, help="the version: dotted numbers with major and minor, as 1.1"
    )


def register(sub: SubParsers, parents: Parents) -> None:
    p = leaf(sub, "publish", publish, "publish an extension version (or replace a published one)", [parents.globals])
    _version_options(p)
    p.add_argument("--description", default=None, help="what this version does (a replace without it clears it)")

    p = leaf(sub, "list", list_extensions, "list the published extension versions", [parents.globals], table=table)
    p.add_argument("--publisher", default=None, help="only this publisher (any case)")
    p.add_argument("--type", default=None, help="only this extension type (any case)")

    p = leaf(sub, "show", show, "show one published extension version", [parents.globals], table=table)
    _version_options(p)

    p = leaf(sub, "delete", delete, "delete a published extension version", [parents.globals])
    _version_options(p)
