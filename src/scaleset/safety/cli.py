"""``scaleset compare A B`` and ``scaleset drift -g GROUP -n NAME [--against FILE]``.

Exit codes, as ``diff`` has them: 0 no difference (no drift), 1 differences (drift), 2 an input that cannot be read
(a missing file, an expression a template cannot resolve offline, a live scale set that cannot be reached).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from scaleset.cli.registry import SubParsers
from scaleset.safety import compare as comparing
from scaleset.safety import drift as drifting
from scaleset.safety.inputs import InputError, ScaleSetInput, is_live, load, load_from_args, load_one

EXIT_SAME, EXIT_DIFFERENT, EXIT_TROUBLE = 0, 1, 2


def source_options(parser: argparse.ArgumentParser, *, name_help: str) -> None:
    """Where live scale sets are and how templates are read: the options both commands share."""
    parser.add_argument("-g", "--resource-group", default=None, help="the resource group of a live scale set")
    parser.add_argument("-n", "--name", default=None, help=name_help)
    parser.add_argument(
        "--parameters",
        default=None,
        metavar="FILE",
        help="ARM parameters file for template sources (or SOURCE?parameters=FILE)",
    )
    parser.add_argument(
        "--cloud", choices=("local", "azure"), default=None, help="live: the emulator (default) or real Azure"
    )
    parser.add_argument("--endpoint", default=None, metavar="URL", help="live: the emulator's URL (as scaleset vmss)")
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR", help="live: the emulator's data dir (as scaleset vmss)"
    )
    parser.add_argument("--subscription", default=None, metavar="ID", help="live: the subscription id")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")


def add_parsers(sub: SubParsers) -> None:
    """Register ``compare`` and ``drift``."""
    compare = sub.add_parser(
        "compare",
        help="two scale sets' upgrade settings side by side, differences and their consequences first",
        description=(
            "Compare every upgrade-relevant setting of two scale sets (defaults made explicit), differences first, "
            "with what each difference does for each side's instance count. A source is a file (ARM template, az "
            "vmss show / SDK JSON, Terraform plan; FILE?name=NAME picks one scale set, FILE?parameters=P.json gives "
            "a template its parameters), live:GROUP/NAME, or 'live' with -g/-n. Exit 0: same; 1: different; "
            "2: an input could not be read."
        ),
    )
    compare.add_argument("a", metavar="A", help="the first scale set (e.g. staging)")
    compare.add_argument("b", metavar="B", help="the second scale set (e.g. production)")
    source_options(compare, name_help="the live scale set's name, for a side given as 'live'")
    compare.set_defaults(run=run_compare)

    drift = sub.add_parser(
        "drift",
        help="instances not on the latest model, protected instances, and a file against the live model",
        description=(
            "How far a live scale set is from its model: instances not on the latest model (by image version), "
            "protected instances upgrades skip, and with --against FILE the upgrade- and model-relevant fields "
            "where the file and the live model differ. Exit 0: no drift; 1: drift; 2: an input could not be read."
        ),
    )
    source_options(drift, name_help="the live scale set's name (required)")
    drift.add_argument(
        "--against",
        default=None,
        metavar="FILE",
        help="an ARM template, Terraform plan or scale-set JSON that should describe the live scale set",
    )
    drift.set_defaults(run=run_drift)


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=200)
    return console


def _live_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cloud": args.cloud,
        "endpoint": args.endpoint,
        "data_dir": args.data_dir,
        "subscription": args.subscription,
        "parameters": args.parameters,
    }


def _load_side(source: str, args: argparse.Namespace) -> ScaleSetInput:
    if is_live(source):
        return load_one(source, resource_group=args.resource_group, name=args.name, **_live_options(args))
    return load_one(source, resource_group=args.resource_group, **_live_options(args))


def _guarded(command: str, body: Callable[[], int]) -> int:
    try:
        return body()
    except InputError as error:
        print(f"scaleset {command}: {error}", file=sys.stderr)
    except BrokenPipeError:
        return EXIT_SAME
    return EXIT_TROUBLE


def _emit(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def run_compare(args: argparse.Namespace) -> int:
    def body() -> int:
        a, b = _load_side(args.a, args), _load_side(args.b, args)
        result = comparing.compare(a, b)
        if args.output == "json":
            _emit(result.to_json())
        else:
            comparing.print_text(result, _console())
        return EXIT_DIFFERENT if result.differences else EXIT_SAME

    return _guarded("compare", body)


def run_drift(args: argparse.Namespace) -> int:
    def body() -> int:
        if not (args.resource_group and args.name):
            raise InputError("drift needs the live scale set: -g GROUP -n NAME")
        live = load_from_args("live", args)[0]
        against = None
        if args.against:
            found = load(
                args.against,
                resource_group=args.resource_group,
                subscription=args.subscription,
                parameters=args.parameters,
            )
            against = _pick(found, live.name, args.against)
        result = drifting.drift(live, against)
        if args.output == "json":
            _emit(result.to_json())
        else:
            drifting.print_text(result, _console())
        return EXIT_DIFFERENT if result.drifted else EXIT_SAME

    return _guarded("drift", body)


def _pick(found: list[ScaleSetInput], name: str, source: str) -> ScaleSetInput:
    """The file's scale set for the live one: the only one, or the one with the live set's name."""
    if len(found) == 1:
        return found[0]
    named = [s for s in found if s.name.lower() == name.lower()]
    if len(named) == 1:
        return named[0]
    names = ", ".join(s.name for s in found)
    raise InputError(f"{source}: holds several scale sets ({names}) and none is named '{name}'; use {source}?name=NAME")
