"""End to end: the ``modelcache`` command over a tiny BERT, with Azurite as the cloud.

Every scenario runs the real command in a subprocess, with the Azurite connection string in
``AZURE_STORAGE_CONNECTION_STRING`` and a config naming only ``container_name``. Each test
has a container, a ``cache_dir`` and an ``output_dir`` of its own.

Converting to ONNX is the slow step, so it happens once: the cold run of the first scenario
is a module fixture, and later scenarios start from copies of what it left (its container's
blobs copied into a fresh container, its local cache copied into a fresh ``cache_dir``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

PASS_NAMES = ("convert", "quantize", "optimize")
MANIFESTS = "modelcache-v1/entries/"
OUTPUT_MARKER = ".modelcache-output.json"


# ---------------------------------------------------------------------------------------------
# Helpers


def _passes(**changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    passes: dict[str, dict[str, Any]] = {
        "convert": {"type": "OnnxConversion"},
        "quantize": {"type": "OnnxDynamicQuantization"},
        "optimize": {"type": "OrtGraphOptimization"},
    }
    for name, parameters in changes.items():
        passes[name] = {**passes[name], **parameters}
    return passes


def write_config(
    folder: Path,
    model: Path,
    container: str,
    *,
    passes: dict[str, dict[str, Any]] | None = None,
    cache: str = "cache",
    output: str = "out",
    **extra: Any,
) -> Path:
    """A workflow config in ``folder`` whose cloud cache is ``container`` (no account_url)."""
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": passes or _passes(),
        "cloud_cache_config": {"container_name": container},
        "cache_dir": cache,
        "output_dir": output,
    }
    for name, value in extra.items():
        if name == "cloud":
            document["cloud_cache_config"].update(value)
        else:
            document[name] = value
    path = folder / f"workflow-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def modelcache(
    *args: str | Path, connection_string: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m modelcache.runner.cli ARGS`` with the connection string in the environment."""
    env = {
        **os.environ,
        "AZURE_STORAGE_CONNECTION_STRING": connection_string,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("MODELCACHE_PROGRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "modelcache.runner.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def run_ok(config: Path, connection_string: str, *switches: str) -> dict[str, Any]:
    """``modelcache run CONFIG --report ...``; the parsed report. Fails on a non-zero exit."""
    report = config.with_suffix(".report.json")
    result = modelcache(
        "run", config, "--quiet", "--report", report, *switches,
        connection_string=connection_string,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(report.read_text(encoding="utf-8"))


def steps(report: dict[str, Any], kind: str) -> list[str]:
    """The passes of the report's steps of ``kind``, in order."""
    return [s["pass"] for s in report["steps"] if s["kind"] == kind and s["outcome"] == "done"]


def new_container(connection_string: str) -> str:
    from azure.storage.blob import BlobServiceClient

    name = f"e2e-{uuid.uuid4().hex[:24]}"
    with BlobServiceClient.from_connection_string(connection_string) as service:
        service.create_container(name)
    return name


def blobs(connection_string: str, container: str, prefix: str = "") -> dict[str, str]:
    """Blob name -> etag, for every blob under ``prefix``."""
    from azure.storage.blob import ContainerClient

    with ContainerClient.from_connection_string(connection_string, container) as client:
        return {b.name: b.etag for b in client.list_blobs(name_starts_with=prefix or None)}


def copy_container(connection_string: str, source: str, target: str) -> None:
    """Every blob of ``source``, with its metadata, into ``target``."""
    from azure.storage.blob import ContainerClient

    with (
        ContainerClient.from_connection_string(connection_string, source) as src,
        ContainerClient.from_connection_string(connection_string, target) as dst,
    ):
        for blob in src.list_blobs(include=["metadata"]):
            data = src.download_blob(blob.name).readall()
            dst.upload_blob(
                blob.name, data, metadata=blob.metadata,
                content_settings=blob.content_settings,
            )  # fmt: skip


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT, built once by the example's script."""
    folder = tmp_path_factory.mktemp("tiny") / "model"
    script = Path(__file__).parents[1] / "examples" / "tiny" / "make_tiny_model.py"
    subprocess.run([sys.executable, str(script), str(folder)], check=True, capture_output=True)
    return folder


class ColdRun:
    """The first run of the 3-pass chain into an empty container and an empty cache."""

    def __init__(self, folder: Path, container: str, report: dict[str, Any]) -> None:
        self.folder = folder
        self.container = container
        self.report = report
        self.cache = folder / "cache"
        self.output = folder / "out"


@pytest.fixture(scope="module")
def cold(azurite: Any, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> ColdRun:
    folder = tmp_path_factory.mktemp("cold")
    container = new_container(azurite.connection_string)
    config = write_config(folder, tiny_model, container)
    return ColdRun(folder, container, run_ok(config, azurite.connection_string))


@pytest.fixture
def warm(azurite: Any, cold: ColdRun) -> str:
    """A fresh container holding a copy of everything the cold run uploaded."""
    container = new_container(azurite.connection_string)
    copy_container(azurite.connection_string, cold.container, container)
    return container


# ---------------------------------------------------------------------------------------------
# Scenarios


def test_cold_run_uploads_every_output(azurite: Any, cold: ColdRun) -> None:
    report = cold.report
    assert steps(report, "run") == list(PASS_NAMES)
    assert steps(report, "upload") == list(PASS_NAMES)
    assert report["totals"]["uploads"] == 3
    assert report["totals"]["downloads"] == 0
    assert report["totals"]["bytes_uploaded"] > 0
    assert report["totals"]["hits"] == {"local": 0, "cloud": 0}
    assert report["totals"]["misses"] == {"local": 3, "cloud": 3}
    manifests = blobs(azurite.connection_string, cold.container, MANIFESTS)
    keys = {s["key"] for s in report["steps"] if s["kind"] == "upload"}
    assert set(manifests) == {f"{MANIFESTS}{key}.json" for key in keys}
    assert report["final_key"] == report["steps"][-1]["key"]
    assert (cold.output / "model.onnx").is_file()


def test_second_run_with_empty_local_cache_downloads_only_the_final_model(
    azurite: Any, cold: ColdRun, tiny_model: Path, warm: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tiny_model, warm)
    report = run_ok(config, azurite.connection_string)

    assert steps(report, "run") == []
    assert steps(report, "upload") == []
    assert steps(report, "download") == ["optimize"]
    final_upload = next(
        s for s in cold.report["steps"] if s["kind"] == "upload" and s["pass"] == "optimize"
    )
    final_size = sum(
        len(data) for name, data in files(tmp_path / "out").items() if name != OUTPUT_MARKER
    )
    assert report["totals"]["bytes_downloaded"] == final_upload["bytes"] == final_size
    assert report["final_key"] == cold.report["final_key"]
    assert files(tmp_path / "out") == files(cold.output)


def test_changing_the_middle_pass_reruns_it_and_later_passes_only(
    azurite: Any, cold: ColdRun, tiny_model: Path, warm: str, tmp_path: Path
) -> None:
    passes = _passes(quantize={"per_channel": False})
    config = write_config(tmp_path, tiny_model, warm, passes=passes)
    report = run_ok(config, azurite.connection_string)

    assert steps(report, "run") == ["quantize", "optimize"]
    assert steps(report, "download") == ["convert"]
    convert_key = next(s["key"] for s in cold.report["steps"] if s["pass"] == "convert")
    assert [s["key"] for s in report["steps"] if s["kind"] == "download"] == [convert_key]
    assert steps(report, "upload") == ["quantize", "optimize"]
    assert report["final_key"] != cold.report["final_key"]
    assert len(blobs(azurite.connection_string, warm, MANIFESTS)) == 5


def test_upload_to_cloud_false_uploads_nothing(
    azurite: Any, cold: ColdRun, tiny_model: Path, tmp_path: Path
) -> None:
    container = new_container(azurite.connection_string)
    # The cold run's local cache spares the conversion; quantize and optimize still run.
    shutil.copytree(cold.cache, tmp_path / "cache")
    passes = _passes(quantize={"per_channel": False})
    config = write_config(
        tmp_path, tiny_model, container, passes=passes, cloud={"upload_to_cloud": False}
    )
    report = run_ok(config, azurite.connection_string)

    assert steps(report, "run") == ["quantize", "optimize"]
    assert steps(report, "upload") == []
    assert report["totals"]["uploads"] == 0
    assert report["totals"]["bytes_uploaded"] == 0
    assert blobs(azurite.connection_string, container) == {}


def test_cached_evaluations_spare_downloading_intermediates(
    azurite: Any, tiny_model: Path, warm: str, tmp_path: Path
) -> None:
    evaluator = {"metrics": ["size", "fidelity"], "evaluate": "all"}
    first = run_ok(
        write_config(tmp_path / "a", tiny_model, warm, evaluator=evaluator),
        azurite.connection_string,
    )
    assert set(first["metrics"]) == set(PASS_NAMES)
    assert steps(first, "evaluate") == list(PASS_NAMES)

    second = run_ok(
        write_config(tmp_path / "b", tiny_model, warm, evaluator=evaluator),
        azurite.connection_string,
    )
    assert steps(second, "run") == []
    assert steps(second, "download") == ["optimize"]
    assert second["metrics"] == first["metrics"]
    assert all(s["detail"] == "cached result" for s in second["steps"] if s["kind"] == "evaluate")


def test_plan_writes_nothing_and_renders_every_format(
    azurite: Any, tiny_model: Path, warm: str, tmp_path: Path
) -> None:
    from modelcache.planner import Download, Plan, Skip, loads

    config = write_config(tmp_path, tiny_model, warm)
    before = blobs(azurite.connection_string, warm)
    rendered: dict[str, str] = {}
    for format_ in ("json", "mermaid", "dot"):
        result = modelcache(
            "plan", config, "--format", format_, connection_string=azurite.connection_string
        )
        assert result.returncode == 0, result.stderr
        rendered[format_] = result.stdout

    plan = loads(rendered["json"], Plan)
    assert [type(s) for s in plan.steps] == [Skip, Skip, Download]
    for format_ in ("mermaid", "dot"):
        for name in PASS_NAMES:
            assert name in rendered[format_], format_
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "out").exists()
    assert blobs(azurite.connection_string, warm) == before


def test_unreachable_cloud_finishes_locally_with_a_note(
    cold: ColdRun, tiny_model: Path, tmp_path: Path
) -> None:
    shutil.copytree(cold.cache, tmp_path / "cache")
    unreachable = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1;"
    )
    config = write_config(tmp_path, tiny_model, "unreachable")
    started = time.monotonic()
    report = run_ok(config, unreachable)
    seconds = time.monotonic() - started

    assert steps(report, "run") == []
    assert report["final_key"] == cold.report["final_key"]
    assert any("unreachable" in note and "locally" in note for note in report["notes"])
    assert files(tmp_path / "out") == files(cold.output)
    assert seconds < 120

    required = modelcache(
        "run", config, "--quiet", "--require-cloud", connection_string=unreachable
    )
    assert required.returncode != 0
    assert "Traceback" not in required.stderr
    lines = required.stderr.strip().splitlines()
    assert len(lines) == 1, required.stderr
    assert "--require-cloud" in lines[0]
