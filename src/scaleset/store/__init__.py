"""Durable state behind one protocol: SQLite by default, plain dicts for tests.

``open_store("memory:")`` gives a :class:`MemoryStore`; any other string is the path of a SQLite database file
(``":memory:"`` for a private in-memory SQLite database), whose parent directory is created if missing.
"""

from __future__ import annotations

from pathlib import Path

from scaleset.store.base import (
    InvalidRecordError,
    Record,
    SchemaVersionError,
    Store,
    StoreError,
    UnknownScaleSetError,
)
from scaleset.store.memory import MemoryStore
from scaleset.store.sqlite import SqliteStore

__all__ = [
    "InvalidRecordError",
    "MemoryStore",
    "Record",
    "SchemaVersionError",
    "SqliteStore",
    "Store",
    "StoreError",
    "UnknownScaleSetError",
    "open_store",
]

MEMORY_URL = "memory:"


def open_store(url_or_path: str) -> Store:
    """Open the store named by ``url_or_path``: ``"memory:"`` or the path of a SQLite file."""
    if url_or_path == MEMORY_URL:
        return MemoryStore()
    if url_or_path == ":memory:":
        return SqliteStore(url_or_path)
    path = Path(url_or_path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(path)
