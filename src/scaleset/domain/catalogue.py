"""The image catalogue: which image versions exist, what each runs, and which ones ``latest`` may pick.

An :class:`ImageVersion` is addressed the way an ``imageReference`` addresses it: by publisher, offer, sku and
version (compared without regard to case, as Azure does), or by a gallery image id
(``/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{g}/images/{image}``, with or
without ``/versions/{v}`` in the reference). It says what an instance of it runs: a command line, environment and
working directory whose ``{placeholders}`` are filled in per instance (:data:`PLACEHOLDERS`).

A version marked ``excludeFromLatest`` can be deployed only by naming it: ``latest`` never picks it, as Azure's
gallery image versions with ``excludeFromLatest`` behave.

:data:`BUILTIN_IMAGES` is the demo application (:mod:`scaleset.demo.app`) in healthy and broken versions, so that
every failure mode of the engine can be seen with real processes.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scaleset.domain.images import version_key
from scaleset.domain.resources import ImageReference

PLACEHOLDERS: dict[str, str] = {
    "python": "the server's Python interpreter",
    "port": "the instance's TCP port (the application listens on 127.0.0.1 at it)",
    "instance_id": "the instance id",
    "zone": "the instance's zone ('' without zones)",
    "data_dir": "the instance's data directory (kept across reimage)",
    "os_dir": "the instance's OS directory (fresh after a reimage; customData is its file 'customdata')",
    "version": "the image version",
}
"""The placeholders a command, an environment value or a working directory may use, and what each is."""

_VERSION = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,10}){0,3}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GALLERY_IMAGE = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+/images/[^/]+$",
    re.IGNORECASE,
)
_GALLERY_VERSION = re.compile(r"/versions/[^/]*$", re.IGNORECASE)


def check_template(text: str) -> None:
    """Raise ``ValueError`` unless every ``{field}`` in ``text`` is a known placeholder (``{{``/``}}`` are braces).

    >>> check_template("--port={port} {{literal}}")
    """
    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(
            f"malformed placeholder in '{text}' ({exc}); write a literal brace as '{{{{' or '}}}}'"
        ) from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            shown = "{" + name + "}" if name else "{}"
            raise ValueError(f"unknown placeholder '{shown}' in '{text}'; known: {known}")
        if spec or conversion:
            raise ValueError(f"placeholder '{{{name}}}' in '{text}' takes no conversion or format spec")


def normalise_gallery_id(image_id: str) -> str:
    """A gallery image id without a trailing ``/versions/{v}`` or slash, lower-cased (for comparison)."""
    trimmed = image_id.strip().rstrip("/")
    return _GALLERY_VERSION.sub("", trimmed).rstrip("/").lower()


class ImageVersion(BaseModel):
    """One version of an image and what an instance of it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    publisher: str
    offer: str
    sku: str
    version: str
    gallery: str | None = None
    command: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    excludeFromLatest: bool = False
    description: str | None = None

    @field_validator("publisher", "offer", "sku")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"'{value}' is not a valid name: use letters, digits, '.', '_' and '-' (at most 128, "
                "starting with a letter or digit)"
            )
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(f"version '{value}' is not dotted numbers (1 to 4 of them, as 1.0.0)")
        return value

    @field_validator("gallery")
    @classmethod
    def _gallery(cls, value: str | None) -> str | None:
        if value is None:
            return None
        trimmed = value.strip().rstrip("/")
        if not _GALLERY_IMAGE.match(trimmed):
            raise ValueError(
                f"gallery '{value}' is not a gallery image id: expected /subscriptions/{{s}}/resourceGroups/{{rg}}"
                "/providers/Microsoft.Compute/galleries/{g}/images/{image} (no /versions/...)"
            )
        return trimmed

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str]) -> list[str]:
        if not value or not value[0].strip():
            raise ValueError("command must not be empty: give the program and its arguments")
        for part in value:
            check_template(part)
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment variable name '{name}' is not valid (letters, digits, '_')")
            check_template(text)
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                raise ValueError("cwd must not be empty (leave it out for the default)")
            check_template(value)
        return value

    @model_validator(mode="after")
    def _no_nul(self) -> ImageVersion:
        texts = [*self.command, *self.env, *self.env.values(), self.cwd or ""]
        if any("\0" in text for text in texts):
            raise ValueError("command, env and cwd must not contain NUL characters")
        return self

    @property
    def key(self) -> str:
        """``publisher:offer:sku:version`` lower-cased: the catalogue's key (an image URN)."""
        return image_key(self.publisher, self.offer, self.sku, self.version)

    @property
    def urn(self) -> str:
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"

    @property
    def identity(self) -> tuple[str, str, str]:
        """``(publisher, offer, sku)`` lower-cased: the image this is a version of."""
        return (self.publisher.lower(), self.offer.lower(), self.sku.lower())


