"""``prune``: removing entries by last use and the blobs nothing needs, safely beside
publishers; and the durations and sizes it is given."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcache.runner import maintenance
from modelcache.store import MemoryStore, blob_name

from .maintenance_world import DAY, MODEL, STORES, Clock, StoreFactory, publish, sha, spec, whole


@STORES
def test_prune_by_age_removes_old_entries_and_only_their_own_blobs(
    factory: StoreFactory, tmp_path: Path
) -> None:
    clock = Clock()
    store = factory(tmp_path, clock)
    old = publish(store, tmp_path, MODEL, spec("a"), {"w": b"old weights", "t": b"shared"})
    kept = publish(store, tmp_path, MODEL, spec("b"), {"w": b"new weights", "t": b"shared"})
    store.write_evaluation(old.key, "ev", {"size": 1})
    used = clock.now + 5 * DAY
    maintenance.record_run(store, maintenance.RunTally(runs=1), [kept.key], finished=used)
    now = clock.now + 10 * DAY
    inventory = maintenance.take_inventory(store, now=now)
    assert inventory.entries[kept.key].last_used == used
    dry = maintenance.prune(store, inventory, older_than=7 * DAY, grace=DAY, dry_run=True)
    assert dry.entries == [old.key]
    assert maintenance.take_inventory(store, now=now).entries.keys() == {old.key, kept.key}

    report = maintenance.prune(store, inventory, older_than=7 * DAY, grace=DAY)
    assert report.entries == [old.key]
    assert report.blobs == [sha(b"old weights")]
    after = maintenance.take_inventory(store, now=now)
    assert set(after.entries) == {kept.key}
    assert set(after.blobs) == {sha(b"new weights"), sha(b"shared")}
    assert after.evaluations == {}
    assert whole(store, kept, tmp_path)


@STORES
def test_prune_to_a_size_removes_least_recently_used_first(
    factory: StoreFactory, tmp_path: Path
) -> None:
    clock = Clock()
    store = factory(tmp_path, clock)
    entries = [
        publish(store, tmp_path, MODEL, spec(name), {"w": name.encode() * 100})
        for name in ("a", "b", "c")
    ]
    for offset, manifest in zip((3, 1, 2), entries, strict=True):
        tally = maintenance.RunTally(runs=1)
        maintenance.record_run(store, tally, [manifest.key], finished=clock.now + offset * DAY)
    inventory = maintenance.take_inventory(store, now=clock.now + 10 * DAY)
    report = maintenance.prune(store, inventory, max_size=200, grace=DAY)
    assert report.entries == [entries[1].key]  # b, used longest ago
    assert report.stored_bytes_after == 200


@STORES
def test_prune_never_removes_what_is_newer_than_the_grace_period(
    factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    manifest = publish(store, tmp_path, MODEL, spec("a"), {"w": b"fresh"})
    inventory = maintenance.take_inventory(store, now=time.time())
    report = maintenance.prune(store, inventory, older_than=0.0, max_size=0, grace=3600)
    assert report.entries == []
    assert report.blobs == []
    assert report.notes  # says the cache could not be brought under max_size
    assert whole(store, manifest, tmp_path)


@STORES
def test_prune_spares_a_blob_that_a_publisher_reused_after_the_listing(
    factory: StoreFactory, tmp_path: Path
) -> None:
    """The race the grace period alone cannot cover: prune lists an old, unreferenced blob;
    a publisher then reuses it (finds it present and does not send it); prune must not
    delete it, or the new entry would be broken."""
    clock = Clock()
    store = factory(tmp_path, clock)
    old = publish(store, tmp_path, MODEL, spec("a"), {"w": b"reused later"})
    later = clock.now + 10 * DAY
    inventory = maintenance.take_inventory(store, now=later)
    # A publisher between the prune's inventory and its deletes: it refreshes the blob.
    clock.now = later
    new = publish(store, tmp_path, MODEL, spec("b"), {"w": b"reused later"})
    report = maintenance.prune(store, inventory, older_than=DAY, grace=0.0)
    assert report.entries == [old.key]
    assert report.blobs == []
    assert whole(store, new, tmp_path)


@STORES
def test_prune_spares_a_blob_refreshed_between_its_listing_and_its_delete(
    factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    publish(store, tmp_path, MODEL, spec("a"), {"w": b"contested"})
    listed = next(store.list_objects(blob_name(sha(b"contested"))))
    time.sleep(0.01)
    publish(store, tmp_path, MODEL, spec("b"), {"w": b"contested"})  # refreshes the blob
    assert store.delete_object(listed) is False
    assert store.hash_object(listed.name) == sha(b"contested")


def test_prune_removes_old_evaluation_results_of_entries_that_are_gone(tmp_path: Path) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    kept = publish(store, tmp_path, MODEL, spec("a"), {"w": b"weights"})
    store.write_evaluation(kept.key, "ev", {"size": 1})
    store.write_evaluation("e" * 64, "ev", {"size": 2})  # of an entry no longer here
    inventory = maintenance.take_inventory(store, now=clock.now + 10 * DAY)
    report = maintenance.prune(store, inventory, older_than=30 * DAY, grace=DAY)
    assert (report.entries, report.evaluations) == ([], 1)
    assert set(maintenance.take_inventory(store, now=clock.now).evaluations) == {kept.key}


@given(
    uses=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=6),
    shared=st.lists(st.booleans(), min_size=6, max_size=6),
    older_than=st.none() | st.integers(min_value=0, max_value=30),
    max_size=st.none() | st.integers(min_value=0, max_value=1000),
)
def test_prune_keeps_every_remaining_entry_whole(
    uses: list[int], shared: list[bool], older_than: int | None, max_size: int | None
) -> None:
    """Whatever the ages and limits: entries used more recently than the cutoff stay, every
    remaining entry is whole, no blob is left that nothing needs, and the size limit holds
    when nothing is protected by the grace period."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    scratch = Path(tempfile.mkdtemp(prefix="modelcache-prune-"))
    try:
        manifests = []
        for index, used in enumerate(uses):
            files = {"own": f"entry {index}".encode() * 20}
            if shared[index]:
                files["tok"] = b"shared tokenizer"
            manifest = publish(store, scratch, MODEL, spec(f"p{index}"), files)
            manifests.append(manifest)
            tally = maintenance.RunTally(runs=1)
            maintenance.record_run(store, tally, [manifest.key], finished=clock.now + used * DAY)
        now = clock.now + 40 * DAY
        inventory = maintenance.take_inventory(store, now=now)
        report = maintenance.prune(
            store,
            inventory,
            older_than=None
            if older_than is None and max_size is not None
            else (older_than or 0) * DAY,
            max_size=max_size,
            grace=DAY,
        )
        after = maintenance.take_inventory(store, now=now)
        for manifest in manifests:
            if manifest.key in after.entries:
                assert whole(store, manifest, scratch)
        assert set(after.blobs) == set(after.referenced())
        assert set(report.entries) == set(inventory.entries) - set(after.entries)
        if older_than is not None or max_size is None:
            cutoff = now - (older_than or 0) * DAY
            for key in after.entries:
                assert inventory.entries[key].last_used >= cutoff
        if max_size is not None:
            assert sum(blob.size for blob in after.blobs.values()) <= max_size
            removed_uses = [inventory.entries[k].last_used for k in report.entries]
            kept_uses = [inventory.entries[k].last_used for k in after.entries]
            if older_than is None and removed_uses and kept_uses:
                assert max(removed_uses) <= min(kept_uses)  # least recently used went first
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_prune_report_in_json_names_entries_and_counts_blobs() -> None:
    report = maintenance.PruneReport(
        dry_run=True,
        entries=["k2", "k1"],
        entry_bytes=20,
        blobs=["b1", "b2", "b3"],
        blob_bytes=15,
        evaluations=2,
        records_folded=4,
        kept_fresh=1,
        kept_changed=["n2", "n1"],
        stored_bytes_before=100,
        stored_bytes_after=85,
        notes=["second", "first"],
    )
    assert report.to_json() == {
        "dry_run": True,
        "removed_entries": ["k1", "k2"],
        "removed_entry_bytes": 20,
        "removed_blobs": 3,
        "freed_bytes": 15,
        "removed_evaluations": 2,
        "run_records_folded": 4,
        "kept_fresh": 1,
        "kept_changed": ["n1", "n2"],
        "stored_bytes_before": 100,
        "stored_bytes_after": 85,
        "notes": ["second", "first"],
        "removed_scratch": [],
    }


