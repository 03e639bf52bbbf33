"""Hostile or damaged cache contents, end to end, in both tiers: the run recomputes around
them (exit 0, a note), ``cache verify`` reports them, and ``verify --repair`` removes them.

The cloud cases overwrite objects of a copy of the session's published container
(``warm_container``) with raw blob writes; the local cases damage a copy of its local cache
and run the same workflow without a cloud. The same damage, through the API and for every
case, is in ``packages/runner/tests/test_damaged_cache.py`` (runs) and ``test_verify.py``.

The commands run in this process (``e2e.modelcache_here``): what is checked is what they do
to the caches and what they say, not the process (``test_cache_cli.py`` runs ``cache
verify`` in a subprocess).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .e2e import (
    TINY_PASSES,
    Published,
    model_files,
    modelcache_here,
    run_ok,
    write_config,
)

pytestmark = [pytest.mark.azurite]

Rewrite = Callable[[dict[str, Any]], bytes]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _weights(document: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in document["files"] if f["path"] == "model.safetensors")


def _changed(change: Callable[[dict[str, Any]], None]) -> Rewrite:
    def rewrite(document: dict[str, Any]) -> bytes:
        change(document)
        return json.dumps(document).encode()

    return rewrite


#: Hostile manifests, made from the real one, and words the run's note and verify use: one
#: of each kind the reader refuses (unparsable, an unsafe path, sizes that disagree). Every
#: variant (nesting in the key inputs, long path components, sizes one smaller...) is run
#: in-process by ``packages/runner/tests/test_damaged_cache.py`` (the local tier) and refused
#: by every store, Azure's included, in ``modelcache.store.testing``'s hostile manifests; end
#: to end, each case costs five commands.
HOSTILE: dict[str, tuple[Rewrite, str]] = {
    "nested at the top": (lambda _d: _nested(100_000).encode(), "nested more than"),
    "a lone surrogate in a path": (
        _changed(lambda d: _weights(d).update(path="\ud800x")),
        "lone surrogate",
    ),
    "a listed size one larger": (
        _changed(lambda d: _weights(d).update(size=_weights(d)["size"] + 1)),
        "model.safetensors",
    ),
}


def verify(*args: str | Path, connection_string: str, code: int) -> dict[str, Any]:
    result = modelcache_here(
        "cache", "verify", *args, "--json", connection_string=connection_string
    )
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def final_key(published: Published) -> str:
    return str(published.report["final_key"])


def manifest_blob(key: str) -> str:
    return f"modelcache-v1/entries/{key}.json"


# -- the cloud tier ----------------------------------------------------------------------------


def _client(published: Published, container: str) -> Any:
    from azure.storage.blob import ContainerClient

    return ContainerClient.from_connection_string(published.connection_string, container)


def assert_cloud_damage_handled(
    published: Published, container: str, tiny_model: Path, folder: Path, words: str
) -> None:
    """A run with an empty local cache recomputes the final model and says so; verify finds
    the final entry's damage; ``--repair`` removes it; the next run heals the cloud."""
    key, connection = final_key(published), published.connection_string
    config = write_config(folder, tiny_model, TINY_PASSES, container=container)
    report = run_ok(config, connection)
    assert model_files(folder / "out") == model_files(published.output)
    notes = [note for note in report["notes"] if f"cloud entry {key[:12]} unusable" in note]
    assert notes, report["notes"]
    assert words in notes[0]
    ran = [s["pass"] for s in report["steps"] if (s["kind"], s["outcome"]) == ("run", "done")]
    assert ran == ["prune"]

    found = verify("--config", config, connection_string=connection, code=1)
    assert key in {**found["invalid_entries"], **found["broken_entries"]}
    repaired = verify("--config", config, "--repair", connection_string=connection, code=0)
    assert key in repaired["removed_entries"]
    shutil.rmtree(folder / "cache")
    healed = run_ok(config, connection)
    assert [s["pass"] for s in healed["steps"] if s["kind"] == "upload"] == ["prune"]
    assert verify("--config", config, connection_string=connection, code=0)["clean"] is True


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_cloud_manifest_is_recomputed_reported_and_repaired(
    case: str, published: Published, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    rewrite, words = HOSTILE[case]
    with _client(published, warm_container) as client:
        blob = client.get_blob_client(manifest_blob(final_key(published)))
        document = json.loads(blob.download_blob().readall())
        blob.upload_blob(rewrite(document), overwrite=True)
    assert_cloud_damage_handled(published, warm_container, tiny_model, tmp_path, words)


@pytest.mark.parametrize("change", ["longer"])  # "shorter" too, in-process
def test_a_cloud_blob_longer_or_shorter_than_listed_is_recomputed_reported_and_repaired(
    change: str, published: Published, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    with _client(published, warm_container) as client:
        document = json.loads(client.download_blob(manifest_blob(final_key(published))).readall())
        digest = _weights(document)["sha256"]
        blob = client.get_blob_client(f"modelcache-v1/blobs/sha256/{digest[:2]}/{digest}")
        data = blob.download_blob().readall()
        blob.upload_blob(data + b"\0" if change == "longer" else data[:-1], overwrite=True)
    assert_cloud_damage_handled(
        published, warm_container, tiny_model, tmp_path, "model.safetensors"
    )


# -- the local tier ----------------------------------------------------------------------------


def _flip(cache: Path, digest: str) -> None:
    blob = cache / f"modelcache-v1/blobs/sha256/{digest[:2]}/{digest}"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))


