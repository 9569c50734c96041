"""Declaring a client command: its parser, with the shared option sets, bound to its handler and table layout."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from scaleset.cli.output import TableTransform
from scaleset.cli.parsing import global_options, lro_options, target_options
from scaleset.cli.runner import Handler, command

if TYPE_CHECKING:
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = argparse._SubParsersAction


@dataclass(frozen=True)
class Parents:
    """The option sets commands share (argparse parent parsers)."""

    globals: argparse.ArgumentParser
    target: argparse.ArgumentParser
    lro: argparse.ArgumentParser

    @classmethod
    def build(cls) -> Parents:
        return cls(globals=global_options(), target=target_options(), lro=lro_options())


def leaf(
    sub: SubParsers,
    name: str,
    handler: Handler,
    summary: str,
    parents: list[argparse.ArgumentParser],
    *,
    table: TableTransform | None = None,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=summary, description=summary[:1].upper() + summary[1:] + ".", parents=parents)
    parser.set_defaults(run=command(handler), table=table)
    return parser


def group(sub: SubParsers, name: str, summary: str) -> SubParsers:
    """A command group (``vmss``, ``rolling-upgrade``): a parser whose only argument is the next verb."""
    parser = sub.add_parser(name, help=summary, description=summary[:1].upper() + summary[1:] + ".")
    return parser.add_subparsers(dest=f"{name.replace('-', '_')}_command", metavar="COMMAND", required=True)
