"""The default store: one SQLite file in WAL mode, records kept as compact JSON text.

Durability comes from SQLite itself: every write runs between an explicit ``BEGIN IMMEDIATE`` and ``COMMIT``
(the connection is opened in autocommit mode so the sqlite3 module never opens or commits a transaction
behind our back), so a process killed at any point leaves the file as of the last commit. ``synchronous=NORMAL``
in WAL mode keeps every commit across a process crash; only a power cut can lose the last few.

Nested :meth:`SqliteStore.transaction` blocks become SAVEPOINTs inside the outer transaction, so only the
outermost block commits, and an inner block that raises undoes its own writes only.

One connection serves every thread. A re-entrant lock guards it, and a transaction holds the lock from
``BEGIN`` to ``COMMIT``, so another thread's write waits for the transaction instead of landing inside it.

The schema is versioned: ``MIGRATIONS`` is an ordered list of SQL scripts and the ``schema_version`` table
records which have run. Opening a database applies the missing ones in a single transaction, and refuses a
database written by a newer schema than this code knows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scaleset.store.base import (
    Record,
    SchemaVersionError,
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

MIGRATIONS: list[str] = [
    # 1: the first schema. Child rows cascade with their scale set; events do not reference it, so the
    # activity log outlives the scale sets it talks about. Rollouts and operations carry a `seq` that is fixed
    # when the row is created, which is what "creation order" means. Events use AUTOINCREMENT so a sequence
    # number is never handed out twice, even if old events are pruned one day.
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE scale_sets (
        set_id TEXT PRIMARY KEY,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE models (
        set_id TEXT NOT NULL REFERENCES scale_sets (set_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (set_id, version)
    ) WITHOUT ROWID;
    CREATE TABLE instances (
        set_id TEXT NOT NULL REFERENCES scale_sets (set_id) ON DELETE CASCADE,
        instance_id INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (set_id, instance_id)
    ) WITHOUT ROWID;
    CREATE TABLE rollouts (
        seq INTEGER PRIMARY KEY,
        rollout_id TEXT NOT NULL UNIQUE,
        set_id TEXT NOT NULL REFERENCES scale_sets (set_id) ON DELETE CASCADE,
        record TEXT NOT NULL
    );
    CREATE INDEX rollouts_by_set ON rollouts (set_id, seq);
    CREATE TABLE operations (
        seq INTEGER PRIMARY KEY,
        op_id TEXT NOT NULL UNIQUE,
        record TEXT NOT NULL
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        set_id TEXT NOT NULL,
        time REAL NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX events_by_set ON events (set_id, seq);
    """,
    # 2: keyed documents of any kind (resource groups, fault rules).
    """
    CREATE TABLE documents (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    """,
]

