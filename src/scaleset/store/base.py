"""The store seam: what the engine may ask of durable state, and the record codec every store shares.

A store keeps JSON-able dicts and knows nothing of their meaning; the engine decides what a scale set, a
rollout or an operation record looks like. What the store does promise is listed on :class:`Store` and pinned by
one conformance suite (``tests/store/test_conformance.py``) that every implementation runs.

Records cross the seam as JSON: a put encodes the dict to compact JSON text and a get decodes a fresh dict. So a
caller never shares objects with the store, and every implementation returns exactly what a JSON round trip
returns (tuples come back as lists, non-string keys come back as strings, NaN and infinities are refused).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

Record = dict[str, Any]
"""A JSON-able dict as the store keeps it."""

# One encoder, built once: ``json.dumps`` with any non-default option builds a new encoder on every call, which
# would double the cost of a 10,000-instance batch.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class StoreError(Exception):
    """A request the store refuses, or a store it cannot open."""


class SchemaVersionError(StoreError):
    """The database was written by a newer scaleset whose schema this code does not know."""


class UnknownScaleSetError(StoreError):
    """A model, instance or rollout was written for a scale set the store does not hold."""


class InvalidRecordError(StoreError, ValueError):
    """A record is not a JSON-able dict, or an event lacks its ``time`` or ``scaleSet``."""


@runtime_checkable
class Store(Protocol):
    """Durable state for the engine: scale sets and what hangs off them, operations, and the activity log.

    Every write is atomic on its own. Writes inside :meth:`transaction` commit together when the outermost
    block exits normally, and none of them survive when an exception leaves the block. A store object may be
    shared between threads; a transaction holds the store for its whole duration, so other threads wait for it
    rather than writing into it. Do not await inside a transaction.
    """

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes so they commit together or not at all.

        An exception leaving the block undoes the block's writes and is re-raised unchanged. Blocks nest: an
        inner block commits nothing by itself, and an exception leaving an inner block undoes that block's
        writes only (the enclosing block carries on if the caller handles the exception).
        """
        ...

    def get_meta(self, key: str) -> str | None:
        """The string stored under ``key``, or None."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any earlier value."""
        ...

    def put_scale_set(self, set_id: str, record: Record) -> None:
        """Create or replace a scale set's record; its models, instances and rollouts are kept."""
        ...

    def get_scale_set(self, set_id: str) -> Record | None:
        """The scale set's record, or None."""
        ...

    def list_scale_sets(self) -> list[tuple[str, Record]]:
        """Every scale set as ``(set_id, record)``, ordered by ``set_id``."""
        ...

    def delete_scale_set(self, set_id: str) -> None:
        """Delete a scale set with its models, instances and rollouts; operations and events stay.

        Deleting a scale set the store does not hold does nothing.
        """
        ...

    def put_model(self, set_id: str, version: int, model: Record) -> None:
        """Create or replace version ``version`` of the scale set's model.

        Raises :class:`UnknownScaleSetError` when the scale set is not stored.
        """
        ...

    def get_model(self, set_id: str, version: int) -> Record | None:
        """Version ``version`` of the scale set's model, or None."""
        ...

    def put_instances(self, set_id: str, records: Iterable[tuple[int, Record]]) -> None:
        """Create or replace many instances of one scale set at once; a repeated id keeps its last record.

        The whole batch is written or none of it. Raises :class:`UnknownScaleSetError` when the scale set is
        not stored.
        """
        ...

    def delete_instances(self, set_id: str, ids: Iterable[int]) -> None:
        """Delete the listed instances; ids the store does not hold are ignored."""
        ...

    def list_instances(self, set_id: str) -> list[tuple[int, Record]]:
        """The scale set's instances as ``(instance_id, record)``, ordered by id; empty for an unknown set."""
        ...

    def put_rollout(self, rollout_id: str, set_id: str, record: Record) -> None:
        """Create or replace a rollout of a scale set; replacing keeps the rollout's place in creation order.

        Raises :class:`UnknownScaleSetError` when the scale set is not stored, and :class:`StoreError` when
        ``rollout_id`` already belongs to another scale set.
        """
        ...

    def get_rollout(self, rollout_id: str) -> Record | None:
        """The rollout's record, or None."""
        ...

    def latest_rollout(self, set_id: str) -> tuple[str, Record] | None:
        """The scale set's most recently created rollout as ``(rollout_id, record)``, or None."""
        ...

    def list_rollouts(self, set_id: str) -> list[tuple[str, Record]]:
        """The scale set's rollouts as ``(rollout_id, record)``, oldest first."""
        ...

    def put_operation(self, op_id: str, record: Record) -> None:
        """Create or replace a long-running operation's record."""
        ...

    def get_operation(self, op_id: str) -> Record | None:
        """The operation's record, or None."""
        ...

    def list_operations(self) -> list[tuple[str, Record]]:
        """Every operation as ``(op_id, record)``, oldest first (creation order)."""
        ...

    def append_events(self, events: Iterable[Record]) -> None:
        """Append activity-log events, each numbered with the next sequence number.

        Each event needs a numeric ``time`` and a string ``scaleSet``; otherwise :class:`InvalidRecordError`
        is raised and none of the batch is appended. Sequence numbers only grow.
        """
        ...

    def list_events(
        self, *, set_id: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, Record]]:
        """Events as ``(seq, event)`` in sequence order, optionally of one scale set, after a sequence number.

        ``limit`` caps how many are returned (None: all); a negative limit raises ValueError.
        """
        ...

    def put_document(self, kind: str, key: str, record: Record) -> None:
        """Create or replace the document ``key`` of ``kind`` (resource groups, fault rules, ...)."""
        ...

    def get_document(self, kind: str, key: str) -> Record | None:
        """The document, or None."""
        ...

    def list_documents(self, kind: str) -> list[tuple[str, Record]]:
        """Every document of ``kind`` as ``(key, record)``, ordered by key."""
        ...

    def delete_document(self, kind: str, key: str) -> None:
        """Delete the document; a missing one is ignored."""
        ...

    def close(self) -> None:
        """Release the store; closing twice is harmless, using a closed store raises :class:`StoreError`."""
        ...


