"""The store conformance suite: every Store implementation must pass all of it.

Most tests take the parametrized ``store`` fixture and so run once per implementation. The tests at the end
are about a store that lives in a file (reopening, schema versions) and run against SQLite only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scaleset.store import (
    InvalidRecordError,
    MemoryStore,
    SchemaVersionError,
    SqliteStore,
    Store,
    StoreError,
    UnknownScaleSetError,
)
from scaleset.store import sqlite as sqlite_store


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "store.db")
    yield made
    made.close()


class BoomError(Exception):
    """What tests raise inside a transaction to make it fail."""


SET_IDS = ("a", "b", "c")
META_KEYS = ("owner", "seed", "fresh")
ROLLOUT_IDS = ("r1", "r2", "r3", "r4")
OP_IDS = ("op1", "op2", "op3")


def event(set_id: str, time: float, what: str) -> dict[str, Any]:
    return {"time": time, "scaleSet": set_id, "what": what}


def seed(store: Store) -> None:
    """A little of everything, across two scale sets."""
    store.set_meta("owner", "tests")
    store.set_meta("seed", "42")
    store.put_scale_set("a", {"name": "a", "capacity": 3})
    store.put_scale_set("b", {"name": "b", "capacity": 2})
    store.put_model("a", 1, {"image": "v1"})
    store.put_model("b", 1, {"image": "v1"})
    store.put_instances("a", [(i, {"model": 1, "state": "Running"}) for i in range(3)])
    store.put_instances("b", [(i, {"model": 1, "state": "Running"}) for i in range(2)])
    store.put_rollout("r1", "a", {"status": "Completed"})
    store.put_rollout("r2", "b", {"status": "RollingForward"})
    store.put_operation("op1", {"status": "Succeeded"})
    store.append_events([event("a", 1.0, "created"), event("b", 2.0, "created")])


def dump(store: Store) -> dict[str, Any]:
    """Everything a reader can see, through every read method."""
    return {
        "meta": {key: store.get_meta(key) for key in META_KEYS},
        "scale_sets": store.list_scale_sets(),
        "scale_set_by_id": {set_id: store.get_scale_set(set_id) for set_id in SET_IDS},
        "models": {(set_id, v): store.get_model(set_id, v) for set_id in SET_IDS for v in (1, 2)},
        "instances": {set_id: store.list_instances(set_id) for set_id in SET_IDS},
        "rollouts": {set_id: store.list_rollouts(set_id) for set_id in SET_IDS},
        "latest_rollout": {set_id: store.latest_rollout(set_id) for set_id in SET_IDS},
        "rollout_by_id": {rid: store.get_rollout(rid) for rid in ROLLOUT_IDS},
        "operations": store.list_operations(),
        "operation_by_id": {op_id: store.get_operation(op_id) for op_id in OP_IDS},
        "events": store.list_events(),
    }


# One write of every kind, each applied to the seeded store and each changing what `dump` sees.
WRITES: dict[str, Callable[[Store], None]] = {
    "set_meta_new": lambda s: s.set_meta("fresh", "yes"),
    "set_meta_replace": lambda s: s.set_meta("owner", "someone else"),
    "put_scale_set_new": lambda s: s.put_scale_set("c", {"name": "c"}),
    "put_scale_set_replace": lambda s: s.put_scale_set("a", {"name": "a", "capacity": 9}),
    "put_model_new": lambda s: s.put_model("a", 2, {"image": "v2"}),
    "put_model_replace": lambda s: s.put_model("a", 1, {"image": "v1-patched"}),
    "put_instances": lambda s: s.put_instances("a", [(1, {"model": 2}), (7, {"model": 2})]),
    "delete_instances": lambda s: s.delete_instances("a", [0, 2]),
    "put_rollout_new": lambda s: s.put_rollout("r3", "a", {"status": "RollingForward"}),
    "put_rollout_replace": lambda s: s.put_rollout("r2", "b", {"status": "Cancelled"}),
    "put_operation_new": lambda s: s.put_operation("op2", {"status": "InProgress"}),
    "put_operation_replace": lambda s: s.put_operation("op1", {"status": "Failed"}),
    "append_events": lambda s: s.append_events([event("a", 3.0, "x"), event("c", 4.0, "y")]),
    "delete_scale_set": lambda s: s.delete_scale_set("a"),  # last, so `write_everything` can run them in order
}


def write_everything(store: Store) -> None:
    for write in WRITES.values():
        write(store)


# --- meta -----------------------------------------------------------------------------------------------------


def test_meta_round_trip_and_replace(store: Store) -> None:
    assert store.get_meta("owner") is None
    store.set_meta("owner", "me")
    assert store.get_meta("owner") == "me"
    store.set_meta("owner", "you")
    assert store.get_meta("owner") == "you"
    store.set_meta("empty", "")
    assert store.get_meta("empty") == ""


def test_meta_values_are_strings_only(store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        store.set_meta("n", 5)  # type: ignore[arg-type]
    assert store.get_meta("n") is None


# --- scale sets -----------------------------------------------------------------------------------------------


def test_scale_set_round_trip(store: Store) -> None:
    assert store.get_scale_set("a") is None
    store.put_scale_set("a", {"name": "a", "sku": {"capacity": 3}})
    assert store.get_scale_set("a") == {"name": "a", "sku": {"capacity": 3}}


def test_scale_set_put_replaces_the_record(store: Store) -> None:
    store.put_scale_set("a", {"name": "a", "old": True})
    store.put_scale_set("a", {"name": "a"})
    assert store.get_scale_set("a") == {"name": "a"}
    assert store.list_scale_sets() == [("a", {"name": "a"})]


def test_scale_set_replace_keeps_its_children(store: Store) -> None:
    seed(store)
    before = dump(store)
    store.put_scale_set("a", {"name": "a", "capacity": 9})
    after = dump(store)
    assert after["models"] == before["models"]
    assert after["instances"] == before["instances"]
    assert after["rollouts"] == before["rollouts"]


def test_scale_sets_are_listed_by_id(store: Store) -> None:
    for set_id in ["m", "b", "z", "a", "B", "é"]:
        store.put_scale_set(set_id, {"id": set_id})
    assert [set_id for set_id, _ in store.list_scale_sets()] == ["B", "a", "b", "m", "z", "é"]
    assert store.list_scale_sets()[0] == ("B", {"id": "B"})


def test_delete_scale_set_cascades_to_models_instances_and_rollouts(store: Store) -> None:
    seed(store)
    store.put_operation("op2", {"scaleSet": "a"})
    before = dump(store)

    store.delete_scale_set("a")

    after = dump(store)
    assert store.get_scale_set("a") is None
    assert [set_id for set_id, _ in after["scale_sets"]] == ["b"]
    assert store.get_model("a", 1) is None
    assert store.list_instances("a") == []
    assert store.list_rollouts("a") == []
    assert store.latest_rollout("a") is None
    assert store.get_rollout("r1") is None
    # Other scale sets, operations, events and meta are untouched.
    for key in ("operations", "events", "meta"):
        assert after[key] == before[key]
    assert after["instances"]["b"] == before["instances"]["b"]
    assert after["rollouts"]["b"] == before["rollouts"]["b"]
    assert after["models"][("b", 1)] == before["models"][("b", 1)]


def test_delete_scale_set_then_recreate_starts_empty(store: Store) -> None:
    seed(store)
    store.delete_scale_set("a")
    store.put_scale_set("a", {"name": "a again"})
    assert store.get_model("a", 1) is None
    assert store.list_instances("a") == []
    assert store.latest_rollout("a") is None
    store.put_rollout("r1", "a", {"reborn": True})  # the id is free again
    assert store.latest_rollout("a") == ("r1", {"reborn": True})


def test_delete_unknown_scale_set_does_nothing(store: Store) -> None:
    seed(store)
    before = dump(store)
    store.delete_scale_set("nope")
    assert dump(store) == before


# --- models ---------------------------------------------------------------------------------------------------


def test_model_round_trip_and_replace(store: Store) -> None:
    store.put_scale_set("a", {})
    assert store.get_model("a", 1) is None
    store.put_model("a", 1, {"image": "v1"})
    store.put_model("a", 2, {"image": "v2"})
    assert store.get_model("a", 1) == {"image": "v1"}
    assert store.get_model("a", 2) == {"image": "v2"}
    store.put_model("a", 1, {"image": "v1b"})
    assert store.get_model("a", 1) == {"image": "v1b"}
    assert store.get_model("b", 1) is None


def test_model_needs_its_scale_set(store: Store) -> None:
    with pytest.raises(UnknownScaleSetError, match="'ghost'"):
        store.put_model("ghost", 1, {"image": "v1"})
    assert store.get_model("ghost", 1) is None


# --- instances ------------------------------------------------------------------------------------------------


def test_instances_round_trip_ordered_by_id(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_instances("a", [(5, {"n": 5}), (1, {"n": 1}), (30, {"n": 30}), (2, {"n": 2})])
    assert store.list_instances("a") == [(1, {"n": 1}), (2, {"n": 2}), (5, {"n": 5}), (30, {"n": 30})]


def test_instances_upsert_replaces_and_adds(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_instances("a", [(0, {"v": 1}), (1, {"v": 1})])
    store.put_instances("a", iter([(1, {"v": 2}), (2, {"v": 2})]))  # any iterable will do
    assert store.list_instances("a") == [(0, {"v": 1}), (1, {"v": 2}), (2, {"v": 2})]


def test_instances_repeated_id_in_one_batch_keeps_the_last(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_instances("a", [(3, {"v": "first"}), (3, {"v": "last"})])
    assert store.list_instances("a") == [(3, {"v": "last"})]


def test_instances_belong_to_their_scale_set(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_scale_set("b", {})
    store.put_instances("a", [(0, {"set": "a"})])
    store.put_instances("b", [(0, {"set": "b"})])
    assert store.list_instances("a") == [(0, {"set": "a"})]
    assert store.list_instances("b") == [(0, {"set": "b"})]
    assert store.list_instances("unknown") == []


def test_delete_instances(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_scale_set("b", {})
    store.put_instances("a", [(i, {"i": i}) for i in range(5)])
    store.put_instances("b", [(1, {"b": True})])
    store.delete_instances("a", iter([1, 3, 99]))  # 99 is not stored: ignored
    assert store.list_instances("a") == [(0, {"i": 0}), (2, {"i": 2}), (4, {"i": 4})]
    assert store.list_instances("b") == [(1, {"b": True})]
    store.delete_instances("unknown", [0])
    store.delete_instances("a", [])
    assert len(store.list_instances("a")) == 3


def test_instances_need_their_scale_set(store: Store) -> None:
    with pytest.raises(UnknownScaleSetError):
        store.put_instances("ghost", [(0, {})])
    assert store.list_instances("ghost") == []


def test_instance_batch_with_a_bad_record_writes_nothing(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_instances("a", [(0, {"v": 1})])
    with pytest.raises(InvalidRecordError):
        store.put_instances("a", [(0, {"v": 2}), (1, {"v": object()})])
    with pytest.raises(InvalidRecordError):
        store.put_instances("a", [(0, {"v": 2}), ("1", {"v": 2})])  # type: ignore[list-item]
    assert store.list_instances("a") == [(0, {"v": 1})]


# --- rollouts -------------------------------------------------------------------------------------------------


def test_rollout_round_trip_and_replace(store: Store) -> None:
    store.put_scale_set("a", {})
    assert store.get_rollout("r1") is None
    assert store.latest_rollout("a") is None
    assert store.list_rollouts("a") == []
    store.put_rollout("r1", "a", {"status": "RollingForward"})
    assert store.get_rollout("r1") == {"status": "RollingForward"}
    store.put_rollout("r1", "a", {"status": "Completed"})
    assert store.get_rollout("r1") == {"status": "Completed"}
    assert store.list_rollouts("a") == [("r1", {"status": "Completed"})]


def test_rollouts_keep_creation_order_not_update_order(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_scale_set("b", {})
    # Ids chosen so that neither alphabetical order nor update order is creation order.
    store.put_rollout("zz", "a", {"n": 1})
    store.put_rollout("mm", "b", {"n": 1})
    store.put_rollout("aa", "a", {"n": 1})
    store.put_rollout("kk", "a", {"n": 1})
    store.put_rollout("zz", "a", {"n": 2})  # updating the oldest must not make it the latest
    store.put_rollout("aa", "a", {"n": 2})

    assert store.list_rollouts("a") == [("zz", {"n": 2}), ("aa", {"n": 2}), ("kk", {"n": 1})]
    assert store.latest_rollout("a") == ("kk", {"n": 1})
    assert store.list_rollouts("b") == [("mm", {"n": 1})]
    assert store.latest_rollout("b") == ("mm", {"n": 1})


def test_rollout_needs_its_scale_set(store: Store) -> None:
    with pytest.raises(UnknownScaleSetError):
        store.put_rollout("r1", "ghost", {})
    assert store.get_rollout("r1") is None


def test_rollout_cannot_move_to_another_scale_set(store: Store) -> None:
    store.put_scale_set("a", {})
    store.put_scale_set("b", {})
    store.put_rollout("r1", "a", {"n": 1})
    with pytest.raises(StoreError, match="belongs to scale set 'a'"):
        store.put_rollout("r1", "b", {"n": 2})
    assert store.list_rollouts("a") == [("r1", {"n": 1})]
    assert store.list_rollouts("b") == []


# --- operations -----------------------------------------------------------------------------------------------


def test_operation_round_trip_replace_and_creation_order(store: Store) -> None:
    assert store.get_operation("op-z") is None
    assert store.list_operations() == []
    store.put_operation("op-z", {"status": "InProgress"})
    store.put_operation("op-a", {"status": "InProgress"})
    store.put_operation("op-z", {"status": "Succeeded"})
    assert store.get_operation("op-z") == {"status": "Succeeded"}
    assert store.list_operations() == [("op-z", {"status": "Succeeded"}), ("op-a", {"status": "InProgress"})]


# --- events ---------------------------------------------------------------------------------------------------


def test_events_get_increasing_sequence_numbers(store: Store) -> None:
    store.append_events([event("a", 1.0, "one"), event("b", 2.0, "two")])
    store.append_events([])
    store.append_events(iter([event("a", 3, "three")]))
    listed = store.list_events()
    assert [e for _, e in listed] == [event("a", 1.0, "one"), event("b", 2.0, "two"), event("a", 3, "three")]
    seqs = [seq for seq, _ in listed]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    assert seqs[0] >= 1


def test_events_filter_by_set_after_seq_and_limit(store: Store) -> None:
    store.append_events([event("a" if i % 2 else "b", float(i), f"e{i}") for i in range(10)])
    everything = store.list_events()
    seqs = [seq for seq, _ in everything]

    assert store.list_events(set_id="a") == [(seq, e) for seq, e in everything if e["scaleSet"] == "a"]
    assert store.list_events(after_seq=seqs[6]) == everything[7:]
    assert store.list_events(limit=3) == everything[:3]
    assert store.list_events(limit=0) == []
    assert store.list_events(set_id="b", after_seq=seqs[3], limit=2) == [everything[4], everything[6]]
    assert store.list_events(set_id="nobody") == []
    assert store.list_events(after_seq=seqs[-1]) == []


def test_events_keep_growing_after_a_scale_set_is_deleted(store: Store) -> None:
    seed(store)
    before = store.list_events()
    store.delete_scale_set("a")
    store.append_events([event("a", 9.0, "deleted")])
    after = store.list_events()
    assert after[:-1] == before
    assert after[-1][0] > before[-1][0]


def test_events_need_time_and_scale_set(store: Store) -> None:
    store.append_events([event("a", 1.0, "ok")])
    bad_events: list[dict[str, Any]] = [
        {"time": 1.0},
        {"scaleSet": "a"},
        {"time": "noon", "scaleSet": "a"},
        {"time": True, "scaleSet": "a"},
        {"time": 1.0, "scaleSet": 7},
    ]
    for bad in bad_events:
        with pytest.raises(InvalidRecordError):
            store.append_events([event("a", 2.0, "fine"), bad])
    assert [e["what"] for _, e in store.list_events()] == ["ok"]


def test_negative_event_limit_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.list_events(limit=-1)


# --- records: what a round trip gives back --------------------------------------------------------------------


def test_records_come_back_as_json_does(store: Store) -> None:
    record = {
        "str": "naïve ✓",
        "int": 2**53 + 1,
        "float": 0.1,
        "bool": False,
        "none": None,
        "list": [1, [2, {"x": []}]],
        "tuple": (1, 2),
        "nested": {"deep": {"er": {}}},
        1: "int key",
    }
    store.put_operation("op", record)
    assert store.get_operation("op") == {
        "str": "naïve ✓",
        "int": 2**53 + 1,
        "float": 0.1,
        "bool": False,
        "none": None,
        "list": [1, [2, {"x": []}]],
        "tuple": [1, 2],
        "nested": {"deep": {"er": {}}},
        "1": "int key",
    }


@pytest.mark.parametrize(
    "bad",
    [{"x": object()}, {"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, ["not", "a", "dict"]],
    ids=["object", "nan", "inf", "set", "list"],
)
def test_records_that_are_not_json_are_refused(store: Store, bad: Any) -> None:
    store.put_scale_set("a", {})
    for put in (
        lambda: store.put_scale_set("b", bad),
        lambda: store.put_model("a", 1, bad),
        lambda: store.put_instances("a", [(0, bad)]),
        lambda: store.put_rollout("r", "a", bad),
        lambda: store.put_operation("op", bad),
    ):
        with pytest.raises(InvalidRecordError):
            put()
    assert store.get_scale_set("b") is None
    assert store.get_model("a", 1) is None
    assert store.list_instances("a") == []
    assert store.get_rollout("r") is None
    assert store.get_operation("op") is None


# One (put, get) pair per kind of record, for the aliasing tests.
KINDS: dict[str, tuple[Callable[[Store, dict[str, Any]], None], Callable[[Store], Any]]] = {
    "scale_set": (lambda s, r: s.put_scale_set("a", r), lambda s: s.get_scale_set("a")),
    "scale_set_listed": (lambda s, r: s.put_scale_set("a", r), lambda s: s.list_scale_sets()[0][1]),
    "model": (lambda s, r: s.put_model("a", 1, r), lambda s: s.get_model("a", 1)),
    "instance": (lambda s, r: s.put_instances("a", [(0, r)]), lambda s: s.list_instances("a")[0][1]),
    "rollout": (lambda s, r: s.put_rollout("r1", "a", r), lambda s: s.get_rollout("r1")),
    "rollout_latest": (lambda s, r: s.put_rollout("r1", "a", r), lambda s: s.latest_rollout("a")[1]),
    "rollout_listed": (lambda s, r: s.put_rollout("r1", "a", r), lambda s: s.list_rollouts("a")[0][1]),
    "operation": (lambda s, r: s.put_operation("op", r), lambda s: s.get_operation("op")),
    "operation_listed": (lambda s, r: s.put_operation("op", r), lambda s: s.list_operations()[0][1]),
    "event": (lambda s, r: s.append_events([r]), lambda s: s.list_events()[-1][1]),
}


@pytest.mark.parametrize("kind", KINDS)
def test_callers_never_alias_stored_records(store: Store, kind: str) -> None:
    put, get = KINDS[kind]
    if not kind.startswith("scale_set"):
        store.put_scale_set("a", {})
    record: dict[str, Any] = {"time": 1.0, "scaleSet": "a", "nested": {"list": [1, 2]}}
    original = {"time": 1.0, "scaleSet": "a", "nested": {"list": [1, 2]}}

    put(store, record)
    record["nested"]["list"].append("mutated after put")
    record["added"] = True
    assert get(store) == original

    fetched = get(store)
    fetched["nested"]["list"].append("mutated after get")
    fetched["added"] = True
    assert get(store) == original


# --- transactions ---------------------------------------------------------------------------------------------


def test_transaction_commits_all_writes_together(store: Store) -> None:
    seed(store)
    with store.transaction():
        write_everything(store)
        inside = dump(store)  # a transaction reads its own writes
    assert dump(store) == inside


@pytest.mark.parametrize("write", WRITES)
def test_failed_transaction_leaves_nothing_written(store: Store, write: str) -> None:
    seed(store)
    before = dump(store)
    boom = BoomError()
    with pytest.raises(BoomError) as raised, store.transaction():
        WRITES[write](store)
        assert dump(store) != before, "the write under test should be visible inside its transaction"
        raise boom
    assert raised.value is boom
    assert dump(store) == before


def test_failed_transaction_undoes_every_kind_of_write_at_once(store: Store) -> None:
    seed(store)
    before = dump(store)
    with pytest.raises(BoomError), store.transaction():
        write_everything(store)
        raise BoomError
    assert dump(store) == before
    # The store is still usable, and later sequence numbers still grow.
    store.append_events([event("a", 5.0, "after")])
    assert store.list_events()[-1][0] > before["events"][-1][0]


@pytest.mark.parametrize("write", WRITES)
def test_each_write_is_atomic_outside_a_transaction(store: Store, write: str) -> None:
    seed(store)
    before = dump(store)
    WRITES[write](store)
    assert dump(store) != before


def test_nested_transaction_commits_only_with_the_outer_one(store: Store) -> None:
    seed(store)
    before = dump(store)
    with pytest.raises(BoomError), store.transaction():
        with store.transaction():
            store.put_scale_set("c", {"inner": True})
            with store.transaction():
                store.append_events([event("c", 1.0, "innermost")])
        assert store.get_scale_set("c") == {"inner": True}
        raise BoomError
    assert dump(store) == before


def test_inner_transaction_failure_undoes_only_the_inner_block(store: Store) -> None:
    seed(store)
    with store.transaction():
        store.set_meta("fresh", "outer-before")
        with pytest.raises(BoomError), store.transaction():
            store.put_scale_set("c", {"inner": True})
            store.delete_scale_set("a")
            store.append_events([event("c", 1.0, "inner")])
            raise BoomError
        store.put_operation("op2", {"outer": "after"})
    assert store.get_meta("fresh") == "outer-before"
    assert store.get_operation("op2") == {"outer": "after"}
    assert store.get_scale_set("c") is None
    assert store.get_scale_set("a") is not None
    assert len(store.list_instances("a")) == 3
    assert [e["what"] for _, e in store.list_events()] == ["created", "created"]


def test_refused_write_inside_a_transaction_does_not_spoil_it(store: Store) -> None:
    seed(store)
    with store.transaction():
        store.put_model("a", 2, {"image": "v2"})
        with pytest.raises(UnknownScaleSetError):
            store.put_instances("ghost", [(0, {})])
        with pytest.raises(StoreError):
            store.put_rollout("r1", "b", {})
        with pytest.raises(InvalidRecordError):
            store.append_events([{"no": "time"}])
    assert store.get_model("a", 2) == {"image": "v2"}
    assert store.get_rollout("r1") == {"status": "Completed"}


def test_transaction_can_be_used_again_after_a_failure(store: Store) -> None:
    with pytest.raises(BoomError), store.transaction():
        store.set_meta("k", "lost")
        raise BoomError
    with store.transaction():
        store.set_meta("k", "kept")
    assert store.get_meta("k") == "kept"


# --- threads --------------------------------------------------------------------------------------------------


def test_another_thread_never_writes_into_a_transaction(store: Store) -> None:
    """A write from another thread while a transaction is open must survive that transaction's rollback."""
    other_thread_starting = threading.Event()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            other_thread_starting.set()
            store.set_meta("other", "written")
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    worker = threading.Thread(target=other_thread)
    with pytest.raises(BoomError), store.transaction():
        store.set_meta("mine", "rolled back")
        worker.start()
        assert other_thread_starting.wait(timeout=10)
        raise BoomError
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert errors == []
    assert store.get_meta("other") == "written"
    assert store.get_meta("mine") is None


