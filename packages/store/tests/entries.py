"""Entries for the store tests: a model directory and its manifest, made once here."""

from __future__ import annotations

import hashlib
from pathlib import Path

from modelcache.planner import canonical_json
from modelcache.store import Manifest, build_manifest


def entry(tmp_path: Path, name: str, files: dict[str, bytes]) -> tuple[Path, Manifest]:
    """A model directory ``tmp_path/sources/<name>`` holding ``files`` (relative path to
    bytes), and its manifest under the key of ``{"name": name}``."""
    source = tmp_path / "sources" / name
    source.mkdir(parents=True)
    for path, data in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(data)
    inputs = {"name": name}
    key = hashlib.sha256(canonical_json(inputs).encode()).hexdigest()
    manifest = build_manifest(
        key=key,
        key_inputs=inputs,
        model_type="onnx",
        directory=source,
        run_seconds=1.25,
        created="2026-01-01T00:00:00Z",
        producer="t",
    )
    return source, manifest
