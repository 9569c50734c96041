"""``scaleset evidence -g GROUP -n NAME``: export the evidence of a scale set's latest rollout as Markdown, JSON and
self-contained HTML with a timeline chart.

The scale set is read live through the Azure SDK as the safety loader reads it (the emulator by default, found as
the ``scaleset`` client finds it; ``--cloud azure`` for real Azure): its body (the policy in force),
``rollingUpgrades/latest``, its VMs with instance views and, on the emulator, its activity log
(``GET /_scaleset/events``). Real Azure has no such log: the report says so.

Exit codes: 0 written; 1 the scale set could not be read or a file not written; 2 invalid usage; 3 not found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from scaleset.cli.errors import describe
from scaleset.cli.load import EventFollower
from scaleset.safety.evidence import Evidence, build
from scaleset.safety.evidence_render import render_chart, render_html, render_json, render_markdown
from scaleset.safety.inputs_live import _instance_sort_key, instance_facts, session_for
from scaleset.safety.inputs_shapes import InputError, ScaleSetInput, to_input

FORMATS = ("md", "json", "html")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3


def formats(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in FORMATS]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(FORMATS)}, got '{text}'")
    return tuple(dict.fromkeys(chosen))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "evidence",
        help="export the evidence of a scale set's latest rollout (Markdown, JSON, HTML with a chart)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-g", "--resource-group", required=True, help="the scale set's resource group")
    parser.add_argument("-n", "--name", required=True, help="the scale set's name")
    parser.add_argument("--output-dir", default=".", metavar="DIR", help="where the files go (default: here)")
    parser.add_argument(
        "--format",
        type=formats,
        default=FORMATS,
        metavar="LIST",
        help="comma-separated: md, json, html (default: all three)",
    )
    parser.add_argument("--cloud", choices=("local", "azure"), default=None, help="the emulator (default) or Azure")
    parser.add_argument("--endpoint", default=None, metavar="URL", help="the emulator's URL (as scaleset vmss)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="the emulator's data directory")
    parser.add_argument("--subscription", default=None, metavar="ID", help="the subscription id")
    parser.set_defaults(run=run)


class NotFoundError(InputError):
    pass


def gather(args: argparse.Namespace) -> Evidence:
    """Read the scale set, its latest rolling upgrade, its VMs and (on the emulator) its activity log."""
    group, name = args.resource_group, args.name
    session = session_for(args.cloud, endpoint=args.endpoint, data_dir=args.data_dir, subscription=args.subscription)
    local = session.target.local
    shown = session.target.endpoint if local else None
    try:
        compute = session.compute
        wire = compute.virtual_machine_scale_sets.get(group, name).as_dict()
        vms = [vm.as_dict() for vm in compute.virtual_machine_scale_set_vms.list(group, name, expand="instanceView")]
    except Exception as exc:
        message, code = describe(exc, endpoint=shown)
        raise (NotFoundError if code == EXIT_NOT_FOUND else InputError)(f"{group}/{name}: {message}") from None
    latest: dict[str, Any] | None
    try:
        answer = compute.virtual_machine_scale_set_rolling_upgrades.get_latest(group, name)
        latest = answer.as_dict()
    except Exception as exc:
        if describe(exc, endpoint=shown)[1] != EXIT_NOT_FOUND:  # 404: no rolling upgrade ever ran
            raise InputError(f"{group}/{name}: rollingUpgrades/latest: {describe(exc, endpoint=shown)[0]}") from None
        latest = None
    events: list[dict[str, Any]] | None = None
    if local:
        try:
            events = EventFollower(session, str(wire["id"])).fetch()
        except Exception as exc:
            raise InputError(f"{group}/{name}: the activity log: {describe(exc, endpoint=shown)[0]}") from None
    body = {k: v for k, v in wire.items() if k not in ("id", "name", "type", "etag", "systemData")}
    instances = tuple(sorted((instance_facts(vm) for vm in vms), key=_instance_sort_key))
    scale_set: ScaleSetInput = to_input(
        body,
        name=str(wire.get("name") or name),
        origin=f"live ({'emulator' if local else 'azure'})",
        kind="live",
        resource_group=group,
        instances=instances,
    )
    return build(
        scale_set,
        latest=latest,
        events=events,
        source="emulator" if local else "azure",
        generated=time.time(),
    )


def write(evidence: Evidence, directory: Path, chosen: tuple[str, ...]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"evidence-{evidence.name}"
    written: list[Path] = []
    for kind in chosen:
        path = directory / f"{stem}.{kind}"
        if kind == "json":
            path.write_text(render_json(evidence), encoding="utf-8")
        elif kind == "md":
            path.write_text(render_markdown(evidence), encoding="utf-8")
        else:
            path.write_text(render_html(evidence, render_chart(evidence)), encoding="utf-8")
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    try:
        evidence = gather(args)
    except NotFoundError as error:
        print(f"scaleset evidence: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except InputError as error:
        print(f"scaleset evidence: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        written = write(evidence, Path(args.output_dir), args.format)
    except OSError as error:
        print(f"scaleset evidence: cannot write the report: {error}", file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(path)
    return EXIT_OK
