"""Against Olive 0.13: one Olive config through Olive's shared cache and through modelcache.

Runs one Olive config (``OnnxConversion`` with the dynamo exporter,
``OrtTransformersOptimization`` for BERT, ``OnnxDynamicQuantization``, over the tiny offline
BERT, on a ``LocalSystem`` with a CPU accelerator) through ``olive run --config`` and through
``modelcache run``, against one Azurite started for the purpose, each tool on a fresh
container of its own, three times each:

1. cold: an empty local cache and an empty container; every pass runs and is uploaded;
2. warm-cloud: a new, empty local cache (another machine), the container run 1 filled;
3. warm-local: run 2 again: the same config file, local cache and container.

The shared cache is named as Olive 0.13 reads it: ``cache_config: {cache_dir,
account_name, container_name, enable_shared_cache, update_shared_cache}``. (Its other form,
``cache_dir: [<folder>, "https://<account>.blob.core.windows.net/<container>"]``, is
ignored by Olive 0.13: ``CacheConfig`` takes the account and container from that URL in
field validators that do not run on defaults, so the shared cache stays off and Olive sends
no request at all.)

Both tools do the same work. modelcache has built-ins named ``OnnxConversion`` and
``OnnxDynamicQuantization``; its copy of the config spells those two ``olive:OnnxConversion``
and ``olive:OnnxDynamicQuantization`` (nothing else differs but the container's name), so
all three passes run Olive's own implementation on both sides and the comparison is of the
caches, not of two exporters. The final models are checked to be the same bytes.

Each run is its own process (``python bench_olive.py --child TOOL ...``, whose module imports
only the standard library), so its wall time includes starting Python and importing the tool,
as a user sees it. In that process the harness points the tool at Azurite and counts:

* Olive builds its shared-cache client in
  ``olive.common.container_client_factory.AzureContainerClientFactory.__init__``, from the
  account name (``https://<account>.blob.core.windows.net``) and an Azure CLI or browser
  credential. The harness replaces that ``__init__`` with one that makes the same
  ``ContainerClient`` from Azurite's connection string. Olive's telemetry heartbeat is
  stubbed and ``OLIVE_DISABLE_TELEMETRY=1`` set, or Olive waits about 10 s at exit.
* modelcache reads the account from the same ``cache_config``; the harness wraps
  ``modelcache.runner.cloud.open_cloud_store`` to drop that account's URL, so that the store
  is opened from ``AZURE_STORAGE_CONNECTION_STRING`` (Azurite's), as ``bench_requests.py``
  does. Its digest cache (``MODELCACHE_DIGEST_CACHE``, which remembers Olive's answers so
  that a warm run need not import Olive) belongs to the machine: a new one for run 1, another
  for run 2, and run 2's for run 3.

Both clients get the SDK's ``raw_request_hook`` and ``raw_response_hook``, which see every
request sent, retries included, from every thread. Bytes up are the sizes of the requests'
bodies, bytes down of the responses' (HEAD answers carry none): model files, listings,
manifests, records, everything; headers are not counted, nor are building the model and
creating the containers.

Prints, per run, Olive's and modelcache's requests, bytes up and down, wall and CPU seconds,
and the ratio modelcache/Olive; then each run's requests by kind (blob names with their
hexadecimal ids shown as ``<id>``). Exits 2 if a run fails, 1 if the two tools' final models
differ.

Run: ``.venv/bin/python benchmarks/bench_olive.py [--keep]``; needs olive-ai and Azurite, no
network.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# Only the standard library at the top: this module is also each run's process (``--child``),
# and what it imports there would be counted in the tool's time.

#: The account the config names; each child sends its requests to Azurite instead.
ACCOUNT = "modelcachebench"
TOOLS = ("olive", "modelcache")
TOOL_TITLES = {"olive": "Olive 0.13", "modelcache": "modelcache"}
#: (run, machine): warm-local runs on the machine warm-cloud filled.
RUNS = (("cold", "machine-a"), ("warm-cloud", "machine-b"), ("warm-local", "machine-b"))
#: The two pass types modelcache has built-ins of, spelt as Olive's in modelcache's copy.
OLIVE_SPELLING = {
    "OnnxConversion": "olive:OnnxConversion",
    "OnnxDynamicQuantization": "olive:OnnxDynamicQuantization",
}
TALLY_VARIABLE = "BENCH_OLIVE_TALLY"
CONNECTION_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
HEX_ID = re.compile(r"[0-9a-f]{8,}")


def olive_config(model: Path, local_cache: Path, container: str, output: Path) -> dict[str, Any]:
    """The workflow, as an Olive 0.13 user writes it."""
    return {
        "input_model": {"type": "HfModel", "model_path": str(model), "task": "feature-extraction"},
        "systems": {
            "local_system": {
                "type": "LocalSystem",
                "accelerators": [
                    {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
                ],
            }
        },
        "passes": {
            # Olive's default TorchScript exporter fails on transformers 5 models.
            "conversion": {"type": "OnnxConversion", "use_dynamo_exporter": True},
            "transformers_optimization": {
                "type": "OrtTransformersOptimization",
                "model_type": "bert",
            },
            "quantization": {"type": "OnnxDynamicQuantization"},
        },
        "host": "local_system",
        "target": "local_system",
        "cache_config": {
            "cache_dir": str(local_cache),
            "account_name": ACCOUNT,
            "container_name": container,
            "enable_shared_cache": True,
            "update_shared_cache": True,
        },
        "output_dir": str(output),
        "log_severity_level": 3,
    }


def spelt_for_modelcache(config: dict[str, Any]) -> dict[str, Any]:
    """The same config with the two built-in names spelt as Olive's implementations."""
    passes = {
        name: {**spec, "type": OLIVE_SPELLING.get(spec["type"], spec["type"])}
        for name, spec in config["passes"].items()
    }
    return {**config, "passes": passes}


