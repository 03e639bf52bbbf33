"""Cache maintenance on the memory and local stores: prune, verify, why, stats, run records.

The same operations run against Azurite through the command line in
``tests/test_cache_cli.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcache.planner import Chain, LocalModel, PassSpec, chain_keys, key_document, pass_key
from modelcache.runner import maintenance
from modelcache.store import (
    LocalStore,
    MaintainedStore,
    Manifest,
    MemoryStore,
    blob_name,
    build_manifest,
    manifest_name,
)

DAY = 86400.0
MODEL = LocalModel(digest="0" * 64)


class Clock:
    """A clock tests move by hand; the memory store stamps objects with it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec(name: str, **config: Any) -> PassSpec:
    return PassSpec(
        name=name, type=f"Type{name}", version="1", config=config, packages={"torch": "2.13.0"}
    )


def publish(
    store: MaintainedStore, scratch: Path, input_: Any, pass_spec: PassSpec, files: dict[str, bytes]
) -> Manifest:
    """Publish an entry with ``files`` as the output of ``pass_spec`` on ``input_``."""
    source = Path(tempfile.mkdtemp(dir=scratch))
    for path, data in files.items():
        (source / path).write_bytes(data)
    document = key_document(input_, pass_spec)
    key = pass_key(input_, pass_spec)
    manifest = build_manifest(
        key=key,
        key_inputs=document,
        model_type="onnx",
        directory=source,
        run_seconds=2.0,
        created="2026-01-01T00:00:00Z",
        producer="t",
    )
    assert store.publish(source, manifest)
    shutil.rmtree(source)
    return manifest


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="modelcache-maintenance-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


StoreFactory = Callable[[Path, Clock], MaintainedStore]


def memory_store(_scratch: Path, clock: Clock) -> MaintainedStore:
    return MemoryStore(clock=clock)


def local_store(scratch: Path, _clock: Clock) -> MaintainedStore:
    return LocalStore(scratch / "cache")


STORES = pytest.mark.parametrize("factory", [memory_store, local_store], ids=["memory", "local"])


def whole(store: MaintainedStore, manifest: Manifest, scratch: Path) -> bool:
    """Whether the entry can be fetched, every byte verified."""
    target = scratch / f"fetch-{os.urandom(4).hex()}"
    store.fetch(manifest.key, target)
    shutil.rmtree(target)
    return True


@STORES
def test_both_stores_can_be_maintained(factory: StoreFactory, scratch: Path) -> None:
    assert isinstance(factory(scratch, Clock()), MaintainedStore)


@STORES
def test_inventory_lists_entries_blobs_and_lineage(factory: StoreFactory, scratch: Path) -> None:
    store = factory(scratch, Clock())
    first = publish(store, scratch, MODEL, spec("a"), {"w": b"weights", "t": b"tokenizer"})
    second = publish(store, scratch, first.key, spec("b"), {"w": b"other", "t": b"tokenizer"})
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
    with pytest.raises(KeyError, match="at least 6"):
        maintenance.resolve_key(inventory, "ab")


@STORES
def test_stats_count_logical_and_stored_bytes_and_add_up_runs(
    factory: StoreFactory, scratch: Path
) -> None:
    store = factory(scratch, Clock())
    first = publish(store, scratch, MODEL, spec("a"), {"w": b"x" * 100, "t": b"y" * 10})
    publish(store, scratch, first.key, spec("b"), {"w": b"z" * 50, "t": b"y" * 10})
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


@STORES
def test_verify_finds_a_flipped_byte_and_a_deleted_blob_and_repair_heals(
    factory: StoreFactory, scratch: Path
) -> None:
    store = factory(scratch, Clock())
    good = publish(store, scratch, MODEL, spec("a"), {"w": b"fine", "t": b"shared"})
    flipped = publish(store, scratch, good.key, spec("b"), {"w": b"flip me", "t": b"shared"})
    lost = publish(store, scratch, flipped.key, spec("c"), {"w": b"lose me"})
    _damage(store, scratch, blob_name(sha(b"flip me")), b"flip mE")
    _damage(store, scratch, blob_name(sha(b"lose me")), None)
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
    assert whole(store, good, scratch)
    # The entry can be published again, and its blob is sent again, not assumed present.
    again = publish(store, scratch, good.key, spec("b"), {"w": b"flip me", "t": b"shared"})
    assert whole(store, again, scratch)


