"""Single flight: FileLocks between processes of one machine, and how the executor uses a
store's locks (with scripted locks on an in-memory cloud; the Azure leases are tested in
``packages/azure_adapter/tests/test_lock.py``, the whole against Azurite in
``tests/test_concurrency.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from attrs import define, evolve

from modelcache.planner import (
    Manifest,
    SnapshotEntry,
    StoreError,
    StoreUnavailable,
    lock_name,
    manifest_name,
)
from modelcache.runner.config import parse_config
from modelcache.runner.local_store import LocalStore
from modelcache.runner.locks import ClaimOutcome, EntryLocks, FileLocks, locks_of
from modelcache.runner.memory_store import MemoryStore
from modelcache.runner.workflow import Prepared, RunOptions, execute, prepare

KEY = "c" * 64

# -- FileLocks -------------------------------------------------------------------------------


def test_a_file_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path)
    held = locks.claim(KEY, max_wait=0)
    assert (held.outcome, held.waited, held.held) == ("held", 0.0, True)
    # flock excludes every other open of the file, in this process too.
    assert FileLocks(tmp_path).claim(KEY, max_wait=0).outcome == "timed-out"
    with FileLocks(tmp_path).claim("d" * 64, max_wait=0) as other:
        assert other.outcome == "held"
    held.release()
    held.release()
    again = locks.claim(KEY, max_wait=0)
    assert again.outcome == "held"
    again.release()
    assert (tmp_path / lock_name(KEY)).stat().st_size == 0  # the lock file stays


def test_waiting_for_a_file_lock_is_bounded(tmp_path: Path) -> None:
    with FileLocks(tmp_path).claim(KEY, max_wait=0):
        started = time.monotonic()
        claim = FileLocks(tmp_path).claim(KEY, max_wait=0.5)
    assert claim.outcome == "timed-out"
    assert 0.5 <= claim.waited <= time.monotonic() - started < 1.5


def test_a_manifest_that_appears_ends_the_wait_for_a_file_lock(tmp_path: Path) -> None:
    with FileLocks(tmp_path).claim(KEY, max_wait=0):
        manifest = tmp_path / manifest_name(KEY)
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}")
        claim = FileLocks(tmp_path).claim(KEY, max_wait=10)
    assert (claim.outcome, claim.held) == ("published", False)
    assert claim.waited < 1.0


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from modelcache.runner.locks import FileLocks
    claim = FileLocks(Path(sys.argv[1])).claim(sys.argv[2], max_wait=0)
    print(claim.outcome, flush=True)
    time.sleep(600)
    """
)


def test_a_killed_holders_file_lock_is_free_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path), KEY], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert FileLocks(tmp_path).claim(KEY, max_wait=0).outcome == "timed-out"
        holder.kill()
        holder.wait()
        claim = FileLocks(tmp_path).claim(KEY, max_wait=5)
        assert (claim.outcome, claim.waited) == ("held", 0.0)
        claim.release()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_file_that_cannot_be_made_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "modelcache-v1").write_text("a file where a folder should be")
    with pytest.raises(StoreError, match="lock file"):
        FileLocks(tmp_path).claim(KEY, max_wait=0)


def test_locks_go_with_the_stores_that_have_them(tmp_path: Path) -> None:
    from modelcache.azure import AzureBlobStore, BlobLeaseLocks
    from modelcache.azure.testing import ACCOUNT_KEY, ACCOUNT_NAME

    local = locks_of(LocalStore(tmp_path))
    assert isinstance(local, FileLocks)
    assert local.root == tmp_path
    assert locks_of(MemoryStore()) is None
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:9/{ACCOUNT_NAME};"
    )  # no request is made
    with AzureBlobStore.from_connection_string(connection_string, "cache") as azure:
        assert isinstance(locks_of(azure), BlobLeaseLocks)
    locking = ScriptedCloud()
    assert locks_of(locking) is locking
    assert isinstance(locking, EntryLocks)


# -- the executor's single flight --------------------------------------------------------------


@define
class ScriptedClaim:
    outcome: ClaimOutcome
    waited: float
    log: list[str]
    key: str

    def release(self) -> None:
        if self.outcome == "held":
            self.log.append(f"release {self.key[:6]}")


class ScriptedCloud(MemoryStore):
    """An in-memory cloud with scripted locks (an :class:`EntryLocks` itself).

    ``outcomes`` are the claims' outcomes, in order (``held`` when they run out); a claim
    whose outcome is ``published`` first reveals ``hidden``, entries another runner published
    meanwhile that earlier snapshots did not show. ``log`` records claims, publishes and
    releases in order.
    """

    def __init__(self, outcomes: tuple[ClaimOutcome | Exception, ...] = ()) -> None:
        super().__init__()
        self.outcomes = list(outcomes)
        self.hidden: set[str] = set()
        self.log: list[str] = []

    def claim(self, key: str, *, max_wait: float) -> ScriptedClaim:
        self.log.append(f"claim {key[:6]}")
        outcome = self.outcomes.pop(0) if self.outcomes else "held"
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == "published":
            self.hidden.clear()
        return ScriptedClaim(outcome, 2.5 if outcome != "held" else 0.0, self.log, key)

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        return [e for e in super().snapshot(keys) if e.key not in self.hidden]

    def publish(self, source: Path, manifest: Manifest, *, progress: Any = None) -> bool:
        self.log.append(f"publish {manifest.key[:6]}")
        return super().publish(source, manifest, progress=progress)


