"""``modelcache cache ...`` end to end: real runs of a tiny workflow into Azurite, then the
maintenance commands through the real command line, against the cloud and the local tier.

The workflow is two cheap passes (a dtype cast, then magnitude pruning) over the offline
tiny BERT; its two outputs share their tokenizer files, so deduplication shows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.azurite]

ENTRIES = "modelcache-v1/entries/"
BLOBS = "modelcache-v1/blobs/"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modelcache.runner.tiny_model import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def container(azurite: Any) -> str:
    from azure.storage.blob import BlobServiceClient

    name = f"ops-{uuid.uuid4().hex[:24]}"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_container(name)
    return name


def write_config(
    folder: Path, model: Path, container: str, *, sparsity: float = 0.5, cache: str = "cache"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": {
            "half": {"type": "TorchDtypeCast", "dtype": "float16"},
            "prune": {"type": "MagnitudePruning", "sparsity": sparsity},
        },
        "cloud_cache_config": {"container_name": container},
        "cache_dir": cache,
        "output_dir": f"out-{uuid.uuid4().hex[:6]}",
    }
    path = folder / f"workflow-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def modelcache(*args: str | Path, azurite: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "modelcache.runner.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def run(config: Path, azurite: Any) -> dict[str, Any]:
    report = config.with_suffix(f".{uuid.uuid4().hex[:6]}.report.json")
    result = modelcache("run", config, "--quiet", "--report", report, azurite=azurite)
    assert result.returncode == 0, result.stderr
    return json.loads(report.read_text(encoding="utf-8"))


def cache_json(*args: str | Path, azurite: Any, code: int = 0) -> Any:
    result = modelcache("cache", *args, "--json", azurite=azurite)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def client(azurite: Any, container: str) -> Any:
    from azure.storage.blob import ContainerClient

    return ContainerClient.from_connection_string(azurite.connection_string, container)


def test_ls_show_and_stats_add_up_with_what_the_runs_did(
    azurite: Any, container: str, tiny_model: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tiny_model, container)
    cold = run(config, azurite)
    shutil.rmtree(tmp_path / "cache")
    warm = run(config, azurite)  # empty local cache: downloads the final model only

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
    assert figures["bytes_uploaded"] == figures["logical_bytes"]
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
    local = cache_json("stats", "--config", config, "--tier", "local", azurite=azurite)
    assert local["runs"] == 1
    assert local["entries"] == 1
    text = modelcache("cache", "ls", "--config", config, azurite=azurite)
    assert final[:12] in text.stdout
    assert "MagnitudePruning" in text.stdout


def test_verify_finds_a_flipped_byte_and_a_deleted_blob_and_repair_heals(
    azurite: Any, container: str, tiny_model: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tiny_model, container)
    cold = run(config, azurite)
    keys = {step["pass"]: step["key"] for step in cold["steps"] if step["kind"] == "run"}
    with client(azurite, container) as blobs:
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
    text = modelcache("cache", "verify", "--config", config, azurite=azurite)
    assert text.returncode == 1
    assert f"corrupt blob {weights['half']}" in text.stdout

    repaired = cache_json("verify", "--config", config, "--repair", azurite=azurite)
    assert sorted(repaired["removed_entries"]) == sorted(keys.values())
    assert repaired["removed_blobs"] == [weights["half"]]
    assert cache_json("stats", "--config", config, azurite=azurite)["entries"] == 0

    shutil.rmtree(tmp_path / "cache")
    healed = run(config, azurite)  # recomputes and republishes both
    assert [s["pass"] for s in healed["steps"] if s["kind"] == "upload"] == ["half", "prune"]
    assert cache_json("verify", "--config", config, azurite=azurite)["clean"] is True


def test_prune_to_a_size_keeps_every_remaining_entry_whole(
    azurite: Any, container: str, tiny_model: Path, tmp_path: Path
) -> None:
    first = write_config(tmp_path, tiny_model, container, sparsity=0.5)
    second = write_config(tmp_path, tiny_model, container, sparsity=0.7)
    run(first, azurite)
    later = run(second, azurite)  # shares the cast with the first, prunes differently
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
    again = run(second, azurite)  # empty local cache: all hits, the final model downloaded
    assert [s["kind"] for s in again["steps"] if s["kind"] != "skip"] == ["download"]


def test_prune_by_age_empties_the_cache_and_the_grace_period_protects(
    azurite: Any, container: str, tiny_model: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tiny_model, container)
    run(config, azurite)
    protected = cache_json("prune", "--config", config, "--older-than", "0s", azurite=azurite)
    assert protected["removed_entries"] == []
    assert protected["kept_fresh"] > 0
    pruned = cache_json(
        "prune", "--config", config, "--older-than", "0s", "--grace", "0s", azurite=azurite
    )
    assert len(pruned["removed_entries"]) == 2
    with client(azurite, container) as blobs:
        left = [b.name for b in blobs.list_blobs()]
    assert not [name for name in left if name.startswith((ENTRIES, BLOBS))]


def test_why_names_the_changed_field(
    azurite: Any, container: str, tiny_model: Path, tmp_path: Path
) -> None:
    run(write_config(tmp_path, tiny_model, container, sparsity=0.5), azurite)
    changed = write_config(tmp_path, tiny_model, container, sparsity=0.6)
    report = cache_json("why", changed, "prune", azurite=azurite)
    assert report["cached"] is False
    assert report["differences"] == [{"field": "pass.config.sparsity", "cached": 0.5, "now": 0.6}]
    assert cache_json("why", changed, "half", azurite=azurite)["cached"] is True
    text = modelcache("cache", "why", changed, "prune", azurite=azurite)
    assert text.returncode == 0
    assert "pass.config.sparsity: cached 0.5, now 0.6" in text.stdout


def test_local_tier_verify_finds_a_flipped_byte(
    tiny_model: Path, tmp_path: Path, azurite: Any
) -> None:
    config = tmp_path / "local.json"
    config.write_text(
        json.dumps(
            {
                "input_model": {"type": "HfModel", "model_path": str(tiny_model)},
                "passes": {"half": {"type": "TorchDtypeCast", "dtype": "float16"}},
                "cache_dir": "cache",
                "output_dir": "out",
            }
        ),
        encoding="utf-8",
    )
    run(config, azurite)
    blobs = sorted((tmp_path / "cache" / BLOBS).rglob("*"), key=lambda p: -p.stat().st_size)
    victim = blobs[0]
    data = bytearray(victim.read_bytes())
    data[0] ^= 0x80
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    found = cache_json("verify", "--cache-dir", tmp_path / "cache", azurite=azurite, code=1)
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
    result = modelcache("cache", *args, azurite=azurite)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert says in lines[0]