def test_concurrent_writers_lose_nothing(store: Store) -> None:
    sets = [f"s{n}" for n in range(4)]
    for set_id in sets:
        store.put_scale_set(set_id, {})
    errors: list[BaseException] = []

    def writer(set_id: str) -> None:
        try:
            for batch in range(20):
                with store.transaction():
                    store.put_instances(set_id, [(batch * 10 + i, {"batch": batch}) for i in range(10)])
                    store.append_events([event(set_id, float(batch), "batch")])
                store.get_scale_set(set_id)
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(set_id,)) for set_id in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for set_id in sets:
        assert [i for i, _ in store.list_instances(set_id)] == list(range(200))
        assert len(store.list_events(set_id=set_id)) == 20
    seqs = [seq for seq, _ in store.list_events()]
    assert seqs == sorted(set(seqs))


# --- closing --------------------------------------------------------------------------------------------------


def test_close_is_final_and_idempotent(store: Store) -> None:
    store.set_meta("k", "v")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_meta("k")
    with pytest.raises(StoreError, match="closed"):
        store.set_meta("k", "v")
    with pytest.raises(StoreError, match="closed"), store.transaction():
        pass


def test_close_inside_a_transaction_is_refused(store: Store) -> None:
    with store.transaction():
        store.set_meta("k", "v")
        with pytest.raises(StoreError, match="inside a transaction"):
            store.close()
    assert store.get_meta("k") == "v"