def encode_record(record: Record) -> str:
    """Encode a record as compact JSON text, or raise :class:`InvalidRecordError` if it is not JSON-able."""
    if not isinstance(record, dict):
        raise InvalidRecordError(f"a record must be a dict, not {type(record).__name__}")
    try:
        return _ENCODER.encode(record)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"record is not JSON-able: {exc}") from exc


def decode_record(text: str) -> Record:
    """Decode JSON text written by :func:`encode_record` into a fresh dict."""
    record: Record = json.loads(text)
    return record


def encode_instances(records: Iterable[tuple[int, Record]]) -> list[tuple[int, str]]:
    """Check and encode a batch of ``(instance_id, record)`` pairs, all of them before anything is written."""
    return [(check_int(instance_id, "instance id"), encode_record(record)) for instance_id, record in records]


def check_int(value: int, what: str) -> int:
    """Return ``value`` if it is an int (not a bool); SQLite would quietly turn ``"5"`` into ``5``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecordError(f"{what} must be an int, got {value!r}")
    return value


def check_meta_value(value: str) -> str:
    """Return ``value`` if it is a string; meta values are strings only."""
    if not isinstance(value, str):
        raise InvalidRecordError(f"a meta value must be a string, got {type(value).__name__}")
    return value


def encode_event(event: Record) -> tuple[str, float, str]:
    """Check an activity-log event and return its ``(scaleSet, time, json_text)``.

    The scale set and time are pulled out so a store can index and filter on them without decoding.
    """
    text = encode_record(event)
    set_id = event.get("scaleSet")
    time = event.get("time")
    if not isinstance(set_id, str):
        raise InvalidRecordError(f"an event needs a string 'scaleSet', got {set_id!r}")
    if isinstance(time, bool) or not isinstance(time, int | float):
        raise InvalidRecordError(f"an event needs a numeric 'time', got {time!r}")
    return set_id, float(time), text


def check_limit(limit: int | None) -> None:
    """Refuse a negative ``limit`` (SQL would read it as "no limit" and a slice as "all but some")."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be zero or more, got {limit}")