# --- in each run's process ------------------------------------------------------------------


def operation_of(method: str, query: dict[str, list[str]], headers: Any) -> str:
    comp = query.get("comp", [""])[0]
    if comp == "block":
        return "PUT block"
    if comp == "blocklist":
        return "PUT block list"
    if comp == "lease":
        return f"PUT lease {headers.get('x-ms-lease-action', '?')}"
    if comp:
        return f"{method} {comp}"
    if method == "GET" and (headers.get("x-ms-range") or headers.get("Range")):
        return "GET range"
    if method == "PUT" and headers.get("If-None-Match") == "*":
        return "PUT create-only"
    return method


def kind_of(method: str, url: str, headers: Any, container: str) -> str:
    """``operation blob``, such as ``GET range <id>/model.json``, or ``list prefix*``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    # Azurite's URLs are path-style: /<account>/<container>/<blob>.
    _, found, name = unquote(parts.path).partition(f"/{container}")
    name = name.lstrip("/") if found else ""
    if query.get("comp") == ["list"]:
        return f"list {HEX_ID.sub('<id>', query.get('prefix', [''])[0])}*"
    if not name:
        return f"{method} container ?{parts.query}"
    return f"{operation_of(method, query, headers)} {HEX_ID.sub('<id>', name)}"


class Tally:
    """Requests by kind and bytes each way; the SDK's hooks as ``client_options``."""

    def __init__(self, container: str) -> None:
        self.container = container
        self.kinds: Counter[str] = Counter()
        self.bytes_up = 0
        self.bytes_down = 0
        self._lock = threading.Lock()

    @property
    def client_options(self) -> dict[str, Any]:
        return {"raw_request_hook": self._on_request, "raw_response_hook": self._on_response}

    def _on_request(self, request: Any) -> None:
        http = request.http_request
        kind = kind_of(http.method, http.url, http.headers, self.container)
        length = int(http.headers.get("Content-Length", 0) or 0)
        with self._lock:
            self.kinds[kind] += 1
            self.bytes_up += length

    def _on_response(self, response: Any) -> None:
        if response.http_request.method == "HEAD":
            return
        http = response.http_response
        length = http.headers.get("Content-Length")
        # Listings come chunked, without a length, but already read: their bodies count too.
        # (Downloads, which are streamed, always carry one.)
        size = int(length) if length is not None else len(http.body() or b"")
        with self._lock:
            self.bytes_down += size

    def save(self, path: Path) -> None:
        with self._lock:
            record = {"kinds": dict(self.kinds), "up": self.bytes_up, "down": self.bytes_down}
        path.write_text(json.dumps(record), encoding="utf-8")


