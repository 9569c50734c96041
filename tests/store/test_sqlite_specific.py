"""What only the SQLite store promises: WAL on disk, bulk speed, surviving a killed process, opening by name."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scaleset.store import MemoryStore, SqliteStore, StoreError, open_store
from scaleset.store.sqlite import split_statements


def test_database_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_ten_thousand_instances_round_trip_quickly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    try:
        store.put_scale_set("big", {})
        records = [
            (i, {"instanceId": str(i), "modelVersion": 3, "state": "Running", "zone": str(i % 3)})
            for i in range(10_000)
        ]
        # Best of three (inserts, then two rounds of updates): the budget is for the code, not a busy machine.
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            store.put_instances("big", records)
            timings.append(time.perf_counter() - start)
        assert store.list_instances("big") == records
        assert min(timings) < 0.1, f"put_instances of 10,000 rows took {min(timings):.3f} s at best"
    finally:
        store.close()


def test_in_memory_sqlite_database_works() -> None:
    store = SqliteStore(":memory:")
    try:
        store.put_scale_set("a", {"n": 1})
        store.put_instances("a", [(0, {})])
        assert store.list_scale_sets() == [("a", {"n": 1})]
        assert store.list_instances("a") == [(0, {})]
    finally:
        store.close()


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database, just some notes that are long enough to look like a header\n" * 10)
    with pytest.raises(StoreError, match="cannot open the store at"):
        SqliteStore(path)


def test_open_store_by_name(tmp_path: Path) -> None:
    memory = open_store("memory:")
    assert isinstance(memory, MemoryStore)
    memory.close()

    path = tmp_path / "nested" / "deeper" / "store.db"
    on_disk = open_store(str(path))
    try:
        assert isinstance(on_disk, SqliteStore)
        on_disk.set_meta("k", "v")
    finally:
        on_disk.close()
    assert path.is_file()

    private = open_store(":memory:")
    assert isinstance(private, SqliteStore)
    private.close()


def test_split_statements_respects_literals_comments_and_triggers() -> None:
    script = """
        CREATE TABLE t (note TEXT);  -- a comment; with a semicolon
        CREATE TRIGGER t_copy AFTER INSERT ON t WHEN NEW.note = 'a;b' BEGIN
            INSERT INTO t VALUES ('copied;');
        END;
        INSERT INTO t VALUES ('a;b');
        INSERT INTO t VALUES ('last, no semicolon')
    """
    statements = split_statements(script)
    assert len(statements) == 4
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        for statement in statements:
            conn.execute(statement)  # one statement each, or sqlite3 refuses
        notes = [row[0] for row in conn.execute("SELECT note FROM t ORDER BY rowid")]
    assert notes == ["a;b", "copied;", "last, no semicolon"]


# The child commits one write, then opens a transaction big enough to spill pages into the WAL file, says so,
# and waits to be killed.
CHILD = textwrap.dedent(
    """
    import sys
    from scaleset.store import SqliteStore

    store = SqliteStore(sys.argv[1])
    store.put_instances("s", [(1, {"committed": "by the child"})])
    with store.transaction():
        store.put_scale_set("doomed", {"never": "committed"})
        store.put_instances("s", [(i, {"pad": "x" * 200}) for i in range(2, 40_002)])
        store.append_events([{"time": 1.0, "scaleSet": "s", "what": "never committed"}])
        print("in transaction", flush=True)
        sys.stdin.read()  # hold the transaction open until the parent kills us
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_process_killed_mid_transaction_leaves_the_last_committed_state(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    store.put_scale_set("s", {"name": "s"})
    store.put_instances("s", [(0, {"committed": "by the parent"})])
    store.append_events([{"time": 0.0, "scaleSet": "s", "what": "committed"}])
    store.close()

    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ) as child:
        try:
            assert child.stdout is not None and child.stderr is not None
            ready, _, _ = select.select([child.stdout], [], [], 60)
            assert ready, "the child did not reach its transaction within 60 s"
            line = child.stdout.readline()
            assert line == "in transaction\n", f"the child failed: {child.stderr.read()}"
            wal = Path(f"{path}-wal")
            assert wal.stat().st_size > 1_000_000, "the uncommitted transaction should have spilled into the WAL"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == -signal.SIGKILL

    reopened = SqliteStore(path)
    try:
        assert reopened.list_instances("s") == [(0, {"committed": "by the parent"}), (1, {"committed": "by the child"})]
        assert reopened.get_scale_set("doomed") is None
        assert [e["what"] for _, e in reopened.list_events()] == ["committed"]
        reopened.put_instances("s", [(2, {"after": "recovery"})])  # and the file is writable again
        assert len(reopened.list_instances("s")) == 3
    finally:
        reopened.close()
