"""Workflow benchmark: the MiniLM example cold, warm from the cloud and warm from local disk.

Runs the three-pass workflow of ``examples/minilm/workflow.json`` (convert, quantize,
optimize on all-MiniLM-L6-v2) three times, each as its own ``modelcache run`` process, against
one Azurite started for the purpose:

1. cold: an empty local cache and an empty container; every pass runs and is uploaded;
2. warm-cloud: a new, empty local cache, the same container; only the final output should be
   downloaded;
3. warm-local: the local cache of run 2, the same container; nothing should move.

It prints, for each, the wall time measured around the process and the one the run reports,
the CPU time of the process, the steps the report counts and the bytes it moved, then every
step of each report; then checks that the warm-cloud run moved exactly the bytes of the final
model (the files in ``output_dir`` without the output marker) and that the warm-local run
moved none, and prints the warm runs' wall times as ratios of the cold run's. Exits 1 if a
check fails, 2 if a run fails. "Bytes moved" are the report's: model outputs downloaded and
uploaded; listings, manifests and evaluation records are small and not counted.

Run: ``.venv/bin/python benchmarks/bench_workflow.py``.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from modelcache.azure.testing import Azurite

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "minilm" / "workflow.json"
OUTPUT_MARKER = ".modelcache-output.json"  # the runner's marker in output_dir; not model bytes
COLUMNS = (
    ("scenario", 11),
    ("wall s", 8),
    ("report s", 9),
    ("cpu s", 7),
    ("runs", 5),
    ("downloads", 10),
    ("uploads", 8),
    ("bytes_downloaded", 17),
    ("bytes_uploaded", 15),
)


def write_config(path: Path, *, container: str, cache_dir: Path, output_dir: Path) -> None:
    config = json.loads(EXAMPLE.read_text())
    config["cloud_cache_config"] = {"container_name": container}
    config["cache_dir"] = str(cache_dir)
    config["output_dir"] = str(output_dir)
    path.write_text(json.dumps(config, indent=2) + "\n")


def run_workflow(
    config: Path, report: Path, env: dict[str, str]
) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds around one ``modelcache run`` process, the CPU seconds (user and system)
    it used, and the report it wrote."""
    command = [sys.executable, "-m", "modelcache.runner.cli", "run", str(config)]
    command += ["--report", str(report), "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    # Azurite is a child too, but is reaped only when stopped: this is the run's CPU alone.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(f"`{' '.join(command)}` exited with {done.returncode}", file=sys.stderr)
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(2)
    report_data: dict[str, Any] = json.loads(report.read_text())
    return wall, cpu, report_data


def model_bytes(output_dir: Path) -> int:
    return sum(
        path.stat().st_size
        for path in output_dir.rglob("*")
        if path.is_file() and path.name != OUTPUT_MARKER
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="modelcache-bench-workflow-"))
    azurite = Azurite.start()
    try:
        container = f"bench-{uuid.uuid4().hex[:12]}"
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        service.create_container(container)
        env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
        env.setdefault("HF_HUB_OFFLINE", "1")

        # (scenario, cache_dir): warm-local reuses the cache warm-cloud filled.
        scenarios = (
            ("cold", workdir / "cache-cold"),
            ("warm-cloud", workdir / "cache-warm"),
            ("warm-local", workdir / "cache-warm"),
        )
        results: dict[str, tuple[float, float, dict[str, Any], int]] = {}
        for name, cache_dir in scenarios:
            output_dir = workdir / f"out-{name}"
            config = workdir / f"{name}.json"
            write_config(config, container=container, cache_dir=cache_dir, output_dir=output_dir)
            print(f"running {name} ...", flush=True)
            wall, cpu, report = run_workflow(config, workdir / f"{name}-report.json", env)
            results[name] = (wall, cpu, report, model_bytes(output_dir))

        print()
        print("".join(title.rjust(width) for title, width in COLUMNS))
        for name, (wall, cpu, report, _) in results.items():
            t = report["totals"]
            cells = (
                name,
                f"{wall:.2f}",
                f"{t['wall_seconds']:.2f}",
                f"{cpu:.2f}",
                t["runs"],
                t["downloads"],
                t["uploads"],
                f"{t['bytes_downloaded']:,}",
                f"{t['bytes_uploaded']:,}",
            )
            print(
                "".join(str(c).rjust(width) for c, (_, width) in zip(cells, COLUMNS, strict=True))
            )

        print("\nsteps (kind, pass, seconds, bytes; as each report lists them)")
        for name, (_, _, report, _) in results.items():
            for step in report["steps"]:
                print(
                    f"  {name:<11}{step['kind']:<9}{step['pass']:<10}"
                    f"{step['seconds']:>9.2f}{step['bytes']:>14,}  {step['outcome']}"
                )

        def moved(name: str) -> int:
            t = results[name][2]["totals"]
            return int(t["bytes_downloaded"]) + int(t["bytes_uploaded"])

        final_size = results["warm-cloud"][3]
        checks = (
            (
                f"warm-cloud moved {moved('warm-cloud'):,} bytes; the final model is "
                f"{final_size:,} bytes",
                moved("warm-cloud") == final_size,
            ),
            (
                f"warm-local moved {moved('warm-local'):,} bytes; expected 0",
                moved("warm-local") == 0,
            ),
        )
        print()
        for text, passed in checks:
            print(f"[{'ok' if passed else 'FAIL'}] {text}")
        cold = results["cold"][0]
        print()
        for name in ("warm-cloud", "warm-local"):
            print(f"{name}/cold wall time: {results[name][0] / cold:.3f}")
        return 0 if all(passed for _, passed in checks) else 1
    finally:
        azurite.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
