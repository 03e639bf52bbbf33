"""Hostile or damaged contents of the local tier: the run recomputes around them.

Each case damages the local cache of a finished run from outside, then runs again: the run
must end normally with the right model, say what it found, and leave the local entry whole
again (so that a third run is all hits and says nothing). What ``cache verify`` makes of the
same damage is in ``test_verify.py``; the cloud tier's cases, end to end, in
``tests/test_damaged_cache.py``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.config import parse_config
from modelcache.runner.reporting import RunReport
from modelcache.runner.workflow import execute, prepare
from modelcache.store import LocalStore, Manifest, blob_name, manifest_name

PASSES = {
    "half": {"type": "TorchDtypeCast", "dtype": "float16"},
    "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
}


def run(model: Path, folder: Path, cache: Path) -> RunReport:
    """The workflow over ``model`` on the local tier ``cache`` alone, into ``folder/out``."""
    config = parse_config(
        {
            "input_model": {"type": "HfModel", "model_path": str(model)},
            "passes": PASSES,
            "cache_dir": str(cache),
            "output_dir": "out",
        },
        base_dir=folder,
    )
    return execute(prepare(config))


def model_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".modelcache")
    }


class Cold:
    """The first run's local cache and model, made once for the module."""

    def __init__(self, folder: Path, report: RunReport) -> None:
        self.folder = folder
        self.cache = folder / "cache"
        self.keys = [step.key for step in report.steps if step.kind == "run"]
        self.final = model_files(folder / "out")
        store = LocalStore(self.cache)
        self.manifests = {key: store.read_manifest(key) for key in self.keys}


