"""The engine's in-memory view of one scale set: a write-through cache of the store.

Level-triggered passes recompute from this state, which always equals what the store holds once a pass has
committed; reopening the store rebuilds it exactly (:meth:`ScaleSetState.load`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scaleset.backends.base import InstanceModel
from scaleset.domain.health import probe_settings
from scaleset.domain.images import resolve_version, tracks_latest
from scaleset.domain.instances import InstanceView
from scaleset.domain.records import InstanceRecord, Operation, ScaleSetRecord
from scaleset.domain.repairs import RepairBook
from scaleset.domain.resources import Extension, ImageReference, VirtualMachineScaleSet
from scaleset.domain.upgrade.status import Rollout
from scaleset.store.base import Store

Catalogue = Callable[[ImageReference | None], list[str]]
"""The versions an image reference can resolve to (``latest`` picks the newest), excluding hidden ones."""


def instance_model_part(body: dict[str, Any]) -> dict[str, Any]:
    """The part of a scale-set body whose change makes instances stale: the VM profile and the VM size."""
    properties = body.get("properties") or {}
    return {
        "virtualMachineProfile": properties.get("virtualMachineProfile") or {},
        "vmSize": (body.get("sku") or {}).get("name"),
    }


def model_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(instance_model_part(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True)
class CachedView:
    view: InstanceView | None
    valid_until: float | None
    generation: int
    observed_at: float


@dataclass(slots=True)
class ScaleSetState:
    record: ScaleSetRecord
    vmss: VirtualMachineScaleSet
    instances: dict[int, InstanceRecord] = field(default_factory=dict)
    rollout: Rollout | None = None
    operations: dict[str, Operation] = field(default_factory=dict)
    models: dict[int, InstanceModel] = field(default_factory=dict)
    model_bodies: dict[int, dict[str, Any]] = field(default_factory=dict)
    views: dict[int, CachedView] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    rollout_dirty: bool = False
    revision: int = 0  # bumped by every change, so renderings of this state can be cached
    render_cache: dict[Any, tuple[int, float, bytes]] = field(default_factory=dict)
    parsed_models: dict[int, VirtualMachineScaleSet] = field(default_factory=dict)
    repair_book: tuple[dict[str, Any], RepairBook] | None = None  # record.repairs (by identity) and its parse

    @property
    def set_id(self) -> str:
        return self.record.set_id

    def model_body(self, store: Store, version: int) -> dict[str, Any]:
        """The scale-set body as it was at model ``version`` (what instances on that version were built from)."""
        body = self.model_bodies.get(version)
        if body is None:
            body = store.get_model(self.set_id, version)
            if body is None:
                raise LookupError(f"model version {version} of {self.set_id} is not stored")
            self.model_bodies[version] = body
        return body

    def model(self, store: Store, version: int, catalogue: Catalogue) -> InstanceModel:
        """Model ``version`` as instances deployed now get it: ``latest`` resolves against the catalogue at each
        call, so a version published later reaches new and reimaged instances, not running ones."""
        cached = self.models.get(version)
        if cached is None:
            vmss = self.parsed(store, version)
            names = tuple(ext.name or "" for ext in vmss.extensions)
            cached = InstanceModel(
                version,
                resolve_version(vmss.image, catalogue(vmss.image)),
                names,
                probe_settings(vmss),
                image=vmss.image,
                body=self.model_body(store, version),
            )
            self.models[version] = cached
        if tracks_latest(cached.image):
            current = resolve_version(cached.image, catalogue(cached.image))
            if current != cached.image_version:
                cached = dataclasses.replace(cached, image_version=current)
                self.models[version] = cached
        return cached

    def parsed(self, store: Store, version: int) -> VirtualMachineScaleSet:
        """Model ``version``'s body as the resource model (parsed once)."""
        found = self.parsed_models.get(version)
        if found is None:
            found = self.parsed_models[version] = VirtualMachineScaleSet.model_validate(self.model_body(store, version))
        return found

    def extensions(self, store: Store, version: int) -> list[Extension]:
        """The extensions of model ``version``."""
        return self.parsed(store, version).extensions

    def repairs(self) -> RepairBook:
        """The automatic-repairs book of the record, parsed once per change (every pass reads it)."""
        cached = self.repair_book
        if cached is None or cached[0] is not self.record.repairs:
            book = RepairBook.model_validate(self.record.repairs) if self.record.repairs else RepairBook()
            cached = self.repair_book = (self.record.repairs, book)
        return cached[1]

    def set_repairs(self, book: RepairBook) -> None:
        self.record.repairs = book.model_dump(mode="json")
        self.repair_book = (self.record.repairs, book)

    def touch(self, instance_id: int) -> None:
        self.dirty.add(instance_id)
        self.views.pop(instance_id, None)
        self.revision += 1

    def cached_rendering(self, key: Any, now: float) -> bytes | None:
        """A rendering stored by :meth:`keep_rendering`, if nothing changed and it has not expired."""
        hit = self.render_cache.get(key)
        if hit is None or hit[0] != self.revision or now >= hit[1]:
            return None
        return hit[2]

    def keep_rendering(self, key: Any, payload: bytes, *, valid_until: float) -> None:
        self.render_cache[key] = (self.revision, valid_until, payload)

    @classmethod
    def load(cls, store: Store, set_id: str, data: dict[str, Any]) -> ScaleSetState:
        record = ScaleSetRecord.from_dict(data)
        state = cls(record=record, vmss=VirtualMachineScaleSet.model_validate(record.body))
        state.instances = {i: InstanceRecord.from_dict(r) for i, r in store.list_instances(set_id)}
        latest = store.latest_rollout(set_id)
        if latest is not None:
            state.rollout = Rollout.model_validate(latest[1])
        return state
