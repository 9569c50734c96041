"""``scaleset what-if SOURCE --set PATH=VALUE``: the rollout a change would start, simulated in virtual time.

Exit codes: 0 the rollout completes (or nothing rolls out; with ``--runs``, the share of aborted runs is at most
``--max-abort-probability``); 1 it faults (with ``--runs``: aborts more often than allowed); 2 an input, a flag or a
change that cannot be simulated (a file that cannot be read, a live scale set that cannot be reached, a change the
emulator refuses).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from scaleset.backends.simulated import Fault
from scaleset.cli.registry import SubParsers
from scaleset.domain.durations import format_duration, parse_duration
from scaleset.safety.whatif import Change, Options, WhatIf, WhatIfError
from scaleset.safety.whatif_results import ABORTED, Outcome
from scaleset.safety.whatif_text import print_text

EXIT_OK, EXIT_ABORTS, EXIT_TROUBLE = 0, 1, 2
_TEXT_FIELDS = {"kind", "image_version", "extension", "zone", "respond"}


def seconds_range(text: str) -> tuple[float, float]:
    """``30-90``, ``45`` or ``PT30S-PT1M30S``: a range of seconds for a simulated duration."""
    low, _, high = text.strip().partition("-")
    try:
        bounds = [_seconds(low), _seconds(high) if high else _seconds(low)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX in seconds (e.g. 30-90), got '{text}'") from None
    if bounds[0] < 0 or bounds[1] < bounds[0]:
        raise argparse.ArgumentTypeError(f"'{text}': need 0 <= MIN <= MAX")
    return bounds[0], bounds[1]


def _seconds(text: str) -> float:
    text = text.strip()
    return parse_duration(text) if text.upper().startswith("P") else float(text)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got '{text}'")
    return value


def fault(text: str) -> Fault:
    """A fault of the scenario files' vocabulary, as JSON (``{"kind": "crash", "after": 60}``) or as
    ``kind=crash,image_version=2.0.0,fraction=0.1`` (``instances=0;3`` for a list)."""
    spec = text.strip()
    data: Any
    if spec.startswith("{"):
        try:
            data = json.loads(spec)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"--fault: not JSON ({exc})") from None
    else:
        data = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, equals, value = part.partition("=")
            if not equals or not key.strip():
                raise argparse.ArgumentTypeError(f"--fault: expected KEY=VALUE, got '{part}'")
            data[key.strip()] = _fault_value(key.strip(), value.strip())
    try:
        return Fault.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "fault"
        raise argparse.ArgumentTypeError(f"--fault {where}: {first['msg'].removeprefix('Value error, ')}") from None


def _fault_value(key: str, value: str) -> Any:
    if key in _TEXT_FIELDS:
        return value
    if key == "instances":
        try:
            return [int(v) for v in value.split(";") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"--fault instances: expected ids such as 0;3, got '{value}'") from None
    try:
        return json.loads(value)
    except ValueError:
        return value  # an ISO 8601 duration such as PT1M


def add_parser(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "what-if",
        help="the rollout a change would start, simulated in virtual time (batches, duration, capacity, verdict)",
        description=(
            "Simulate, in virtual time, the rollout that a change would start on a scale set, with the engine's own "
            "planners and the simulated backend: the batch plan (zone by zone), the duration, the lowest in-service "
            "capacity and the verdict. SOURCE is a file (ARM template, az vmss show / SDK JSON, Terraform plan; "
            "FILE?name=NAME picks one scale set), live:GROUP/NAME, or 'live' with -g/-n (its instances as they "
            "are now: ids, zones, image versions, stale models, health, protection). Exit 0: completes (--runs: "
            "abort probability within --max-abort-probability); 1: faults (too often); 2: an input or change that "
            "cannot be simulated."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", nargs="?", default=None, help="a file, live:GROUP/NAME or live")
    change = parser.add_argument_group("the change")
    change.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="as az: virtualMachineProfile.storageProfile.imageReference.version=2.0.0 (repeatable)",
    )
    change.add_argument("--force-string", action="store_true", help="keep every --set value as written")
    change.add_argument("--patch", metavar="FILE", default=None, help="an ARM PATCH body (JSON) applied after --set")
    simulation = parser.add_argument_group("the simulation")
    simulation.add_argument("--seed", type=int, default=0, help="seed of the first run (default 0)")
    simulation.add_argument(
        "--boot", type=seconds_range, default=(30.0, 90.0), metavar="MIN-MAX", help="provisioning seconds (30-90)"
    )
    simulation.add_argument(
        "--app-start",
        type=seconds_range,
        default=(5.0, 15.0),
        metavar="MIN-MAX",
        help="seconds from provisioned to the application answering (5-15)",
    )
    simulation.add_argument(
        "--health-wait",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long an upgraded instance has to turn healthy (default 300, as the emulator)",
    )
    simulation.add_argument(
        "--bad-image",
        type=fraction,
        default=0.0,
        metavar="FRACTION",
        help="each instance deployed with the new image never turns healthy with this probability",
    )
    simulation.add_argument(
        "--fault",
        dest="faults",
        type=fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="a scenario-file fault: JSON, or kind=...,image_version=...,fraction=... (repeatable)",
    )
    monte_carlo = parser.add_argument_group("Monte Carlo")
    monte_carlo.add_argument("--runs", type=int, default=None, metavar="N", help="N runs, seeds SEED..SEED+N-1")
    monte_carlo.add_argument(
        "--max-abort-probability",
        type=fraction,
        default=0.0,
        metavar="P",
        help="with --runs: exit 1 when more than this share of runs abort (default 0)",
    )
    monte_carlo.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="worker processes (default: one per available core)"
    )
    live = parser.add_argument_group("where the scale set is")
    live.add_argument("-g", "--resource-group", default=None, help="the resource group of a live scale set")
    live.add_argument("-n", "--name", default=None, help="the live scale set's name (or a file's scale set)")
    live.add_argument("--parameters", default=None, metavar="FILE", help="ARM parameters file for a template")
    live.add_argument("--cloud", choices=("local", "azure"), default=None, help="live: the emulator or real Azure")
    live.add_argument("--endpoint", default=None, metavar="URL", help="live: the emulator's URL (as scaleset vmss)")
    live.add_argument("--data-dir", default=None, metavar="DIR", help="live: the emulator's data dir")
    live.add_argument("--subscription", default=None, metavar="ID", help="live: the subscription id")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from scaleset.safety.inputs import InputError, load_from_args, single  # noqa: PLC0415 - the loader is its own work item

    if args.runs is not None and args.runs < 1:
        return _trouble("--runs must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        return _trouble("--jobs must be at least 1")
    source = args.source or ("live" if args.resource_group or args.name else None)
    if source is None:
        return _trouble("give a SOURCE (a file, live:GROUP/NAME) or -g GROUP -n NAME for a live scale set")
    try:
        patch = _read_patch(args.patch) if args.patch else None
        scale_set = single(load_from_args(source, args), source)
        options = Options(
            seed=args.seed,
            boot=args.boot,
            app_start=args.app_start,
            bad_image=args.bad_image,
            faults=tuple(args.faults),
            **({"health_wait": args.health_wait} if args.health_wait is not None else {}),
        )
        whatif = WhatIf(scale_set, Change(tuple(args.sets), patch, args.force_string), options)
    except (InputError, WhatIfError) as error:
        return _trouble(str(error))
    outcome = whatif.run()
    report = build_report(whatif, outcome)
    summary = None
    if args.runs is not None:
        summary = whatif.monte_carlo(args.runs, jobs=args.jobs or _cores())
        passed = summary.abort_probability <= args.max_abort_probability
        report["monteCarlo"] = {
            **summary.to_json(),
            "maxAbortProbability": args.max_abort_probability,
            "passed": passed,
        }
        code = EXIT_OK if passed else EXIT_ABORTS
    else:
        code = EXIT_ABORTS if outcome.verdict in ABORTED else EXIT_OK
    if args.output == "json":
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_text(whatif, outcome, summary, args.max_abort_probability, Console(highlight=False, soft_wrap=True))
    return code


def _trouble(message: str) -> int:
    print(f"scaleset what-if: {message}", file=sys.stderr)
    return EXIT_TROUBLE


def _read_patch(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise WhatIfError(f"{path}: cannot read the patch ({exc.strerror})") from None
    except ValueError as exc:
        raise WhatIfError(f"{path}: the patch is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise WhatIfError(f"{path}: a PATCH body is a JSON object")
    return data


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def build_report(whatif: WhatIf, outcome: Outcome) -> dict[str, Any]:
    scale_set, fleet, options = whatif.scale_set, whatif.fleet, whatif.options
    return {
        "scaleSet": {
            "name": scale_set.name,
            "resourceGroup": scale_set.resource_group,
            "origin": scale_set.origin,
            "mode": whatif.mode,
            "capacity": whatif.capacity,
            "rollingUpgradePolicy": whatif.policy,
        },
        "change": {
            "set": list(whatif.change.sets),
            "patch": whatif.change.patch,
            "modelChanged": whatif.model_changed,
            "imageVersion": {"from": whatif.image_from, "to": whatif.image_to},
        },
        "fleet": {
            "instances": fleet.instances,
            "staleIds": _strs(fleet.stale),
            "unhealthyIds": _strs(fleet.unhealthy),
            "stoppedIds": _strs(fleet.stopped),
            "protectedIds": _strs(fleet.protected),
            "zones": fleet.zones,
            "imageVersions": fleet.image_versions,
        },
        "simulation": {
            "seed": options.seed,
            "bootSeconds": list(options.boot),
            "appStartSeconds": list(options.app_start),
            "healthWaitSeconds": options.health_wait,
            "faults": [f.model_dump(mode="json", exclude_defaults=True) for f in whatif.faults],
        },
        "result": {**outcome.to_json(), "duration": format_duration(outcome.duration)},
    }


def _strs(ids: Sequence[int]) -> list[str]:
    return [str(i) for i in ids]
