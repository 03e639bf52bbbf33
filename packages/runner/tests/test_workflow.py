"""The executor against an in-memory cloud: re-planning on corrupt entries and a lost cloud."""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from modelcache.runner.config import parse_config
from modelcache.runner.reporting import Outcome, RunReport, StepRecord
from modelcache.runner.workflow import CloudRequired, Prepared, RunOptions, execute, prepare
from modelcache.store import BLOBS_PREFIX, MemoryStore, blob_name


def _prepared(tiny_bert: Path, tmp_path: Path, cloud: MemoryStore, cache: str, **options: bool):
    config = parse_config(
        {
            "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
            "passes": {
                "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
                "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
            },
            "cache_dir": cache,
            "output_dir": f"out-{cache}",
        },
        base_dir=tmp_path,
    )
    prepared = prepare(config, RunOptions(**options))
    prepared.cloud = cloud
    prepared.policy = evolve(prepared.policy, enable_cloud_cache=True, upload_to_cloud=True)
    return prepared


def _kinds(report: RunReport) -> list[tuple[str, str, str]]:
    return [(s.kind, s.pass_name, s.outcome) for s in report.steps]


def test_cold_run_uploads_and_a_fresh_machine_downloads_only_the_final_model(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = MemoryStore()
    first = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    assert [k for k, _, _ in _kinds(first)].count("upload") == 2
    second = execute(_prepared(tiny_bert, tmp_path, cloud, "b"))
    assert _kinds(second) == [("skip", "prune", "done"), ("download", "cast", "done")]
    assert (tmp_path / "out-a" / "model.safetensors").read_bytes() == (
        tmp_path / "out-b" / "model.safetensors"
    ).read_bytes()


def test_a_corrupt_cloud_entry_is_a_miss_and_the_run_replans(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = MemoryStore()
    first = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    final = cloud.read_manifest(first.final_key)
    weights = next(f for f in final.files if f.path == "model.safetensors")
    name = blob_name(weights.sha256)
    data = bytearray(cloud.get_object(name))
    data[len(data) // 2] ^= 0xFF
    cloud.put_object(name, bytes(data))

    second = execute(_prepared(tiny_bert, tmp_path, cloud, "b"))

    assert second.replans == 1
    assert any("unusable" in note for note in second.notes)
    kinds = _kinds(second)
    assert ("download", "prune", "done") in kinds
    assert ("run", "cast", "done") in kinds
    failed = next(s for s in second.to_json()["steps"] if s["outcome"] == "failed")
    assert failed["detail"].startswith("cloud entry")  # why the plan was let down
    # The recomputed output is the same model the corrupt entry claimed to be.
    assert (tmp_path / "out-b" / "model.safetensors").read_bytes() == (
        tmp_path / "out-a" / "model.safetensors"
    ).read_bytes()


def test_a_lost_cloud_finishes_locally_or_fails_when_required(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = MemoryStore()
    cloud.unavailable = True
    report = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    assert [k for k, _, _ in _kinds(report)] == ["run", "run"]
    assert any("finishing locally" in note for note in report.notes)
    assert json.loads((tmp_path / "out-a" / ".modelcache-output.json").read_text())["key"] == (
        report.final_key
    )
    with pytest.raises(CloudRequired):
        execute(_prepared(tiny_bert, tmp_path, cloud, "b", require_cloud=True))


def test_an_output_dir_holding_other_files_is_never_overwritten(
    tiny_bert: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "out-a"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(Exception, match="did not write"):
        execute(_prepared(tiny_bert, tmp_path, MemoryStore(), "a"))
    assert (mine / "notes.txt").read_text() == "precious"


def test_a_warm_run_leaves_an_intact_delivered_model_in_place(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = MemoryStore()
    execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    out = tmp_path / "out-a"
    weights = out / "model.safetensors"
    honest = weights.read_bytes()
    before = {p.name: p.stat().st_ino for p in out.iterdir()}

    warm = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))

    assert _kinds(warm) == [("skip", "prune", "done"), ("skip", "cast", "done")]
    assert {p.name: p.stat().st_ino for p in out.iterdir()} == before  # not copied again
    assert warm.output_dir == str(out)
    assert warm.final_key is not None
    # Changed bytes (of the same size) or a file of someone else's: delivered anew, whole.
    weights.write_bytes(bytes(len(honest)))
    (out / "stray.txt").write_text("left by hand")
    execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    assert weights.read_bytes() == honest
    assert not (out / "stray.txt").exists()


def test_the_report_document_keeps_its_wire_format(tiny_bert: Path, tmp_path: Path) -> None:
    report = execute(_prepared(tiny_bert, tmp_path, MemoryStore(), "a"))
    document = json.loads(json.dumps(report.to_json()))

    assert list(document) == [
        "format", "final_key", "output_dir", "steps", "totals", "metrics", "notes"
    ]  # fmt: skip
    assert document["format"] == "modelcache-run-report/1"
    assert document["final_key"] == report.final_key
    assert document["output_dir"] == str(tmp_path / "out-a")
    first = document["steps"][0]
    # ``pass``, not ``pass_name``; no ``detail`` when there is nothing to say.
    assert list(first) == ["kind", "pass", "key", "reason", "seconds", "bytes", "outcome"]
    assert (first["kind"], first["pass"], first["outcome"]) == ("run", "prune", "done")
    assert first["seconds"] == round(report.steps[0].seconds, 4)
    assert document["totals"] == {
        "runs": 2,
        "skips": 0,
        "downloads": 0,
        "uploads": 2,
        "evaluations": 0,
        "cached_evaluations": 0,
        "bytes_downloaded": 0,
        "bytes_uploaded": document["totals"]["bytes_uploaded"],
        "bytes_avoided": 0,
        "compute_seconds_saved": 0.0,
        "hits": {"local": 0, "cloud": 0},
        "misses": {"local": 2, "cloud": 2},
        "replans": 0,
        "wall_seconds": round(report.wall_seconds, 3),
    }
    assert document["totals"]["bytes_uploaded"] == sum(s.bytes for s in report.steps)
    assert list(document["totals"])[-1] == "wall_seconds"
    assert document["metrics"] == {}
    assert document["notes"] == []


def test_bytes_uploaded_count_what_was_sent_not_blobs_already_there(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = MemoryStore()
    report = execute(_prepared(tiny_bert, tmp_path, cloud, "a"))
    uploads = [s for s in report.steps if s.kind == "upload"]
    second = cloud.read_manifest(uploads[1].key)
    # The two outputs share their tokenizer and config files: the second upload sends only
    # what the first did not, and refreshes the rest.
    assert 0 < uploads[1].bytes < second.size
    stored = sum(o.size for o in cloud.list_objects(BLOBS_PREFIX))
    assert sum(s.bytes for s in uploads) == stored
    assert report.totals().bytes_uploaded == stored


#: A module that takes a second to import, as torch does on a cold start.
SLOW_MODULE = "modelcache_slow_import_probe"


class _SlowToImport:
    """A pass that imports a slow package in its run, as the built-in passes import torch."""

    def __init__(self, implementation: Any) -> None:
        self._implementation = implementation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._implementation, name)

    def packages(self) -> dict[str, str]:
        return {**self._implementation.packages(), SLOW_MODULE: "1"}

    def run(self, input_dir: Path, output_dir: Path, config: Any) -> None:
        importlib.import_module(SLOW_MODULE)
        self._implementation.run(input_dir, output_dir, config)


def test_a_pass_run_time_leaves_out_importing_its_packages(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / f"{SLOW_MODULE}.py").write_text("import time\ntime.sleep(1.5)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, SLOW_MODULE, raising=False)
    prepared = _prepared(tiny_bert, tmp_path, MemoryStore(), "a")
    instance = prepared.passes["prune"]
    prepared.passes["prune"] = evolve(
        instance, implementation=_SlowToImport(instance.implementation)
    )
    report = execute(prepared)
    key = next(s.key for s in report.steps if s.pass_name == "prune")
    assert prepared.local.read_manifest(key).run_seconds < 1.0


def test_totals_count_every_byte_sent_even_by_an_upload_another_runner_won() -> None:
    def upload(outcome: Outcome, sent: int) -> StepRecord:
        return StepRecord(
            kind="upload", pass_name="p", key="k", reason="r", seconds=0.0, bytes=sent,
            outcome=outcome,
        )  # fmt: skip

    report = RunReport(steps=[upload("done", 10), upload("already-there", 5), upload("skipped", 0)])
    assert report.totals().bytes_uploaded == 15


def test_an_evaluation_read_from_the_cloud_is_kept_locally(tiny_bert: Path, tmp_path: Path) -> None:
    def prepared(cache: str) -> Prepared:
        config = parse_config(
            {
                "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
                "passes": {"prune": {"type": "MagnitudePruning", "sparsity": 0.5}},
                "evaluator": {"metrics": ["size"], "evaluate": "final"},
                "cache_dir": cache,
                "output_dir": f"out-{cache}",
            },
            base_dir=tmp_path,
        )
        ready = prepare(config, RunOptions())
        ready.cloud = cloud
        ready.policy = evolve(ready.policy, enable_cloud_cache=True, upload_to_cloud=True)
        return ready

    cloud = MemoryStore()
    cold = execute(prepared("a"))
    warm_cloud = prepared("b")  # another machine: an empty local cache
    report = execute(warm_cloud)
    assert [(s.kind, s.detail) for s in report.steps if s.kind == "evaluate"] == [
        ("evaluate", "cached result")
    ]
    assert report.final_key == cold.final_key is not None
    fingerprint = warm_cloud.evaluation.fingerprint
    kept = warm_cloud.local.read_evaluation(report.final_key, fingerprint)
    assert dict(kept) == report.metrics["prune"] == cold.metrics["prune"]


def _delivered(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".modelcache-output.json"}  # fmt: skip


def test_the_final_model_is_moved_into_output_dir_not_copied_again(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcache.runner.workflow import _deliver

    cloud = MemoryStore()
    execute(_prepared(tiny_bert, tmp_path, cloud, "plain"))  # the reference: copied or moved

    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the run's own copy of the model is moved, not copied")

    monkeypatch.setattr(_deliver.shutil, "copytree", refuse)
    execute(_prepared(tiny_bert, tmp_path, cloud, "moved"))  # warm-cloud: downloaded once
    assert _delivered(tmp_path / "out-moved") == _delivered(tmp_path / "out-plain")

    # Another file system (EXDEV): copied, as before.
    monkeypatch.undo()

    def elsewhere(*_: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(_deliver, "os", types.SimpleNamespace(**{**vars(os), "rename": elsewhere}))
    execute(_prepared(tiny_bert, tmp_path, cloud, "copied"))
    assert _delivered(tmp_path / "out-copied") == _delivered(tmp_path / "out-plain")
