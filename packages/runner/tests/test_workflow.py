"""The executor against an in-memory cloud: re-planning on corrupt entries and a lost cloud."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from attrs import evolve

from modelcache.runner.config import parse_config
from modelcache.runner.workflow import CloudRequired, RunOptions, execute, prepare
from modelcache.store import MemoryStore, blob_name


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


def _kinds(report) -> list[tuple[str, str, str]]:
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