# --- a store in a file: reopening and schema versions (SQLite) ------------------------------------------------


def test_reopened_store_sees_everything_committed(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = SqliteStore(path)
    seed(first)
    with first.transaction():
        write_everything(first)
    expected = dump(first)
    first.close()

    second = SqliteStore(path)
    try:
        assert dump(second) == expected
    finally:
        second.close()


@pytest.mark.parametrize("write", WRITES)
def test_reopened_store_sees_nothing_of_a_failed_transaction(tmp_path: Path, write: str) -> None:
    path = tmp_path / "store.db"
    first = SqliteStore(path)
    seed(first)
    expected = dump(first)
    with pytest.raises(BoomError), first.transaction():
        WRITES[write](first)
        raise BoomError
    first.close()

    second = SqliteStore(path)
    try:
        assert dump(second) == expected
    finally:
        second.close()


def test_nested_transaction_is_invisible_to_other_connections_until_the_outer_commit(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    writer, reader = SqliteStore(path), SqliteStore(path)
    try:
        with writer.transaction():
            with writer.transaction():
                writer.put_scale_set("a", {"n": 1})
            assert reader.get_scale_set("a") is None
        assert reader.get_scale_set("a") == {"n": 1}
    finally:
        writer.close()
        reader.close()


def schema_versions(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_fresh_database_records_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    SqliteStore(path).close()
    assert schema_versions(path) == list(range(1, len(sqlite_store.MIGRATIONS) + 1))
    SqliteStore(path).close()  # reopening at the current version changes nothing
    assert schema_versions(path) == list(range(1, len(sqlite_store.MIGRATIONS) + 1))


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    store.set_meta("k", "v")
    store.close()
    newer = len(sqlite_store.MIGRATIONS) + 5
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (newer,))
        conn.commit()

    with pytest.raises(SchemaVersionError, match=f"schema version {newer}.*only up to version"):
        SqliteStore(path)
    assert schema_versions(path)[-1] == newer  # refused without touching the file


def test_older_database_is_migrated_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    store.set_meta("k", "v")
    store.close()

    upgraded = [*sqlite_store.MIGRATIONS, "CREATE TABLE extra (note TEXT); INSERT INTO extra VALUES ('a;b');"]
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", upgraded)
    store = SqliteStore(path)
    assert store.get_meta("k") == "v"
    store.close()
    assert schema_versions(path) == list(range(1, len(upgraded) + 1))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT note FROM extra").fetchall() == [("a;b",)]


def test_failed_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.db"
    store = SqliteStore(path)
    store.set_meta("k", "v")
    store.close()
    before = schema_versions(path)

    broken = [*sqlite_store.MIGRATIONS, "CREATE TABLE extra (note TEXT); INSERT INTO missing VALUES (1);"]
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", broken)
    with pytest.raises(StoreError, match="missing"):
        SqliteStore(path)

    assert schema_versions(path) == before
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "extra" not in tables


def test_documents_round_trip_order_and_delete(store: Store) -> None:
    store.put_document("resourceGroup", "sub/b", {"location": "westus"})
    store.put_document("resourceGroup", "sub/a", {"location": "eastus"})
    store.put_document("faults", "x", {"kind": "crash"})
    store.put_document("resourceGroup", "sub/a", {"location": "northeurope"})
    assert store.get_document("resourceGroup", "sub/a") == {"location": "northeurope"}
    assert [k for k, _ in store.list_documents("resourceGroup")] == ["sub/a", "sub/b"]
    assert store.list_documents("faults") == [("x", {"kind": "crash"})]
    store.delete_document("resourceGroup", "sub/a")
    store.delete_document("resourceGroup", "missing")
    assert store.get_document("resourceGroup", "sub/a") is None
    assert store.list_documents("nothing") == []


def test_documents_roll_back_with_their_transaction(store: Store) -> None:
    store.put_document("k", "kept", {"v": 1})
    with pytest.raises(BoomError), store.transaction():
        store.put_document("k", "lost", {"v": 2})
        store.delete_document("k", "kept")
        raise BoomError
    assert store.list_documents("k") == [("kept", {"v": 1})]
