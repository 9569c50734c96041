"""ARM template expressions, evaluated offline: the language's syntax and the functions that need no deployment.

``parameters()`` (a parameters file's value, else the ``defaultValue``), ``variables()``, string and array functions of
literals (``concat``, ``format``, ``toLower``, ``toUpper``, ``string``, ``int``, ``bool``, ``json``, ``if``, ``equals``,
``not``, ``and``, ``or``, ``empty``, ``length``, ``coalesce``, ``createArray``, ``createObject``, ``add``, ``sub``,
``mul``, ``div``, ``min``, ``max``, ``replace``, ``trim``), property and index access, ``resourceGroup().name`` and
``subscription().subscriptionId`` when the command was given them, and ``resourceId()`` (the subscription and group
become ``{subscriptionId}`` and ``{resourceGroupName}`` when unknown: the id still says which resource it is).
Anything else raises :class:`UnresolvableError` with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),.\[\]]))"
)
_FORMAT_HOLE = re.compile(r"\{(\d+)\}")
SUBSCRIPTION_PLACEHOLDER = "{subscriptionId}"
GROUP_PLACEHOLDER = "{resourceGroupName}"


class UnresolvableError(Exception):
    """An expression this reader cannot evaluate offline, and why."""


def is_expression(value: object) -> bool:
    return isinstance(value, str) and value.startswith("[") and not value.startswith("[[") and value.endswith("]")


# ---------------------------------------------------------------------------------------------- parsing


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise UnresolvableError(f"cannot parse the expression near '{text[position:][:20]}'")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


class _Parser:
    """Expression syntax: ``name(args)``, ``'string'``, integers, then ``.property`` and ``[index]`` accessors."""

    def __init__(self, text: str) -> None:
        self.items = _tokens(text)
        self.at = 0

    def parse(self) -> Any:
        node = self.expression()
        if self.at != len(self.items):
            raise UnresolvableError(f"unexpected '{self.items[self.at][1]}'")
        return node

    def take(self, value: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.items):
            raise UnresolvableError("the expression ends early")
        item = self.items[self.at]
        if value is not None and item[1] != value:
            raise UnresolvableError(f"expected '{value}', found '{item[1]}'")
        self.at += 1
        return item

    def peek(self) -> str | None:
        return self.items[self.at][1] if self.at < len(self.items) else None

    def expression(self) -> Any:
        kind, text = self.take()
        node: Any
        if kind == "string":
            node = ("lit", text[1:-1].replace("''", "'"))
        elif kind == "number":
            node = ("lit", int(text))
        elif kind == "name":
            self.take("(")
            args = []
            while self.peek() != ")":
                args.append(self.expression())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            node = ("call", text, args)
        else:
            raise UnresolvableError(f"unexpected '{text}'")
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                node = ("get", node, ("lit", self.take()[1]))
            else:
                node = ("get", node, self.expression())
                self.take("]")
        return node


# ---------------------------------------------------------------------------------------------- evaluation


def _arm_string(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _concat(*args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    return "".join(_arm_string(a) for a in args)


def _format(text: str, *args: Any) -> str:
    if re.search(r"\{\d+:", text):
        raise UnresolvableError("format() with format specifiers")
    return _FORMAT_HOLE.sub(lambda m: _arm_string(args[int(m.group(1))]), text)


def arm_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


_PURE: dict[str, Callable[..., Any]] = {
    "concat": _concat,
    "format": _format,
    "tolower": lambda s: str(s).lower(),
    "toupper": lambda s: str(s).upper(),
    "string": _arm_string,
    "int": int,
    "bool": arm_bool,
    "json": json.loads,
    "if": lambda c, a, b: a if arm_bool(c) else b,
    "equals": lambda a, b: a == b,
    "not": lambda a: not arm_bool(a),
    "and": lambda *a: all(arm_bool(x) for x in a),
    "or": lambda *a: any(arm_bool(x) for x in a),
    "empty": lambda v: v is None or len(v) == 0,
    "length": len,
    "coalesce": lambda *a: next((x for x in a if x is not None), None),
    "createarray": lambda *a: list(a),
    "createobject": lambda *a: {a[i]: a[i + 1] for i in range(0, len(a), 2)},
    "add": lambda a, b: int(a) + int(b),
    "sub": lambda a, b: int(a) - int(b),
    "mul": lambda a, b: int(a) * int(b),
    "div": lambda a, b: int(a) // int(b),
    "min": lambda *a: min(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "max": lambda *a: max(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "replace": lambda s, old, new: str(s).replace(old, new),
    "trim": lambda s: str(s).strip(),
    "true": lambda: True,
    "false": lambda: False,
    "null": lambda: None,
}


def _ci_get(mapping: dict[str, Any], key: str) -> tuple[bool, Any]:
    """ARM names (parameters, variables, properties) compare without case."""
    if key in mapping:
        return True, mapping[key]
    for name, value in mapping.items():
        if name.lower() == key.lower():
            return True, value
    return False, None


@dataclass
class Context:
    """What one template's expressions can see."""

    definitions: dict[str, Any]
    supplied: dict[str, Any]
    variables: dict[str, Any]
    resource_group: str | None = None
    subscription: str | None = None
    placeholders_used: bool = False
    _busy: set[str] = field(default_factory=set)

    def evaluate(self, text: str) -> Any:
        try:
            tree = _Parser(text[1:-1]).parse()
        except UnresolvableError as exc:
            raise UnresolvableError(f"not a valid template expression ({exc})") from None
        return self._eval(tree)

    def resolve(self, value: Any) -> Any:
        """A JSON value with every expression in it evaluated (raises :class:`UnresolvableError`)."""
        if is_expression(value):
            return self.resolve(self.evaluate(value))
        if isinstance(value, str) and value.startswith("[["):
            return value[1:]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def _eval(self, node: Any) -> Any:
        if node[0] == "lit":
            return node[1]
        if node[0] == "get":
            return self._get(node)
        name, args = node[1].lower(), node[2]
        if name == "parameters":
            return self._parameter(str(self._eval(args[0])))
        if name == "variables":
            return self._variable(str(self._eval(args[0])))
        if name in ("resourceid", "subscriptionresourceid"):
            return self._resource_id([self._eval(a) for a in args], with_group=name == "resourceid")
        if name in _PURE:
            try:
                return _PURE[name](*[self._eval(a) for a in args])
            except UnresolvableError:
                raise
            except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as exc:
                raise UnresolvableError(f"{node[1]}() failed: {exc}") from None
        raise UnresolvableError(f"{node[1]}() depends on the deployment")

    def _get(self, node: Any) -> Any:
        base, key = node[1], node[2]
        if base[0] == "call" and base[1].lower() in ("resourcegroup", "subscription") and not base[2]:
            wanted = str(self._eval(key))
            if base[1].lower() == "resourcegroup" and wanted.lower() == "name" and self.resource_group:
                return self.resource_group
            if base[1].lower() == "subscription" and wanted.lower() == "subscriptionid" and self.subscription:
                return self.subscription
            raise UnresolvableError(f"{base[1]}().{wanted} depends on the deployment")
        container, index = self._eval(base), self._eval(key)
        if isinstance(container, dict):
            found, value = _ci_get(container, str(index))
            if found:
                return value
        elif isinstance(container, list) and isinstance(index, int) and -len(container) <= index < len(container):
            return container[index]
        raise UnresolvableError(f"no '{index}' in {_arm_string(container)[:60]}")

    def _parameter(self, name: str) -> Any:
        found, value = _ci_get(self.supplied, name)
        if found:
            return value
        found, definition = _ci_get(self.definitions, name)
        if not found:
            raise UnresolvableError(f"the template declares no parameter '{name}'")
        if not isinstance(definition, dict) or "defaultValue" not in definition:
            raise UnresolvableError(f"parameter '{name}' has no defaultValue and no value in a parameters file")
        return self._guarded(f"parameter {name}", definition["defaultValue"])

    def _variable(self, name: str) -> Any:
        found, value = _ci_get(self.variables, name)
        if not found:
            raise UnresolvableError(f"the template declares no variable '{name}'")
        return self._guarded(f"variable {name}", value)

    def _guarded(self, key: str, value: Any) -> Any:
        if key.lower() in self._busy:
            raise UnresolvableError(f"{key} refers to itself")
        self._busy.add(key.lower())
        try:
            return self.resolve(value)
        finally:
            self._busy.discard(key.lower())

    def _resource_id(self, args: list[Any], *, with_group: bool) -> str:
        typed = next((i for i, a in enumerate(args) if isinstance(a, str) and "/" in a), None)
        if typed is None:
            raise UnresolvableError("resourceId() without a resource type")
        scope = [str(a) for a in args[:typed]]
        names = [str(a) for a in args[typed + 1 :]]
        namespace, *types = str(args[typed]).split("/")
        if len(types) != len(names) or not types:
            raise UnresolvableError("resourceId() with a resource type and names that do not match")
        subscription = self.subscription
        group = self.resource_group
        if with_group and len(scope) == 2:
            subscription, group = scope
        elif with_group and len(scope) == 1:
            group = scope[0]
        elif not with_group and scope:
            subscription = scope[0]
        if subscription is None or (with_group and group is None):
            self.placeholders_used = True
        prefix = f"/subscriptions/{subscription or SUBSCRIPTION_PLACEHOLDER}"
        if with_group:
            prefix += f"/resourceGroups/{group or GROUP_PLACEHOLDER}"
        path = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        return f"{prefix}/providers/{namespace}/{path}"
