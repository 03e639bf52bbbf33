"""A hub model's cache keys follow the files of its local snapshot, through the real CLI
(issue 12: a snapshot that gains tokenizer files, or new weights, under the same commit must
miss, never serve the entry made from the old files). The command runs in this process
(``e2e.run_ok``)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.e2e import HALF, run_ok, steps, write_config

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _snapshot(hub: Path) -> Path:
    return hub / "models--org--tiny" / "snapshots" / COMMIT


def _put(hub: Path, name: str, source: Path) -> None:
    """Place ``source`` in the snapshot as huggingface_hub does: a link into ``blobs/``."""
    data = source.read_bytes()
    blob = hub / "models--org--tiny" / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, blob)
    link = _snapshot(hub) / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(blob)


@pytest.mark.slow
def test_a_hub_snapshot_that_changes_under_one_commit_misses(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    (hub / "models--org--tiny" / "refs").mkdir(parents=True)
    (hub / "models--org--tiny" / "refs" / "main").write_text(COMMIT)
    for name in ("config.json", "model.safetensors"):
        _put(hub, name, tiny_model / name)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    # The runs are in this process (``e2e.run_ok``), where huggingface_hub may have read
    # HF_HUB_CACHE already: it is set where it was read too.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("MODELCACHE_DIGEST_CACHE", str(tmp_path / "digests"))
    config = write_config(tmp_path / "work", Path("org/tiny"), {"half": HALF})  # a hub id

    assert steps(run_ok(config, None), "run") == ["half"]
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        _put(hub, name, tiny_model / name)
    assert steps(run_ok(config, None), "run") == ["half"]  # tokenizer files: a new input
    assert (tmp_path / "work" / "out" / "tokenizer.json").is_file()
    assert steps(run_ok(config, None), "run") == []  # unchanged: all hits

    pruned = tmp_path / "other-weights.safetensors"
    pruned.write_bytes((tiny_model / "model.safetensors").read_bytes()[:-4] + b"    ")
    _put(hub, "model.safetensors", pruned)
    assert steps(run_ok(config, None), "run") == ["half"]  # new weights: a new input
