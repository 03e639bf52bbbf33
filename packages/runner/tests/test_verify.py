"""``verify``: re-hashing content, finding the entries it breaks, and repairing them."""

from __future__ import annotations

import time
from pathlib import Path

from modelcache.runner import maintenance
from modelcache.store import MemoryStore, blob_name, manifest_name

from .maintenance_world import MODEL, STORES, Clock, StoreFactory, damage, publish, sha, spec, whole


@STORES
def test_verify_finds_a_flipped_byte_and_a_deleted_blob_and_repair_heals(
    factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    good = publish(store, tmp_path, MODEL, spec("a"), {"w": b"fine", "t": b"shared"})
    flipped = publish(store, tmp_path, good.key, spec("b"), {"w": b"flip me", "t": b"shared"})
    lost = publish(store, tmp_path, flipped.key, spec("c"), {"w": b"lose me"})
    damage(store, tmp_path, blob_name(sha(b"flip me")), b"flip mE")
    damage(store, tmp_path, blob_name(sha(b"lose me")), None)
    inventory = maintenance.take_inventory(store, now=time.time())
    report = maintenance.verify(store, inventory)
    assert report.corrupt_blobs == [sha(b"flip me")]
    assert report.missing_blobs == [sha(b"lose me")]
    assert report.broken_entries == {flipped.key: [sha(b"flip me")], lost.key: [sha(b"lose me")]}
    assert not report.clean
    assert not report.removed_entries

    repaired = maintenance.verify(
        store, maintenance.take_inventory(store, now=time.time()), repair=True
    )
    assert repaired.repaired
    assert sorted(repaired.removed_entries) == sorted([flipped.key, lost.key])
    assert repaired.removed_blobs == [sha(b"flip me")]
    after = maintenance.take_inventory(store, now=time.time())
    assert set(after.entries) == {good.key}
    assert maintenance.verify(store, after).clean
    assert whole(store, good, tmp_path)
    # The entry can be published again, and its blob is sent again, not assumed present.
    again = publish(store, tmp_path, good.key, spec("b"), {"w": b"flip me", "t": b"shared"})
    assert whole(store, again, tmp_path)


@STORES
def test_verify_with_a_sample_checks_that_many_blobs(factory: StoreFactory, tmp_path: Path) -> None:
    store = factory(tmp_path, Clock())
    publish(store, tmp_path, MODEL, spec("a"), {f"f{i}": bytes([i]) * 10 for i in range(6)})
    inventory = maintenance.take_inventory(store, now=time.time())
    report = maintenance.verify(store, inventory, sample=2)
    assert (report.checked_blobs, report.sampled, report.clean) == (2, True, True)


def test_an_invalid_manifest_is_listed_with_its_problem_and_verify_reports_it() -> None:
    store = MemoryStore()
    key = "b" * 64
    store.put_object(manifest_name(key), b"{}")
    inventory = maintenance.take_inventory(store, now=time.time())
    assert inventory.entries[key].problem is not None
    report = maintenance.verify(store, inventory, repair=True)
    assert key in report.invalid_entries
    assert report.removed_entries == [key]


def test_the_verify_report_in_json_is_sorted_and_says_whether_the_cache_is_clean() -> None:
    report = maintenance.VerifyReport(
        checked_blobs=3,
        checked_bytes=30,
        corrupt_blobs=["d", "c"],
        missing_blobs=["f", "e"],
        invalid_entries={"k2": "bad", "k1": "worse"},
        broken_entries={"k4": ["z", "y"], "k3": ["x"]},
        removed_entries=["k4", "k3"],
        removed_blobs=["d", "c"],
        kept_changed=["n2", "n1"],
    )
    document = report.to_json()
    assert document == {
        "checked_blobs": 3,
        "checked_bytes": 30,
        "sampled": False,
        "corrupt_blobs": ["c", "d"],
        "missing_blobs": ["e", "f"],
        "invalid_entries": {"k1": "worse", "k2": "bad"},
        "broken_entries": {"k3": ["x"], "k4": ["y", "z"]},
        "removed_entries": ["k3", "k4"],
        "removed_blobs": ["c", "d"],
        "kept_changed": ["n1", "n2"],
        "clean": False,
    }
    assert list(document["broken_entries"]) == ["k3", "k4"]
    assert maintenance.VerifyReport().to_json()["clean"] is True