def run_olive(config: Path, tally: Tally) -> int:
    """``olive run --config CONFIG``, its shared cache on Azurite."""
    os.environ["OLIVE_DISABLE_TELEMETRY"] = "1"
    from olive.telemetry.telemetry import Telemetry

    # Sent (and waited for at exit) before Olive reads OLIVE_DISABLE_TELEMETRY.
    Telemetry._log_heartbeat = lambda *args, **kwargs: None

    from azure.storage.blob import ContainerClient
    from olive.common import container_client_factory

    def on_azurite(self: Any, account_name: str, container_name: str) -> None:
        self.client = ContainerClient.from_connection_string(
            os.environ[CONNECTION_VARIABLE], container_name, **tally.client_options
        )

    container_client_factory.AzureContainerClientFactory.__init__ = on_azurite
    from olive.cli.launcher import main

    main(["run", "--config", str(config)], called_as_console_script=False)
    return 0


def run_modelcache(config: Path, tally: Tally) -> int:
    """``modelcache run CONFIG --quiet``, its cloud store opened from Azurite's connection
    string."""
    import attrs

    from modelcache.runner import cloud
    from modelcache.runner.cli import main

    original = cloud.open_cloud_store

    def on_azurite(settings: Any, **kwargs: Any) -> Any:
        kwargs["client_options"] = tally.client_options
        return original(attrs.evolve(settings, account_url=None), **kwargs)

    cloud.open_cloud_store = on_azurite
    return main(["run", str(config), "--quiet"])


def child(tool: str, config: Path) -> int:
    document = json.loads(config.read_text(encoding="utf-8"))
    tally = Tally(document["cache_config"]["container_name"])
    # Registered first, so it runs last: requests made while the tool exits are counted.
    atexit.register(tally.save, Path(os.environ[TALLY_VARIABLE]))
    return {"olive": run_olive, "modelcache": run_modelcache}[tool](config, tally)


# --- the harness ----------------------------------------------------------------------------


class Measured:
    """One run of one tool: what its process cost, what it sent, what it delivered."""

    def __init__(self, wall: float, cpu: float, tally: dict[str, Any], model: str) -> None:
        self.wall = wall
        self.cpu = cpu
        self.kinds: dict[str, int] = tally["kinds"]
        self.requests = sum(self.kinds.values())
        self.bytes_up: int = tally["up"]
        self.bytes_down: int = tally["down"]
        self.model = model


