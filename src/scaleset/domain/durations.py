"""ISO 8601 durations as ARM uses them (``PT5M``, ``PT1H30M``, ``P1DT2H``, ``PT0.5S``).

Only day and time parts are accepted: years, months and weeks have no fixed length, and no ARM field this
project reads uses them. Parsing is strict: ``"5m"``, ``"PT"`` and ``"P"`` are rejected.
"""

from __future__ import annotations

import re

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration: ``parse_duration("PT1H30M") == 5400.0``.

    Raises ValueError for anything else.
    """
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]


def format_duration(seconds: float) -> str:
    """The canonical ARM spelling: ``format_duration(5400) == "PT1H30M"``, ``format_duration(0) == "PT0S"``."""
    whole = round(seconds, 3)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = "PT"
    if hours:
        out += f"{int(hours)}H"
    if minutes:
        out += f"{int(minutes)}M"
    if secs or out == "PT":
        out += f"{secs:g}S"
    return out
