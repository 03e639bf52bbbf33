"""When a run writes its record to the cloud: always when it used the cloud's entries, once a
day per set of keys when it used only its local tier. When it lists the cloud: once a day,
when its local tier holds every key; else always."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from modelcache.planner import SnapshotEntry
from modelcache.runner.maintenance.cloud_records import (
    INTERVAL,
    LISTINGS_FILE,
    NOTES_FILE,
    cloud_record_due,
    held_in_cloud,
    note_cloud_listing,
    note_cloud_record,
)
from modelcache.runner.workflow import execute, plan_workflow
from modelcache.store import RUNS_PREFIX, MemoryStore, manifest_name

from .test_workflow import _prepared

CLOUD = "AzureBlobStore(container 'c' at https://a.blob.core.windows.net)"
KEYS = ("a" * 64, "b" * 64)
NOW = 1_800_000_000.0


def test_a_run_that_used_the_cloud_always_records_there(tmp_path: Path) -> None:
    note_cloud_record(tmp_path, CLOUD, KEYS, now=NOW)
    assert cloud_record_due(tmp_path, CLOUD, KEYS, used_cloud=True, now=NOW + 1)


def test_a_local_run_records_in_the_cloud_once_a_day_per_set_of_keys(tmp_path: Path) -> None:
    assert cloud_record_due(tmp_path, CLOUD, KEYS, used_cloud=False, now=NOW)
    note_cloud_record(tmp_path, CLOUD, KEYS, now=NOW)

    assert not cloud_record_due(tmp_path, CLOUD, KEYS[::-1], used_cloud=False, now=NOW + 60)
    assert cloud_record_due(tmp_path, CLOUD, KEYS[:1], used_cloud=False, now=NOW + 60)
    assert cloud_record_due(tmp_path, "another cloud", KEYS, used_cloud=False, now=NOW + 60)
    assert cloud_record_due(tmp_path, CLOUD, KEYS, used_cloud=False, now=NOW + INTERVAL)
    assert cloud_record_due(tmp_path, CLOUD, KEYS, used_cloud=False, now=NOW - 60)  # clock moved


def test_notes_older_than_a_day_are_dropped(tmp_path: Path) -> None:
    note_cloud_record(tmp_path, CLOUD, KEYS, now=NOW)
    note_cloud_record(tmp_path, CLOUD, KEYS[:1], now=NOW + INTERVAL + 1)
    assert len(json.loads((tmp_path / NOTES_FILE).read_text())) == 1


def test_notes_that_cannot_be_read_mean_a_record(tmp_path: Path) -> None:
    for damaged in ("not json", "[1, 2]", json.dumps({"x": "yesterday"})):
        (tmp_path / NOTES_FILE).write_text(damaged)
        assert cloud_record_due(tmp_path, CLOUD, KEYS, used_cloud=False, now=NOW)
    note_cloud_record(tmp_path / "missing", CLOUD, KEYS, now=NOW)  # unwritable: no error
    assert not (tmp_path / "missing").exists()


class _Cloud(MemoryStore):
    """A memory store whose ``repr`` says where it is, as the Azure store's does (a
    ``MemoryStore``'s counts its objects, so each run would record)."""

    def __repr__(self) -> str:
        return "the test's cloud"


def _cloud_records(cloud: MemoryStore) -> int:
    return len(list(cloud.list_objects(RUNS_PREFIX)))


def test_a_warm_local_run_leaves_the_cloud_alone_and_a_warm_cloud_run_records(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = _Cloud()
    execute(_prepared(tiny_bert, tmp_path, cloud, "a"))  # cold: uploads
    assert _cloud_records(cloud) == 1

    local = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))  # warm-local
    assert local.tally().hits.local == 2
    assert _cloud_records(cloud) == 1
    local_tier = _prepared(tiny_bert, tmp_path, cloud, "a").local
    assert len(list(local_tier.list_objects(RUNS_PREFIX))) == 2  # the local tier: every run

    execute(_prepared(tiny_bert, tmp_path, cloud, "b"))  # warm-cloud: a download
    assert _cloud_records(cloud) == 2

    # Its intermediate only in the cloud, skipped: not a use of the cloud's entries.
    again = execute(_prepared(tiny_bert, tmp_path, cloud, "b"))
    assert again.tally().hits.cloud == 1
    assert _cloud_records(cloud) == 2


def test_what_the_cloud_held_is_remembered_for_a_day_per_set_of_keys(tmp_path: Path) -> None:
    assert held_in_cloud(tmp_path, CLOUD, KEYS, now=NOW) is None
    note_cloud_listing(tmp_path, CLOUD, KEYS, [KEYS[0], "c" * 64], now=NOW)

    assert held_in_cloud(tmp_path, CLOUD, KEYS[::-1], now=NOW + 60) == {KEYS[0]}
    assert held_in_cloud(tmp_path, CLOUD, KEYS[:1], now=NOW + 60) is None
    assert held_in_cloud(tmp_path, "another cloud", KEYS, now=NOW + 60) is None
    assert held_in_cloud(tmp_path, CLOUD, KEYS, now=NOW + INTERVAL) is None
    assert held_in_cloud(tmp_path, CLOUD, KEYS, now=NOW - 60) is None  # the clock moved back
    for damaged in ("not json", "[1]", json.dumps({"x": {"at": "today", "held": 1}})):
        (tmp_path / LISTINGS_FILE).write_text(damaged)
        assert held_in_cloud(tmp_path, CLOUD, KEYS, now=NOW) is None


class _Counting(_Cloud):
    """The test's cloud, counting the listings it answers."""

    listings = 0

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        self.listings += 1
        return super().snapshot(keys)


def test_a_warm_local_run_plans_with_what_the_cloud_held_and_lists_it_a_day_later(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = _Counting()
    execute(_prepared(tiny_bert, tmp_path, cloud, "a"))  # cold: lists, uploads both
    execute(_prepared(tiny_bert, tmp_path, cloud, "a"))  # warm-local, within the day
    plan = plan_workflow(_prepared(tiny_bert, tmp_path, cloud, "a"))  # as the run would
    assert [type(step).__name__ for step in plan.steps] == ["Skip", "Skip"]
    assert cloud.listings == 1
    # The cloud lost an output since: unknown to the runs of the day, which upload nothing
    # (and never read from the cloud on the strength of the note); the first run after it
    # lists the cloud again, and uploads it again.
    final = _prepared(tiny_bert, tmp_path, cloud, "a").keys[-1]
    (entry,) = cloud.list_objects(manifest_name(final))
    cloud.delete_object(entry)
    assert [s.kind for s in execute(_prepared(tiny_bert, tmp_path, cloud, "a")).steps] == [
        "skip", "skip"
    ]  # fmt: skip
    later = time.time() + INTERVAL
    monkeypatch.setattr(time, "time", lambda: later)
    again = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    assert cloud.listings == 2
    assert [(s.kind, s.outcome) for s in again.steps if s.kind == "upload"] == [("upload", "done")]
    assert cloud.read_manifest(final).key == final

    # --require-cloud always lists.
    execute(_prepared(tiny_bert, tmp_path, cloud, "a", require_cloud=True))
    assert cloud.listings == 3
