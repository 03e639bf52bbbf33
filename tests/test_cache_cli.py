"""``modelcache cache ...`` end to end: real runs of a tiny workflow into Azurite, then the
maintenance commands through the real command line, against the cloud and the local tier.

The workflow is the standard tiny one (``e2e.TINY_PASSES``: a dtype cast, then magnitude
pruning) over the offline tiny BERT; its two outputs share their tokenizer files, so
deduplication shows. Its cold run is the session's ``published`` one: each test starts from a
copy of that container (``warm_container``) and, where it needs one, of its local cache.

The runs and most ``--json`` commands run in this process (``e2e.modelcache_here``); the text
commands, the bad arguments and one ``stats`` run in a subprocess, as a shell runs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .e2e import (
    BLOBS,
    ENTRIES,
    TINY_PASSES,
    Published,
    changed,
    modelcache,
    modelcache_here,
    run_ok,
    write_config,
)

pytestmark = [pytest.mark.azurite]


def workflow(folder: Path, model: Path, container: str, *, sparsity: float = 0.5) -> Path:
    """The standard tiny workflow (what ``published`` ran, at sparsity 0.5) on ``container``."""
    passes = changed(TINY_PASSES, prune={"sparsity": sparsity})
    return write_config(folder, model, passes, container=container)


def cache_json(*args: str | Path, azurite: Any, code: int = 0, here: bool = True) -> Any:
    command = modelcache_here if here else modelcache
    result = command("cache", *args, "--json", connection_string=azurite.connection_string)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def cache_text(*args: str | Path, azurite: Any) -> subprocess.CompletedProcess[str]:
    return modelcache("cache", *args, connection_string=azurite.connection_string)


def client(azurite: Any, container: str) -> Any:
    from azure.storage.blob import ContainerClient

    return ContainerClient.from_connection_string(azurite.connection_string, container)


def test_ls_show_and_stats_add_up_with_what_the_runs_did(
    azurite: Any, published: Published, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    config = workflow(tmp_path, tiny_model, warm_container)
    cold = published.report  # the run that filled the container, whose record was copied
    warm = run_ok(config, azurite.connection_string)  # empty local cache: the final model only

    figures = cache_json("stats", "--config", config, azurite=azurite)
    assert figures["entries"] == 2
    assert figures["runs"] == 2
    for name in ("hits", "misses"):
        assert figures[name] == {
            tier: cold["totals"][name][tier] + warm["totals"][name][tier]
            for tier in ("local", "cloud")
        }
    assert figures["hits"]["cloud"] == 2
    assert figures["misses"]["cloud"] == 2
    for name in ("bytes_downloaded", "bytes_uploaded", "bytes_avoided"):
        assert figures[name] == cold["totals"][name] + warm["totals"][name]
    # What crossed the wire: each blob once, though two entries list the shared ones.
    assert figures["bytes_uploaded"] == figures["stored_bytes"]
    assert figures["stored_bytes"] < figures["logical_bytes"]  # shared tokenizer files
    assert figures["deduplication_ratio"] > 1

    listing = cache_json("ls", "--config", config, azurite=azurite)["entries"]
    assert sorted(entry["pass"] for entry in listing) == ["MagnitudePruning", "TorchDtypeCast"]
    final = warm["final_key"]
    shown = cache_json("show", final[:10], "--config", config, azurite=azurite)
    assert shown["manifest"]["key"] == final
    assert [link.get("pass") for link in shown["lineage"][:2]] == [
        "MagnitudePruning",
        "TorchDtypeCast",
    ]
    assert shown["lineage"][2]["model"]["kind"] == "local_dir"
    local = cache_json(  # in a subprocess, as a shell runs it
        "stats", "--config", config, "--tier", "local", azurite=azurite, here=False
    )
    assert local["runs"] == 1
    assert local["entries"] == 1
    text = cache_text("ls", "--config", config, azurite=azurite)
    assert final[:12] in text.stdout
    assert "MagnitudePruning" in text.stdout


def test_verify_finds_a_flipped_byte_and_a_deleted_blob_and_repair_heals(
    azurite: Any, published: Published, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    config = workflow(tmp_path, tiny_model, warm_container)
    published.copy_cache(tmp_path / "cache")
    cold = published.report
    keys = {step["pass"]: step["key"] for step in cold["steps"] if step["kind"] == "run"}
    with client(azurite, warm_container) as blobs:
        manifests = {
            name: json.loads(blobs.download_blob(f"{ENTRIES}{key}.json").readall())
            for name, key in keys.items()
        }
        weights = {
            name: next(f["sha256"] for f in m["files"] if f["path"] == "model.safetensors")
            for name, m in manifests.items()
        }
        flipped = f"{BLOBS}sha256/{weights['half'][:2]}/{weights['half']}"
        data = bytearray(blobs.download_blob(flipped).readall())
        data[len(data) // 2] ^= 0x01
        blobs.upload_blob(flipped, bytes(data), overwrite=True)
        blobs.delete_blob(f"{BLOBS}sha256/{weights['prune'][:2]}/{weights['prune']}")

    found = cache_json("verify", "--config", config, azurite=azurite, code=1)
    assert found["corrupt_blobs"] == [weights["half"]]
    assert found["missing_blobs"] == [weights["prune"]]
    assert found["broken_entries"] == {
        keys["half"]: [weights["half"]],
        keys["prune"]: [weights["prune"]],
    }
    text = cache_text("verify", "--config", config, azurite=azurite)
    assert text.returncode == 1
    assert f"corrupt blob {weights['half']}" in text.stdout

    repaired = cache_json("verify", "--config", config, "--repair", azurite=azurite)
    assert sorted(repaired["removed_entries"]) == sorted(keys.values())
    assert repaired["removed_blobs"] == [weights["half"]]
    assert cache_json("stats", "--config", config, azurite=azurite)["entries"] == 0

    shutil.rmtree(tmp_path / "cache")
    healed = run_ok(config, azurite.connection_string)  # recomputes and republishes both
    assert [s["pass"] for s in healed["steps"] if s["kind"] == "upload"] == ["half", "prune"]
    assert cache_json("verify", "--config", config, azurite=azurite)["clean"] is True


def test_prune_to_a_size_keeps_every_remaining_entry_whole(
    azurite: Any, published: Published, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    # The first workflow, at sparsity 0.5, is the one ``published`` ran: its entries and
    # local cache are there already.
    published.copy_cache(tmp_path / "cache")
    second = workflow(tmp_path, tiny_model, warm_container, sparsity=0.7)
    # Last use is kept to the second, and the copied entries were written just now: the run
    # must end in a later second than the copy, or the cast it shares could tie with the
    # first workflow's own output (and lose on its key) as the least recently used.
    time.sleep(1 - time.time() % 1)
    later = run_ok(second, azurite.connection_string)  # shares the cast, prunes differently
    listing = {
        e["key"]: e for e in cache_json("ls", "--config", second, azurite=azurite)["entries"]
    }
    assert len(listing) == 3
    figures = cache_json("stats", "--config", second, azurite=azurite)
    keep = {step["key"] for step in later["steps"] if step["kind"] in ("run", "skip")}
    # Room for what the second workflow needs, and not for the first one's own output.
    limit = figures["stored_bytes"] - 1000
    dry = cache_json(
        "prune",
        "--config",
        second,
        "--max-size",
        str(limit),
        "--grace",
        "0s",
        "--dry-run",
        azurite=azurite,
    )
    pruned = cache_json(
        "prune", "--config", second, "--max-size", str(limit), "--grace", "0s", azurite=azurite
    )
    assert dry["removed_entries"] == pruned["removed_entries"]
    assert len(pruned["removed_entries"]) == 1
    assert pruned["removed_entries"][0] not in keep
    assert pruned["freed_bytes"] > 0
    assert pruned["stored_bytes_after"] <= limit
    assert cache_json("verify", "--config", second, azurite=azurite)["clean"] is True
    shutil.rmtree(tmp_path / "cache")
    again = run_ok(second, azurite.connection_string)  # empty local cache: all hits
    assert [s["kind"] for s in again["steps"] if s["kind"] != "skip"] == ["download"]


def test_prune_by_age_empties_the_cache_and_the_grace_period_protects(
    azurite: Any, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    config = workflow(tmp_path, tiny_model, warm_container)
    protected = cache_json("prune", "--config", config, "--older-than", "0s", azurite=azurite)
    assert protected["removed_entries"] == []
    assert protected["kept_fresh"] > 0
    pruned = cache_json(
        "prune", "--config", config, "--older-than", "0s", "--grace", "0s", azurite=azurite
    )
    assert len(pruned["removed_entries"]) == 2
    with client(azurite, warm_container) as blobs:
        left = [b.name for b in blobs.list_blobs()]
    assert not [name for name in left if name.startswith((ENTRIES, BLOBS))]


def test_why_names_the_changed_field(
    azurite: Any, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    # The container holds the workflow at sparsity 0.5 (``published``).
    changed_ = workflow(tmp_path, tiny_model, warm_container, sparsity=0.6)
    report = cache_json("why", changed_, "prune", azurite=azurite)
    assert report["cached"] is False
    assert report["differences"] == [{"field": "pass.config.sparsity", "cached": 0.5, "now": 0.6}]
    assert cache_json("why", changed_, "half", azurite=azurite)["cached"] is True
    text = cache_text("why", changed_, "prune", azurite=azurite)
    assert text.returncode == 0
    assert "pass.config.sparsity: cached 0.5, now 0.6" in text.stdout


def test_local_tier_verify_finds_a_flipped_byte(
    published: Published, tmp_path: Path, azurite: Any
) -> None:
    cache = published.copy_cache(tmp_path / "cache")
    blobs = [p for p in (cache / BLOBS).rglob("*") if p.is_file()]
    victim = max(blobs, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[0] ^= 0x80
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    found = cache_json("verify", "--cache-dir", cache, azurite=azurite, code=1)
    assert found["corrupt_blobs"] == [victim.name]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("ls",), "say which cache"),
        (("prune", "--cache-dir", "x"), "--older-than"),
        (("prune", "--cache-dir", "x", "--older-than", "soon"), "not a duration"),
        (("show", "abc", "--cache-dir", "x"), "at least 6"),
        (("show", "abcdef", "--cache-dir", "x"), "no entry"),
        (("verify", "--cache-dir", "x", "--sample", "0"), "--sample"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: tuple[str, ...], says: str, azurite: Any, tmp_path: Path
) -> None:
    # "x" stands for a cache folder that exists (one that does not is its own mistake).
    result = cache_text(*(str(tmp_path) if arg == "x" else arg for arg in args), azurite=azurite)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert says in lines[0]
