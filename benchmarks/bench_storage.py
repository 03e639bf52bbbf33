"""Storage benchmark: AzureBlobStore against the raw azure-storage-blob SDK, on Azurite.

Measures, in one run against one Azurite started for the purpose:

* upload and download of a model directory (random bytes in several files, ``--size-mib``
  in all) through the store (publish, fetch: hashing and verifying every byte) and through
  the bare SDK (``upload_blob``/``download_blob(...).readinto``) at each ``--concurrency``;
  the store's throughput as a ratio of the SDK's best;
* the peak resident memory of each transfer, taken from a child process that does only
  that transfer (``os.wait4``), beside that of a child that only imports the SDK;
* the bytes a republish sends when one file changed;
* the requests a snapshot costs for 1, 10 and 100 keys.

Run: ``.venv/bin/python benchmarks/bench_storage.py --size-mib 1024`` (``./dev bench`` runs it
with the defaults; ``--size-mib 64`` is a quick check).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient, ContainerClient

from modelcache.azure import AzureBlobStore, MiB, TransferSettings
from modelcache.azure.testing import Azurite, TrafficCounter
from modelcache.planner import canonical_json
from modelcache.store import Manifest, ManifestFile, evaluation_name, manifest_name

# Shares of the model: one big weights file, the graph, and small files around them.
LAYOUT = {
    "model.onnx.data": 0.60,
    "model.onnx": 0.30,
    "tokenizer/tokenizer.json": 0.06,
    "tokenizer/vocab.txt": 0.03,
}
SMALL_FILES = {"config.json": 700, "tokenizer/special_tokens_map.json": 125, "README.md": 3000}


# -- the model directory -------------------------------------------------------------------


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        left = size
        while left:
            chunk = min(left, 8 * MiB)
            stream.write(os.urandom(chunk))
            left -= chunk


def make_model(root: Path, size: int) -> None:
    for name, share in LAYOUT.items():
        write_random(root / name, int(size * share))
    for name, small in SMALL_FILES.items():
        write_random(root / name, small)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def describe(root: Path, label: str) -> Manifest:
    inputs = {"schema": "modelcache-key/1", "benchmark": label}
    files = [
        ManifestFile(
            path=path.relative_to(root).as_posix(),
            size=path.stat().st_size,
            sha256=sha256_file(path),
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]
    return Manifest(
        key=hashlib.sha256(canonical_json(inputs).encode()).hexdigest(),
        model_type="onnx",
        files=files,
        key_inputs=inputs,
        producer="bench_storage",
        run_seconds=12.5,
    )


# -- one transfer per child process --------------------------------------------------------


def child(task: dict[str, Any]) -> dict[str, Any]:
    """Do one transfer and time it; the parent reads this process's peak memory."""
    kind = task["kind"]
    if kind == "idle":
        return {"seconds": 0.0}
    container = ContainerClient.from_connection_string(task["connection"], task["container"])
    source, target = Path(task.get("source", "")), Path(task.get("target", ""))
    if kind.startswith("sdk-"):
        names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
        concurrency = task["concurrency"]
        started = time.perf_counter()
        for name in names:
            if kind == "sdk-upload":
                with (source / name).open("rb") as stream:
                    container.upload_blob(name, stream, overwrite=True, max_concurrency=concurrency)
            else:
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                with (target / name).open("wb") as stream:
                    container.download_blob(name, max_concurrency=concurrency).readinto(stream)
        return {"seconds": time.perf_counter() - started}
    counter = TrafficCounter()
    store = AzureBlobStore.from_connection_string(
        task["connection"],
        task["container"],
        settings=TransferSettings(**task["settings"]),
        client_options=counter.client_options,
    )
    manifest = Manifest.from_json(task["manifest"])
    started = time.perf_counter()
    if kind == "store-publish":
        assert store.publish(source, manifest)
    else:
        store.fetch(manifest.key, target)
    return {
        "seconds": time.perf_counter() - started,
        "bytes_sent": counter.bytes_sent,
        "bytes_received": counter.bytes_received,
        "requests": counter.requests,
    }


