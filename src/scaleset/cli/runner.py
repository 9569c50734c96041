"""Running one client command: resolve the target, call the handler, query and print, turn failures into lines."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scaleset.cli.connect import Session, Target, resolve_target
from scaleset.cli.errors import EXIT_OK, describe
from scaleset.cli.output import apply_query, write


@dataclass(frozen=True)
class Outcome:
    """A result to print together with a non-default exit code (``rolling-upgrade wait`` on Faulted)."""

    value: Any
    exit_code: int = EXIT_OK


Handler = Callable[[Session, argparse.Namespace], Any]


def _quiet_sdk_logging() -> None:
    """azure-core, azure-identity and msal log warnings about failures we report ourselves, in one line."""
    for name in ("azure", "msal"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


def execute(handler: Handler, args: argparse.Namespace) -> int:
    _quiet_sdk_logging()
    target: Target | None = None
    try:
        target = resolve_target(
            args.cloud, endpoint=args.endpoint, data_dir=args.data_dir, subscription=args.subscription
        )
        result = handler(Session(target), args)
        code = EXIT_OK
        if isinstance(result, Outcome):
            result, code = result.value, result.exit_code
        value = apply_query(args.query, result)
        write(value, args.output, table=None if args.query is not None else getattr(args, "table", None))
        return code
    except BrokenPipeError:
        return EXIT_OK  # the reader went away (``| head``): nothing left to report
    except (Exception, KeyboardInterrupt) as exc:
        line, code = describe(exc, endpoint=target.endpoint if target is not None and target.local else None)
        print(line, file=sys.stderr)
        return code


def command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    """The ``run`` callable ``scaleset.main`` calls for a parsed client command."""

    def run(args: argparse.Namespace) -> int:
        return execute(handler, args)

    run.__doc__ = handler.__doc__
    return run
