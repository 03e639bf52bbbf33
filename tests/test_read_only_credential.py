"""A credential that may read the cloud cache but not write it: the run still succeeds.

A container SAS with read and list permissions only (``sp=rl``), given as ``account_url``
(``docs/storage.md``), over a container where a full credential published the first pass's
output beforehand. The read-only run downloads that output, runs the second pass, is refused
when it uploads it, says so (on stderr, in the summary and in the report's notes), records
the upload as ``refused``, and exits 0 with the final model delivered. The container is left
exactly as it was.

The real command runs in this process (``e2e.modelcache_here``) over a tiny BERT and two
cheap passes (magnitude pruning, then an fp16 cast), with Azurite as the cloud.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from .e2e import blobs, container_sas_url, modelcache_here, new_container, write_config

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

PRUNE = {"type": "MagnitudePruning", "sparsity": 0.5}
CAST = {"type": "TorchDtypeCast", "dtype": "float16"}


def read_only_url(azurite: Any, container: str) -> str:
    """A URL of ``container`` with a SAS that may read and list, nothing else."""
    url = container_sas_url(azurite, container, write=False)
    assert parse_qs(url.partition("?")[2])["sp"] == ["rl"]
    return url


def run(
    folder: Path,
    model: Path,
    passes: dict[str, dict[str, Any]],
    cloud: dict[str, Any],
    connection_string: str | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``modelcache run`` of a workflow over ``model`` in ``folder``; the result and report.
    The connection string is in the environment only when given."""
    folder.mkdir(parents=True)
    evaluator = {"metrics": ["size"], "evaluate": "all"}
    config = write_config(folder, model, passes, cloud=cloud, evaluator=evaluator)
    report = folder / "report.json"
    result = modelcache_here(
        "run", config, "--report", report, connection_string=connection_string, cwd=folder
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result, json.loads(report.read_text(encoding="utf-8"))


def outcomes(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["kind"], s["pass"], s["outcome"]) for s in report["steps"]]


@pytest.fixture(scope="module")
def published_prune(
    azurite: Any, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A container where a full credential published the pruned model (and its size)."""
    container = new_container(azurite.connection_string, "read-only")
    _, report = run(
        tmp_path_factory.mktemp("publisher") / "run",
        tiny_model,
        {"prune": PRUNE},
        {"container_name": container},
        connection_string=azurite.connection_string,
    )
    assert outcomes(report) == [
        ("run", "prune", "done"),
        ("upload", "prune", "done"),
        ("evaluate", "prune", "done"),
    ]
    return container


def test_a_read_only_credential_downloads_runs_and_notes_the_refused_upload(
    azurite: Any, tiny_model: Path, published_prune: str, tmp_path: Path
) -> None:
    url = read_only_url(azurite, published_prune)
    before = blobs(azurite.connection_string, published_prune)

    result, report = run(
        tmp_path / "reader", tiny_model, {"prune": PRUNE, "cast": CAST}, {"account_url": url}
    )

    steps = outcomes(report)
    assert ("download", "prune", "done") in steps
    assert ("run", "prune", "done") not in steps
    assert ("run", "cast", "done") in steps
    assert ("upload", "cast", "refused") in steps
    assert not [s for s in steps if s[0] == "upload" and s[2] == "done"]
    refused = next(s for s in report["steps"] if s["outcome"] == "refused")
    assert refused["bytes"] == 0
    assert refused["detail"]
    assert report["totals"]["uploads"] == 0
    assert report["totals"]["bytes_uploaded"] == 0
    assert report["totals"]["downloads"] == 1

    notes = [note for note in report["notes"] if "uploads refused" in note]
    assert len(notes) == 1, report["notes"]
    assert "continuing without" in notes[0]
    stderr = result.stderr.splitlines()
    assert [line for line in stderr if line.startswith("note: uploads refused")], result.stderr
    assert "uploads refused" in " ".join(result.stdout.split())  # the summary's notes

    assert report["final_key"] == refused["key"]
    out = tmp_path / "reader" / "out"
    assert (out / "config.json").is_file()
    assert any(out.glob("*.safetensors"))
    assert set(report["metrics"]) == {"prune", "cast"}
    # The refused credential's signature is named nowhere.
    signature = parse_qs(url.partition("?")[2])["sig"][0]
    for text in (result.stdout, result.stderr, json.dumps(report)):
        assert signature not in text
        assert signature[:16] not in text
    assert blobs(azurite.connection_string, published_prune) == before


def test_a_read_only_credential_with_uploads_off_is_never_refused(
    azurite: Any, tiny_model: Path, published_prune: str, tmp_path: Path
) -> None:
    """``upload_to_cloud: false``, the documented way to use a read-only SAS: nothing is
    attempted, so nothing is refused."""
    url = read_only_url(azurite, published_prune)
    before = blobs(azurite.connection_string, published_prune)

    result, report = run(
        tmp_path / "reader",
        tiny_model,
        {"prune": PRUNE, "cast": CAST},
        {"account_url": url, "upload_to_cloud": False},
    )

    steps = outcomes(report)
    assert ("download", "prune", "done") in steps
    assert ("run", "cast", "done") in steps
    assert not [s for s in steps if s[2] == "refused"]
    assert not [s for s in steps if s[0] == "upload" and s[2] == "done"]
    assert not [note for note in report["notes"] if "refused" in note]
    assert "refused" not in result.stderr
    assert blobs(azurite.connection_string, published_prune) == before
