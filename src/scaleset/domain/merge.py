"""How a PUT or PATCH body folds into the stored scale set, on raw JSON before any parsing.

Azure keeps what a request leaves out, and clients rely on it: ``az vmss scale`` PUTs only ``location``
and ``sku``, and ``az vmss update`` PUTs the model back with ``imageReference`` set to null. So both verbs
follow the same rules here:

* objects merge key by key, at every depth;
* an explicit ``null`` keeps the stored value (on create there is none, so the field takes its default);
* arrays (``zones``, ``extensions``, ``dataDisks``, ``networkInterfaceConfigurations``, ...) and the
  ``tags`` map replace the stored value whole;
* read-only fields in the body (``id``, ``name``, ``type``, ``etag``, ``properties.provisioningState`` and the
  like) are ignored.

Worked example::

    stored  {"upgradePolicy": {"mode": "Manual", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50}},
             "automaticRepairsPolicy": {"enabled": true}, "tags": {"a": "1"}}
    body    {"upgradePolicy": {"mode": "Rolling"}, "automaticRepairsPolicy": null, "tags": {"b": "2"}}
    merged  {"upgradePolicy": {"mode": "Rolling", "rollingUpgradePolicy": {"maxBatchInstancePercent": 50}},
             "automaticRepairsPolicy": {"enabled": true}, "tags": {"b": "2"}}

(``upgradePolicy`` and ``automaticRepairsPolicy`` sit under ``properties`` in the real body; left out here.)

The functions never change their arguments and never share containers with them.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from scaleset.domain.resources import READ_ONLY_PROPERTIES, VirtualMachineScaleSet
from scaleset.domain.validation import expected_object

Shape = dict[str, "Shape"]
"""For each key that holds a JSON object, the shape of that object (empty for a free-form map)."""

READ_ONLY_PATHS = frozenset(
    {"id", "name", "type", "etag"}
    | {f"properties.{name}" for name in READ_ONLY_PROPERTIES}
    | {
        "properties.virtualMachineProfile.timeCreated",
        "properties.virtualMachineProfile.storageProfile.imageReference.exactVersion",
    }
)
REPLACED_WHOLE = frozenset({"tags"})


def merge_put(existing: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    """The model after a PUT: ``body`` over ``existing``, or ``body`` alone (nulls dropped) when creating."""
    return _merged(existing or {}, body)


def merge_patch(existing: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The model after a PATCH: the same deep merge as a PUT on an existing scale set."""
    return _merged(existing, body)


def _merged(existing: Mapping[str, Any], body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise expected_object(None, body)
    out = copy.deepcopy(dict(existing))
    _merge_into(out, body, path="", shape=_SCALE_SET_SHAPE)
    return out


def _merge_into(out: dict[str, Any], body: Mapping[str, Any], *, path: str, shape: Shape) -> None:
    """Fold ``body`` into ``out`` (a private copy) in place; ``path`` is the dotted path of ``body``."""
    for key, value in body.items():
        where = f"{path}.{key}" if path else key
        if value is None or where in READ_ONLY_PATHS:
            continue
        current = out.get(key)
        child_shape = shape.get(key)
        if (child_shape is not None or isinstance(current, dict)) and not isinstance(value, dict):
            raise expected_object(where, value)
        if isinstance(value, dict) and where not in REPLACED_WHOLE:
            if not isinstance(current, dict):
                current = out[key] = {}
            _merge_into(current, value, path=where, shape=child_shape or {})
        else:
            out[key] = _without_nulls(value)


def _without_nulls(value: Any) -> Any:
    """A fresh copy of a JSON value with null-valued object keys left out (they mean "use the default")."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return copy.deepcopy(value)


def _object_shape(model: type[BaseModel]) -> Shape:
    """Which fields of ``model`` hold JSON objects, read from its annotations (lists are not descended)."""
    shape: Shape = {}
    for name, field in model.model_fields.items():
        for member in _members(field.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                shape[field.alias or name] = _object_shape(member)
            elif get_origin(member) is dict:
                shape[field.alias or name] = {}
    return shape


def _members(annotation: object) -> tuple[object, ...]:
    """The alternatives of a union (``Sku | None`` -> ``Sku, NoneType``), or the annotation alone."""
    return get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)


_SCALE_SET_SHAPE = _object_shape(VirtualMachineScaleSet)
