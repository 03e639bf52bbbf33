"""How the executor uses a store's single-flight locks, with scripted locks on an in-memory
cloud (FileLocks are tested in ``packages/store/tests/test_file_locks.py``, Azure's leases in
``packages/azure_adapter/tests/test_lock.py``, the whole against Azurite in
``tests/test_concurrency.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from attrs import define, evolve

from modelcache.planner import SnapshotEntry
from modelcache.runner.config import parse_config
from modelcache.runner.reporting import RunReport
from modelcache.runner.workflow import Prepared, RunOptions, execute, prepare
from modelcache.store import (
    ClaimOutcome,
    FileLocks,
    Manifest,
    MemoryStore,
    StoreError,
    StoreUnavailable,
    manifest_name,
)

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

    def locks(self) -> ScriptedCloud:  # type: ignore[override]
        return self

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


def _steps(report: RunReport) -> list[tuple[str, str, str]]:
    return [(s.kind, s.pass_name, s.outcome) for s in report.steps]


def test_a_held_claim_lasts_until_the_output_is_uploaded(tiny_bert: Path, tmp_path: Path) -> None:
    cloud = ScriptedCloud()
    prepared = _prepared(tiny_bert, tmp_path, cloud, "a")
    prune, cast = (key[:6] for key in prepared.keys)

    report = execute(prepared)

    # Each claim is held until its output is published; the prune's upload may go on while
    # the cast is claimed and run (uploads are sent in the background).
    for key in (prune, cast):
        assert [e for e in cloud.log if e.endswith(key)] == [
            f"claim {key}",
            f"publish {key}",
            f"release {key}",
        ]
    assert cloud.log.index(f"claim {prune}") < cloud.log.index(f"claim {cast}")
    assert cloud.log.index(f"publish {prune}") < cloud.log.index(f"publish {cast}")
    assert _steps(report) == [("run", "prune", "done"), ("upload", "prune", "done"),
                              ("run", "cast", "done"), ("upload", "cast", "done")]  # fmt: skip


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
