"""One loader for every input the safety commands take (issue 6 item 1).

Sources: an ARM template (JSON), ``az vmss show`` / SDK JSON (flattened or not), a Terraform plan (JSON), or a live
scale set through the API (the emulator or real Azure), with its instances. Every input becomes a
:class:`ScaleSetInput`: the scale set as ARM JSON, parsed with Azure's defaults, and the instances when known.

A source is a file path (the kind is recognised by content), optionally with options after ``?``:
``main.json?parameters=prod.parameters.json&name=web``; or ``live`` / ``-`` (with ``resource_group`` and ``name``),
or ``live:GROUP/NAME``. The readers live in ``inputs_arm``, ``inputs_terraform``, ``inputs_resource`` and
``inputs_live``; the shared shapes in ``inputs_shapes`` (re-exported here, where the commands import them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from scaleset.safety.inputs_arm import from_template, read_parameters
from scaleset.safety.inputs_live import load_live
from scaleset.safety.inputs_resource import from_resource_json, is_resource_json
from scaleset.safety.inputs_shapes import (
    RELEVANT_PATHS,
    InputError,
    InstanceFacts,
    ScaleSetInput,
    is_relevant,
    lookup,
    on_relevant_path,
    to_input,
)
from scaleset.safety.inputs_terraform import from_plan, is_plan

__all__ = [
    "RELEVANT_PATHS",
    "InputError",
    "InstanceFacts",
    "ScaleSetInput",
    "detect_kind",
    "is_live",
    "is_relevant",
    "load",
    "load_one",
    "lookup",
    "on_relevant_path",
    "to_input",
]

SOURCE_OPTIONS = ("parameters", "name")


def is_live(source: str) -> bool:
    spec = source.strip()
    return spec in ("live", "-") or spec.lower().startswith("live:")


def split_source(source: str) -> tuple[str, dict[str, str]]:
    """``main.json?parameters=p.json&name=web`` -> ``("main.json", {"parameters": "p.json", "name": "web"})``; a
    path that exists as written is never split."""
    if "?" not in source or Path(source).exists():
        return source, {}
    path, _, query = source.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(SOURCE_OPTIONS))
    if unknown:
        raise InputError(f"{source}: unknown option '{unknown[0]}' (use {' or '.join(SOURCE_OPTIONS)})")
    return path, options


def _read_json(path: str, *, what: str = "input") -> Any:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"{path}{f' line {line}' if line else ''}: not JSON ({exc})") from None


def _schema(document: Any) -> str:
    return str(document.get("$schema", "")).lower() if isinstance(document, dict) else ""


def detect_kind(document: Any) -> str:
    """``arm-template``, ``terraform-plan``, ``resource-json``, ``arm-parameters`` or ``unknown``."""
    schema = _schema(document)
    if "deploymentparameters" in schema:
        return "arm-parameters"
    if "deploymenttemplate" in schema:
        return "arm-template"
    if is_plan(document):
        return "terraform-plan"
    if (
        isinstance(document, dict)
        and isinstance(document.get("resources"), (list, dict))
        and "properties" not in document
    ):
        return "arm-template"
    if is_resource_json(document):
        return "resource-json"
    return "unknown"


def load(
    source: str,
    *,
    resource_group: str | None = None,
    name: str | None = None,
    cloud: str | None = None,
    endpoint: str | None = None,
    data_dir: str | None = None,
    subscription: str | None = None,
    parameters: str | None = None,
) -> list[ScaleSetInput]:
    """Every scale set ``source`` holds (one for a live source). ``name`` keeps only the scale set of that name;
    ``parameters`` is an ARM parameters file for a template source that names none after ``?``."""
    spec = source.strip()
    if is_live(spec):
        if spec.lower().startswith("live:"):
            group, _, vmss = spec[5:].partition("/")
            if not group or not vmss or "/" in vmss:
                raise InputError(f"{source}: write a live scale set as live:GROUP/NAME")
            resource_group, name = group, vmss
        return load_live(
            resource_group=resource_group,
            name=name,
            cloud=cloud,
            endpoint=endpoint,
            data_dir=data_dir,
            subscription=subscription,
        )
    path, options = split_source(spec)
    wanted = options.get("name") or name
    parameters_file = options.get("parameters") or parameters
    document = _read_json(path)
    kind = detect_kind(document)
    if kind == "arm-template":
        supplied = (
            read_parameters(_read_json(parameters_file, what="parameters"), label=parameters_file)
            if parameters_file
            else {}
        )
        found = from_template(
            document,
            label=path,
            source=path,
            supplied=supplied,
            resource_group=resource_group,
            subscription=subscription,
        )
    elif parameters_file:
        raise InputError(f"{path}: --parameters applies to ARM templates, and this is not one")
    elif kind == "terraform-plan":
        found = from_plan(document, label=path)
    elif kind == "resource-json":
        found = from_resource_json(document, label=path)
    elif kind == "arm-parameters":
        raise InputError(f"{path}: an ARM parameters file; give the template and pass this with --parameters")
    else:
        raise InputError(
            f"{path}: not an ARM template, scale-set JSON (az vmss show, an ARM GET, the SDK) or a Terraform plan"
        )
    if wanted:
        chosen = [s for s in found if s.name.lower() == wanted.lower()]
        if not chosen:
            names = ", ".join(s.name for s in found)
            raise InputError(f"{path}: no scale set named '{wanted}' (it has: {names})")
        return chosen
    return found


def load_from_args(source: str, args: Any) -> list[ScaleSetInput]:
    """:func:`load` with the options every safety command shares (``-g``, ``-n``, ``--cloud``, ``--endpoint``,
    ``--data-dir``, ``--subscription``, ``--parameters``), read from parsed arguments."""
    return load(
        source,
        resource_group=args.resource_group,
        name=args.name,
        cloud=args.cloud,
        endpoint=args.endpoint,
        data_dir=args.data_dir,
        subscription=args.subscription,
        parameters=getattr(args, "parameters", None),
    )


def load_one(source: str, **options: Any) -> ScaleSetInput:
    """The single scale set ``source`` holds; several is an error that lists them (pick one with ``?name=``)."""
    return single(load(source, **options), source)


def single(found: list[ScaleSetInput], source: str) -> ScaleSetInput:
    """The one scale set of ``found``; several is an error that lists them (pick one with ``?name=``)."""
    if len(found) > 1:
        names = ", ".join(s.name for s in found)
        raise InputError(f"{source}: holds {len(found)} scale sets ({names}); pick one with {source}?name=NAME")
    return found[0]
