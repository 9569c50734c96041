"""Argument parsing shared by every client command: one-line usage errors, the global options, value types."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from jmespath.exceptions import JMESPathError

from scaleset.cli.output import FORMATS, compile_query

_TRUE = frozenset({"true", "yes", "y", "1", "on", "enabled"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "disabled"})
_ISO_DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$", re.IGNORECASE)


class CliArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def three_state(text: str) -> bool:
    """``az``'s three-state flags: ``--max-surge`` alone is true; ``--max-surge false`` is false."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def percent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole percentage, got '{text}'") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0 to 100, got {value}")
    return value


def enum_choice(*values: str) -> Callable[[str], str]:
    """A value type for ``az``'s enum flags: any case in, the canonical spelling out (``suspend`` is ``Suspend``)."""
    canonical = {value.lower(): value for value in values}

    def parse(text: str) -> str:
        found = canonical.get(text.strip().lower())
        if found is None:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(values)}, got '{text}'")
        return found

    parse.__name__ = "/".join(values)
    return parse


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def iso_duration(text: str) -> str:
    """An ISO 8601 duration as Azure takes it (``PT30S``); plain seconds (``30``) are written ``PT30S``."""
    stripped = text.strip()
    if stripped.isdigit():
        return f"PT{int(stripped)}S"
    if _ISO_DURATION.match(stripped):
        return stripped.upper()
    raise argparse.ArgumentTypeError(f"expected an ISO 8601 duration such as PT30S (or seconds), got '{text}'")


def duration_value(text: str) -> float | str:
    """A fault duration: seconds as a number, or an ISO 8601 string the server parses."""
    try:
        return float(text)
    except ValueError:
        pass
    if _ISO_DURATION.match(text.strip()):
        return text.strip().upper()
    raise argparse.ArgumentTypeError(f"expected seconds or an ISO 8601 duration such as PT5M, got '{text}'")


def jmespath_query(text: str) -> Any:
    try:
        return compile_query(text)
    except JMESPathError as exc:
        raise argparse.ArgumentTypeError(f"invalid JMESPath query '{text}': {' '.join(str(exc).split())}") from None


def global_options() -> argparse.ArgumentParser:
    """``--output``, ``--query`` and where to send requests: on every client command, after its verb (as ``az``)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument(
        "-o", "--output", choices=FORMATS, default="json", help="output format (default: json); table uses rich"
    )
    group.add_argument(
        "--query", type=jmespath_query, default=None, metavar="JMESPATH", help="JMESPath query applied to the result"
    )
    group.add_argument(
        "--cloud",
        choices=("local", "azure"),
        default="local",
        help="local: the scaleset emulator (default); azure: real Azure with DefaultAzureCredential",
    )
    group.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="the emulator's URL (default: $SCALESET_ENDPOINT or https://127.0.0.1:8443)",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="the emulator's data dir, for its CA and client secret (default: as scaleset serve)",
    )
    group.add_argument(
        "--subscription",
        default=None,
        metavar="ID",
        help="subscription id (default: the emulator's; $AZURE_SUBSCRIPTION_ID)",
    )
    return parent


def target_options(*, name_help: str = "the scale set's name") -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-g", "--resource-group", required=True, help="the resource group")
    parent.add_argument("-n", "--name", "--vmss-name", dest="name", required=True, help=name_help)
    return parent


def lro_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--no-wait", action="store_true", help="do not wait for the long-running operation")
    parent.add_argument(
        "--timeout",
        type=positive_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="give up waiting after this many seconds (default: 3600); the operation itself goes on",
    )
    return parent


def add_three_state(parser: argparse._ActionsContainer, flag: str, help_text: str) -> None:
    parser.add_argument(
        flag, type=three_state, nargs="?", const=True, default=None, metavar="{true,false}", help=help_text
    )