def run_child(task: dict[str, Any]) -> dict[str, Any]:
    """Run ``task`` in a fresh interpreter; its result plus ``peak_mib``, its peak RSS."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(task)],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"child {task['kind']} failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(output)
    result["peak_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


# -- the measurements ---------------------------------------------------------------------


class Bench:
    def __init__(self, azurite: Azurite, scratch: Path, size: int, settings: TransferSettings):
        self.azurite = azurite
        self.scratch = scratch
        self.size = size
        self.settings = settings
        self.service = BlobServiceClient.from_connection_string(azurite.connection_string)

    def container(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:16]}"
        self.service.create_container(name)
        return name

    def drop(self, container: str) -> None:
        self.service.delete_container(container)

    def task(self, kind: str, container: str, **extra: Any) -> dict[str, Any]:
        return {
            "kind": kind,
            "connection": self.azurite.connection_string,
            "container": container,
            "settings": vars(self.settings),
            **extra,
        }

    def sdk_round(self, model: Path, concurrency: int) -> tuple[dict[str, Any], dict[str, Any]]:
        container = self.container()
        target = self.scratch / f"sdk-{uuid.uuid4().hex}"
        try:
            up = run_child(
                self.task("sdk-upload", container, source=str(model), concurrency=concurrency)
            )
            down = run_child(
                self.task(
                    "sdk-download",
                    container,
                    source=str(model),  # for the names only
                    target=str(target),
                    concurrency=concurrency,
                )
            )
        finally:
            self.drop(container)
            shutil.rmtree(target, ignore_errors=True)
        return up, down

    def store_round(self, model: Path, manifest: Manifest) -> tuple[dict[str, Any], dict[str, Any]]:
        container = self.container()
        target = self.scratch / f"store-{uuid.uuid4().hex}"
        document = manifest.to_json().decode()
        try:
            up = run_child(
                self.task("store-publish", container, source=str(model), manifest=document)
            )
            down = run_child(
                self.task("store-fetch", container, target=str(target), manifest=document)
            )
        finally:
            self.drop(container)
            shutil.rmtree(target, ignore_errors=True)
        return up, down

    def republish(self, model: Path, manifest: Manifest) -> tuple[str, int, int, int]:
        """Publish, change one file, publish the changed copy: what the second one sent."""
        container = self.container()
        changed_name = "model.onnx"
        copy = self.scratch / "changed"
        try:
            store = AzureBlobStore.from_connection_string(
                self.azurite.connection_string, container, settings=self.settings
            )
            store.publish(model, manifest)
            shutil.copytree(model, copy)
            with (copy / changed_name).open("r+b") as stream:
                stream.write(os.urandom(16))
            second = describe(copy, "changed")
            counter = TrafficCounter()
            store = AzureBlobStore.from_connection_string(
                self.azurite.connection_string,
                container,
                settings=self.settings,
                client_options=counter.client_options,
            )
            assert store.publish(copy, second)
            size = (copy / changed_name).stat().st_size
            return changed_name, size, counter.bytes_sent, len(second.to_json())
        finally:
            self.drop(container)
            shutil.rmtree(copy, ignore_errors=True)

    def snapshot_costs(self) -> dict[int, tuple[int, float]]:
        container = self.container()
        try:
            client = self.service.get_container_client(container)
            keys = [hashlib.sha256(f"entry {i}".encode()).hexdigest() for i in range(100)]
            for key in keys:
                client.upload_blob(manifest_name(key), b"{}", metadata={"size": "1"})
                client.upload_blob(evaluation_name(key, "accuracy-v1"), b"{}")
            counter = TrafficCounter()
            store = AzureBlobStore.from_connection_string(
                self.azurite.connection_string,
                container,
                settings=self.settings,
                client_options=counter.client_options,
            )
            costs = {}
            for count in (1, 10, 100):
                counter.reset()
                started = time.perf_counter()
                assert len(store.snapshot(keys[:count])) == count
                costs[count] = (counter.requests, time.perf_counter() - started)
            return costs
        finally:
            self.drop(container)


def rate(size: int, seconds: float) -> float:
    return size / MiB / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="model size (default 1024)")
    parser.add_argument(
        "--concurrency", default="1,2,4,8,16", help="SDK max_concurrency values to try"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of each SDK setting")
    parser.add_argument("--store-concurrency", type=int, default=TransferSettings().max_concurrency)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    size_target = args.size_mib * MiB
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    settings = TransferSettings(max_concurrency=args.store_concurrency)
    print(f"bench_storage: {args.size_mib} MiB model, {args.repeat} tries per SDK setting, "
          f"Azurite, {os.cpu_count()} cores; store settings {vars(settings)}")  # fmt: skip
    with Azurite.start() as azurite, tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        model = scratch / "model"
        make_model(model, size_target)
        manifest = describe(model, "model")
        size = manifest.size
        bench = Bench(azurite, scratch, size, settings)
        idle = run_child({"kind": "idle"})["peak_mib"]
        print(f"model: {len(manifest.files)} files, {size / MiB:.0f} MiB; "
              f"a child that only imports the SDK peaks at {idle:.0f} MiB")  # fmt: skip

        tries: dict[str, list[dict[str, Any]]] = {}
        # The store runs after each SDK run, so that both sides get as many tries and share
        # whatever else the machine is doing at the time.
        for _ in range(args.repeat):
            for concurrency in concurrencies:
                up, down = bench.sdk_round(model, concurrency)
                tries.setdefault(f"sdk upload c={concurrency}", []).append(up)
                tries.setdefault(f"sdk download c={concurrency}", []).append(down)
                up, down = bench.store_round(model, manifest)
                tries.setdefault("store publish", []).append(up)
                tries.setdefault("store fetch", []).append(down)

        def seconds(name: str, pick: Any) -> float:
            return float(pick(sorted(run["seconds"] for run in tries[name])))

        print(f"\n{'transfer':<22}{'tries':>6}{'best s':>8}{'MiB/s':>7}{'median s':>10}"
              f"{'MiB/s':>7}{'peak RSS MiB':>14}")  # fmt: skip
        for name, runs in sorted(tries.items(), key=lambda item: item[0].split()[1]):
            best, median = seconds(name, min), seconds(name, statistics.median)
            peak = max(run["peak_mib"] for run in runs)
            print(f"{name:<22}{len(runs):>6}{best:>8.2f}{rate(size, best):>7.0f}{median:>10.2f}"
                  f"{rate(size, median):>7.0f}{peak:>14.0f}")  # fmt: skip
        for direction, ours in (("upload", "store publish"), ("download", "store fetch")):
            fastest = min(concurrencies, key=lambda c: seconds(f"sdk {direction} c={c}", min))
            sdk = f"sdk {direction} c={fastest}"
            # Best against best: on a shared machine the fastest try is the least disturbed.
            ratio = seconds(sdk, min) / seconds(ours, min)
            verdict = "met" if ratio >= 0.9 else "MISSED"
            print(f"{ours}: {ratio:.2f} x the throughput of the SDK's best {direction} "
                  f"(max_concurrency={fastest})  [target >= 0.9: {verdict}]")  # fmt: skip
        for name in ("store publish", "store fetch"):
            peak = max(run["peak_mib"] for run in tries[name])
            verdict = "met" if peak * MiB < 300e6 else "MISSED"
            print(f"{name}: peak RSS {peak:.0f} MiB ({peak * MiB / 1e6:.0f} MB), highest of "
                  f"{len(tries[name])} runs  [target < 300 MB: {verdict}]")  # fmt: skip

        changed, changed_size, sent, manifest_bytes = bench.republish(model, manifest)
        print(f"\nrepublish with {changed} ({changed_size} bytes) changed: sent {sent} bytes "
              f"= {changed_size} of content + {manifest_bytes} of manifest + "
              f"{sent - changed_size - manifest_bytes} of block list")  # fmt: skip

        print("\nsnapshot of a store holding 100 entries (each with an evaluation):")
        for count, (requests, seconds) in bench.snapshot_costs().items():
            print(f"  {count:>3} keys: {requests} requests, {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