def _damage(store: MaintainedStore, scratch: Path, name: str, data: bytes | None) -> None:
    if isinstance(store, MemoryStore):
        if data is None:
            store.delete_raw(name)
        else:
            store.put_object(name, data)
        return
    path = scratch / "cache" / name
    if data is None:
        path.unlink()
    else:
        path.chmod(0o644)
        path.write_bytes(data)


@STORES
def test_verify_with_a_sample_checks_that_many_blobs(factory: StoreFactory, scratch: Path) -> None:
    store = factory(scratch, Clock())
    publish(store, scratch, MODEL, spec("a"), {f"f{i}": bytes([i]) * 10 for i in range(6)})
    inventory = maintenance.take_inventory(store, now=time.time())
    report = maintenance.verify(store, inventory, sample=2)
    assert (report.checked_blobs, report.sampled, report.clean) == (2, True, True)


@STORES
def test_prune_by_age_removes_old_entries_and_only_their_own_blobs(
    factory: StoreFactory, scratch: Path
) -> None:
    clock = Clock()
    store = factory(scratch, clock)
    old = publish(store, scratch, MODEL, spec("a"), {"w": b"old weights", "t": b"shared"})
    kept = publish(store, scratch, MODEL, spec("b"), {"w": b"new weights", "t": b"shared"})
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
    assert whole(store, kept, scratch)


@STORES
def test_prune_to_a_size_removes_least_recently_used_first(
    factory: StoreFactory, scratch: Path
) -> None:
    clock = Clock()
    store = factory(scratch, clock)
    entries = [
        publish(store, scratch, MODEL, spec(name), {"w": name.encode() * 100})
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
    factory: StoreFactory, scratch: Path
) -> None:
    store = factory(scratch, Clock())
    manifest = publish(store, scratch, MODEL, spec("a"), {"w": b"fresh"})
    inventory = maintenance.take_inventory(store, now=time.time())
    report = maintenance.prune(store, inventory, older_than=0.0, max_size=0, grace=3600)
    assert report.entries == []
    assert report.blobs == []
    assert report.notes  # says the cache could not be brought under max_size
    assert whole(store, manifest, scratch)


@STORES
def test_prune_spares_a_blob_that_a_publisher_reused_after_the_listing(
    factory: StoreFactory, scratch: Path
) -> None:
    """The race the grace period alone cannot cover: prune lists an old, unreferenced blob;
    a publisher then reuses it (finds it present and does not send it); prune must not
    delete it, or the new entry would be broken."""
    clock = Clock()
    store = factory(scratch, clock)
    old = publish(store, scratch, MODEL, spec("a"), {"w": b"reused later"})
    later = clock.now + 10 * DAY
    inventory = maintenance.take_inventory(store, now=later)
    # A publisher between the prune's inventory and its deletes: it refreshes the blob.
    clock.now = later
    new = publish(store, scratch, MODEL, spec("b"), {"w": b"reused later"})
    report = maintenance.prune(store, inventory, older_than=DAY, grace=0.0)
    assert report.entries == [old.key]
    assert report.blobs == []
    assert whole(store, new, scratch)


@STORES
def test_prune_spares_a_blob_refreshed_between_its_listing_and_its_delete(
    factory: StoreFactory, scratch: Path
) -> None:
    store = factory(scratch, Clock())
    publish(store, scratch, MODEL, spec("a"), {"w": b"contested"})
    listed = next(store.list_objects(blob_name(sha(b"contested"))))
    time.sleep(0.01)
    publish(store, scratch, MODEL, spec("b"), {"w": b"contested"})  # refreshes the blob
    assert store.delete_object(listed) is False
    assert store.hash_object(listed.name) == sha(b"contested")


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


def test_prune_folds_old_run_records_into_one_and_stats_do_not_change() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    key = "a" * 64
    for index in range(4):
        tally = maintenance.RunTally(
            runs=1,
            hits={"local": index, "cloud": 1},
            misses={"local": 1, "cloud": 0},
            bytes_downloaded=10,
        )
        clock.now += 60
        maintenance.record_run(store, tally, [key], finished=clock.now)
    before = maintenance.take_inventory(store, now=clock.now + 10 * DAY)
    report = maintenance.prune(store, before, older_than=30 * DAY, grace=DAY)
    assert report.records_folded == 4
    after = maintenance.take_inventory(store, now=clock.now + 10 * DAY)
    assert len(after.records) == 1
    assert maintenance.stats(after)["runs"] == 4
    assert maintenance.stats(after)["hits"] == maintenance.stats(before)["hits"]
    assert maintenance.stats(after)["bytes_downloaded"] == 40


