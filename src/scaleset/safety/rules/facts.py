"""Facts the rules share: paths, which policy governs a rollout, the health source, the OS, zones, live counts.

Everything here reads a :class:`ScaleSetInput` and nothing else. The parsed ``model`` carries Azure's defaults, so it
answers "what will Azure do"; the raw ``body`` answers "what did the author write", which matters where a rule must not
fire on a default (a Windows set that never mentions ``enableAutomaticUpdates`` gets it forced off by the platform).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from scaleset.domain import fenceposts
from scaleset.domain.durations import format_duration, parse_duration
from scaleset.domain.health import ProbeSettings, health_extension_index, probe_settings
from scaleset.domain.resources import OrchestrationMode, RollingUpgradePolicy, UpgradeMode
from scaleset.safety.inputs import InstanceFacts, ScaleSetInput

UPGRADE_POLICY = "properties.upgradePolicy"
ROLLING = f"{UPGRADE_POLICY}.rollingUpgradePolicy"
AUTO_OS = f"{UPGRADE_POLICY}.automaticOSUpgradePolicy"
REPAIRS = "properties.automaticRepairsPolicy"
PROFILE = "properties.virtualMachineProfile"
OS_PROFILE = f"{PROFILE}.osProfile"
EXTENSIONS = f"{PROFILE}.extensionProfile.extensions"
HEALTH_PROBE = f"{PROFILE}.networkProfile.healthProbe"
NICS = f"{PROFILE}.networkProfile.networkInterfaceConfigurations"
IMAGE = f"{PROFILE}.storageProfile.imageReference"

AUTO_OS_HEALTH_WAIT = 300.0
"""Seconds the platform waits for an instance to turn healthy in automatic OS and extension upgrades (§2.5.4)."""

_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def dig(body: Any, path: str) -> Any:
    """The value at a dotted ARM path (``a.b[0].c``) in raw JSON, or None where any step is missing."""
    node = body
    for name, index in _PATH_PART.findall(path):
        if name:
            node = node.get(name) if isinstance(node, dict) else None
        else:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        if node is None:
            return None
    return node


def unresolved(target: ScaleSetInput, path: str) -> bool:
    """Whether the loader left ``path`` (or a parent or child of it) as a placeholder it could not evaluate offline.

    Rules that read paths outside the loader's ``RELEVANT_PATHS`` (the OS profile, the NICs, the security profile)
    stay silent on a placeholder rather than judge the text of a template expression.
    """
    return any(
        path == p or path.startswith((f"{p}.", f"{p}[")) or p.startswith((f"{path}.", f"{path}["))
        for p in target.unresolved
    )


def plural(count: int, noun: str) -> str:
    """``plural(1, "instance") == "1 instance"``, ``plural(3, "batch") == "3 batches"``."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith(("ch", "sh", "s", "x")) else f"{count} {noun}s"


def sentence(text: str) -> str:
    """``text`` with its first letter in upper case and the rest untouched (``str.capitalize`` lowers the rest)."""
    return text[:1].upper() + text[1:]


