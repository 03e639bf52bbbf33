"""End to end: the ``modelcache`` command over a tiny BERT, with Azurite as the cloud.

Every scenario runs the real command, with the Azurite connection string in
``AZURE_STORAGE_CONNECTION_STRING`` and a config naming only ``container_name``. Each test
has a container, a ``cache_dir`` and an ``output_dir`` of its own. Most run it in this process
(``e2e.modelcache_here``: starting Python and importing torch costs seconds a run); ``run``
and ``plan`` also run in a subprocess, as a shell runs them: the download of the final model,
``plan --format json`` and the one-line failure of ``--require-cloud``.

Converting to ONNX is the slow step, so it happens once: the cold run of the first scenario
is the session's published ONNX workflow (``publish`` in ``conftest.py``), and later scenarios
start from copies of what it left (its container's blobs copied into a fresh container, its
local cache copied into a fresh ``cache_dir``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .e2e import (
    ENTRIES,
    ONNX_PASSES,
    Publish,
    Published,
    blobs,
    changed,
    files,
    model_files,
    modelcache,
    modelcache_here,
    new_container,
    run_ok,
    steps,
    unreachable_account,
    write_config,
)

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

PASS_NAMES = tuple(ONNX_PASSES)
#: The store gives up at once on an unreachable account, where its defaults retry for seconds.
GIVE_UP_AT_ONCE = "retries=0,retry_backoff=0"


@pytest.fixture(scope="module")
def cold(publish: Publish) -> Published:
    """The first run of the 3-pass chain into an empty container and an empty cache."""
    return publish(ONNX_PASSES)


@pytest.fixture
def warm(cold: Published) -> str:
    """A fresh container holding a copy of everything the cold run uploaded."""
    return cold.copy_container()


# ---------------------------------------------------------------------------------------------
# Scenarios


def test_cold_run_uploads_every_output(azurite: Any, cold: Published) -> None:
    report = cold.report
    assert steps(report, "run") == list(PASS_NAMES)
    assert steps(report, "upload") == list(PASS_NAMES)
    assert report["totals"]["uploads"] == 3
    assert report["totals"]["downloads"] == 0
    assert report["totals"]["bytes_uploaded"] > 0
    assert report["totals"]["hits"] == {"local": 0, "cloud": 0}
    assert report["totals"]["misses"] == {"local": 3, "cloud": 3}
    manifests = blobs(azurite.connection_string, cold.container, ENTRIES)
    keys = {s["key"] for s in report["steps"] if s["kind"] == "upload"}
    assert set(manifests) == {f"{ENTRIES}{key}.json" for key in keys}
    assert report["final_key"] == report["steps"][-1]["key"]
    assert (cold.output / "model.onnx").is_file()


def test_second_run_with_empty_local_cache_downloads_only_the_final_model(
    azurite: Any, cold: Published, tiny_model: Path, warm: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tiny_model, ONNX_PASSES, container=warm)
    report = run_ok(config, azurite.connection_string, here=False)  # in a subprocess

    assert steps(report, "run") == []
    assert steps(report, "upload") == []
    assert steps(report, "download") == ["optimize"]
    final_upload = next(
        s for s in cold.report["steps"] if s["kind"] == "upload" and s["pass"] == "optimize"
    )
    final_size = sum(len(data) for data in model_files(tmp_path / "out").values())
    assert report["totals"]["bytes_downloaded"] == final_size
    # The cold run sent only the files no earlier entry had stored (the tokenizer's are
    # shared with the conversion's output): what crossed the wire, not the model's size.
    assert 0 < final_upload["bytes"] < final_size
    assert report["final_key"] == cold.report["final_key"]
    assert files(tmp_path / "out") == files(cold.output)


def test_changing_the_middle_pass_reruns_it_and_later_passes_only(
    azurite: Any, cold: Published, tiny_model: Path, warm: str, tmp_path: Path
) -> None:
    passes = changed(ONNX_PASSES, quantize={"per_channel": True})
    config = write_config(tmp_path, tiny_model, passes, container=warm)
    report = run_ok(config, azurite.connection_string)

    assert steps(report, "run") == ["quantize", "optimize"]
    assert steps(report, "download") == ["convert"]
    convert_key = next(s["key"] for s in cold.report["steps"] if s["pass"] == "convert")
    assert [s["key"] for s in report["steps"] if s["kind"] == "download"] == [convert_key]
    assert steps(report, "upload") == ["quantize", "optimize"]
    assert report["final_key"] != cold.report["final_key"]
    assert len(blobs(azurite.connection_string, warm, ENTRIES)) == 5


def test_upload_to_cloud_false_uploads_nothing(
    azurite: Any, cold: Published, tiny_model: Path, tmp_path: Path
) -> None:
    container = new_container(azurite.connection_string)
    # The cold run's local cache spares the conversion; quantize and optimize still run.
    cold.copy_cache(tmp_path / "cache")
    passes = changed(ONNX_PASSES, quantize={"per_channel": True})
    config = write_config(
        tmp_path, tiny_model, passes, container=container, cloud={"upload_to_cloud": False}
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
        write_config(tmp_path / "a", tiny_model, ONNX_PASSES, container=warm, evaluator=evaluator),
        azurite.connection_string,
    )
    assert set(first["metrics"]) == set(PASS_NAMES)
    assert steps(first, "evaluate") == list(PASS_NAMES)

    second = run_ok(
        write_config(tmp_path / "b", tiny_model, ONNX_PASSES, container=warm, evaluator=evaluator),
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

    config = write_config(tmp_path, tiny_model, ONNX_PASSES, container=warm)
    before = blobs(azurite.connection_string, warm)
    rendered: dict[str, str] = {}
    for format_ in ("json", "mermaid", "dot"):
        command = modelcache if format_ == "json" else modelcache_here  # one in a subprocess
        result = command(
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
    cold: Published, tiny_model: Path, tmp_path: Path
) -> None:
    cold.copy_cache(tmp_path / "cache")
    unreachable = unreachable_account()
    config = write_config(tmp_path, tiny_model, ONNX_PASSES, container="unreachable")
    started = time.monotonic()
    report = run_ok(config, unreachable)  # with the store's default retries
    seconds = time.monotonic() - started

    assert steps(report, "run") == []
    assert report["final_key"] == cold.report["final_key"]
    assert any("unreachable" in note and "locally" in note for note in report["notes"])
    assert files(tmp_path / "out") == files(cold.output)
    assert seconds < 120

    required = modelcache(
        "run", config, "--quiet", "--require-cloud",
        connection_string=unreachable, transfer=GIVE_UP_AT_ONCE,
    )  # fmt: skip
    assert required.returncode != 0
    assert "Traceback" not in required.stderr
    lines = required.stderr.strip().splitlines()
    assert len(lines) == 1, required.stderr
    assert "--require-cloud" in lines[0]