def test_a_half_done_fold_counts_nothing_twice() -> None:
    """The folded record is written before the old ones are deleted; a reader that finds
    both ignores the ones it replaces."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    for _ in range(3):
        clock.now += 60
        maintenance.record_run(store, maintenance.RunTally(runs=1), [], finished=clock.now)
    inventory = maintenance.take_inventory(store, now=clock.now + 10 * DAY)
    names = [record.name for record in inventory.records]
    kept = {name: store.get_object(name) for name in names}
    maintenance.prune(store, inventory, older_than=30 * DAY, grace=DAY)
    for name, data in kept.items():  # as if the deletes never happened
        assert data is not None
        store.put_object(name, data)
    assert maintenance.stats(maintenance.take_inventory(store, now=clock.now))["runs"] == 3


def test_a_malformed_run_record_is_ignored() -> None:
    store = MemoryStore()
    maintenance.record_run(store, maintenance.RunTally(runs=1), [], finished=time.time())
    store.put_object("modelcache-v1/runs/20260101T000000Z-bad.json", b"{not json")
    store.put_object(
        "modelcache-v1/runs/20260101T000001Z-neg.json", b'{"format":"modelcache-run/1","runs":-5}'
    )
    assert maintenance.stats(maintenance.take_inventory(store, now=time.time()))["runs"] == 1


def test_an_invalid_manifest_is_listed_with_its_problem_and_verify_reports_it() -> None:
    store = MemoryStore()
    key = "b" * 64
    store.put_object(manifest_name(key), b"{}")
    inventory = maintenance.take_inventory(store, now=time.time())
    assert inventory.entries[key].problem is not None
    report = maintenance.verify(store, inventory, repair=True)
    assert key in report.invalid_entries
    assert report.removed_entries == [key]


def test_why_names_the_changed_config_field_and_package() -> None:
    store = MemoryStore()
    scratch = Path(tempfile.mkdtemp())
    try:
        cached = [spec("convert", opset=17), spec("quantize", per_channel=True)]
        keys = chain_keys(Chain(model=MODEL, passes=tuple(cached)))
        previous: Any = MODEL
        for pass_spec, key in zip(cached, keys, strict=True):
            publish(store, scratch, previous, pass_spec, {"w": key.encode()})
            previous = key
        changed = [
            spec("convert", opset=17),
            PassSpec(
                name="quantize",
                type="Typequantize",
                version="1",
                config={"per_channel": False},
                packages={"torch": "2.14.0"},
            ),
        ]
        report = _why(store, changed, "quantize")
        assert not report.cached
        assert report.nearest == keys[1]
        fields = {d.field: (d.cached, d.now) for d in report.differences}
        assert fields == {
            "pass.config.per_channel": (True, False),
            "pass.packages.torch": ("2.13.0", "2.14.0"),
        }
        assert _why(store, changed, "convert").cached

        upstream_changed = [spec("convert", opset=18), spec("quantize", per_channel=True)]
        report = _why(store, upstream_changed, "quantize")
        assert [d.field for d in report.differences] == ["input"]
        assert report.upstream is not None
        assert report.upstream.pass_name == "convert"
        assert [d.field for d in report.upstream.differences] == ["pass.config.opset"]
        assert "convert" in report.note
    finally:
        shutil.rmtree(scratch)


def _why(store: MemoryStore, passes: list[PassSpec], name: str) -> maintenance.WhyReport:
    keys = list(chain_keys(Chain(model=MODEL, passes=tuple(passes))))
    documents = [key_document(MODEL if i == 0 else keys[i - 1], p) for i, p in enumerate(passes)]
    inventory = maintenance.take_inventory(store, now=time.time())
    return maintenance.explain_miss(inventory, [p.name for p in passes], documents, keys, name)


def test_why_says_when_a_pass_type_never_ran() -> None:
    report = _why(MemoryStore(), [spec("convert")], "convert")
    assert not report.cached
    assert report.nearest is None
    assert "never ran" in report.note


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