def final_model(output: Path) -> str:
    """SHA-256 of the ONNX files a run delivered to ``output``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(output.rglob("*.onnx")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def measure(tool: str, config: Path, tally: Path, env: dict[str, str]) -> Measured:
    """Run one tool on ``config`` in its own process, from the config's folder; exit 2 if
    it fails."""
    command = [sys.executable, __file__, "--child", tool, str(config)]
    tally.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=config.parent,
        env={**env, TALLY_VARIABLE: str(tally)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    # Azurite is a child too, but is reaped only when stopped: this is the run's CPU alone.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    output = Path(json.loads(config.read_text(encoding="utf-8"))["output_dir"])
    # Olive logs a failed pass and carries on; a run that delivered no model failed.
    if done.returncode != 0 or not tally.is_file() or not any(output.rglob("*.onnx")):
        print(f"error: {tool} exited {done.returncode}: {' '.join(command)}", file=sys.stderr)
        print(done.stdout[-4000:] + done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(2)
    return Measured(wall, cpu, json.loads(tally.read_text(encoding="utf-8")), final_model(output))


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "-"


#: The table's columns: a negative width aligns left.
WIDTHS = (-11, -11, 14, 14, 18)


def table_line(cells: tuple[str, ...]) -> str:
    return "".join(
        f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
        for cell, width in zip(cells, WIDTHS, strict=True)
    )


def print_table(results: dict[tuple[str, str], Measured]) -> None:
    rows = (
        ("requests", lambda m: m.requests, "{:,}"),
        ("bytes up", lambda m: m.bytes_up, "{:,}"),
        ("bytes down", lambda m: m.bytes_down, "{:,}"),
        ("wall s", lambda m: m.wall, "{:.2f}"),
        ("cpu s", lambda m: m.cpu, "{:.2f}"),
    )
    print("\n" + table_line(("run", "", "Olive 0.13", "modelcache", "modelcache/Olive")))
    for run, _ in RUNS:
        olive, ours = results[(run, "olive")], results[(run, "modelcache")]
        for title, value, shape in rows:
            theirs_, ours_ = value(olive), value(ours)
            cells = (run, title, shape.format(theirs_), shape.format(ours_))
            print(table_line((*cells, ratio(ours_, theirs_))))


def print_kinds(results: dict[tuple[str, str], Measured], folder: Path) -> None:
    print(
        "\nrequests by kind (hexadecimal ids in blob names shown as <id>, the benchmark's "
        "work folder as <work>)"
    )
    for run, _ in RUNS:
        for tool in TOOLS:
            measured = results[(run, tool)]
            print(f"  {run}, {TOOL_TITLES[tool]}: {measured.requests}")
            for kind, count in sorted(measured.kinds.items()):
                print(f"    {count:>4}  {kind.replace(str(folder), '<work>')}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Run one Olive config through Olive 0.13 and through modelcache on the "
        "same Azurite, cold, warm-cloud and warm-local, and compare requests, bytes and time."
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], Path(args.child[1]))

    # Imported here, not at the top, to keep them out of the runs' processes.
    from azure.storage.blob import BlobServiceClient

    from modelcache.azure.testing import Azurite
    from modelcache.runner.tiny_model import build_tiny_bert

    folder = Path(tempfile.mkdtemp(prefix="bench-olive-"))
    server = Azurite.start()
    try:
        env = {
            **os.environ,
            CONNECTION_VARIABLE: server.connection_string,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "OLIVE_DISABLE_TELEMETRY": "1",
        }
        env.pop("MODELCACHE_AZURE_TRANSFER", None)  # the store's defaults
        model = build_tiny_bert(folder / "model")
        containers = {tool: f"bench-{tool}-{uuid.uuid4().hex[:12]}" for tool in TOOLS}
        with BlobServiceClient.from_connection_string(server.connection_string) as service:
            for container in containers.values():
                service.create_container(container)
        print(
            "workflow: OnnxConversion (dynamo exporter), OrtTransformersOptimization (bert), "
            "OnnxDynamicQuantization over the tiny BERT, shared cache in Olive's cache_config, "
            "on Azurite.\nmodelcache's copy spells OnnxConversion and OnnxDynamicQuantization "
            "as olive:OnnxConversion and olive:OnnxDynamicQuantization: both tools run Olive's "
            "implementation of every pass.",
            flush=True,
        )
        results: dict[tuple[str, str], Measured] = {}
        # Run kind by run kind, the tools alternating, so that other load on the machine
        # falls on both alike.
        for run, machine in RUNS:
            for tool in TOOLS:
                # One project folder per machine, holding the config, the local cache and
                # the output: warm-local runs the very config warm-cloud ran.
                home = folder / tool / machine
                home.mkdir(parents=True, exist_ok=True)
                config = olive_config(model, home / "cache", containers[tool], home / "out")
                if tool == "modelcache":
                    config = spelt_for_modelcache(config)
                path = home / "config.json"
                path.write_text(json.dumps(config, indent=2), encoding="utf-8")
                print(f"running {run}, {TOOL_TITLES[tool]} ...", flush=True)
                tool_env = {**env, "MODELCACHE_DIGEST_CACHE": str(home / "digests")}
                tally = folder / tool / f"tally-{run}.json"
                results[(run, tool)] = measure(tool, path, tally, tool_env)

        print_table(results)
        print_kinds(results, folder)
        same = all(
            results[(run, "olive")].model == results[(run, "modelcache")].model for run, _ in RUNS
        )
        print(
            f"\n[{'ok' if same else 'FAIL'}] the two tools' final models are "
            f"{'the same bytes' if same else 'different'} in every run"
        )
        return 0 if same else 1
    finally:
        server.stop()
        if args.keep:
            print(f"\nkept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