def test_prune_needs_an_age_or_a_size() -> None:
    inventory = maintenance.take_inventory(MemoryStore(), now=time.time())
    with pytest.raises(ValueError, match="older_than or max_size"):
        maintenance.prune(MemoryStore(), inventory)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * DAY), ("12h", 43200), ("90m", 5400), ("2w", 14 * DAY)]
)
def test_durations(text: str, seconds: float) -> None:
    assert maintenance.parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [("500GB", 500 << 30), ("1.5MiB", 3 << 19), ("10", 10)])
def test_sizes(text: str, size: int) -> None:
    assert maintenance.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "d", "-1d", "3 parsecs", "nan", "infd"])
def test_bad_durations_and_sizes_say_what_to_give(text: str) -> None:
    with pytest.raises(ValueError, match=r"as in|zero or more"):
        maintenance.parse_duration(text)
    with pytest.raises(ValueError, match=r"as in|zero or more"):
        maintenance.parse_size(text)


def test_prune_sweeps_the_scratch_a_killed_run_left_and_spares_a_live_runs(
    tmp_path: Path,
) -> None:
    from modelcache.runner.workflow._scratch import OWNER_FILE, scratch_folder
    from modelcache.store import LocalStore

    store = LocalStore(tmp_path / "cache")
    publish(store, tmp_path, MODEL, spec("a"), {"w": b"weights"})
    with scratch_folder(store.root) as live:
        killed = store.root / "run-killed"  # its owner file's lock is free: its run is gone
        (killed / "half-written").mkdir(parents=True)
        (killed / OWNER_FILE).write_text("{}")
        (live / "model").write_bytes(b"in use")
        inventory = maintenance.take_inventory(store, now=time.time())
        dry = maintenance.prune(store, inventory, older_than=DAY, dry_run=True)
        assert dry.scratch == ["run-killed"]
        assert killed.exists()
        report = maintenance.prune(store, inventory, older_than=DAY)
        assert report.scratch == ["run-killed"]
        assert not killed.exists()
        assert (live / "model").read_bytes() == b"in use"
        assert report.to_json()["removed_scratch"] == ["run-killed"]
