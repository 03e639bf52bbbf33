"""Run records: their stored format, what a reader refuses, and folding them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from modelcache.runner import maintenance
from modelcache.runner.maintenance import usage
from modelcache.store import MemoryStore, StoredObject

from .maintenance_world import DAY, Clock

KEY_A, KEY_B = "a" * 64, "b" * 64
#: A record as modelcache has always written it (``docs/storage-layout.md``, "Run records").
STORED = (
    '{"bytes_avoided":3,"bytes_downloaded":49560,"bytes_uploaded":0,'
    '"compute_seconds_saved":4.125,"finished":"2027-01-15T08:00:00Z",'
    '"format":"modelcache-run/1","hits":{"cloud":1,"local":1},'
    f'"last_used":{{"{KEY_A}":"2027-01-15T08:00:00Z","{KEY_B}":"2027-01-15T08:00:00Z"}},'
    '"misses":{"cloud":0,"local":1},"replaces":[],"runs":1}'
)
LISTED = StoredObject(
    name="modelcache-v1/runs/20270115T080000Z-0a1b2c.json", size=1, modified=1.0, version="1"
)


def _tally() -> maintenance.RunTally:
    return maintenance.RunTally(
        runs=1,
        hits={"local": 1, "cloud": 1},
        misses={"local": 1, "cloud": 0},
        bytes_downloaded=49560,
        bytes_avoided=3,
        compute_seconds_saved=4.12501,
    )


def test_a_run_record_is_written_in_the_format_stored_today() -> None:
    store = MemoryStore()
    name = maintenance.record_run(store, _tally(), [KEY_B, KEY_A], finished=1_800_000_000.0)
    assert name.startswith("modelcache-v1/runs/20270115T080000Z-")
    assert store.get_object(name) == STORED.encode()


def test_a_run_record_stored_today_is_read() -> None:
    record = usage.parse_record(LISTED, STORED.encode())
    assert record is not None
    assert record.tally == maintenance.RunTally(
        runs=1,
        hits={"local": 1, "cloud": 1},
        misses={"local": 1, "cloud": 0},
        bytes_downloaded=49560,
        bytes_avoided=3,
        compute_seconds_saved=4.125,
    )
    assert record.last_used == {KEY_A: 1_800_000_000.0, KEY_B: 1_800_000_000.0}
    assert record.replaces == ()


def _changed(**changes: Any) -> bytes:
    document = json.loads(STORED)
    for name, value in changes.items():
        if value is ...:
            del document[name]
        else:
            document[name] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
        _changed(format="modelcache-run/2"),
        _changed(runs=-5),
        _changed(runs=True),
        _changed(runs=1.0),
        _changed(runs="1"),
        _changed(runs=...),
        _changed(finished=...),
        _changed(finished="2027-01-15 08:00:00"),
        _changed(hits={"local": 1}),
        _changed(hits=[1, 2]),
        _changed(hits="local"),
        _changed(misses={"local": -1, "cloud": 0}),
        _changed(bytes_downloaded=None),
        _changed(compute_seconds_saved="1.5"),
        _changed(compute_seconds_saved=True),
        _changed(compute_seconds_saved=-1.0),
        _changed(compute_seconds_saved=float("nan")),
        _changed(compute_seconds_saved=float("inf")),
        _changed(last_used=[]),
        _changed(last_used={"abc": "2027-01-15T08:00:00Z"}),
        _changed(last_used={KEY_A.upper(): "2027-01-15T08:00:00Z"}),
        _changed(last_used={KEY_A: 1_800_000_000}),
        _changed(replaces=None),
        _changed(replaces=[1]),
        _changed(replaces="abc"),
    ],
    ids=lambda data: data[:60].decode("utf-8", "replace"),
)
def test_a_run_record_that_is_not_of_this_format_is_refused(data: bytes) -> None:
    assert usage.parse_record(LISTED, data) is None


def test_a_run_record_with_fields_of_a_later_writer_is_read() -> None:
    record = usage.parse_record(
        LISTED, _changed(hits={"local": 1, "cloud": 1, "edge": 7}, comment="from the future")
    )
    assert record is not None
    assert record.tally.hits == maintenance.TierCounts(local=1, cloud=1)


def test_a_malformed_run_record_is_ignored() -> None:
    store = MemoryStore()
    maintenance.record_run(store, maintenance.RunTally(runs=1), [], finished=time.time())
    store.put_object("modelcache-v1/runs/20260101T000000Z-bad.json", b"{not json")
    store.put_object(
        "modelcache-v1/runs/20260101T000001Z-neg.json", b'{"format":"modelcache-run/1","runs":-5}'
    )
    assert maintenance.stats(maintenance.take_inventory(store, now=time.time()))["runs"] == 1


def test_tallies_add_up_tier_by_tier() -> None:
    total = _tally() + maintenance.RunTally(runs=2, hits={"cloud": 4}, compute_seconds_saved=1)
    assert (total.runs, total.hits, total.misses) == (
        3,
        maintenance.TierCounts(local=1, cloud=5),
        maintenance.TierCounts(local=1, cloud=0),
    )
    assert total.compute_seconds_saved == pytest.approx(5.12501)


@pytest.mark.parametrize(
    "counts",
    [{"runs": -1}, {"hits": {"edge": 1}}, {"misses": {"local": -1}}, {"compute_seconds_saved": -1}],
)
def test_a_tally_that_is_not_one_is_refused(counts: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"is not a count|unknown tiers|is not a duration"):
        maintenance.RunTally(**counts)


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


def test_a_folded_record_keeps_the_last_use_of_live_entries_only() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    for used in ([KEY_A, KEY_B], [KEY_A]):
        clock.now += 60
        maintenance.record_run(store, maintenance.RunTally(runs=1), used, finished=clock.now)
    records = maintenance.take_inventory(store, now=clock.now).records
    folded = usage.fold_records(store, records, live={KEY_A}, before=clock.now + 1)
    assert folded == 2
    (record,) = maintenance.take_inventory(store, now=clock.now).records
    assert record.last_used == {KEY_A: clock.now}
    assert sorted(record.replaces) == sorted(r.name for r in records)
    assert usage.fold_records(store, [record], live={KEY_A}, before=clock.now + 1) == 0


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
