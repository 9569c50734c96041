"""The ``scaleset`` command: one entry point, each verb in the layer that owns it.

``serve`` (the ARM endpoint) and ``sim`` (scenario files) run the emulator here; ``vmss``, ``group`` and ``fault``
are the client, which talks to a server over HTTPS only.
"""

from __future__ import annotations

import argparse
import sys
from typing import cast

from scaleset import __version__
from scaleset import cli as client
from scaleset.api import serve
from scaleset.safety import audit_cli, evidence_cli, whatif_cli
from scaleset.safety import cli as safety_cli
from scaleset.sim import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
    parser = client.CliArgumentParser(prog="scaleset", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scaleset {__version__}")
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]", parser.add_subparsers(dest="command", metavar="COMMAND")
    )
    serve.add_parser(sub)
    sim_cli.add_parser(sub)
    safety_cli.add_parsers(sub)
    client.add_parsers(sub)
    audit_cli.add_parser(sub)
    whatif_cli.add_parser(sub)
    evidence_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (one line on stderr, exit 2)
        return done.code if isinstance(done.code, int) else 2
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
