"""``--set path=value`` as ``az``'s generic update applies it, on a resource's wire JSON.

* The path is dotted, as in ``az`` output (flattened): ``upgradePolicy.mode``, ``sku.capacity``,
  ``virtualMachineProfile.storageProfile.imageReference.version``. A key not found on an object is looked up in its
  ``properties``, so the flattened names reach the wire body the PUT needs.
* ``[N]`` indexes a list (``extensions[0]``, negative from the end); ``[key=value]`` picks the first item whose
  field equals the value (``extensions[name=HealthExtension]``).
* Keys match case-insensitively when there is no exact match. A missing object on the way is created; a new key
  on a resource goes into its ``properties`` unless it is an envelope field (``sku``, ``tags``, ``zones``, ...).
* The value is JSON when it parses as JSON (``5``, ``true``, ``null``, ``{"a": 1}``, ``"quoted"``), otherwise the
  string as written; ``--force-string`` keeps it as written always (``typeHandlerVersion=2.0`` stays a string).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from typing import Any

from scaleset.cli.errors import UsageError

ENVELOPE = frozenset(
    {
        "id",
        "name",
        "type",
        "location",
        "tags",
        "sku",
        "plan",
        "identity",
        "zones",
        "extendedLocation",
        "etag",
        "placement",
        "systemData",
        "instanceId",
        "managedBy",
        "kind",
    }
)

Token = str | int | tuple[str, str]


@dataclass(frozen=True)
class Assignment:
    """One parsed ``--set``: the text as given, the path's tokens and the value."""

    text: str
    path: list[Token]
    value: Any
    raw: str


_TOKEN = re.compile(r"(?P<key>[^.\[\]]+)|\[(?P<index>-?\d+)\]|\[(?P<field>[^=\]]+)=(?P<match>[^\]]*)\]|(?P<dot>\.)")


def parse_assignment(text: str) -> Assignment:
    """``a.b[0].c=value`` -> path ``["a", "b", 0, "c"]`` and the parsed value."""
    split = _assignment_split(text)
    if split is None or not text[:split].strip():
        raise UsageError(f"--set expects PATH=VALUE, got '{text}'")
    path_text = text[:split].strip()
    raw = text[split + 1 :]
    return Assignment(path_text, parse_path(path_text), parse_value(raw), raw)


def _assignment_split(text: str) -> int | None:
    """The position of the ``=`` between path and value (not the one inside ``[key=value]``)."""
    depth = 0
    for position, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == "=" and depth == 0:
            return position
    return None


def assignment(text: str) -> Assignment:
    """``--set``'s argparse type: a bad one is a usage error before any request."""
    try:
        return parse_assignment(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def parse_path(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    expect_key = True
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise UsageError(f"--set: cannot parse the path '{text}' at '{text[position:]}'")
        position = found.end()
        if found.group("dot"):
            if expect_key:
                raise UsageError(f"--set: empty segment in the path '{text}'")
            expect_key = True
            continue
        if found.group("key") is not None:
            tokens.append(found.group("key"))
        elif found.group("index") is not None:
            tokens.append(int(found.group("index")))
        else:
            tokens.append((found.group("field").strip(), found.group("match").strip()))
        expect_key = False
    if expect_key or not tokens or not isinstance(tokens[0], str):
        raise UsageError(f"--set: the path '{text}' must start with a key and not end with '.'")
    return tokens


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _find_key(mapping: dict[str, Any], key: str) -> str | None:
    if key in mapping:
        return key
    lowered = key.lower()
    return next((k for k in mapping if k.lower() == lowered), None)


def _locate(node: dict[str, Any], key: str, *, create: bool) -> tuple[dict[str, Any], str]:
    """The object that holds ``key`` (``node`` or its ``properties``) and the key as spelled there."""
    found = _find_key(node, key)
    if found is not None:
        return node, found
    properties = node.get("properties")
    if isinstance(properties, dict):
        inner = _find_key(properties, key)
        if inner is not None:
            return properties, inner
        if create and key not in ENVELOPE:
            return properties, key
    if not create:
        raise KeyError(key)
    return node, key


def _pick(items: list[Any], token: int | tuple[str, str], path: str) -> int:
    if isinstance(token, int):
        if not -len(items) <= token < len(items):
            raise UsageError(f"--set {path}: index {token} is out of range (the list has {len(items)} items)")
        return token % len(items)
    field, wanted = token
    for index, item in enumerate(items):
        if isinstance(item, dict):
            holder, key = _locate_or_none(item, field)
            if holder is not None and key is not None and str(holder[key]) == wanted:
                return index
    raise UsageError(f"--set {path}: no item with {field}={wanted}")


def _locate_or_none(node: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return _locate(node, key, create=False)
    except KeyError:
        return None, None


def apply_set(document: dict[str, Any], change: Assignment | str, *, force_string: bool = False) -> None:
    """Apply one ``--set`` to ``document`` in place (``force_string``: the value as written, never JSON)."""
    parsed = change if isinstance(change, Assignment) else parse_assignment(change)
    tokens, path = parsed.path, parsed.text
    value = parsed.raw if force_string else parsed.value
    node: Any = document
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        following = None if last else tokens[position + 1]
        if isinstance(token, str):
            if not isinstance(node, dict):
                raise UsageError(f"--set {path}: '{token}' is a key, but the value there is not an object")
            holder, key = _locate(node, token, create=True)
            if last:
                holder[key] = value
                return
            if holder.get(key) is None:
                holder[key] = [] if not isinstance(following, str) else {}
            node = holder[key]
        else:
            if not isinstance(node, list):
                raise UsageError(f"--set {path}: an index or [key=value] needs a list")
            index = _pick(node, token, path)
            if last:
                node[index] = value
                return
            node = node[index]
