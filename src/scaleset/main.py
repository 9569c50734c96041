"""The ``scaleset`` command: one entry point, each verb in the layer that owns it."""

from __future__ import annotations

import argparse
import sys

from scaleset import __version__
from scaleset.api import serve
from scaleset.sim import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scaleset", description=__doc__)
    parser.add_argument("--version", action="version", version=f"scaleset {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(sub)
    sim_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
