"""The scale set a what-if starts from, rebuilt in a fresh engine as its input describes it.

The engine has no "import instances" operation, so the fleet is built the way it could have come about:

1. the scale set is created in Manual mode six hours (virtual) before the change, on the oldest model its instances
   run; every later model they run (one per image version, oldest first), then the input's own model, is applied
   on top in Manual mode, so each instance can sit on the model version it runs and stale ones stay stale;
2. the instances are written as records with the input's ids, zones, fault domains, image versions, protection and
   power state, provisioned at that time by a backend without faults (they are whatever they are now);
3. three hours before the change, the instances that report Unhealthy or Unknown (or failed provisioning) get that
   answer injected with ``Services.set_health``, so they are settled in that state when the change comes;
4. at the moment of the change, the changed body is PUT, with the input's real upgrade mode (or the one the change
   sets): the change starts one rollout over every stale instance, as in Azure.

A file without instances stands for ``capacity`` healthy instances, numbered and placed as the engine places the
instances of a new scale set, so a what-if from a file sees the same fleet as a scenario that creates that body.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scaleset.backends import base
from scaleset.backends.simulated import SimulatedBackend
from scaleset.domain.capacity import DEFAULT_FAULT_DOMAINS
from scaleset.domain.health import Answer
from scaleset.domain.images import requested_version, resolve_version, version_key
from scaleset.domain.records import InstanceRecord
from scaleset.domain.resources import ImageReference
from scaleset.domain.scalein import place_new
from scaleset.engine.engine import Engine
from scaleset.engine.services import Services, scale_set_id
from scaleset.safety.inputs import InstanceFacts, ScaleSetInput

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
"""The subscription of the rebuilt scale set (the scenario files' default, so a scenario can replay a what-if)."""
DEFAULT_RESOURCE_GROUP = "rg"
BUILD_LEAD = 6 * 3600.0
"""How long before the change the instances are created: every provisioning and health grace period is over."""
HEALTH_LEAD = 3 * 3600.0
"""How long before the change reported health is injected: every probe has settled by then."""
MODEL_MARK = "scalesetWhatIfModel"
"""A key in ``virtualMachineProfile`` that tells an earlier model apart when its image is the same as the latest."""

_INJECTED = {"Unhealthy": Answer.UNHEALTHY, "Unknown": Answer.INVALID}
_POWER_GOALS = {
    "stopped": "stopped",
    "stopping": "stopped",
    "deallocated": "deallocated",
    "deallocating": "deallocated",
}
_GALLERY_VERSION = re.compile(r"(/versions/)[^/]+/?$", re.IGNORECASE)


class FleetError(Exception):
    """Instances the engine cannot hold (ids that are not numbers, or the same id twice)."""


@dataclass(frozen=True)
class Names:
    subscription: str
    resource_group: str
    name: str

    @property
    def ids(self) -> tuple[str, str, str]:
        return self.subscription, self.resource_group, self.name

    @property
    def set_id(self) -> str:
        return scale_set_id(*self.ids).lower()


@dataclass(frozen=True)
class FleetSummary:
    """What the what-if starts from, as ids (``unhealthy`` are reproduced by injection, ``stopped`` by power state)."""

    instances: int
    stale: tuple[int, ...]
    unhealthy: tuple[int, ...]
    stopped: tuple[int, ...]
    protected: tuple[int, ...]  # protectFromScaleSetActions: rolling upgrades skip them
    zones: dict[str, int]
    image_versions: dict[str, int]


def image_reference(body: dict[str, Any]) -> dict[str, Any] | None:
    node: Any = body
    for key in ("properties", "virtualMachineProfile", "storageProfile", "imageReference"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _pinned(body: dict[str, Any], version: str) -> dict[str, Any] | None:
    """``body`` on image ``version``, or None when its image reference cannot name a version."""
    out = copy.deepcopy(body)
    reference = image_reference(out)
    if reference is None:
        return None
    gallery = reference.get("id")
    if isinstance(gallery, str) and gallery:
        if not _GALLERY_VERSION.search(gallery):
            return None
        reference["id"] = _GALLERY_VERSION.sub(lambda m: f"{m.group(1)}{version}", gallery)
    else:
        reference["version"] = version
    return out


def _marked(body: dict[str, Any], label: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    profile = out.setdefault("properties", {}).setdefault("virtualMachineProfile", {})
    profile[MODEL_MARK] = label
    return out


def _instance_id(facts: InstanceFacts) -> int:
    text = facts.instance_id.strip()
    if not text.isdigit():
        raise FleetError(
            f"instance '{facts.instance_id}' has no numeric instance id: what-if rebuilds Uniform scale sets only"
        )
    return int(text)


class Fleet:
    """The instances of an input, the model versions they need, and how to rebuild them in an engine."""

    def __init__(self, scale_set: ScaleSetInput, catalogue: Sequence[str]) -> None:
        self.scale_set = scale_set
        vmss = scale_set.model
        self.fault_domains = vmss.properties.platformFaultDomainCount or DEFAULT_FAULT_DOMAINS
        if scale_set.instances is not None:
            facts = scale_set.instances
        else:
            places = place_new([], vmss.capacity, zones=vmss.zones, fault_domains=self.fault_domains)
            facts = tuple(
                InstanceFacts(str(index), zone=zone, fault_domain=fd, latest_model_applied=True)
                for index, (zone, fd) in enumerate(places)
            )
        ids = [_instance_id(f) for f in facts]
        repeated = sorted(i for i, count in Counter(ids).items() if count > 1)
        if repeated:
            raise FleetError(f"instance id {repeated[0]} appears more than once")
        self.facts = facts
        self.ids = ids
        self.current_image = resolve_version(vmss.image, catalogue)
        stale = [self._is_stale(f) for f in facts]
        self.stale = tuple(i for i, s in zip(ids, stale, strict=True) if s)
        groups = {f.image_version for f, s in zip(facts, stale, strict=True) if s}
        # Earlier models, oldest first: one per image version stale instances run; None for "the same image".
        earlier: list[str | None] = [*sorted((g for g in groups if g is not None), key=version_key)]
        if None in groups:
            earlier.append(None)
        self.previous = tuple(earlier)
        pinnable = all(
            v is not None and v != self.current_image and _pinned(scale_set.body, v) is not None for v in self.previous
        )
        self.needs_mark = bool(self.previous) and not pinnable

    def _is_stale(self, facts: InstanceFacts) -> bool:
        if facts.latest_model_applied is not None:
            return not facts.latest_model_applied
        return facts.image_version is not None and self.current_image not in (None, facts.image_version)

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        """A body as the rebuilt scale set carries it: the instances' count as capacity (marked when needed)."""
        out = copy.deepcopy(body)
        sku = out.get("sku")
        out["sku"] = {**(sku if isinstance(sku, dict) else {}), "capacity": len(self.facts)}
        return _marked(out, "latest") if self.needs_mark else out

    def _previous_body(self, current: dict[str, Any], image: str | None) -> dict[str, Any]:
        pinned = _pinned(current, image) if image is not None and image != self.current_image else None
        body = pinned if pinned is not None else current
        return _marked(body, f"previous:{image or '?'}") if self.needs_mark else body

    def summary(self) -> FleetSummary:
        facts = self.facts
        return FleetSummary(
            instances=len(facts),
            stale=self.stale,
            unhealthy=tuple(i for i, f in zip(self.ids, facts, strict=True) if self._answer(f) is not None),
            stopped=tuple(
                i for i, f in zip(self.ids, facts, strict=True) if (f.power_state or "").lower() in _POWER_GOALS
            ),
            protected=tuple(i for i, f in zip(self.ids, facts, strict=True) if f.protect_from_scale_set_actions),
            zones=dict(sorted(Counter(f.zone or "" for f in facts).items())) if any(f.zone for f in facts) else {},
            image_versions=dict(
                sorted(
                    Counter(f.image_version or self.current_image or "?" for f in facts).items(),
                    key=lambda item: version_key(item[0]),
                )
            ),
        )

    @staticmethod
    def _answer(facts: InstanceFacts) -> Answer | None:
        if (facts.provisioning_state or "").lower() == "failed":
            return Answer.UNHEALTHY
        return _INJECTED.get(facts.health or "")

    def build(
        self,
        engine: Engine,
        services: Services,
        names: Names,
        *,
        current: dict[str, Any],
        start: float,
        quiet: SimulatedBackend,
    ) -> None:
        """Rebuild the fleet in ``engine`` (its virtual clock at ``start - BUILD_LEAD``) up to ``start``, in Manual
        mode, on ``current`` (a :meth:`prepare`-d body); ``quiet`` provisions the instances (a backend without
        faults). The caller then PUTs the changed body, which carries the input's real mode (or the one the change
        sets): one PUT, as a client would send it. Raises DomainError if the emulator refuses a body."""
        manual = copy.deepcopy(current)
        manual.setdefault("properties", {}).setdefault("upgradePolicy", {})["mode"] = "Manual"
        previous = [self._previous_body(manual, image) for image in self.previous]
        services.put_scale_set(*names.ids, previous[0] if previous else manual)
        state = engine.state(names.set_id)
        assert state is not None
        versions: dict[str | None, int] = {}
        for index, image in enumerate(self.previous):
            if index:
                services.put_scale_set(*names.ids, previous[index])
            versions[image] = state.record.model_version
        if previous:
            services.put_scale_set(*names.ids, manual)
        latest = state.record.model_version
        now = engine.clock.now()
        stale = set(self.stale)
        per_zone: Counter[str | None] = Counter()
        for instance_id, facts in zip(self.ids, self.facts, strict=True):
            version = versions[facts.image_version] if instance_id in stale else latest
            model = state.model(engine.store, version, engine.catalogue())
            fault_domain = facts.fault_domain
            if fault_domain is None:
                fault_domain = per_zone[facts.zone] % self.fault_domains
            per_zone[facts.zone] += 1
            record = InstanceRecord(
                instance_id=instance_id,
                zone=facts.zone,
                fault_domain=fault_domain,
                model_version=version,
                created_at=now,
                image_version=facts.image_version or model.image_version,
                protect_from_scale_in=facts.protect_from_scale_in,
                protect_from_scale_set_actions=facts.protect_from_scale_set_actions,
                power_goal=_POWER_GOALS.get((facts.power_state or "").lower(), "running"),
                action=base.CREATE,
                action_started_at=now,
                action_reason="whatIf",
            )
            quiet.apply(record, set_id=state.set_id, model=model, now=now)
            state.instances[instance_id] = record
            state.touch(instance_id)
        state.record.next_instance_id = max(self.ids, default=-1) + 1
        engine.persist(state)
        engine.run_until(start - HEALTH_LEAD)
        by_answer: dict[Answer, list[int]] = {}
        for instance_id, facts in zip(self.ids, self.facts, strict=True):
            answer = self._answer(facts)
            if answer is not None:
                by_answer.setdefault(answer, []).append(instance_id)
        for answer, targets in by_answer.items():
            services.set_health(*names.ids, targets, answer)
        engine.run_until(start)


def image_versions(*bodies: dict[str, Any]) -> list[str]:
    """The concrete image versions the bodies name (for the catalogue that ``latest`` resolves against)."""
    out = []
    for body in bodies:
        reference = image_reference(body)
        if reference is None:
            continue
        wanted = requested_version(ImageReference.model_validate(reference))
        if wanted and wanted.lower() != "latest":
            out.append(wanted)
    return out
