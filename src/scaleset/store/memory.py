"""An in-process store in plain dicts, for tests and throwaway simulations.

Records are held as their JSON text (see :mod:`scaleset.store.base`), so a put and a get each make a deep copy
for free and the store returns exactly what the SQLite store would. A transaction takes a shallow copy of every
table when it begins and puts it back if an exception leaves the block; the copy costs one pointer per stored
record, which is fine at the sizes this store is meant for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from scaleset.store.base import (
    Record,
    StoreError,
    UnknownScaleSetError,
    check_int,
    check_limit,
    check_meta_value,
    decode_record,
    encode_event,
    encode_instances,
    encode_record,
)


@dataclass(slots=True)
class _Tables:
    """Everything the store holds; record values are JSON text."""

    meta: dict[str, str] = field(default_factory=dict)
    scale_sets: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict[int, str]] = field(default_factory=dict)
    instances: dict[str, dict[int, str]] = field(default_factory=dict)
    # rollout_id -> (set_id, record). A dict keeps insertion order and an update keeps the key's place,
    # which is exactly creation order.
    rollouts: dict[str, tuple[str, str]] = field(default_factory=dict)
    operations: dict[str, str] = field(default_factory=dict)
    # (seq, set_id, record), in sequence order.
    events: list[tuple[int, str, str]] = field(default_factory=list)
    last_event_seq: int = 0
    documents: dict[tuple[str, str], str] = field(default_factory=dict)

    def copy(self) -> _Tables:
        """A copy that shares only immutable strings and tuples with this one."""
        return _Tables(
            meta=dict(self.meta),
            scale_sets=dict(self.scale_sets),
            models={set_id: dict(versions) for set_id, versions in self.models.items()},
            instances={set_id: dict(by_id) for set_id, by_id in self.instances.items()},
            rollouts=dict(self.rollouts),
            operations=dict(self.operations),
            events=list(self.events),
            last_event_seq=self.last_event_seq,
            documents=dict(self.documents),
        )


class MemoryStore:
    """A :class:`~scaleset.store.base.Store` that lives in this process only."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tables: _Tables | None = _Tables()
        self._depth = 0

    @property
    def _t(self) -> _Tables:
        tables = self._tables
        if tables is None:
            raise StoreError("the store is closed")
        return tables

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; an exception restores the tables as they were when the block began."""
        with self._lock:
            snapshot = self._t.copy()
            self._depth += 1
            try:
                yield
            except BaseException:
                self._tables = snapshot
                raise
            finally:
                self._depth -= 1

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            return self._t.meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        check_meta_value(value)
        with self._lock:
            self._t.meta[key] = value

    def put_scale_set(self, set_id: str, record: Record) -> None:
        text = encode_record(record)
        with self._lock:
            self._t.scale_sets[set_id] = text

    def get_scale_set(self, set_id: str) -> Record | None:
        with self._lock:
            text = self._t.scale_sets.get(set_id)
        return None if text is None else decode_record(text)

    def list_scale_sets(self) -> list[tuple[str, Record]]:
        with self._lock:
            rows = sorted(self._t.scale_sets.items())
        return [(set_id, decode_record(text)) for set_id, text in rows]

    def delete_scale_set(self, set_id: str) -> None:
        with self._lock:
            t = self._t
            t.scale_sets.pop(set_id, None)
            t.models.pop(set_id, None)
            t.instances.pop(set_id, None)
            t.rollouts = {rid: row for rid, row in t.rollouts.items() if row[0] != set_id}

    def put_model(self, set_id: str, version: int, model: Record) -> None:
        check_int(version, "model version")
        text = encode_record(model)
        with self._lock:
            self._require_set(set_id)
            self._t.models.setdefault(set_id, {})[version] = text

    def get_model(self, set_id: str, version: int) -> Record | None:
        with self._lock:
            text = self._t.models.get(set_id, {}).get(version)
        return None if text is None else decode_record(text)

    def put_instances(self, set_id: str, records: Iterable[tuple[int, Record]]) -> None:
        rows = encode_instances(records)  # the whole batch first, so a bad record leaves nothing written
        with self._lock:
            self._require_set(set_id)
            self._t.instances.setdefault(set_id, {}).update(rows)

    def delete_instances(self, set_id: str, ids: Iterable[int]) -> None:
        with self._lock:
            by_id = self._t.instances.get(set_id)
            if by_id is None:
                return
            for instance_id in ids:
                by_id.pop(instance_id, None)

    def list_instances(self, set_id: str) -> list[tuple[int, Record]]:
        with self._lock:
            rows = sorted(self._t.instances.get(set_id, {}).items())
        return [(instance_id, decode_record(text)) for instance_id, text in rows]

    def put_rollout(self, rollout_id: str, set_id: str, record: Record) -> None:
        text = encode_record(record)
        with self._lock:
            self._require_set(set_id)
            existing = self._t.rollouts.get(rollout_id)
            if existing is not None and existing[0] != set_id:
                raise StoreError(f"rollout {rollout_id!r} belongs to scale set {existing[0]!r}, not {set_id!r}")
            self._t.rollouts[rollout_id] = (set_id, text)

    def get_rollout(self, rollout_id: str) -> Record | None:
        with self._lock:
            row = self._t.rollouts.get(rollout_id)
        return None if row is None else decode_record(row[1])

    def latest_rollout(self, set_id: str) -> tuple[str, Record] | None:
        rollouts = self.list_rollouts(set_id)
        return rollouts[-1] if rollouts else None

    def list_rollouts(self, set_id: str) -> list[tuple[str, Record]]:
        with self._lock:
            rows = [(rid, text) for rid, (owner, text) in self._t.rollouts.items() if owner == set_id]
        return [(rid, decode_record(text)) for rid, text in rows]

    def put_operation(self, op_id: str, record: Record) -> None:
        text = encode_record(record)
        with self._lock:
            self._t.operations[op_id] = text

    def get_operation(self, op_id: str) -> Record | None:
        with self._lock:
            text = self._t.operations.get(op_id)
        return None if text is None else decode_record(text)

    def list_operations(self) -> list[tuple[str, Record]]:
        with self._lock:
            rows = list(self._t.operations.items())
        return [(op_id, decode_record(text)) for op_id, text in rows]

    def append_events(self, events: Iterable[Record]) -> None:
        encoded = [encode_event(event) for event in events]
        with self._lock:
            t = self._t
            for set_id, _time, text in encoded:
                t.last_event_seq += 1
                t.events.append((t.last_event_seq, set_id, text))

    def list_events(
        self, *, set_id: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, Record]]:
        check_limit(limit)
        with self._lock:
            rows = [
                (seq, text)
                for seq, owner, text in self._t.events
                if seq > after_seq and (set_id is None or owner == set_id)
            ]
        if limit is not None:
            rows = rows[:limit]
        return [(seq, decode_record(text)) for seq, text in rows]

    def put_document(self, kind: str, key: str, record: Record) -> None:
        text = encode_record(record)
        with self._lock:
            self._t.documents[(kind, key)] = text

    def get_document(self, kind: str, key: str) -> Record | None:
        with self._lock:
            text = self._t.documents.get((kind, key))
        return None if text is None else decode_record(text)

    def list_documents(self, kind: str) -> list[tuple[str, Record]]:
        with self._lock:
            rows = sorted((key, text) for (k, key), text in self._t.documents.items() if k == kind)
        return [(key, decode_record(text)) for key, text in rows]

    def delete_document(self, kind: str, key: str) -> None:
        with self._lock:
            self._t.documents.pop((kind, key), None)

    def copy(self) -> MemoryStore:
        """An independent store holding what this one holds now: many runs can start from one snapshot (what-if).

        Cheap: records are immutable JSON text, so the copy is one pointer per record.
        """
        with self._lock:
            if self._depth:
                raise StoreError("cannot copy the store inside a transaction")
            twin = MemoryStore()
            twin._tables = self._t.copy()
            return twin

    def close(self) -> None:
        with self._lock:
            if self._depth:
                raise StoreError("cannot close the store inside a transaction")
            self._tables = None

    def _require_set(self, set_id: str) -> None:
        if set_id not in self._t.scale_sets:
            raise UnknownScaleSetError(f"scale set {set_id!r} is not stored")
