import threading
from pathlib import Path

import pytest

from modelcache.planner import SnapshotEntry
from modelcache.store import (
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    MemoryStore,
    Store,
    StoreUnavailable,
    blob_name,
    manifest_name,
)

from .entries import entry


def test_memory_store_satisfies_the_store_port() -> None:
    assert isinstance(MemoryStore(), Store)


def test_snapshot_is_one_request_whatever_the_number_of_keys(tmp_path: Path) -> None:
    store = MemoryStore()
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.publish(source, manifest)
    before = store.requests
    listing = store.snapshot([manifest.key] + [f"{i:064x}" for i in range(500)])
    assert store.requests == before + 1
    assert listing == [SnapshotEntry(key=manifest.key, in_cloud=True, size=1, run_seconds=1.25)]


def test_tier_decides_which_presence_flag_is_set(tmp_path: Path) -> None:
    store = MemoryStore(tier="local")
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.publish(source, manifest)
    [listed] = store.snapshot([manifest.key])
    assert (listed.in_local, listed.in_cloud) == (True, False)


def test_an_unavailable_store_fails_every_call(tmp_path: Path) -> None:
    store = MemoryStore()
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.unavailable = True
    calls = [
        lambda: store.snapshot([manifest.key]),
        lambda: store.read_manifest(manifest.key),
        lambda: store.fetch(manifest.key, tmp_path / "out"),
        lambda: store.publish(source, manifest),
        lambda: store.read_evaluation(manifest.key, "ev"),
        lambda: store.write_evaluation(manifest.key, "ev", {}),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            call()
    assert not (tmp_path / "out").exists()
    store.unavailable = False
    assert store.publish(source, manifest) is True


def test_concurrent_publishers_of_one_entry_agree_on_one_winner(tmp_path: Path) -> None:
    store = MemoryStore()
    source, manifest = entry(tmp_path, "a", {"m": b"1" * 1000, "n/o": b"2"})
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def publish() -> None:
        barrier.wait()
        results.append(store.publish(source, manifest))

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    store.fetch(manifest.key, tmp_path / "out")
    assert (tmp_path / "out" / "m").read_bytes() == b"1" * 1000


def test_a_manifest_published_in_another_form_is_refused(tmp_path: Path) -> None:
    store = MemoryStore()
    _source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.put_object(manifest_name(manifest.key), manifest.to_json().replace(b'"t"', b"null"))
    with pytest.raises(InvalidManifest, match="producer"):
        store.read_manifest(manifest.key)
    assert store.snapshot([manifest.key]) == []


def test_a_missing_blob_is_a_corrupt_entry(tmp_path: Path) -> None:
    store = MemoryStore()
    _source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.put_object(manifest_name(manifest.key), manifest.to_json())
    with pytest.raises(CorruptEntry, match="missing"):
        store.fetch(manifest.key, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_read_evaluation_hands_out_a_copy(tmp_path: Path) -> None:
    store = MemoryStore()
    key = "a" * 64
    store.write_evaluation(key, "ev", {"accuracy": 0.5})
    first = store.read_evaluation(key, "ev")
    assert isinstance(first, dict)
    first["accuracy"] = 1.0
    assert store.read_evaluation(key, "ev") == {"accuracy": 0.5}


def test_read_evaluation_of_nothing_is_not_found() -> None:
    with pytest.raises(EntryNotFound):
        MemoryStore().read_evaluation("a" * 64, "ev")


def test_put_and_get_object_bypass_the_request_count() -> None:
    store = MemoryStore()
    store.put_object(blob_name("b" * 64), b"raw")
    assert store.get_object(blob_name("b" * 64)) == b"raw"
    assert store.get_object(blob_name("c" * 64)) is None
    assert store.requests == 0
