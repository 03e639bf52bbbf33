"""Round trips to the cloud: every HTTP request of a run, by kind, for each kind of run.

Runs the three-pass workflow of ``examples/tiny/workflow.json`` (convert, quantize, optimize
over the tiny offline BERT, the final output evaluated) against one Azurite started for the
purpose, on a fresh container, four times:

1. cold: an empty local cache and an empty container; every pass runs and is uploaded;
2. warm-cloud: a new, empty local cache, the same (now full) container;
3. warm-local: the local cache of run 2, the same container: everything is local;
4. plan: ``modelcache plan`` on the config of run 3 (a warm cache).

Each is ``modelcache.runner.cli.main([...])`` in this process, with the cloud store opened
through ``modelcache.runner.cloud.open_cloud_store`` wrapped to hand the SDK a
``raw_request_hook`` (as ``tests/test_faults.py`` does): the hook sees every request the SDK
sends, retries included, from every thread (transfers, lease renewals). Requests are
classified by the layout object they touch (manifest, blob, lock, run record, evaluation,
or a listing of a prefix) and by what they do (HEAD, GET, ranged GET, PUT, create-only PUT,
staged block, block list commit, lease action, metadata). Setting up the container and the
model is not counted.

It prints, per run, the total, a table of requests per kind, and what the run's report says
it did (passes run, entries downloaded and uploaded), so that a count can be read against
the steps behind it. Exits 2 if a run fails.

Run: ``.venv/bin/python benchmarks/bench_requests.py [--keep]``; ``--help`` says more.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.storage.blob import BlobServiceClient

from modelcache.azure.testing import Azurite
from modelcache.runner import cloud
from modelcache.runner.cli import main as modelcache
from modelcache.runner.tiny_model import build_tiny_bert
from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    LAYOUT_PREFIX,
    LOCKS_PREFIX,
    RUNS_PREFIX,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tiny" / "workflow.json"
#: Layout object of a blob name, by prefix; the first that matches wins.
OBJECTS = (
    (ENTRIES_PREFIX, "manifest"),
    (BLOBS_PREFIX, "blob"),
    (LOCKS_PREFIX, "lock"),
    (RUNS_PREFIX, "run record"),
    (EVALUATIONS_PREFIX, "evaluation"),
)


def object_of(name: str) -> str:
    for prefix, kind in OBJECTS:
        if name.startswith(prefix):
            return kind
    return f"other ({name})"


def operation_of(method: str, query: dict[str, list[str]], headers: Any) -> str:
    """What a request does to a blob, in the words of the Blob service's operations."""
    comp = query.get("comp", [""])[0]
    if comp == "block":
        return "PUT block"
    if comp == "blocklist":
        return "PUT block list" + (" (create-only)" if headers.get("If-None-Match") else "")
    if comp == "lease":
        return f"PUT lease {headers.get('x-ms-lease-action', '?')}"
    if comp == "metadata":
        return f"{method} metadata"
    if comp:
        return f"{method} comp={comp}"
    if method == "GET" and (headers.get("x-ms-range") or headers.get("Range")):
        return "GET range"
    if method == "PUT" and headers.get("If-None-Match") == "*":
        return "PUT (create-only)"
    return method


def kind_of(method: str, url: str, headers: Any, container: str) -> str:
    """``object: operation`` for one request, e.g. ``manifest: PUT (create-only)``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    path = unquote(parts.path)
    # Azurite's URLs are path-style (/<account>/<container>/<blob>); Azure's are not.
    _, found, name = path.partition(f"/{container}")
    name = name.lstrip("/") if found else ""
    if query.get("comp") == ["list"]:
        prefix = query.get("prefix", [""])[0]
        shown = prefix[len(LAYOUT_PREFIX) :] if prefix.startswith(LAYOUT_PREFIX) else prefix
        return f"listing: {shown or '(all)'}"
    if not name:
        return f"container: {method} {parts.query}"
    return f"{object_of(name)}: {operation_of(method, query, headers)}"


class RequestTally:
    """Counts requests by kind. Give it to the SDK as ``client_options``."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.kinds: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def client_options(self) -> dict[str, Any]:
        return {"raw_request_hook": self._on_request}

    def _on_request(self, request: Any) -> None:
        http = request.http_request
        kind = kind_of(http.method, http.url, http.headers, self.container)
        with self._lock:
            self.kinds[kind] += 1


def write_config(folder: Path, model: Path, container: str, cache: str, output: str) -> Path:
    config = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    config["input_model"]["model_path"] = str(model)
    config["cloud_cache_config"] = {"container_name": container}
    config["cache_dir"] = str(folder / cache)
    config["output_dir"] = str(folder / output)
    path = folder / f"{cache}-{output}.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def counted(argv: list[str], container: str) -> tuple[int, Counter[str], float]:
    """Run ``modelcache argv`` in this process; its exit code, requests by kind, seconds."""
    tally = RequestTally(container)
    original = cloud.open_cloud_store
    cloud.open_cloud_store = partial(original, client_options=tally.client_options)
    started = time.perf_counter()
    try:
        # What the command prints (a plan's table) is not what this benchmark shows.
        with contextlib.redirect_stdout(io.StringIO()):
            code = modelcache(argv)
    finally:
        cloud.open_cloud_store = original
    return code, tally.kinds, time.perf_counter() - started


def steps_of(report: Path) -> str:
    if not report.is_file():
        return ""
    steps = json.loads(report.read_text(encoding="utf-8"))["steps"]
    done = Counter(s["kind"] for s in steps if s["outcome"] == "done")
    return ", ".join(f"{kind} {n}" for kind, n in sorted(done.items()))


def print_table(name: str, kinds: Counter[str], seconds: float, steps: str) -> None:
    total = sum(kinds.values())
    print(
        f"\n{name}: {total} requests in {seconds:.1f} s" + (f" (steps: {steps})" if steps else "")
    )
    width = max([len(k) for k in kinds] + [4])
    print(f"  {'kind':<{width}}  requests")
    for kind, n in sorted(kinds.items()):
        print(f"  {kind:<{width}}  {n:>8}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Count the cloud requests of a cold, warm-cloud and warm-local run of the "
        "tiny three-pass workflow, and of a plan, against Azurite, by kind."
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (configs, caches, reports)"
    )
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.pop(cloud.TRANSFER_VARIABLE, None)  # the store's defaults
    folder = Path(tempfile.mkdtemp(prefix="bench-requests-"))
    server = Azurite.start()
    try:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = server.connection_string
        container = f"bench-{uuid.uuid4().hex[:24]}"
        with BlobServiceClient.from_connection_string(server.connection_string) as service:
            service.create_container(container)
        model = build_tiny_bert(folder / "model")
        runs = (
            ("cold", "run", write_config(folder, model, container, "cache-a", "out-a")),
            ("warm-cloud", "run", write_config(folder, model, container, "cache-b", "out-b")),
            ("warm-local", "run", write_config(folder, model, container, "cache-b", "out-b")),
            ("plan (warm)", "plan", write_config(folder, model, container, "cache-b", "out-b")),
        )
        print(f"workflow: {EXAMPLE.name} (tiny BERT), container {container} on Azurite")
        for index, (name, command, config) in enumerate(runs):
            report = folder / f"report-{index}.json"
            extra = ["--quiet", "--report", str(report)] if command == "run" else []
            code, kinds, seconds = counted([command, str(config), *extra], container)
            if code != 0:
                print(f"error: the {name} run exited {code}", file=sys.stderr)
                return 2
            print_table(name, kinds, seconds, steps_of(report))
    finally:
        server.stop()
        if args.keep:
            print(f"\nkept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