@pytest.fixture(scope="module")
def cold(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Cold:
    folder = tmp_path_factory.mktemp("cold")
    return Cold(folder, run(tiny_bert, folder, folder / "cache"))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _document(manifest: Manifest) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(manifest.to_json())
    return document


def _with_file(manifest: Manifest, **changes: Any) -> bytes:
    """The manifest with its weights file's fields changed (the key inputs unchanged, so
    that only the change makes it wrong)."""
    document = _document(manifest)
    for item in document["files"]:
        if item["path"] == "model.safetensors":
            item.update({name: change(item[name]) for name, change in changes.items()})
    return json.dumps(document).encode()


def _nested_key_inputs(manifest: Manifest) -> bytes:
    text = json.dumps(_document(manifest))
    return text.replace('"key_inputs": {', f'"key_inputs": {{"deep": {nested(5_000)}, ', 1).encode()


#: A manifest's replacement, from the manifest it replaces; and the words the note uses.
HOSTILE_MANIFESTS: dict[str, tuple[Callable[[Manifest], bytes], str]] = {
    "nested at the top": (lambda _m: nested(100_000).encode(), "nested more than"),
    "nested in the key inputs": (_nested_key_inputs, "nested more than"),
    "a lone surrogate in a path": (lambda m: _with_file(m, path=lambda _p: "\ud800x"), "surrogate"),
    "a 256-byte ASCII path component": (
        lambda m: _with_file(m, path=lambda _p: "a" * 256),
        "longer than 255 bytes",
    ),
    "a 258-byte multibyte path component": (
        lambda m: _with_file(m, path=lambda _p: "模" * 86),
        "longer than 255 bytes",
    ),
    "a listed size one larger": (
        lambda m: _with_file(m, size=lambda s: s + 1),
        "model.safetensors",
    ),
    "a listed size one smaller": (
        lambda m: _with_file(m, size=lambda s: s - 1),
        "model.safetensors",
    ),
}


def _write(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def assert_heals(cold: Cold, model: Path, folder: Path, cache: Path, words: str) -> RunReport:
    """The run after the damage: exit 0, the right model, a note naming the final entry, the
    final pass computed again and its entry whole; then a run that is all hits."""
    final = cold.keys[-1]
    report = run(model, folder, cache)
    assert model_files(folder / "out") == cold.final
    notes = [note for note in report.notes if f"local entry {final[:12]}" in note]
    assert notes, report.notes
    assert words in notes[0]
    assert ("run", "prune", "done") in [(s.kind, s.pass_name, s.outcome) for s in report.steps]
    store = LocalStore(cache)
    assert not (cache / manifest_name(final)).is_symlink()
    assert store.read_manifest(final).files == cold.manifests[final].files
    store.fetch(final, folder / "fetched")  # every byte verified
    again = run(model, folder, cache)
    assert [s.kind for s in again.steps] == ["skip", "skip"]
    assert again.notes == []
    return report


@pytest.mark.parametrize("case", list(HOSTILE_MANIFESTS))
def test_a_hostile_local_manifest_is_recomputed_and_replaced(
    case: str, cold: Cold, tiny_bert: Path, tmp_path: Path
) -> None:
    cache = shutil.copytree(cold.cache, tmp_path / "cache")
    final = cold.keys[-1]
    replacement, words = HOSTILE_MANIFESTS[case]
    _write(cache / manifest_name(final), replacement(cold.manifests[final]))
    assert_heals(cold, tiny_bert, tmp_path, cache, words)


def _weights(cold: Cold) -> str:
    manifest = cold.manifests[cold.keys[-1]]
    return next(item.sha256 for item in manifest.files if item.path == "model.safetensors")


def test_a_flipped_byte_in_a_local_blob_is_a_miss_and_the_entry_is_replaced(
    cold: Cold, tiny_bert: Path, tmp_path: Path
) -> None:
    cache = shutil.copytree(cold.cache, tmp_path / "cache")
    blob = cache / blob_name(_weights(cold))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    _write(blob, bytes(data))
    report = assert_heals(cold, tiny_bert, tmp_path, cache, "model.safetensors")
    assert ("skip", "prune", "failed") in [(s.kind, s.pass_name, s.outcome) for s in report.steps]


def test_a_missing_local_blob_is_a_miss_and_the_entry_is_replaced(
    cold: Cold, tiny_bert: Path, tmp_path: Path
) -> None:
    cache = shutil.copytree(cold.cache, tmp_path / "cache")
    (cache / blob_name(_weights(cold))).unlink()
    assert_heals(cold, tiny_bert, tmp_path, cache, "missing")


def test_a_shared_blob_damaged_recomputes_every_entry_that_needs_it(
    cold: Cold, tiny_bert: Path, tmp_path: Path
) -> None:
    cache = shutil.copytree(cold.cache, tmp_path / "cache")
    manifest = cold.manifests[cold.keys[-1]]
    shared = next(item.sha256 for item in manifest.files if item.path == "tokenizer.json")
    blob = cache / blob_name(shared)
    _write(blob, blob.read_bytes() + b" ")
    report = assert_heals(cold, tiny_bert, tmp_path, cache, "tokenizer.json")
    assert [s.pass_name for s in report.steps if (s.kind, s.outcome) == ("run", "done")] == [
        "half",
        "prune",
    ]
    assert report.replans == 1  # both damaged entries removed at once


def test_a_local_manifest_that_is_a_symlink_is_replaced_and_its_target_untouched(
    cold: Cold, tiny_bert: Path, tmp_path: Path
) -> None:
    cache = shutil.copytree(cold.cache, tmp_path / "cache")
    final = cold.keys[-1]
    target = tmp_path / "elsewhere.json"
    shutil.copyfile(cache / manifest_name(final), target)
    (cache / manifest_name(final)).unlink()
    (cache / manifest_name(final)).symlink_to(target)
    before = target.read_bytes()
    assert_heals(cold, tiny_bert, tmp_path, cache, "symbolic link")
    assert target.read_bytes() == before


def test_a_blobs_folder_that_is_a_symlink_is_removed_and_never_written_through(
    cold: Cold, tiny_bert: Path, tmp_path: Path
) -> None:
    cache = shutil.copytree(cold.cache, tmp_path / "cache")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(cache / "modelcache-v1" / "blobs", elsewhere)
    (cache / "modelcache-v1" / "blobs").symlink_to(elsewhere)
    before = model_files(elsewhere)
    assert_heals(cold, tiny_bert, tmp_path, cache, "symbolic link")
    assert not (cache / "modelcache-v1" / "blobs").is_symlink()
    assert model_files(elsewhere) == before  # nothing written or removed there


def test_a_damaged_local_entry_the_cloud_holds_is_downloaded_and_replaced(
    tiny_bert: Path, tmp_path: Path
) -> None:
    from attrs import evolve

    from modelcache.store import MemoryStore

    def prepared(cache: str) -> Any:
        config = parse_config(
            {
                "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
                "passes": PASSES,
                "cache_dir": cache,
                "output_dir": f"out-{cache}",
            },
            base_dir=tmp_path,
        )
        ready = prepare(config)
        ready.cloud = cloud
        ready.policy = evolve(ready.policy, enable_cloud_cache=True, upload_to_cloud=True)
        return ready

    cloud = MemoryStore()
    first = execute(prepared("cache"))
    final = first.final_key
    assert final is not None
    weights = next(
        f.sha256 for f in cloud.read_manifest(final).files if f.path == "model.safetensors"
    )
    (tmp_path / "cache" / blob_name(weights)).unlink()

    report = execute(prepared("cache"))
    kinds = [(s.kind, s.pass_name, s.outcome) for s in report.steps]
    assert ("skip", "prune", "failed") in kinds
    assert ("download", "prune", "done") in kinds
    assert not [kind for kind in kinds if kind[0] == "run"]
    assert any(f"local entry {final[:12]} unusable" in note for note in report.notes)
    LocalStore(tmp_path / "cache").fetch(final, tmp_path / "fetched")
