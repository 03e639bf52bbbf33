"""Concurrent runners on one Azurite container: atomic publishing and single flight.

Every runner is the real ``modelcache run`` in a subprocess, with a ``cache_dir`` and an
``output_dir`` of its own (as on separate machines) and the container in common. The chain
is the tiny BERT through two cheap passes (pruning, then a cast to float16), so the runs are
dominated by starting Python and importing torch, not by the passes.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from .e2e import (
    files,
    finished,
    intact_manifests,
    model_files,
    new_container,
    start_modelcache,
    stray_blobs,
    write_config,
)

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

RUNNERS = 8
PASSES = {
    "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
    "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
}


def runner_config(folder: Path, model: Path, container: str) -> Path:
    """A runner's own folder, as on a machine of its own: its config, cache and output."""
    folder.mkdir(parents=True)
    return write_config(folder, model, PASSES, container=container, name="workflow.json")


def start_runner(config: Path, connection_string: str) -> subprocess.Popen[str]:
    report = config.with_name("report.json")
    return start_modelcache(
        "run", config, "--quiet", "--report", report, connection_string=connection_string
    )


def finish(runners: list[tuple[Path, subprocess.Popen[str]]]) -> list[dict[str, Any]]:
    """Wait for every runner; their reports, after checking each exited 0 quietly."""
    reports = []
    for config, process in runners:
        result = finished(process)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        reports.append(json.loads(config.with_name("report.json").read_text(encoding="utf-8")))
    return reports


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
    manifests = intact_manifests(connection_string, container)
    assert not stray_blobs(connection_string, container, manifests), "blobs no manifest names"
    return manifests


def test_eight_runners_at_once_compute_and_publish_each_entry_exactly_once(
    azurite: Any, tiny_model: Path, tmp_path: Path
) -> None:
    container = new_container(azurite.connection_string, "flight")
    configs = [runner_config(tmp_path / f"r{n}", tiny_model, container) for n in range(RUNNERS)]

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
        path: len(data) for path, data in model_files(configs[0].parent / "out").items()
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

    container = new_container(azurite.connection_string, "flight")
    configs = [runner_config(tmp_path / f"r{n}", tiny_model, container) for n in range(3)]
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
