"""``verify``: re-hashing content, finding the entries it breaks, and repairing them."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import maintenance
from modelcache.store import LocalStore, Manifest, MemoryStore, blob_name, manifest_name

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
        "links": [],
        "removed_links": [],
        "clean": False,
    }
    assert list(document["broken_entries"]) == ["k3", "k4"]
    assert maintenance.VerifyReport().to_json()["clean"] is True


def _rewritten(manifest: Manifest, change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(manifest.to_json())
    change(document)
    return json.dumps(document).encode()


def _first_file(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda document: document["files"][0].update(values)


def _deep_key_inputs(document: dict[str, Any]) -> None:
    document["key_inputs"]["deep"] = json.loads("[" * 60 + "]" * 60)
    for _ in range(10):
        document["key_inputs"]["deep"] = [document["key_inputs"]["deep"]]


#: Manifests a store refuses to read, as ``cache verify`` must report them (not crash).
HOSTILE: dict[str, tuple[Callable[[Manifest], bytes], str]] = {
    "nested at the top": (lambda _m: b"[" * 100_000 + b"]" * 100_000, "nested more than"),
    "nested in the key inputs": (lambda m: _rewritten(m, _deep_key_inputs), "nested more than"),
    "a lone surrogate in a path": (
        lambda m: _rewritten(m, _first_file(path="\ud800x")),
        "lone surrogate",
    ),
    "a 256-byte ASCII path component": (
        lambda m: _rewritten(m, _first_file(path="a" * 256)),
        "longer than 255 bytes",
    ),
    "a 258-byte multibyte path component": (
        lambda m: _rewritten(m, _first_file(path="\u6a21" * 86)),
        "longer than 255 bytes",
    ),
}


@STORES
@pytest.mark.parametrize("case", list(HOSTILE))
def test_verify_reports_a_hostile_manifest_and_repair_removes_it(
    case: str, factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    good = publish(store, tmp_path, MODEL, spec("a"), {"w": b"fine"})
    bad = publish(store, tmp_path, good.key, spec("b"), {"w": b"soon hostile"})
    replacement, words = HOSTILE[case]
    damage(store, tmp_path, manifest_name(bad.key), replacement(bad))

    report = maintenance.verify(store, maintenance.take_inventory(store, now=time.time()))
    assert list(report.invalid_entries) == [bad.key]
    assert words in report.invalid_entries[bad.key]
    json.dumps(report.to_json(), ensure_ascii=False).encode()  # printable: no lone surrogate
    repaired = maintenance.verify(
        store, maintenance.take_inventory(store, now=time.time()), repair=True
    )
    assert (repaired.removed_entries, repaired.repaired) == ([bad.key], True)
    after = maintenance.take_inventory(store, now=time.time())
    assert set(after.entries) == {good.key}
    assert maintenance.verify(store, after).clean


@STORES
@pytest.mark.parametrize("delta", [1, -1])
def test_verify_finds_a_listed_size_that_is_not_the_blobs_even_in_a_sample(
    delta: int, factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    files = {f"f{i}": bytes([i]) * 10 for i in range(6)}
    good = publish(store, tmp_path, MODEL, spec("a"), files)
    lying = publish(store, tmp_path, good.key, spec("b"), {"w": b"twelve bytes"})
    damage(
        store, tmp_path, manifest_name(lying.key), _rewritten(lying, _first_file(size=12 + delta))
    )

    report = maintenance.verify(store, maintenance.take_inventory(store, now=time.time()), sample=1)
    problem = report.invalid_entries[lying.key]
    assert f"'w' as {12 + delta} bytes, but its blob {sha(b'twelve bytes')} holds 12" in problem
    assert report.corrupt_blobs == []  # the blob is whole; the manifest lies
    assert not report.clean
    repaired = maintenance.verify(
        store, maintenance.take_inventory(store, now=time.time()), repair=True
    )
    assert repaired.removed_entries == [lying.key]
    assert repaired.removed_blobs == []


@STORES
@pytest.mark.parametrize("data", [b"cut", b"twelve bytes and more"])
def test_verify_finds_a_blob_longer_or_shorter_than_listed_as_corrupt(
    data: bytes, factory: StoreFactory, tmp_path: Path
) -> None:
    store = factory(tmp_path, Clock())
    manifest = publish(store, tmp_path, MODEL, spec("a"), {"w": b"twelve bytes"})
    damage(store, tmp_path, blob_name(sha(b"twelve bytes")), data)

    report = maintenance.verify(store, maintenance.take_inventory(store, now=time.time()), sample=1)
    assert report.corrupt_blobs == [sha(b"twelve bytes")]
    assert report.broken_entries == {manifest.key: [sha(b"twelve bytes")]}


def _local(tmp_path: Path) -> tuple[LocalStore, Manifest, Manifest]:
    store = LocalStore(tmp_path / "cache")
    good = publish(store, tmp_path, MODEL, spec("a"), {"w": b"fine"})
    other = publish(store, tmp_path, good.key, spec("b"), {"w": b"other"})
    return store, good, other


def test_verify_reports_a_local_manifest_that_is_a_symlink_and_repair_removes_the_link(
    tmp_path: Path,
) -> None:
    store, good, other = _local(tmp_path)
    path = store.root / manifest_name(other.key)
    target = tmp_path / "elsewhere.json"
    shutil.copyfile(path, target)
    path.unlink()
    path.symlink_to(target)

    report = maintenance.verify(store, maintenance.take_inventory(store, now=time.time()))
    assert report.links == [manifest_name(other.key)]
    assert not report.clean
    repaired = maintenance.verify(
        store, maintenance.take_inventory(store, now=time.time()), repair=True
    )
    assert (repaired.removed_links, repaired.repaired) == ([manifest_name(other.key)], True)
    assert not path.is_symlink()
    assert not path.exists()
    assert Manifest.from_json(target.read_bytes()) == other  # what it pointed to: untouched
    after = maintenance.take_inventory(store, now=time.time())
    assert set(after.entries) == {good.key}
    assert maintenance.verify(store, after).clean


def test_verify_reports_a_local_blobs_folder_that_is_a_symlink_and_repair_removes_the_link(
    tmp_path: Path,
) -> None:
    store, _good, _other = _local(tmp_path)
    blobs = store.root / "modelcache-v1" / "blobs"
    elsewhere = tmp_path / "elsewhere"
    shutil.move(blobs, elsewhere)
    blobs.symlink_to(elsewhere)
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))

    report = maintenance.verify(store, maintenance.take_inventory(store, now=time.time()))
    assert report.links == ["modelcache-v1/blobs"]
    assert report.checked_blobs == 0  # nothing read through the link
    repaired = maintenance.verify(
        store, maintenance.take_inventory(store, now=time.time()), repair=True
    )
    assert repaired.removed_links == ["modelcache-v1/blobs"]
    assert repaired.repaired
    assert not blobs.is_symlink()
    assert not blobs.exists()
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before
    after = maintenance.take_inventory(store, now=time.time())
    assert after.entries == {}  # their blobs were never in the cache: the next run recomputes
    assert maintenance.verify(store, after).clean
