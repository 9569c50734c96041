"""Results as ``az`` prints them: the shape (flattened ``properties``, ``resourceGroup``), ``--query``, ``--output``.

* Compute resources are flattened as the SDK-based ``az`` commands flatten them: the members of ``properties`` sit
  next to ``id``, ``name`` and ``sku``, at the top and in named sub-resources (extensions, network interface
  configurations), never inside free-form maps (``settings``, ``tags``).
* Every object with an ARM id under a resource group gets ``resourceGroup`` (azure-cli-core does the same).
* ``--query`` (JMESPath) is applied to that shape, before formatting; a per-command table layout is used only
  without ``--query``, as ``az`` does.
* Formats: ``json`` (indented, sorted keys: the default), ``jsonc`` (the same, coloured), ``table`` (rich),
  ``tsv`` (as ``az``: nested lists as their length, nested objects empty, null as ``None``), ``yaml``, ``none``.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import jmespath
import yaml
from rich import box
from rich.console import Console
from rich.json import JSON
from rich.table import Table

FORMATS = ("json", "jsonc", "table", "tsv", "yaml", "none")

TableTransform = Callable[[Any], Any]

_FREE_FORM = frozenset({"settings", "protectedSettings", "tags", "userData", "customData", "sourceVault"})
# az's table look: a dashed line under the headers, columns apart by spaces, no frame (ASCII: logs stay readable).
AZ_BOX = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)
_GROUP_IN_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/(?P<group>[^/]+)", re.IGNORECASE)


def flatten(value: Any, *, top: bool = True) -> Any:
    """Lift ``properties`` into its owner, at the top and in every nested object that has a ``name`` or ``id``."""
    if isinstance(value, list):
        return [flatten(item, top=False) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    lift = isinstance(value.get("properties"), dict) and (top or "name" in value or "id" in value)
    for key, item in value.items():
        if lift and key == "properties":
            continue
        out[key] = item if key in _FREE_FORM else flatten(item, top=False)
    if lift:
        for key, item in value["properties"].items():
            if key not in out:
                out[key] = item if key in _FREE_FORM else flatten(item, top=False)
    return out


def add_resource_group(value: Any) -> Any:
    """Add ``resourceGroup`` (taken from ``id``) to every object that has an id under a resource group."""
    if isinstance(value, list):
        for item in value:
            add_resource_group(item)
    elif isinstance(value, dict):
        ident = value.get("id")
        if isinstance(ident, str) and not any(k.lower() == "resourcegroup" for k in value):
            found = _GROUP_IN_ID.match(ident)
            if found is not None:
                value["resourceGroup"] = found.group("group")
        for key, item in list(value.items()):
            if key not in _FREE_FORM:
                add_resource_group(item)
    return value


def shaped(wire: Any) -> Any:
    """A Compute resource (or list of them) from its wire JSON to the shape the CLI prints."""
    return add_resource_group(flatten(wire))


def compile_query(text: str) -> Any:
    """A compiled JMESPath expression (raises ``jmespath.exceptions.ParseError`` on a bad one)."""
    return jmespath.compile(text)


def apply_query(query: Any, value: Any) -> Any:
    return query.search(value) if query is not None else value


# ---------------------------------------------------------------------- formats


def _scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _capitalize(key: str) -> str:
    return key[:1].upper() + key[1:]


def table_rows(value: Any) -> tuple[list[str], list[list[str]]]:
    """Columns and rows for a table: every scalar field of each object (``az``'s generic layout)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        return [], []
    if all(_scalar(item) for item in items):
        return ["Result"], [[_cell(item)] for item in items]
    columns: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            for key, field in item.items():
                if _scalar(field) and key not in columns:
                    columns.append(key)
    rows = [[_cell(item.get(c)) if isinstance(item, Mapping) else "" for c in columns] for item in items]
    return [_capitalize(c) for c in columns], rows


def write_table(value: Any, stream: TextIO) -> None:
    columns, rows = table_rows(value)
    if not columns:
        return
    terminal = stream.isatty()
    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, width=4096, force_terminal=terminal, soft_wrap=False)
    table = Table(box=AZ_BOX, show_edge=False, pad_edge=False, header_style="bold" if terminal else "")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def _tsv_field(value: Any) -> str:
    """One tsv field as ``az`` (knack) writes it: a list as its length, an object as nothing, else ``str()``."""
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, Mapping):
        return ""
    return value if isinstance(value, str) else str(value)


def write_tsv(value: Any, stream: TextIO) -> None:
    """One row per item of a list (or the one result): an object's values in key order, a list's in order."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, Mapping):
            fields = [_tsv_field(item[key]) for key in sorted(item)]
        elif isinstance(item, list):
            fields = [_tsv_field(field) for field in item]
        else:
            fields = [_tsv_field(item)]
        stream.write("\t".join(fields) + "\n")


def write(value: Any, fmt: str, *, stream: TextIO | None = None, table: TableTransform | None = None) -> None:
    """Print a result; ``None`` prints nothing (actions with no body, as in ``az``)."""
    out = stream if stream is not None else sys.stdout
    if value is None or fmt == "none":
        return
    if fmt == "json":
        out.write(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    elif fmt == "jsonc":
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        Console(file=out, force_terminal=True, color_system="standard", soft_wrap=True).print(JSON(text))
    elif fmt == "yaml":
        out.write(yaml.safe_dump(value, default_flow_style=False, allow_unicode=True, sort_keys=True))
    elif fmt == "tsv":
        write_tsv(value, out)
    elif fmt == "table":
        write_table(table(value) if table is not None else value, out)
    else:  # argparse restricts the choices; keep the branch total
        raise ValueError(f"unknown output format {fmt!r}")
    out.flush()
