"""Every upgrade-relevant setting of a scale set, with Azure's defaults made explicit, and the batch arithmetic.

:func:`upgrade_fields` lists them in a fixed order (what ``scaleset compare`` shows side by side): capacity, size,
orchestration, zones; the upgrade mode and every rolling and automatic-OS field; automatic repairs; the health source
and its settings; the image and its version strategy; the scale-in policy. A field the source did not set carries
``default=True`` and Azure's default value. :func:`batch_plan` turns the rolling policy into batches with
:mod:`scaleset.domain.fenceposts`, as the rolling planner does (zone by zone unless cross-zone, in-place batches
shrunk to fit ``maxUnhealthyInstancePercent``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scaleset.domain import fenceposts
from scaleset.domain.durations import parse_duration
from scaleset.domain.health import ProbeSettings, health_extension_index, probe_settings
from scaleset.domain.resources import UpgradeMode
from scaleset.safety.inputs import ScaleSetInput, lookup

UPGRADE = "properties.upgradePolicy"
ROLLING = f"{UPGRADE}.rollingUpgradePolicy"
AUTO_OS = f"{UPGRADE}.automaticOSUpgradePolicy"
REPAIRS = "properties.automaticRepairsPolicy"
SCALE_IN = "properties.scaleInPolicy"
IMAGE = "properties.virtualMachineProfile.storageProfile.imageReference"
PROBE = "properties.virtualMachineProfile.networkProfile.healthProbe.id"
EXTENSIONS = "properties.virtualMachineProfile.extensionProfile.extensions"

ROLLING_FIELDS = (
    "maxBatchInstancePercent",
    "maxUnhealthyInstancePercent",
    "maxUnhealthyUpgradedInstancePercent",
    "pauseTimeBetweenBatches",
    "enableCrossZoneUpgrade",
    "prioritizeUnhealthyInstances",
    "rollbackFailedInstancesOnPolicyBreach",
    "maxSurge",
)
AUTO_OS_FIELDS = (
    "enableAutomaticOSUpgrade",
    "disableAutomaticRollback",
    "useRollingUpgradePolicy",
    "osRollingUpgradeDeferral",
)
_GALLERY_VERSION = re.compile(r"/versions/(?P<version>[^/]+)/?$", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    key: str  # a dotted ARM path, or ``health.<setting>`` / ``image.strategy`` for derived values
    group: str
    label: str
    value: Any  # JSON, normalised for comparison
    text: str  # as shown
    default: bool = False  # the source did not set it: Azure's default (or the emulator's assumption) applies

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "text": self.text, "default": self.default}


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "[]"
    return str(value)


def _set(inp: ScaleSetInput, path: str) -> bool:
    present, value = lookup(inp.body, path)
    return present and value is not None


def _field(inp: ScaleSetInput, path: str, group: str, label: str, value: Any) -> Field:
    plain = str(value) if isinstance(value, StrEnum) else value
    return Field(path, group, label, plain, shown(plain), default=not _set(inp, path))


# ---------------------------------------------------------------------------------------------- batches


@dataclass(frozen=True)
class BatchPlan:
    """How a rollout of every instance would be cut, all instances healthy."""

    total: int
    size: int
    batches: int
    zone_by_zone: bool
    surge: bool
    in_use: bool  # the rolling policy drives upgrades (Rolling mode, or automatic OS upgrades that follow it)
    tolerated_unhealthy: int
    tolerated_first_batch: int  # maxUnhealthyUpgradedInstancePercent after the first batch
    tolerated_upgraded: int  # ... after the last batch (every instance upgraded)
    pauses: int
    pause_seconds: float | None  # None: the pause is not a duration (an unresolved value)

    @property
    def text(self) -> str:
        if self.total == 0:
            return "no instances"
        where = ", zone by zone" if self.zone_by_zone else ""
        return f"batches of {self.size} ({self.batches} batch{'es' if self.batches != 1 else ''}{where})"


def zone_counts(inp: ScaleSetInput) -> dict[str, int]:
    """Instances per zone: observed for a live set, else the capacity spread as the emulator places it."""
    if inp.instances is not None:
        return dict(Counter(i.zone or "" for i in inp.instances))
    zones = sorted(inp.model.zones or [])
    total = inp.capacity
    if not zones:
        return {"": total} if total else {}
    base, extra = divmod(total, len(zones))
    return {zone: base + (1 if index < extra else 0) for index, zone in enumerate(zones) if base or index < extra}


def rolling_in_use(inp: ScaleSetInput) -> bool:
    policy = inp.model.properties.upgradePolicy
    automatic = policy.automaticOSUpgradePolicy
    return policy.mode is UpgradeMode.ROLLING or (
        automatic.enableAutomaticOSUpgrade and automatic.useRollingUpgradePolicy
    )


def batch_plan(inp: ScaleSetInput) -> BatchPlan:
    policy = inp.model.rolling_policy
    total = inp.capacity
    surge = bool(policy.maxSurge)
    if surge:
        size = fenceposts.batch_size(total, policy.maxBatchInstancePercent)
    else:
        size = fenceposts.shrunk_batch_size(
            total=total,
            max_batch_percent=policy.maxBatchInstancePercent,
            max_unhealthy_percent=policy.maxUnhealthyInstancePercent,
            unhealthy=0,
        )
    counts = zone_counts(inp)
    zone_by_zone = not policy.enableCrossZoneUpgrade and len([z for z in counts if z]) > 1
    if size <= 0:
        batches = 0
    elif zone_by_zone:
        batches = sum(math.ceil(n / size) for n in counts.values())
    else:
        batches = math.ceil(total / size)
    try:
        pause: float | None = parse_duration(policy.pauseTimeBetweenBatches)
    except ValueError:
        pause = None
    return BatchPlan(
        total=total,
        size=size,
        batches=batches,
        zone_by_zone=zone_by_zone,
        surge=surge,
        in_use=rolling_in_use(inp),
        tolerated_unhealthy=fenceposts.tolerated(total, policy.maxUnhealthyInstancePercent),
        tolerated_first_batch=fenceposts.tolerated(min(size, total), policy.maxUnhealthyUpgradedInstancePercent),
        tolerated_upgraded=fenceposts.tolerated(total, policy.maxUnhealthyUpgradedInstancePercent),
        pauses=max(0, batches - 1),
        pause_seconds=pause,
    )


# ---------------------------------------------------------------------------------------------- health and image


def health(inp: ScaleSetInput) -> ProbeSettings | None:
    """The health source as the engine reads it; None when there is none or its settings are not numbers."""
    try:
        return probe_settings(inp.model)
    except (TypeError, ValueError):
        return None


def _health_fields(inp: ScaleSetInput) -> list[Field]:
    group = "Health"
    index = health_extension_index(inp.model)
    probe_id = lookup(inp.body, PROBE)[1]
    names = ("protocol", "port", "requestPath", "intervalInSeconds", "numberOfProbes", "gracePeriod", "states")
    if index is not None:
        extension = inp.model.extensions[index]
        props = extension.properties
        settings = props.settings or {}
        rich = (props.typeHandlerVersion or "1.0").strip().startswith("2")
        source = f"extension {extension.name} ({props.type} {props.typeHandlerVersion or '1.0'})"
        out = [Field("health.source", group, "source", f"extension:{props.type}".lower(), source)]
        protocol = str(settings.get("protocol", "http")).lower()
        interval = settings.get("intervalInSeconds", 5)
        probes = settings.get("numberOfProbes", 1)
        defaults: dict[str, Any] = {
            "protocol": "http",
            "port": {"http": 80, "https": 443}.get(protocol),
            "requestPath": None,
            "intervalInSeconds": 5,
            "numberOfProbes": 1,
            "gracePeriod": _product(interval, probes) if rich else None,
        }
        for name in names[:-1]:
            given = name in settings and settings[name] is not None
            value = settings[name] if given else defaults[name]
            text = shown(value) if name != "gracePeriod" or rich else "n/a (binary)"
            out.append(Field(f"health.{name}", group, name, value, text, default=not given and value is not None))
        out.append(Field("health.states", group, "states", "rich" if rich else "binary", "rich" if rich else "binary"))
        return out
    if probe_id:
        tail = "/".join(str(probe_id).rstrip("/").split("/")[-3:])
        out = [Field("health.source", group, "source", "loadbalancer", f"load balancer probe {tail}")]
        assumed = {"intervalInSeconds": 5, "numberOfProbes": 2}
        for name in names[:-1]:
            value = assumed.get(name)
            text = f"{value} (probe default, assumed)" if value is not None else "(in the load balancer)"
            out.append(Field(f"health.{name}", group, name, value, text))
        out.append(Field("health.states", group, "states", "binary", "binary"))
        return out
    return [Field("health.source", group, "source", "none", "none")] + [
        Field(f"health.{name}", group, name, None, "-") for name in names
    ]


def _product(a: Any, b: Any) -> Any:
    try:
        return int(a) * int(b)
    except (TypeError, ValueError):
        return None


def image_strategy(inp: ScaleSetInput) -> tuple[str, str]:
    """``(value, text)``: how the image version is chosen: pinned, latest, or a gallery/managed image."""
    image = inp.model.image
    if image is None:
        return "none", "none"
    if image.id:
        lowered = image.id.lower()
        if "/galleries/" in lowered:
            found = _GALLERY_VERSION.search(image.id)
            if found:
                return f"gallery:{found.group('version')}", f"gallery image version {found.group('version')} (pinned)"
            return "gallery:latest", "gallery image without a version (latest)"
        return "managed", "managed image (fixed)"
    for attribute, label in (
        ("sharedGalleryImageId", "shared gallery"),
        ("communityGalleryImageId", "community gallery"),
    ):
        ident = getattr(image, attribute)
        if ident:
            found = _GALLERY_VERSION.search(ident)
            version = found.group("version") if found else "latest"
            return (
                f"{label}:{version}",
                f"{label} image {'version ' + version if found else 'without a version (latest)'}",
            )
    version = image.version or "-"
    if version.lower() == "latest":
        return "latest", "latest (marketplace)"
    return f"pinned:{version}", f"pinned {version}"


def _image_name(inp: ScaleSetInput) -> str:
    image = inp.model.image
    if image is None:
        return "none"
    ident = image.id or image.sharedGalleryImageId or image.communityGalleryImageId
    if ident:
        return str(ident)
    return ":".join(str(p) for p in (image.publisher, image.offer, image.sku, image.version))


# ---------------------------------------------------------------------------------------------- all fields


def upgrade_fields(inp: ScaleSetInput) -> list[Field]:
    m = inp.model
    props = m.properties
    policy = props.upgradePolicy
    out = [
        Field(
            "capacity", "Scale set", "capacity", inp.capacity, str(inp.capacity), default=not _set(inp, "sku.capacity")
        ),
        _field(inp, "sku.name", "Scale set", "size", m.sku.name),
        _field(inp, "properties.orchestrationMode", "Scale set", "orchestrationMode", props.orchestrationMode),
        Field(
            "zones",
            "Scale set",
            "zones",
            sorted(m.zones or []),
            shown(sorted(m.zones or [])) if m.zones else "none (regional)",
            default=not _set(inp, "zones"),
        ),
        _field(inp, f"{UPGRADE}.mode", "Upgrade policy", "mode", policy.mode),
    ]
    rolling = policy.rollingUpgradePolicy
    out += [
        _field(inp, f"{ROLLING}.{name}", "Rolling upgrade policy", name, getattr(rolling, name))
        for name in ROLLING_FIELDS
    ]
    automatic = policy.automaticOSUpgradePolicy
    out += [
        _field(inp, f"{AUTO_OS}.{name}", "Automatic OS upgrades", name, bool(getattr(automatic, name)))
        for name in AUTO_OS_FIELDS
    ]
    repairs = props.automaticRepairsPolicy
    out += [
        _field(inp, f"{REPAIRS}.enabled", "Automatic repairs", "enabled", repairs.enabled if repairs else False),
        _field(
            inp,
            f"{REPAIRS}.gracePeriod",
            "Automatic repairs",
            "gracePeriod",
            repairs.gracePeriod if repairs else "PT10M",
        ),
        _field(
            inp,
            f"{REPAIRS}.repairAction",
            "Automatic repairs",
            "repairAction",
            repairs.repairAction if repairs else "Replace",
        ),
    ]
    out += _health_fields(inp)
    value, text = image_strategy(inp)
    out += [
        Field("image.reference", "Image", "image", _image_name(inp).lower(), _image_name(inp)),
        Field("image.strategy", "Image", "version strategy", value.lower(), text),
    ]
    scale_in = props.scaleInPolicy
    out += [
        _field(inp, f"{SCALE_IN}.rules", "Scale-in policy", "rules", [str(r) for r in scale_in.rules]),
        _field(inp, f"{SCALE_IN}.forceDeletion", "Scale-in policy", "forceDeletion", scale_in.forceDeletion),
        _field(
            inp,
            f"{SCALE_IN}.prioritizeUnhealthyVMs",
            "Scale-in policy",
            "prioritizeUnhealthyVMs",
            bool(scale_in.prioritizeUnhealthyVMs),
        ),
    ]
    return out