def _prepared(tiny_bert: Path, tmp_path: Path, cloud: MemoryStore, name: str) -> Prepared:
    config = parse_config(
        {
            "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
            "passes": {
                "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
                "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
            },
            "cache_dir": f"cache-{name}",
            "output_dir": f"out-{name}",
        },
        base_dir=tmp_path,
    )
    prepared = prepare(config, RunOptions())
    prepared.cloud = cloud
    prepared.policy = evolve(prepared.policy, enable_cloud_cache=True, upload_to_cloud=True)
    return prepared


def _steps(report: Any) -> list[tuple[str, str, str]]:
    return [(s.kind, s.pass_name, s.outcome) for s in report.steps]


def test_a_held_claim_lasts_until_the_output_is_uploaded(tiny_bert: Path, tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    prepared = _prepared(tiny_bert, tmp_path, cloud, "a")
    prune, cast = (key[:6] for key in prepared.keys)

    report = execute(prepared)

    assert cloud.log == [
        f"claim {prune}", f"publish {prune}", f"release {prune}",
        f"claim {cast}", f"publish {cast}", f"release {cast}",
    ]  # fmt: skip
    assert [o for _, _, o in _steps(report)] == ["done"] * 4


def test_an_output_another_runner_published_while_waiting_is_downloaded_not_computed(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = ScriptedCloud()
    first = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))  # the other runner's work
    cloud.hidden = set(_prepared(tiny_bert, tmp_path, cloud, "b").keys)  # not yet visible
    cloud.outcomes = ["published"]
    cloud.log.clear()

    report = execute(_prepared(tiny_bert, tmp_path, cloud, "b"))

    assert _steps(report) == [("run", "prune", "waited"), ("skip", "prune", "done"),
                              ("download", "cast", "done")]  # fmt: skip
    assert "another runner computing pass 'prune' published it" in report.steps[0].detail
    assert report.replans == 1
    assert report.hits["cloud"] == 1  # prune: counted a miss when planned, then a hit
    assert any("waited 2.5 s for another runner" in note for note in report.notes)
    assert not any(entry.startswith("publish") for entry in cloud.log)
    assert (tmp_path / "out-b" / "model.safetensors").read_bytes() == (
        tmp_path / "out-a" / "model.safetensors"
    ).read_bytes()
    assert report.final_key == first.final_key


def test_an_unusable_entry_another_runner_published_is_computed_after_all(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = ScriptedCloud()
    execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    prepared = _prepared(tiny_bert, tmp_path, cloud, "b")
    prune = prepared.keys[0]
    cloud.delete_raw(manifest_name(prepared.keys[1]))  # only prune's entry is there
    cloud.put_object(manifest_name(prune), b"not a manifest")
    cloud.hidden = {prune}
    cloud.outcomes = ["published", "published"]  # its lock says: published, twice

    report = execute(prepared)

    kinds = _steps(report)
    assert ("run", "prune", "waited") in kinds
    assert kinds.count(("run", "prune", "waited")) == 1  # deferred once, not in a loop
    assert ("run", "prune", "done") in kinds
    assert ("run", "cast", "done") in kinds
    assert (tmp_path / "out-b" / "model.safetensors").is_file()


def test_a_runner_that_waited_too_long_computes_the_output_itself(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = ScriptedCloud(outcomes=("timed-out",))
    report = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))

    assert _steps(report)[0] == ("run", "prune", "done")
    assert report.steps[0].detail == (
        "waited 2.5 s for another runner computing pass 'prune', then computed it too"
    )
    assert any("computing it here too" in note for note in report.notes)
    assert report.replans == 0


def test_an_unreachable_cloud_while_claiming_finishes_locally(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = ScriptedCloud(outcomes=(StoreUnavailable("cannot reach the cloud"),))
    report = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))

    assert [k for k, _, o in _steps(report) if o == "done"] == ["run", "run"]
    assert any("unreachable" in note and "locally" in note for note in report.notes)
    assert (tmp_path / "out-a" / "model.safetensors").is_file()


def test_a_cloud_that_refuses_its_lock_is_used_without_single_flight(
    tiny_bert: Path, tmp_path: Path
) -> None:
    refused = StoreError("may not write the lock")
    cloud = ScriptedCloud(outcomes=(refused, refused))
    report = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))

    assert _steps(report) == [("run", "prune", "done"), ("upload", "prune", "done"),
                              ("run", "cast", "done"), ("upload", "cast", "done")]  # fmt: skip
    assert [n for n in report.notes if "without waiting for other runners" in n] == [
        "cannot lock outputs (may not write the lock); computing without waiting for other runners"
    ]


def test_without_uploads_the_local_tier_is_locked_instead(tiny_bert: Path, tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    prepared = _prepared(tiny_bert, tmp_path, cloud, "a")
    prepared.policy = evolve(prepared.policy, upload_to_cloud=False)
    prune = prepared.keys[0]
    # Another process on this machine holds prune's lock: the run waits, then gives up.
    prepared.options = evolve(prepared.options, single_flight_wait=0.5)
    with FileLocks(prepared.local.root).claim(prune, max_wait=0):
        report = execute(prepared)

    assert cloud.log == []
    assert report.steps[0].detail.startswith("waited 0.")
    assert report.steps[0].detail.endswith("then computed it too")
