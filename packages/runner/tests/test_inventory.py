"""The inventory: what a store holds, and the ``ls``, ``show`` and ``stats`` views of it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from modelcache.runner import maintenance
from modelcache.store import MaintainedStore, MemoryStore

from .maintenance_world import MODEL, STORES, Clock, StoreFactory, publish, sha, spec


@STORES
def test_both_stores_can_be_maintained(factory: StoreFactory, tmp_path: Path) -> None:
    assert isinstance(factory(tmp_path, Clock()), MaintainedStore)


@STORES
def test_inventory_lists_entries_blobs_and_lineage(factory: StoreFactory, tmp_path: Path) -> None:
    store = factory(tmp_path, Clock())
    first = publish(store, tmp_path, MODEL, spec("a"), {"w": b"weights", "t": b"tokenizer"})
    second = publish(store, tmp_path, first.key, spec("b"), {"w": b"other", "t": b"tokenizer"})
    store.write_evaluation(second.key, "ev", {"size": 1})
    inventory = maintenance.take_inventory(store, now=time.time())
    assert set(inventory.entries) == {first.key, second.key}
    assert set(inventory.blobs) == {sha(b"weights"), sha(b"tokenizer"), sha(b"other")}
    assert inventory.entries[second.key].pass_type == "Typeb"
    assert inventory.entries[second.key].input == first.key
    chain = maintenance.lineage(inventory, second.key)
    assert [link.get("key") for link in chain[:2]] == [second.key, first.key]
    assert chain[2] == {"model": {"kind": "local_dir", "digest": "0" * 64}}
    assert maintenance.resolve_key(inventory, second.key[:8]) == second.key
    with pytest.raises(maintenance.UnknownEntry, match="at least 6"):
        maintenance.resolve_key(inventory, "ab")


def test_a_lineage_ends_at_an_input_no_longer_in_the_cache(tmp_path: Path) -> None:
    store = MemoryStore()
    first = publish(store, tmp_path, MODEL, spec("a"), {"w": b"weights"})
    second = publish(store, tmp_path, first.key, spec("b"), {"w": b"other"})
    store.delete_raw(f"modelcache-v1/entries/{first.key}.json")
    inventory = maintenance.take_inventory(store, now=time.time())
    assert maintenance.lineage(inventory, second.key) == [
        {"key": second.key, "pass": "Typeb", "size": 5},
        {"key": first.key, "missing": True},
    ]


def test_ls_lists_an_entry_with_its_input_and_times(tmp_path: Path) -> None:
    store = MemoryStore(clock=Clock())
    first = publish(store, tmp_path, MODEL, spec("a"), {"w": b"weights", "t": b"tok"})
    inventory = maintenance.take_inventory(store, now=time.time())
    assert inventory.entries[first.key].to_json() == {
        "key": first.key,
        "pass": "Typea",
        "input": "local model 000000000000",
        "model_type": "onnx",
        "size": 10,
        "files": 2,
        "created": "2026-01-01T00:00:00Z",
        "last_used": "2027-01-15T08:00:00Z",  # the clock's time, when it was written
    }


def test_ls_lists_an_invalid_entry_with_its_problem() -> None:
    store = MemoryStore(clock=Clock())
    store.put_object(f"modelcache-v1/entries/{'b' * 64}.json", b"{}")
    entry = maintenance.take_inventory(store, now=time.time()).entries["b" * 64]
    assert entry.to_json()["pass"] == "?"
    assert entry.to_json()["problem"].startswith("invalid manifest:")


@pytest.mark.parametrize(
    ("value", "described"),
    [
        (None, None),
        ("k" * 64, "entry " + "k" * 64),
        (
            {"kind": "hf_hub", "repo_id": "org/m", "revision": "0123456789abcdef"},
            "org/m@0123456789ab",
        ),
        ({"kind": "local_dir", "digest": "ab" * 32}, "local model abababababab"),
        ({"kind": "other", "x": 1}, '{"kind":"other","x":1}'),
    ],
)
def test_an_input_is_described_by_what_names_it(value: object, described: str | None) -> None:
    assert maintenance.describe_input(value) == described  # type: ignore[arg-type]


@STORES
def test_stats_count_logical_and_stored_bytes_and_add_up_runs(
    factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    first = publish(store, tmp_path, MODEL, spec("a"), {"w": b"x" * 100, "t": b"y" * 10})
    publish(store, tmp_path, first.key, spec("b"), {"w": b"z" * 50, "t": b"y" * 10})
    one = maintenance.RunTally(
        runs=1,
        hits={"local": 0, "cloud": 1},
        misses={"local": 2, "cloud": 1},
        bytes_downloaded=7,
        bytes_uploaded=60,
        compute_seconds_saved=2.0,
    )
    two = maintenance.RunTally(
        runs=1, hits={"local": 2, "cloud": 0}, misses={"local": 0, "cloud": 0}, bytes_avoided=110
    )
    maintenance.record_run(store, one, [first.key], finished=time.time())
    maintenance.record_run(store, two, [first.key], finished=time.time())
    figures = maintenance.stats(maintenance.take_inventory(store, now=time.time()))
    assert figures["entries"] == 2
    assert figures["logical_bytes"] == 170
    assert figures["stored_bytes"] == 160  # the 10-byte tokenizer is stored once
    assert figures["deduplication_ratio"] == round(170 / 160, 3)
    assert figures["runs"] == 2
    assert figures["hits"] == {"local": 2, "cloud": 1}
    assert figures["misses"] == {"local": 2, "cloud": 1}
    assert (figures["bytes_downloaded"], figures["bytes_uploaded"]) == (7, 60)
    assert figures["bytes_avoided"] == 110
    assert figures["compute_seconds_saved"] == 2.0


def test_stats_of_an_empty_cache_have_no_deduplication_ratio() -> None:
    figures = maintenance.stats(maintenance.take_inventory(MemoryStore(), now=time.time()))
    assert figures == {
        "entries": 0,
        "invalid_entries": 0,
        "blobs": 0,
        "logical_bytes": 0,
        "stored_bytes": 0,
        "deduplication_ratio": None,
        "unreferenced_blobs": 0,
        "unreferenced_bytes": 0,
        "evaluation_results": 0,
        "run_records": 0,
        "runs": 0,
        "hits": {"local": 0, "cloud": 0},
        "misses": {"local": 0, "cloud": 0},
        "bytes_downloaded": 0,
        "bytes_uploaded": 0,
        "bytes_avoided": 0,
        "compute_seconds_saved": 0.0,
    }