def image_key(publisher: str, offer: str, sku: str, version: str) -> str:
    return f"{publisher}:{offer}:{sku}:{version}".lower()


def _addressed(images: Sequence[ImageVersion], ref: ImageReference | None) -> set[tuple[str, str, str]]:
    """The images (as identities) ``ref`` addresses: its publisher/offer/sku, or, for a gallery image id, the
    publisher/offer/sku of every version that declares that gallery (a gallery image definition has such an
    identifier), so versions published without ``gallery`` are reachable through it too."""
    if ref is None:
        return set()
    if ref.id:
        wanted = normalise_gallery_id(ref.id)
        return {image.identity for image in images if image.gallery is not None and image.gallery.lower() == wanted}
    if ref.publisher is None or ref.offer is None or ref.sku is None:
        return set()
    return {(ref.publisher.lower(), ref.offer.lower(), ref.sku.lower())}


def versions_for(images: Sequence[ImageVersion], ref: ImageReference | None) -> list[str]:
    """The versions ``latest`` may resolve to for ``ref``, oldest first: every version of the image it addresses
    that is not marked ``excludeFromLatest``.

    >>> from scaleset.domain.resources import ImageReference
    >>> versions_for(BUILTIN_IMAGES, ImageReference(publisher="Scaleset", offer="demo", sku="app", version="latest"))
    ['1.0.0', '1.1.0']
    """
    addressed = _addressed(images, ref)
    found = {image.version for image in images if not image.excludeFromLatest and image.identity in addressed}
    return sorted(found, key=version_key)


def lookup(images: Sequence[ImageVersion], ref: ImageReference | None, version: str) -> ImageVersion | None:
    """The image version ``ref`` addresses at exactly ``version`` (excluded-from-latest versions included)."""
    addressed = _addressed(images, ref)
    for image in images:
        if image.version == version and image.identity in addressed:
            return image
    return None


def gallery_conflict(images: Sequence[ImageVersion], candidate: ImageVersion) -> str | None:
    """Why ``candidate`` cannot join ``images``, or None: a gallery image id stands for one publisher/offer/sku,
    and the versions of one publisher/offer/sku name at most one gallery image."""
    for image in images:
        if image.key == candidate.key:
            continue
        same_gallery = (
            candidate.gallery is not None
            and image.gallery is not None
            and image.gallery.lower() == candidate.gallery.lower()
        )
        if same_gallery and image.identity != candidate.identity:
            return (
                f"gallery image '{candidate.gallery}' already holds the versions of "
                f"{image.publisher}:{image.offer}:{image.sku}; a gallery image has one publisher/offer/sku"
            )
        if (
            image.identity == candidate.identity
            and candidate.gallery is not None
            and image.gallery is not None
            and image.gallery.lower() != candidate.gallery.lower()
        ):
            return (
                f"the versions of {candidate.publisher}:{candidate.offer}:{candidate.sku} are in gallery image "
                f"'{image.gallery}'; publish with that gallery or without one"
            )
    return None


def render_command(image: ImageVersion, **values: Any) -> tuple[list[str], dict[str, str], str | None]:
    """The command line, environment and working directory of one instance, placeholders filled in.

    ``values`` are the placeholders (:data:`PLACEHOLDERS`; ``version`` defaults to the image's). A value of None
    renders as an empty string (no zone). A placeholder the image uses but ``values`` lacks is a ``ValueError``, as is
    a name that is not a placeholder.
    """
    unknown = sorted(set(values) - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"not placeholders: {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}")
    mapping = {name: "" if value is None else str(value) for name, value in values.items()}
    mapping.setdefault("version", image.version)

    def fill(text: str) -> str:
        try:
            return text.format_map(mapping)
        except KeyError as exc:
            raise ValueError(f"image {image.urn} uses {{{exc.args[0]}}} but no value was given for it") from None

    argv = [fill(part) for part in image.command]
    env = {name: fill(text) for name, text in image.env.items()}
    cwd = fill(image.cwd) if image.cwd is not None else None
    return argv, env, cwd


# ---------------------------------------------------------------------- the built-in demo application

DEMO_PUBLISHER = "scaleset"
DEMO_OFFER = "demo"
DEMO_SKU = "app"
DEMO_GALLERY = (
    "/subscriptions/5ca1e5e7-5ca1-45e7-a000-000000000001/resourceGroups/images/providers/Microsoft.Compute"
    "/galleries/scaleset/images/demo"
)
DEMO_CRASH_AFTER = 20.0
DEMO_START_DELAY = 45.0

DEMO_COMMAND = [  # the demo application with every placeholder it takes; tests publish variants of it
    "{python}",
    "-m",
    "scaleset.demo.app",
    "--port",
    "{port}",
    "--version",
    "{version}",
    "--instance-id",
    "{instance_id}",
    "--zone",
    "{zone}",
    "--data-dir",
    "{data_dir}",
    "--os-dir",
    "{os_dir}",
]


def _demo(version: str, description: str, *flags: str, excluded: bool = False) -> ImageVersion:
    return ImageVersion(
        publisher=DEMO_PUBLISHER,
        offer=DEMO_OFFER,
        sku=DEMO_SKU,
        version=version,
        gallery=DEMO_GALLERY,
        command=[*DEMO_COMMAND, *flags],
        env={"PYTHONUNBUFFERED": "1"},
        excludeFromLatest=excluded,
        description=description,
    )


BUILTIN_IMAGES: list[ImageVersion] = [
    _demo("1.0.0", "The demo application: GET / answers its version and instance id; GET /health is rich Healthy."),
    _demo("1.1.0", "The demo application, a newer healthy release (the same behaviour as 1.0.0)."),
    _demo(
        "3.0.0",
        "Broken: never healthy. GET /health and GET / answer 500 (binary health reads Unhealthy, rich health "
        "Unknown). Excluded from latest.",
        "--mode",
        "never",
        excluded=True,
    ),
    _demo(
        "3.1.0",
        f"Broken: healthy, then the process exits (code 1) {DEMO_CRASH_AFTER:g} s after it starts listening. "
        "Excluded from latest.",
        "--mode",
        "crash",
        "--crash-after",
        f"{DEMO_CRASH_AFTER:g}",
        excluded=True,
    ),
    _demo(
        "3.2.0",
        f"Broken: slow to start. Listens only {DEMO_START_DELAY:g} s after it starts, past a typical grace period; "
        "healthy from then on. Excluded from latest.",
        "--mode",
        "slow",
        "--start-delay",
        f"{DEMO_START_DELAY:g}",
        excluded=True,
    ),
    _demo(
        "3.3.0",
        "Broken: rich health Unknown. GET /health answers 200 with a body lacking ApplicationHealthState (binary "
        "health reads Healthy). Excluded from latest.",
        "--mode",
        "unknown",
        excluded=True,
    ),
]
"""The demo application's versions, always in the catalogue; they cannot be replaced or deleted."""
