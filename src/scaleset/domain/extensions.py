"""Extension versions: which exact version of each extension an instance runs, and when it is out of date.

An extension names ``typeHandlerVersion`` as ``major.minor``. Publishers release versions over time (the emulator
keeps them in an extension catalogue, published by hand or by a scenario). An instance deployed now gets, for each
extension, the newest published version with the same major version (``autoUpgradeMinorVersion``, on unless set
false, or ``enableAutomaticUpgrade``), or ``typeHandlerVersion`` as written when nothing matching is published.

Extensions with ``enableAutomaticUpgrade: true`` are then kept up to date by the platform: when a newer version of
the same major is published, an *extension rolling upgrade* brings every instance to it, batch by batch under the
scale set's ``rollingUpgradePolicy``, whatever the upgrade mode (reference §5.1). ``POST extensionRollingUpgrade``
starts one by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from scaleset.domain.images import newest
from scaleset.domain.resources import Extension

ExtensionCatalogue = Callable[[str, str], list[str]]
"""The published versions of the extension ``(publisher, type)``, compared without case."""

EXTENSION_UPGRADE = "ExtensionUpgrade"


class ExtensionVersion(BaseModel):
    """One published extension version in the catalogue."""

    model_config = ConfigDict(extra="forbid")

    publisher: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=64)
    description: str = ""

    @field_validator("version")
    @classmethod
    def _dotted(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
            raise ValueError("must be a dotted version of numbers with at least major and minor, such as 2.1 or 2.1.3")
        return value

    @property
    def key(self) -> str:
        return extension_key(self.publisher, self.type, self.version)


def extension_key(publisher: str, kind: str, version: str) -> str:
    return f"{publisher.lower()}/{kind.lower()}/{version}"


def _major(version: str | None) -> str | None:
    return version.split(".")[0] if version else None


def follows_minor_versions(extension: Extension) -> bool:
    props = extension.properties
    return bool(props.enableAutomaticUpgrade) or props.autoUpgradeMinorVersion is not False


def newest_matching(extension: Extension, catalogue: ExtensionCatalogue) -> str | None:
    """The newest published version of ``extension`` with its major version, or None."""
    props = extension.properties
    if not props.publisher or not props.type:
        return None
    major = _major(props.typeHandlerVersion)
    versions = [v for v in catalogue(props.publisher, props.type) if major is None or _major(v) == major]
    return newest(versions)


def deployed_versions(extensions: Sequence[Extension], catalogue: ExtensionCatalogue) -> dict[str, str]:
    """The exact version of each named extension an instance deployed now gets."""
    out: dict[str, str] = {}
    for extension in extensions:
        if not extension.name:
            continue
        found = newest_matching(extension, catalogue) if follows_minor_versions(extension) else None
        version = found or extension.properties.typeHandlerVersion
        if version:
            out[extension.name] = version
    return out


def upgrade_targets(extensions: Sequence[Extension], catalogue: ExtensionCatalogue) -> dict[str, str]:
    """For each extension with ``enableAutomaticUpgrade``, the newest published version of its major."""
    out: dict[str, str] = {}
    for extension in extensions:
        if extension.name and extension.properties.enableAutomaticUpgrade:
            found = newest_matching(extension, catalogue)
            if found is not None:
                out[extension.name] = found
    return out


def outdated(deployed: Mapping[str, Any], targets: Mapping[str, str]) -> bool:
    """Whether an instance with ``deployed`` extension versions is behind ``targets``."""
    return any(deployed.get(name) != version for name, version in targets.items())
