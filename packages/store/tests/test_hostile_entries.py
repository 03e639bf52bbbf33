"""Hostile or damaged cache contents are refused where they are read, never handed on.

What Python's ``json`` accepts but breaks a reader later (nesting deep enough to exhaust the
stack, lone surrogates), names no file system can create, and folders of a local cache
swapped for symbolic links that lead elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import canonical_json
from modelcache.store import (
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    LocalStore,
    Manifest,
    ManifestFile,
    build_manifest,
    manifest_name,
    parse_evaluation,
)

KEY_INPUTS = {"pass": {"type": "Noop"}}
KEY = hashlib.sha256(canonical_json(KEY_INPUTS).encode()).hexdigest()


def manifest_json(**changes: Any) -> bytes:
    document: dict[str, Any] = {
        "format": "modelcache-manifest/1",
        "key": KEY,
        "model_type": "onnx",
        "files": [{"path": "model.onnx", "size": 0, "sha256": hashlib.sha256().hexdigest()}],
        "key_inputs": KEY_INPUTS,
        "producer": "test",
        "run_seconds": None,
        "created": "",
    }
    document.update(changes)
    if isinstance(document["key_inputs"], dict) and "key" not in changes:
        digest = canonical_json(document["key_inputs"]).encode("utf-8", "surrogatepass")
        document["key"] = hashlib.sha256(digest).hexdigest()
    return json.dumps(document).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_valid_manifest_is_read() -> None:
    assert Manifest.from_json(manifest_json()).key == KEY


@pytest.mark.parametrize("depth", [65, 5_000, 100_000])
def test_a_deeply_nested_manifest_is_refused_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(InvalidManifest, match="nested more than 64 levels"):
        Manifest.from_json(nested(depth))


def test_deep_nesting_inside_the_key_inputs_is_refused() -> None:
    data = manifest_json().replace(b'"Noop"', nested(5_000).encode())
    with pytest.raises(InvalidManifest, match="nested more than 64 levels"):
        Manifest.from_json(data)


@pytest.mark.parametrize("field", ["path", "model_type", "key_inputs"])
def test_a_lone_surrogate_anywhere_is_refused(field: str) -> None:
    hostile = "\ud800x"
    files = [{"path": "model.onnx", "size": 0, "sha256": hashlib.sha256().hexdigest()}]
    changes: dict[str, Any] = {
        "path": {"files": [{**files[0], "path": hostile}]},
        "model_type": {"model_type": hostile},
        "key_inputs": {"key_inputs": {"pass": {"type": hostile}}},
    }[field]
    with pytest.raises(InvalidManifest, match="lone surrogate"):
        Manifest.from_json(manifest_json(**changes))


@pytest.mark.parametrize("name", ["a" * 256, "é" * 128, "模" * 86])
def test_a_path_component_no_file_system_can_create_is_refused(name: str) -> None:
    with pytest.raises(InvalidManifest, match="longer than 255 bytes"):
        ManifestFile(path=f"folder/{name}", size=0, sha256=hashlib.sha256().hexdigest())


def test_a_path_component_at_the_limit_is_accepted() -> None:
    item = ManifestFile(path="a" * 255, size=0, sha256=hashlib.sha256().hexdigest())
    assert item.path == "a" * 255


@pytest.mark.parametrize("data", [nested(100_000).encode(), b'{"m": "\\ud800"}', b"NaN"])
def test_a_hostile_evaluation_result_is_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptEntry, match="evaluation result refused"):
        parse_evaluation(data)


# -- a local cache whose folders were swapped for symbolic links ------------------------------


def published(root: Path, tmp_path: Path) -> tuple[LocalStore, Manifest, Path]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"weights")
    manifest = build_manifest(
        key=KEY,
        key_inputs=KEY_INPUTS,
        model_type="onnx",
        directory=model,
        run_seconds=1.0,
        created="2026-12-02T00:00:00Z",
        producer="test",
    )
    store = LocalStore(root)
    return store, manifest, model


def test_a_blobs_folder_that_is_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store, manifest, model = published(tmp_path / "cache", tmp_path)
    (tmp_path / "cache/modelcache-v1").mkdir(parents=True)
    (tmp_path / "cache/modelcache-v1/blobs").symlink_to(elsewhere)

    with pytest.raises(CorruptEntry, match="symbolic link"):
        store.publish(model, manifest)
    assert list(elsewhere.iterdir()) == []
    with pytest.raises(EntryNotFound):
        store.read_manifest(KEY)


def test_an_entries_folder_that_is_a_symlink_is_a_miss(tmp_path: Path) -> None:
    store, manifest, model = published(tmp_path / "cache", tmp_path)
    other = LocalStore(tmp_path / "other")
    assert other.publish(model, manifest)
    (tmp_path / "cache/modelcache-v1").mkdir(parents=True)
    (tmp_path / "cache/modelcache-v1/entries").symlink_to(tmp_path / "other/modelcache-v1/entries")

    assert store.snapshot([KEY]) == []
    with pytest.raises(CorruptEntry, match="symbolic link"):
        store.fetch(KEY, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_manifest_that_is_a_symlink_is_a_miss(tmp_path: Path) -> None:
    store, manifest, model = published(tmp_path / "cache", tmp_path)
    other = LocalStore(tmp_path / "other")
    assert other.publish(model, manifest)
    entries = tmp_path / "cache/modelcache-v1/entries"
    entries.mkdir(parents=True)
    (entries / f"{KEY}.json").symlink_to(other.root / manifest_name(KEY))

    assert store.snapshot([KEY]) == []
    with pytest.raises(InvalidManifest, match="symbolic link"):
        store.read_manifest(KEY)
