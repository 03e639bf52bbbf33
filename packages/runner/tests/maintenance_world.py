"""A small world for the maintenance tests: a clock tests move by hand, entries published
into the memory and local stores, and ways to damage them.

The same operations run against Azurite through the command line in
``tests/test_cache_cli.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import LocalModel, PassSpec, key_document, pass_key
from modelcache.store import LocalStore, MaintainedStore, Manifest, MemoryStore, build_manifest

DAY = 86400.0
MODEL = LocalModel(digest="0" * 64)


class Clock:
    """A clock tests move by hand; the memory store stamps objects with it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec(name: str, **config: Any) -> PassSpec:
    return PassSpec(
        name=name, type=f"Type{name}", version="1", config=config, packages={"torch": "2.13.0"}
    )


def publish(
    store: MaintainedStore, scratch: Path, input_: Any, pass_spec: PassSpec, files: dict[str, bytes]
) -> Manifest:
    """Publish an entry with ``files`` as the output of ``pass_spec`` on ``input_``."""
    source = Path(tempfile.mkdtemp(dir=scratch))
    for path, data in files.items():
        (source / path).write_bytes(data)
    document = key_document(input_, pass_spec)
    key = pass_key(input_, pass_spec)
    manifest = build_manifest(
        key=key,
        key_inputs=document,
        model_type="onnx",
        directory=source,
        run_seconds=2.0,
        created="2026-01-01T00:00:00Z",
        producer="t",
    )
    assert store.publish(source, manifest)
    shutil.rmtree(source)
    return manifest


StoreFactory = Callable[[Path, Clock], MaintainedStore]


def memory_store(_scratch: Path, clock: Clock) -> MaintainedStore:
    return MemoryStore(clock=clock)


def local_store(scratch: Path, _clock: Clock) -> MaintainedStore:
    return LocalStore(scratch / "cache")


#: Run a test on the memory store and on the local store (``factory(tmp_path, clock)``).
STORES = pytest.mark.parametrize("factory", [memory_store, local_store], ids=["memory", "local"])


def whole(store: MaintainedStore, manifest: Manifest, scratch: Path) -> bool:
    """Whether the entry can be fetched, every byte verified."""
    target = scratch / f"fetch-{os.urandom(4).hex()}"
    store.fetch(manifest.key, target)
    shutil.rmtree(target)
    return True


def damage(store: MaintainedStore, scratch: Path, name: str, data: bytes | None) -> None:
    """Replace the object ``name`` with ``data`` (delete it if None), behind the store's back."""
    if isinstance(store, MemoryStore):
        if data is None:
            store.delete_raw(name)
        else:
            store.put_object(name, data)
        return
    path = scratch / "cache" / name
    if data is None:
        path.unlink()
    else:
        path.chmod(0o644)
        path.write_bytes(data)
