"""``scaleset audit SOURCE...``: which settings of a scale set will hurt, why (with its numbers), and how to fix them.

Sources are whatever :func:`scaleset.safety.inputs.load` reads: an ARM template, ``az vmss show`` / SDK JSON, a
Terraform plan, or a live scale set (``-g GROUP -n NAME``, the emulator or ``--cloud azure``). Exit codes: 0 no finding
at or above ``--fail-on``, 1 such findings, 2 a usage or input error (a missing file, a suppression without a reason).
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from scaleset.safety.audit import (
    EXIT_USAGE,
    FAIL_ON,
    SuppressionError,
    Target,
    audit,
    cli_suppressions,
    default_doc_base,
    dumps,
    print_text,
    to_json,
    to_sarif,
)
from scaleset.safety.inputs import InputError, is_live, load_from_args, split_source

DESCRIPTION = """Check scale sets for upgrade-policy risks and misconfigurations, with the numbers of each set.

SOURCE is an ARM template, az vmss show / SDK JSON, or a Terraform plan (JSON); -g GROUP -n NAME audits a live
scale set (the emulator, or --cloud azure). Rules are documented in docs/rules/.

Suppress a rule with a reason: a tag on the scale set, "scaleset-audit-suppress": "SS004: reason; SS010: reason",
or --suppress SS004="reason". Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it, 2 a usage or
input error."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "audit",
        help="check scale sets for upgrade-policy risks and misconfigurations",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="ARM template, az vmss show / SDK JSON, or Terraform plan (JSON); 'live' or none with -g/-n",
    )
    parser.add_argument("-g", "--resource-group", default=None, help="resource group of a live scale set")
    parser.add_argument("-n", "--name", default=None, help="a live scale set's name, or the one to pick from a file")
    parser.add_argument("--parameters", default=None, metavar="FILE", help="ARM parameters file for a template")
    parser.add_argument("--cloud", choices=("local", "azure"), default=None, help="live: the emulator or real Azure")
    parser.add_argument("--endpoint", default=None, metavar="URL", help="live: the emulator's URL")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="live: the emulator's data directory")
    parser.add_argument("--subscription", default=None, metavar="ID", help="live: subscription id")
    parser.add_argument("--output", "-o", choices=("text", "json", "sarif"), default="text")
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="error",
        help="exit 1 when a finding is at or above this severity (default: error)",
    )
    parser.add_argument(
        "--suppress",
        action="append",
        default=[],
        metavar='RULE="REASON"',
        help='suppress a rule on every input, with a reason (repeatable): --suppress SS004="staging only"',
    )
    parser.add_argument(
        "--doc-base",
        default=None,
        metavar="URL",
        help="SARIF helpUri base for rule pages (default: this checkout's docs/rules/, else the relative path)",
    )
    parser.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"scaleset audit: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    sources: list[str] = list(args.sources)
    if not sources:
        if not (args.resource_group and args.name):
            return _fail("give a SOURCE file, or -g GROUP -n NAME for a live scale set")
        sources = ["live"]
    try:
        suppressions = cli_suppressions(args.suppress)
    except SuppressionError as error:
        return _fail(str(error))
    targets: list[Target] = []
    for source in sources:
        try:
            found = load_from_args(source, args)
        except InputError as error:
            return _fail(str(error))
        path = None if is_live(source) else split_source(source.strip())[0]
        targets.extend(Target(found_input, path) for found_input in found)
    try:
        report = audit(targets, suppressions=suppressions)
    except SuppressionError as error:
        return _fail(str(error))
    if args.output == "json":
        sys.stdout.write(dumps(to_json(report, fail_on=args.fail_on)))
    elif args.output == "sarif":
        sys.stdout.write(dumps(to_sarif(report, doc_base=args.doc_base or default_doc_base())))
    else:
        print_text(report, Console(highlight=False, soft_wrap=True), fail_on=args.fail_on)
    return report.exit_code(args.fail_on)
