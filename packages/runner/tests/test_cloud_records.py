"""When a run writes its record to the cloud: always when it used the cloud's entries, once a
day per set of keys when it used only its local tier."""

from __future__ import annotations

import json
from pathlib import Path

from modelcache.runner.maintenance.cloud_records import (
    INTERVAL,
    NOTES_FILE,
    cloud_record_due,
    note_cloud_record,
)
from modelcache.runner.workflow import execute
from modelcache.store import RUNS_PREFIX, MemoryStore

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
