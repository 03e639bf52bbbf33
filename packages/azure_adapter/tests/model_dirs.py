"""Model directories and their manifests, for the Azure adapter's tests."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from modelcache.azure import TransferSettings
from modelcache.planner import canonical_json
from modelcache.store import Manifest, ManifestFile

# Small blocks, so that a file of a few hundred KiB takes the staged-block path.
BLOCK = 64 * 1024
SMALL = TransferSettings(
    max_concurrency=4,
    block_size=BLOCK,
    single_put_size=BLOCK,
    connection_timeout=5,
    read_timeout=10,
    retries=1,
    retry_backoff=0,
)


@frozen
class Entry:
    """A model directory on disk and the manifest describing it."""

    source: Path
    manifest: Manifest
    files: Mapping[str, bytes]

    @property
    def key(self) -> str:
        return self.manifest.key


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(label: str) -> tuple[str, dict[str, Any]]:
    inputs = {"schema": "modelcache-key/1", "test": label}
    return sha(canonical_json(inputs).encode("utf-8")), inputs


def write_entry(
    root: Path, files: Mapping[str, bytes], *, label: str = "entry", run_seconds: float = 1.5
) -> Entry:
    """Write ``files`` under ``root`` and describe them as the entry ``label``."""
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    key, inputs = key_of(label)
    manifest = Manifest(
        key=key,
        model_type="onnx",
        files=[ManifestFile(path=p, size=len(d), sha256=sha(d)) for p, d in files.items()],
        key_inputs=inputs,
        producer="modelcache-tests",
        run_seconds=run_seconds,
        created="2026-01-01T00:00:00Z",
    )
    return Entry(source=root, manifest=manifest, files=dict(files))


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }
