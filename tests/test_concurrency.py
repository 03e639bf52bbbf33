"""Concurrent runners on one Azurite container: atomic publishing and single flight.

Every runner is the real ``modelcache run`` in a subprocess, with a ``cache_dir`` and an
``output_dir`` of its own (as on separate machines) and the container in common. The chain
is the tiny BERT through two cheap passes (pruning, then a cast to float16), so the runs are
dominated by starting Python and importing torch, not by the passes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

RUNNERS = 8
PASSES = {
    "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
    "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
}
ENTRIES = "modelcache-v1/entries/"
BLOBS = "modelcache-v1/blobs/"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "model"
    script = Path(__file__).parents[1] / "examples" / "tiny" / "make_tiny_model.py"
    subprocess.run([sys.executable, str(script), str(folder)], check=True, capture_output=True)
    return folder


def new_container(connection_string: str) -> str:
    from azure.storage.blob import BlobServiceClient

    name = f"flight-{uuid.uuid4().hex[:24]}"
    with BlobServiceClient.from_connection_string(connection_string) as service:
        service.create_container(name)
    return name


def write_config(folder: Path, model: Path, container: str) -> Path:
    folder.mkdir(parents=True)
    config = folder / "workflow.json"
    document = {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": PASSES,
        "cloud_cache_config": {"container_name": container},
        "cache_dir": "cache",
        "output_dir": "out",
    }
    config.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return config


def start_runner(config: Path, connection_string: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "AZURE_STORAGE_CONNECTION_STRING": connection_string,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("MODELCACHE_PROGRESS", None)
    report = config.with_name("report.json")
    command = [sys.executable, "-m", "modelcache.runner.cli", "run", str(config), "--quiet",
               "--report", str(report)]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(runners: list[tuple[Path, subprocess.Popen[str]]]) -> list[dict[str, Any]]:
    """Wait for every runner; their reports, after checking each exited 0 quietly."""
    reports = []
    for config, process in runners:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        reports.append(json.loads(config.with_name("report.json").read_text(encoding="utf-8")))
    return reports


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def runs_per_key(reports: list[dict[str, Any]]) -> Counter[str]:
    """How many times each key's pass ran to completion, over every report."""
    return steps_per_key(reports, "run")


def steps_per_key(reports: list[dict[str, Any]], kind: str) -> Counter[str]:
    """How many steps of ``kind`` ended ``done``, per key, over every report."""
    return Counter(
        s["key"] for r in reports for s in r["steps"] if (s["kind"], s["outcome"]) == (kind, "done")
    )


def check_container(connection_string: str, container: str) -> dict[str, Any]:
    """Every manifest parses and names only blobs that exist with the right size and SHA-256;
    every blob belongs to a manifest. Returns the manifests by key."""
    from azure.storage.blob import ContainerClient

    from modelcache.store import Manifest, blob_name, parse_manifest_name

    manifests: dict[str, Any] = {}
    with ContainerClient.from_connection_string(connection_string, container) as client:
        for item in client.list_blobs(name_starts_with=ENTRIES):
            key = parse_manifest_name(item.name)
            assert key is not None, item.name
            data = client.download_blob(item.name).readall()
            manifests[key] = Manifest.from_json(data, key=key)
        stored = {b.name: b.size for b in client.list_blobs(name_starts_with=BLOBS)}
        named = {}
        for manifest in manifests.values():
            for file in manifest.files:
                named[blob_name(file.sha256)] = file
        for name, file in named.items():
            assert stored.get(name) == file.size, f"{name} ({file.path}) missing or cut short"
            content = client.download_blob(name).readall()
            assert hashlib.sha256(content).hexdigest() == file.sha256, file.path
    assert set(stored) == set(named), "blobs that no manifest names"
    return manifests


def test_eight_runners_at_once_compute_and_publish_each_entry_exactly_once(
    azurite: Any, tiny_model: Path, tmp_path: Path
) -> None:
    container = new_container(azurite.connection_string)
    configs = [write_config(tmp_path / f"r{n}", tiny_model, container) for n in range(RUNNERS)]

    started = time.monotonic()
    reports = finish([(c, start_runner(c, azurite.connection_string)) for c in configs])
    seconds = time.monotonic() - started

    manifests = check_container(azurite.connection_string, container)
    keys = {r["final_key"] for r in reports}
    assert len(keys) == 1
    chain = {s["key"] for r in reports for s in r["steps"]}
    assert set(manifests) == chain
    assert len(chain) == len(PASSES)
    # Published exactly once: one create-only manifest PUT per entry succeeded ...
    assert steps_per_key(reports, "upload") == dict.fromkeys(chain, 1)
    # ... and, thanks to single flight, computed exactly once: the others waited for it.
    assert runs_per_key(reports) == dict.fromkeys(chain, 1)
    waits = [s for r in reports for s in r["steps"] if s["outcome"] == "waited"]
    assert waits, "nobody waited: the runners did not overlap"
    assert all("another runner" in s["detail"] for s in waits)
    waited_notes = [n for r in reports for n in r["notes"] if "another runner" in n]
    assert len(waited_notes) == len(waits)

    outputs = [files(c.parent / "out") for c in configs]
    assert outputs[0]
    assert all(output == outputs[0] for output in outputs[1:])
    final = manifests[keys.pop()]
    assert {f.path: f.size for f in final.files} == {
        path: len(data) for path, data in outputs[0].items() if path != ".modelcache-output.json"
    }
    print(
        f"\n{RUNNERS} runners in {seconds:.1f} s: {len(manifests)} entries published once each, "
        f"{sum(runs_per_key(reports).values())} pass runs, {len(waits)} waits, "
        f"{sum(r['totals']['replans'] for r in reports)} re-plans"
    )


def test_a_crashed_lock_holder_delays_the_others_only_until_its_lease_expires(
    azurite: Any, tiny_model: Path, tmp_path: Path
) -> None:
    from azure.storage.blob import BlobLeaseClient, ContainerClient

    from modelcache.runner.config import load_config
    from modelcache.runner.workflow import RunOptions, prepare
    from modelcache.store import lock_name

    container = new_container(azurite.connection_string)
    configs = [write_config(tmp_path / f"r{n}", tiny_model, container) for n in range(3)]
    first_key = prepare(load_config(configs[0]), RunOptions(no_cloud=True)).keys[0]
    with ContainerClient.from_connection_string(azurite.connection_string, container) as raw:
        # A holder of the first pass's lock, as a runner holds it: a 15 s lease, renewed ...
        lease = BlobLeaseClient(raw.upload_blob(lock_name(first_key), b""))
        lease.acquire(lease_duration=15)
        runners = [(c, start_runner(c, azurite.connection_string)) for c in configs]
        # ... until every runner is under way (its scratch folder exists), then never again:
        # the holder died without releasing.
        deadline = time.monotonic() + 120
        while not all(list((c.parent / "cache").glob("run-*")) for c in configs):
            assert time.monotonic() < deadline, "the runners did not start"
            lease.renew()
            time.sleep(0.5)
        lease.renew()
    died = time.monotonic()

    reports = finish(runners)
    seconds = time.monotonic() - died

    check_container(azurite.connection_string, container)
    assert runs_per_key(reports)[first_key] == 1  # the survivors still computed it once
    (ran,) = [
        s for r in reports for s in r["steps"]
        if s["key"] == first_key and s["kind"] == "run" and s["outcome"] == "done"
    ]  # fmt: skip
    assert ran["detail"].startswith("waited ")  # for the dead holder's lease to expire
    assert 14 < seconds < 120
    outputs = [files(c.parent / "out") for c in configs]
    assert outputs[0]
    assert all(output == outputs[0] for output in outputs[1:])
    print(f"\n3 runners behind a dead holder finished {seconds:.1f} s after it died")