_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class SqliteStore:
    """A :class:`~scaleset.store.base.Store` in a SQLite database file (or ``":memory:"``)."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.RLock()
        self._depth = 0
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn, self._path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot open the store at {self._path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._open_conn: sqlite3.Connection | None = conn

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    @property
    def _conn(self) -> sqlite3.Connection:
        conn = self._open_conn
        if conn is None:
            raise StoreError("the store is closed")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: the outermost block is BEGIN IMMEDIATE ... COMMIT, inner blocks are SAVEPOINTs."""
        with self._lock:
            conn = self._conn
            depth = self._depth
            savepoint = f"sp{depth}"
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth = depth + 1
            try:
                yield
                conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except BaseException:
                _undo(conn, depth, savepoint)
                raise
            finally:
                self._depth = depth

    def get_meta(self, key: str) -> str | None:
        row = self._fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        check_meta_value(value)
        with self.transaction():
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def put_scale_set(self, set_id: str, record: Record) -> None:
        text = encode_record(record)
        # An upsert, never INSERT OR REPLACE: a replace deletes the row first, and the cascade would take the
        # scale set's models, instances and rollouts with it.
        with self.transaction():
            self._conn.execute(
                "INSERT INTO scale_sets (set_id, record) VALUES (?, ?)"
                " ON CONFLICT (set_id) DO UPDATE SET record = excluded.record",
                (set_id, text),
            )

    def get_scale_set(self, set_id: str) -> Record | None:
        return self._fetch_record("SELECT record FROM scale_sets WHERE set_id = ?", (set_id,))

    def list_scale_sets(self) -> list[tuple[str, Record]]:
        rows = self._fetchall("SELECT set_id, record FROM scale_sets ORDER BY set_id")
        return [(set_id, decode_record(text)) for set_id, text in rows]

    def delete_scale_set(self, set_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM scale_sets WHERE set_id = ?", (set_id,))

    def put_model(self, set_id: str, version: int, model: Record) -> None:
        check_int(version, "model version")
        text = encode_record(model)
        with self.transaction():
            self._require_set(set_id)
            self._conn.execute(
                "INSERT INTO models (set_id, version, record) VALUES (?, ?, ?)"
                " ON CONFLICT (set_id, version) DO UPDATE SET record = excluded.record",
                (set_id, version, text),
            )

    def get_model(self, set_id: str, version: int) -> Record | None:
        return self._fetch_record("SELECT record FROM models WHERE set_id = ? AND version = ?", (set_id, version))

    def put_instances(self, set_id: str, records: Iterable[tuple[int, Record]]) -> None:
        rows = encode_instances(records)  # the whole batch first, so a bad record leaves nothing written
        with self.transaction():
            self._require_set(set_id)
            self._conn.executemany(
                "INSERT INTO instances (set_id, instance_id, record) VALUES (?, ?, ?)"
                " ON CONFLICT (set_id, instance_id) DO UPDATE SET record = excluded.record",
                [(set_id, instance_id, text) for instance_id, text in rows],
            )

    def delete_instances(self, set_id: str, ids: Iterable[int]) -> None:
        keys = [(set_id, check_int(instance_id, "instance id")) for instance_id in ids]
        with self.transaction():
            self._conn.executemany("DELETE FROM instances WHERE set_id = ? AND instance_id = ?", keys)

    def list_instances(self, set_id: str) -> list[tuple[int, Record]]:
        rows = self._fetchall(
            "SELECT instance_id, record FROM instances WHERE set_id = ? ORDER BY instance_id", (set_id,)
        )
        return [(instance_id, decode_record(text)) for instance_id, text in rows]

    def put_rollout(self, rollout_id: str, set_id: str, record: Record) -> None:
        text = encode_record(record)
        with self.transaction():
            self._require_set(set_id)
            row = self._conn.execute("SELECT set_id FROM rollouts WHERE rollout_id = ?", (rollout_id,)).fetchone()
            if row is not None and row[0] != set_id:
                raise StoreError(f"rollout {rollout_id!r} belongs to scale set {row[0]!r}, not {set_id!r}")
            self._conn.execute(
                "INSERT INTO rollouts (rollout_id, set_id, record) VALUES (?, ?, ?)"
                " ON CONFLICT (rollout_id) DO UPDATE SET record = excluded.record",
                (rollout_id, set_id, text),
            )

    def get_rollout(self, rollout_id: str) -> Record | None:
        return self._fetch_record("SELECT record FROM rollouts WHERE rollout_id = ?", (rollout_id,))

    def latest_rollout(self, set_id: str) -> tuple[str, Record] | None:
        row = self._fetchone(
            "SELECT rollout_id, record FROM rollouts WHERE set_id = ? ORDER BY seq DESC LIMIT 1", (set_id,)
        )
        return None if row is None else (row[0], decode_record(row[1]))

    def list_rollouts(self, set_id: str) -> list[tuple[str, Record]]:
        rows = self._fetchall("SELECT rollout_id, record FROM rollouts WHERE set_id = ? ORDER BY seq", (set_id,))
        return [(rollout_id, decode_record(text)) for rollout_id, text in rows]

    def put_operation(self, op_id: str, record: Record) -> None:
        text = encode_record(record)
        with self.transaction():
            self._conn.execute(
                "INSERT INTO operations (op_id, record) VALUES (?, ?)"
                " ON CONFLICT (op_id) DO UPDATE SET record = excluded.record",
                (op_id, text),
            )

    def get_operation(self, op_id: str) -> Record | None:
        return self._fetch_record("SELECT record FROM operations WHERE op_id = ?", (op_id,))

    def list_operations(self) -> list[tuple[str, Record]]:
        rows = self._fetchall("SELECT op_id, record FROM operations ORDER BY seq")
        return [(op_id, decode_record(text)) for op_id, text in rows]

    def append_events(self, events: Iterable[Record]) -> None:
        rows = [encode_event(event) for event in events]
        with self.transaction():
            self._conn.executemany("INSERT INTO events (set_id, time, record) VALUES (?, ?, ?)", rows)

    def list_events(
        self, *, set_id: str | None = None, after_seq: int = 0, limit: int | None = None
    ) -> list[tuple[int, Record]]:
        check_limit(limit)
        sql = "SELECT seq, record FROM events WHERE seq > ?"
        params: list[object] = [after_seq]
        if set_id is not None:
            sql += " AND set_id = ?"
            params.append(set_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._fetchall(sql, params)
        return [(seq, decode_record(text)) for seq, text in rows]

    def put_document(self, kind: str, key: str, record: Record) -> None:
        text = encode_record(record)
        with self.transaction():
            self._conn.execute(
                "INSERT INTO documents (kind, key, record) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET record = excluded.record",
                (kind, key, text),
            )

    def get_document(self, kind: str, key: str) -> Record | None:
        row = self._fetchone("SELECT record FROM documents WHERE kind = ? AND key = ?", (kind, key))
        return None if row is None else decode_record(row[0])

    def list_documents(self, kind: str) -> list[tuple[str, Record]]:
        rows = self._fetchall("SELECT key, record FROM documents WHERE kind = ? ORDER BY key", (kind,))
        return [(str(key), decode_record(text)) for key, text in rows]

    def delete_document(self, kind: str, key: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM documents WHERE kind = ? AND key = ?", (kind, key))

    def close(self) -> None:
        with self._lock:
            if self._depth:
                raise StoreError("cannot close the store inside a transaction")
            conn, self._open_conn = self._open_conn, None
            if conn is not None:
                conn.close()

    def _require_set(self, set_id: str) -> None:
        if self._conn.execute("SELECT 1 FROM scale_sets WHERE set_id = ?", (set_id,)).fetchone() is None:
            raise UnknownScaleSetError(f"scale set {set_id!r} is not stored")

    def _fetchone(self, sql: str, params: Iterable[object] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, tuple(params)).fetchone()
        return row

    def _fetchall(self, sql: str, params: Iterable[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            rows: list[tuple[Any, ...]] = self._conn.execute(sql, tuple(params)).fetchall()
        return rows

    def _fetch_record(self, sql: str, params: tuple[Any, ...]) -> Record | None:
        row = self._fetchone(sql, params)
        return None if row is None else decode_record(row[0])


def _undo(conn: sqlite3.Connection, depth: int, savepoint: str) -> None:
    """Undo the writes of the block at ``depth`` after an exception left it."""
    if not conn.in_transaction:
        return  # SQLite already rolled the whole transaction back (a failed COMMIT, a full disk, ...)
    if depth == 0:
        conn.execute("ROLLBACK")
    else:
        conn.execute(f"ROLLBACK TO {savepoint}")
        conn.execute(f"RELEASE {savepoint}")


def _migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring the database up to ``len(MIGRATIONS)`` in one transaction, or refuse a newer one."""
    known = len(MIGRATIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SCHEMA_VERSION_TABLE)
        (current,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        if current > known:
            raise SchemaVersionError(
                f"the store at {where} has schema version {current}, but this scaleset knows only up to"
                f" version {known}; open it with a newer scaleset, or use another store"
            )
        for version in range(current + 1, known + 1):
            for statement in split_statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        _undo(conn, 0, "")
        raise


def split_statements(script: str) -> list[str]:
    """Split an SQL script into single statements (``sqlite3`` executes one at a time inside a transaction).

    ``executescript`` would do this for us, but it commits any open transaction first, which would break the
    all-or-nothing migration. A ``;`` inside a string literal or a trigger body does not end a statement:
    ``sqlite3.complete_statement`` tells.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        statements.append(buffer.strip()[:-1])  # drop the ';' this loop added after the last piece
    return statements
