"""``MemoryStore.copy``: an independent store holding the same records (what-if runs start from one snapshot)."""

from __future__ import annotations

import pytest

from scaleset.store import MemoryStore, StoreError


def test_a_copy_holds_the_same_records_and_goes_its_own_way() -> None:
    original = MemoryStore()
    original.set_meta("now", "1")
    original.put_scale_set("s", {"name": "web", "body": {"sku": {"capacity": 2}}})
    original.put_model("s", 1, {"v": 1})
    original.put_instances("s", [(0, {"zone": "1"}), (1, {"zone": "2"})])
    original.append_events([{"scaleSet": "s", "time": 1.0, "kind": "created"}])

    twin = original.copy()
    assert twin.get_meta("now") == "1" and twin.get_model("s", 1) == {"v": 1}
    assert twin.list_instances("s") == original.list_instances("s")
    assert twin.list_events() == original.list_events()

    twin.put_instances("s", [(0, {"zone": "3"})])
    twin.delete_instances("s", [1])
    twin.append_events([{"scaleSet": "s", "time": 2.0, "kind": "changed"}])
    twin.set_meta("now", "2")
    assert original.list_instances("s") == [(0, {"zone": "1"}), (1, {"zone": "2"})]
    assert [seq for seq, _ in original.list_events()] == [1] and original.get_meta("now") == "1"
    assert [seq for seq, _ in twin.list_events()] == [1, 2], "sequence numbers carry on in the copy"

    original.close()
    assert twin.get_scale_set("s") == {"name": "web", "body": {"sku": {"capacity": 2}}}


def test_no_copy_inside_a_transaction() -> None:
    store = MemoryStore()
    with store.transaction(), pytest.raises(StoreError, match="inside a transaction"):
        store.copy()
