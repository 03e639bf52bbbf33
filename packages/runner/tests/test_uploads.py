"""Uploads go on in the background while the next pass runs (issue 15), and the run still
ends only when each has finished or failed, saying which; interrupted, it does not wait.

The cloud is in memory; its ``publish`` of the first output is held until the test lets it
go, so overlap is shown by what happened meanwhile, not by timing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from modelcache.runner.config import parse_config
from modelcache.runner.workflow import Prepared, RunOptions, execute, prepare
from modelcache.store import Manifest, MemoryStore, StoreUnavailable, manifest_name

#: Long enough for any pass of these tests; reached only when the overlap is missing.
PATIENCE = 120.0


class HeldCloud(MemoryStore):
    """An in-memory cloud whose publish of ``held`` waits for :attr:`go` (or fails with
    ``failure`` after it), recording what had happened locally by the time it ended."""

    def __init__(self, failure: Exception | None = None) -> None:
        super().__init__()
        self.held: str | None = None
        self.go = threading.Event()
        self.failure = failure
        self.publishing = threading.Event()
        self.local_keys_seen: set[str] = set()
        self.local: Any = None
        self.keys: list[str] = []

    def publish(self, source: Path, manifest: Manifest, *, progress: Any = None) -> bool:
        if manifest.key == self.held:
            self.publishing.set()
            assert self.go.wait(PATIENCE), "the next pass never ran during the upload"
            self.local_keys_seen = {e.key for e in self.local.snapshot([*self.keys])}
            if self.failure is not None:
                raise self.failure
        return super().publish(source, manifest, progress=progress)


def _prepared(tiny_bert: Path, tmp_path: Path, cloud: HeldCloud) -> Prepared:
    config = parse_config(
        {
            "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
            "passes": {
                "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
                "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
            },
            "cache_dir": "cache",
            "output_dir": "out",
        },
        base_dir=tmp_path,
    )
    prepared = prepare(config, RunOptions())
    prepared.cloud = cloud
    prepared.policy = evolve(prepared.policy, enable_cloud_cache=True, upload_to_cloud=True)
    cloud.held, cloud.keys, cloud.local = prepared.keys[0], list(prepared.keys), prepared.local
    return prepared


def _let_go_when_published_locally(prepared: Prepared, cloud: HeldCloud, key: str) -> None:
    """Let the held upload go once the local tier has published ``key``."""
    local = prepared.local
    publish = local.publish

    def publish_then_let_go(source: Path, manifest: Manifest, **kwargs: Any) -> bool:
        published = publish(source, manifest, **kwargs)
        if manifest.key == key:
            cloud.go.set()
        return published

    local.publish = publish_then_let_go  # type: ignore[method-assign]


def test_the_next_pass_runs_while_an_output_uploads(tiny_bert: Path, tmp_path: Path) -> None:
    cloud = HeldCloud()
    prepared = _prepared(tiny_bert, tmp_path, cloud)
    prune, cast = prepared.keys
    _let_go_when_published_locally(prepared, cloud, cast)

    report = execute(prepared)

    assert cast in cloud.local_keys_seen  # the cast ran while the prune was uploading
    assert [(s.kind, s.pass_name, s.outcome) for s in report.steps] == [
        ("run", "prune", "done"), ("upload", "prune", "done"),
        ("run", "cast", "done"), ("upload", "cast", "done"),
    ]  # fmt: skip
    for key in (prune, cast):  # every upload finished before the run ended
        assert cloud.get_object(manifest_name(key)) is not None
    assert report.steps[1].bytes > 0


def test_an_upload_that_loses_the_cloud_is_reported_and_the_run_finishes_locally(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = HeldCloud(failure=StoreUnavailable("connection reset by the test"))
    prepared = _prepared(tiny_bert, tmp_path, cloud)
    prune, cast = prepared.keys
    _let_go_when_published_locally(prepared, cloud, cast)

    report = execute(prepared)

    steps = [(s.kind, s.pass_name, s.outcome) for s in report.steps]
    assert ("upload", "prune", "failed") in steps
    failed = next(s for s in report.steps if (s.kind, s.outcome) == ("upload", "failed"))
    assert "connection reset by the test" in failed.detail
    assert any("finishing locally" in note for note in report.notes), report.notes
    # Each pass ran once: the re-plan found the cast's output in the local tier.
    assert [s.pass_name for s in report.steps if s.kind == "run"] == ["prune", "cast"]
    assert cloud.get_object(manifest_name(prune)) is None
    assert (tmp_path / "out").is_dir()
    assert report.final_key == cast


def test_an_interrupted_run_does_not_wait_for_its_uploads(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = HeldCloud()
    prepared = _prepared(tiny_bert, tmp_path, cloud)
    prune, _cast = prepared.keys
    implementation = prepared.passes["cast"].implementation
    run = implementation.run

    def interrupted(*args: Any, **kwargs: Any) -> None:
        assert cloud.publishing.wait(PATIENCE)
        raise KeyboardInterrupt

    monkeypatch.setattr(implementation, "run", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            execute(prepared)  # would hang for PATIENCE if it waited for the held upload
        assert cloud.get_object(manifest_name(prune)) is None  # no entry, not even part
        assert not (tmp_path / "out").exists()
    finally:
        monkeypatch.setattr(implementation, "run", run)
        cloud.go.set()
