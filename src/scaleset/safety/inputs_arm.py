"""ARM templates: every ``Microsoft.Compute/virtualMachineScaleSets`` resource, with its expressions evaluated offline
(:mod:`scaleset.safety.inputs_expressions` says which evaluate).

An expression that cannot be evaluated here (``resourceGroup().location``, ``reference()``, ``uniqueString()``, a
parameter with neither value nor default, ...) is an :class:`InputError` naming the resource and the expression when
it sits in a field the safety commands read (:data:`RELEVANT_PATHS`); elsewhere (``location``, network interfaces,
secrets) the value becomes the placeholder ``<unresolved: [expression]>`` and its path is listed in ``unresolved``.
"""

from __future__ import annotations

from typing import Any

from scaleset.safety.inputs_expressions import Context, UnresolvableError, arm_bool, is_expression
from scaleset.safety.inputs_shapes import VMSS_TYPE, InputError, ScaleSetInput, on_relevant_path, to_input


def read_parameters(document: Any, *, label: str) -> dict[str, Any]:
    """A parameters file (``deploymentParameters.json``: ``{"parameters": {"x": {"value": ...}}}``, or the bare
    ``{"x": {"value": ...}}``) as name -> value; Key Vault references stay unresolvable."""
    if not isinstance(document, dict):
        raise InputError(f"{label}: a parameters file is a JSON object")
    entries = document.get("parameters", document) if "$schema" in document or "parameters" in document else document
    if not isinstance(entries, dict):
        raise InputError(f"{label}: 'parameters' is not an object")
    out: dict[str, Any] = {}
    for name, entry in entries.items():
        if isinstance(entry, dict) and "reference" in entry and "value" not in entry:
            continue  # a Key Vault reference: no value offline
        out[name] = entry["value"] if isinstance(entry, dict) and "value" in entry else entry
    return out


def _scale_set_resources(resources: Any, found: list[dict[str, Any]]) -> None:
    items = resources.values() if isinstance(resources, dict) else resources if isinstance(resources, list) else []
    for resource in items:
        if not isinstance(resource, dict):
            continue
        if str(resource.get("type", "")).lower() == VMSS_TYPE.lower():
            found.append(resource)
        _scale_set_resources(resource.get("resources"), found)


class _Walker:
    def __init__(self, ctx: Context, *, where: str, hint: str) -> None:
        self.ctx, self.where, self.hint = ctx, where, hint
        self.unresolved: dict[str, str] = {}

    def walk(self, value: Any, path: str) -> Any:
        if is_expression(value):
            self.ctx.placeholders_used = False
            try:
                resolved = self.ctx.resolve(value)
            except UnresolvableError as exc:
                if on_relevant_path(path):
                    raise InputError(
                        f"{self.where} {path or 'body'}: {value} cannot be resolved offline ({exc}); {self.hint}"
                    ) from None
                self.unresolved[path] = f"{value} ({exc})"
                return f"<unresolved: {value}>"
            if self.ctx.placeholders_used:
                self.unresolved[path] = f"{value} (its subscription or resource group is not known offline)"
            return resolved
        if isinstance(value, str) and value.startswith("[["):
            return value[1:]
        if isinstance(value, dict):
            return {k: self.walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value


_BODY_KEYS = ("location", "tags", "sku", "zones", "plan", "identity", "extendedLocation", "properties")


def from_template(
    document: dict[str, Any],
    *,
    label: str,
    source: str,
    supplied: dict[str, Any],
    resource_group: str | None,
    subscription: str | None,
) -> list[ScaleSetInput]:
    """Every scale set the template declares, evaluated; ``label`` names the file in messages."""
    found: list[dict[str, Any]] = []
    _scale_set_resources(document.get("resources"), found)
    if not found:
        raise InputError(f"{label}: the template has no resource of type {VMSS_TYPE}")
    definitions = document.get("parameters") or {}
    variables = document.get("variables") or {}
    if not isinstance(definitions, dict) or not isinstance(variables, dict):
        raise InputError(f"{label}: 'parameters' and 'variables' must be JSON objects")
    hint = f"pass it with --parameters FILE (or {source}?parameters=FILE), or write a literal value"
    out = []
    for resource in found:
        ctx = Context(definitions, supplied, variables, resource_group=resource_group, subscription=subscription)
        raw_name = resource.get("name", "")
        try:
            name = str(ctx.resolve(raw_name))
        except UnresolvableError:
            name = f"<unresolved: {raw_name}>"
        where = f"{label}: resource '{name}' ({VMSS_TYPE})"
        if "copy" in resource:
            raise InputError(f"{where}: copy loops are not supported; declare the scale sets one by one")
        if "condition" in resource:
            try:
                if not arm_bool(ctx.resolve(resource["condition"])):
                    continue
            except UnresolvableError as exc:
                raise InputError(f"{where} condition: {resource['condition']} cannot be resolved ({exc})") from None
        walker = _Walker(ctx, where=where, hint=hint)
        body = walker.walk({k: resource[k] for k in _BODY_KEYS if k in resource}, "")
        out.append(
            to_input(
                body,
                name=name,
                origin=f"ARM template {label}",
                kind="arm-template",
                resource_group=resource_group,
                unresolved=walker.unresolved,
            )
        )
    if not out:
        raise InputError(f"{label}: the template has no resource of type {VMSS_TYPE} whose condition is true")
    return out