def shown(value: object) -> str:
    """A setting's value as JSON writes it: ``true``, ``20``, ``PT1M``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def seconds_text(seconds: float) -> str:
    """``600 s (PT10M)``: both spellings, so the reader can match either to their template."""
    return f"{seconds:g} s ({format_duration(seconds)})"


def duration_seconds(text: object) -> float | None:
    """An ISO 8601 duration in seconds, or None when it is not one (an unresolved template expression)."""
    if not isinstance(text, str):
        return None
    try:
        return parse_duration(text)
    except ValueError:
        return None


# --- upgrade mechanisms -----------------------------------------------------------------------------------------


def auto_os_enabled(target: ScaleSetInput) -> bool:
    """Automatic OS image upgrade: ``enableAutomaticOSUpgrade``, or the legacy ``upgradePolicy.automaticOSUpgrade``."""
    policy = target.model.properties.upgradePolicy
    return policy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade or dig(
        target.body, f"{UPGRADE_POLICY}.automaticOSUpgrade"
    ) in (True, "true", "True")


def auto_extension_upgrades(target: ScaleSetInput) -> list[int]:
    """Positions of the extensions with ``enableAutomaticUpgrade: true``."""
    return [i for i, ext in enumerate(target.model.extensions) if ext.properties.enableAutomaticUpgrade]


@dataclass(frozen=True, slots=True)
class Governing:
    """The rolling policy a rollout of this scale set follows, and what starts such rollouts."""

    policy: RollingUpgradePolicy
    trigger: str  # "Rolling mode", "automatic extension upgrade", ...
    own: bool  # True: the set's rollingUpgradePolicy; False: the built-in 20/20/20 of automatic OS upgrade
    path: str  # where to point a finding about the policy's values


def governing_policy(target: ScaleSetInput) -> Governing | None:
    """The policy that batches this set's rollouts, or None when nothing rolls out in batches.

    Rolling mode, automatic extension upgrade and automatic OS upgrade with ``useRollingUpgradePolicy`` use the set's
    ``rollingUpgradePolicy`` whatever the mode (§2.5.1, §5.1); automatic OS upgrade without it uses the built-in
    20/20/20 with no pause. Manual and Automatic modes alone do not batch.
    """
    model = target.model
    own = model.rolling_policy
    if model.upgrade_mode is UpgradeMode.ROLLING:
        return Governing(own, "Rolling mode", True, ROLLING)
    if auto_extension_upgrades(target):
        return Governing(own, "automatic extension upgrade", True, ROLLING)
    if auto_os_enabled(target):
        if model.properties.upgradePolicy.automaticOSUpgradePolicy.useRollingUpgradePolicy:
            return Governing(own, "automatic OS upgrade (useRollingUpgradePolicy)", True, ROLLING)
        return Governing(RollingUpgradePolicy(), "automatic OS upgrade (built-in 20/20/20 policy)", False, AUTO_OS)
    return None


def tuned_rolling_fields(target: ScaleSetInput) -> dict[str, Any]:
    """The fields of the written ``rollingUpgradePolicy`` whose values differ from Azure's defaults.

    ``az vmss show`` echoes the defaults even when nobody set a policy, so presence alone says nothing.
    """
    written = dig(target.body, ROLLING)
    if not isinstance(written, dict):
        return {}
    defaults = RollingUpgradePolicy().model_dump()
    current = target.model.rolling_policy.model_dump()
    return {k: current[k] for k in written if k in defaults and current.get(k) != defaults[k]}


def batches(total: int, size: int) -> int:
    """How many batches ``total`` instances take at ``size`` per batch."""
    return math.ceil(total / size) if size > 0 else 0


# --- health -----------------------------------------------------------------------------------------------------


def health(target: ScaleSetInput) -> ProbeSettings | None:
    """The health source as the emulator reads it (the extension wins over an LB probe)."""
    return probe_settings(target.model)


def health_extension_path(target: ScaleSetInput) -> str | None:
    """``...extensions[i]`` of the Application Health extension, or None."""
    index = health_extension_index(target.model)
    return None if index is None else f"{EXTENSIONS}[{index}]"


def has_lb_probe(target: ScaleSetInput) -> bool:
    network = target.model.profile.networkProfile
    return bool(network and network.healthProbe and network.healthProbe.id)


def explicit_health_setting(target: ScaleSetInput, name: str) -> Any:
    """A setting written on the health extension (``gracePeriod``...), or None when the author left it out."""
    at = health_extension_path(target)
    return None if at is None else dig(target.body, f"{at}.properties.settings.{name}")


def is_flexible(target: ScaleSetInput) -> bool:
    return target.model.properties.orchestrationMode is OrchestrationMode.FLEXIBLE


# --- operating system -------------------------------------------------------------------------------------------

_LINUX_HINTS = (
    "ubuntu",
    "debian",
    "centos",
    "rhel",
    "redhat",
    "sles",
    "suse",
    "almalinux",
    "rocky",
    "oracle-linux",
    "flatcar",
    "mariner",
    "azurelinux",
    "linux",
    "canonical",
    "openlogic",
    "credativ",
    "kinvolk",
)


def os_family(target: ScaleSetInput) -> str | None:
    """``"Windows"`` or ``"Linux"`` when the input says so (OS profile, OS disk, image); None when it cannot tell."""
    os_profile = dig(target.body, OS_PROFILE)
    if isinstance(os_profile, dict):
        if "windowsConfiguration" in os_profile:
            return "Windows"
        if "linuxConfiguration" in os_profile:
            return "Linux"
    os_type = dig(target.body, f"{PROFILE}.storageProfile.osDisk.osType")
    if isinstance(os_type, str) and os_type.lower() in ("windows", "linux"):
        return os_type.capitalize()
    image = target.model.image
    words = " ".join(w for w in (image.publisher, image.offer, image.sku) if w).lower() if image else ""
    if "windows" in words:
        return "Windows"
    if any(hint in words for hint in _LINUX_HINTS):
        return "Linux"
    return None


# --- zones and live instances -----------------------------------------------------------------------------------


def zones(target: ScaleSetInput) -> list[str]:
    return list(target.model.zones or [])


def per_zone(target: ScaleSetInput) -> dict[str, int]:
    """Instances in each zone: counted from live instances, or the capacity spread as Azure balances it."""
    names = sorted(zones(target))
    if not names:
        return {}
    if target.instances is not None:
        counted = Counter(i.zone for i in target.instances if i.zone)
        return {zone: counted.get(zone, 0) for zone in names}
    base, extra = divmod(target.capacity, len(names))
    return {zone: base + (1 if position < extra else 0) for position, zone in enumerate(names)}


def is_unhealthy(instance: InstanceFacts) -> bool:
    """Counted as unhealthy by the pre-batch check (docs/semantics.md): failed, not running, Unhealthy or Unknown."""
    if (instance.provisioning_state or "").lower() == "failed":
        return True
    if instance.power_state is not None and instance.power_state.lower() not in ("running", "starting"):
        return True
    return (instance.health or "").lower() in ("unhealthy", "unknown")


def ids(instances: list[InstanceFacts], limit: int = 10) -> str:
    """Instances for a message: ``instance 3``, ``instances 0, 3, 7`` or ``instances 0, 1, ... (12 in all)``."""
    shown = [i.instance_id for i in instances[:limit]]
    more = f", ... ({len(instances)} in all)" if len(instances) > limit else ""
    return ("instance " if len(instances) == 1 else "instances ") + ", ".join(shown) + more


def verb(count: int, singular: str, plural_form: str) -> str:
    """``verb(1, "is", "are") == "is"``: agreement for counts in messages."""
    return singular if count == 1 else plural_form


def tolerance_text(total: int, percent: int) -> str:
    """``20% of 3 tolerates 0``: the percentage turned into instances with the emulator's fencepost rule."""
    return f"{percent}% of {total} tolerates {fenceposts.tolerated(total, percent)}"
