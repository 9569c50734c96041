"""Which concrete image version an instance gets from an ``imageReference``.

``latest`` (and a gallery image id without ``/versions/...``) means the newest version in the catalogue *when the
instance is deployed*; instances already running keep theirs. A pinned version is used as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from scaleset.domain.resources import ImageReference

_GALLERY_VERSION = re.compile(r"/versions/(?P<version>[^/]+)/?$", re.IGNORECASE)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for dotted versions: numbers compare as numbers (``1.10.0`` is newer than ``1.9.0``)."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.split("."))


def newest(versions: Iterable[str]) -> str | None:
    listed = list(versions)
    return max(listed, key=version_key) if listed else None


def requested_version(image: ImageReference | None) -> str | None:
    """The version the reference asks for: a version string, ``"latest"``, or None when it names none."""
    if image is None:
        return None
    if image.id:
        match = _GALLERY_VERSION.search(image.id)
        return match.group("version") if match else "latest"
    return image.version


def tracks_latest(image: ImageReference | None) -> bool:
    """``version: latest`` (any case) on a platform image, or a gallery image id without a version."""
    wanted = requested_version(image)
    return wanted is not None and wanted.lower() == "latest"


def resolve_version(image: ImageReference | None, catalogue: Iterable[str]) -> str | None:
    """The exact version a new or upgraded instance gets.

    >>> from scaleset.domain.resources import ImageReference
    >>> resolve_version(ImageReference(version="latest"), ["1.0.0", "1.10.0", "1.9.2"])
    '1.10.0'
    >>> resolve_version(ImageReference(version="1.0.0"), ["2.0.0"])
    '1.0.0'
    """
    if not tracks_latest(image):
        return requested_version(image)
    return newest(catalogue) or "latest"