def _delete(cache: Path, digest: str) -> None:
    (cache / f"modelcache-v1/blobs/sha256/{digest[:2]}/{digest}").unlink()


def _manifest_link(cache: Path, key: str, elsewhere: Path) -> None:
    manifest = cache / manifest_blob(key)
    shutil.copyfile(manifest, elsewhere)
    manifest.unlink()
    manifest.symlink_to(elsewhere)


def _blobs_link(cache: Path, elsewhere: Path) -> None:
    shutil.move(cache / "modelcache-v1/blobs", elsewhere)
    (cache / "modelcache-v1/blobs").symlink_to(elsewhere)


# Hostile manifests in the local tier are run in-process, every variant, by
# packages/runner/tests/test_damaged_cache.py and verified by test_verify.py; here, end to end,
# the damage only a local cache can have, and one hostile manifest.
LOCAL = ["nested at the top"]
LOCAL_DAMAGE = ["a flipped byte", "a missing blob", "a manifest symlink", "a blobs folder symlink"]


def damage_local(case: str, cache: Path, key: str, elsewhere: Path) -> tuple[str, str]:
    """Damage the final entry of the local cache ``cache``; where verify's report names it,
    and by what name."""
    manifest = cache / manifest_blob(key)
    document = json.loads(manifest.read_bytes())
    digest = _weights(document)["sha256"]
    if case in HOSTILE:
        manifest.chmod(0o644)
        manifest.write_bytes(HOSTILE[case][0](document))
        return "invalid_entries", key
    if case == "a flipped byte":
        _flip(cache, digest)
        return "broken_entries", key
    if case == "a missing blob":
        _delete(cache, digest)
        return "broken_entries", key
    if case == "a manifest symlink":
        _manifest_link(cache, key, elsewhere)
        return "links", manifest_blob(key)
    _blobs_link(cache, elsewhere)
    return "links", "modelcache-v1/blobs"


@pytest.mark.parametrize("case", LOCAL + LOCAL_DAMAGE)
def test_local_damage_is_recomputed_reported_and_repaired(
    case: str, published: Published, tiny_model: Path, tmp_path: Path
) -> None:
    key, connection = final_key(published), published.connection_string
    # One copy for verify and --repair, one for the run.
    checked = published.copy_cache(tmp_path / "checked")
    where, name = damage_local(case, checked, key, tmp_path / "elsewhere-checked")
    found = verify("--cache-dir", checked, connection_string=connection, code=1)
    assert name in found[where], found
    repaired = verify("--cache-dir", checked, "--repair", connection_string=connection, code=0)
    assert repaired["removed_links"] == found["links"]
    assert verify("--cache-dir", checked, connection_string=connection, code=0)["clean"] is True

    cache = published.copy_cache(tmp_path / "cache")
    damage_local(case, cache, key, tmp_path / "elsewhere")
    config = write_config(tmp_path, tiny_model, TINY_PASSES)
    report = run_ok(config, None)
    assert model_files(tmp_path / "out") == model_files(published.output)
    assert any(f"local entry {key[:12]} unusable" in note for note in report["notes"])
    assert verify("--cache-dir", cache, connection_string=connection, code=0)["clean"] is True
    again = run_ok(config, None)
    assert {s["kind"] for s in again["steps"]} == {"skip"}
    assert again["notes"] == []
