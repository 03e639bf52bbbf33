"""What the command line checks before any work: the ``--report`` path, a ``--cache-dir`` that
must exist, an ``account_url`` still holding the README's placeholder; and ``--version``.

Each case calls ``modelcache.runner.cli.main`` in-process and fails (or answers) before a
model is loaded or a cloud is asked anything, so none needs Azurite or runs a pass.
"""

from __future__ import annotations

import json
import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.cli import main

USER_ERROR = 2


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    """A valid workflow over a folder that passes for a model (never run: every test here
    fails or answers before that)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"not read by these tests")
    return _write(tmp_path, {"input_model": {"type": "HfModel", "model_path": str(model)}})


def _write(folder: Path, document: dict[str, Any]) -> Path:
    document = {"passes": {"half": {"type": "TorchDtypeCast"}}, "cache_dir": "cache", **document}
    path = folder / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _one_line(capsys: pytest.CaptureFixture[str], argv: list[str], status: int) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == status, captured.err
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def _listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# -- --report ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("missing/report.json", "does not exist"),
        ("a-folder", "is a directory"),
    ],
)
def test_a_bad_report_path_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workflow: Path, where: str, words: str
) -> None:
    (tmp_path / "a-folder").mkdir()
    before = _listing(tmp_path)
    report = tmp_path / where
    line = _one_line(capsys, ["run", str(workflow), "--report", str(report)], USER_ERROR)
    assert line.startswith(f"error: --report {report}: ")
    assert words in line
    assert _listing(tmp_path) == before  # no cache, no scratch, no temporary file


def test_a_report_folder_nobody_may_write_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, workflow: Path
) -> None:
    # /proc refuses new files even to root, for whom permission bits mean nothing.
    before = _listing(tmp_path)
    line = _one_line(capsys, ["run", str(workflow), "--report", "/proc/report.json"], USER_ERROR)
    assert line.startswith("error: --report /proc/report.json: ")
    assert "cannot write" in line
    assert _listing(tmp_path) == before
    assert not [name for name in os.listdir("/proc") if name.startswith(".report.json")]


# -- cache --cache-dir ----------------------------------------------------------------------


@pytest.mark.parametrize("action", [["ls"], ["stats"], ["verify"], ["show", "abcdef"]])
def test_a_cache_dir_that_does_not_exist_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, action: list[str]
) -> None:
    missing = tmp_path / "no-such-cache"
    line = _one_line(capsys, ["cache", *action, "--cache-dir", str(missing)], USER_ERROR)
    assert line == f"error: --cache-dir {missing}: no such directory; name an existing cache"
    assert not missing.exists()


def test_a_cache_dir_that_is_a_file_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "cache"
    file.write_text("not a cache", encoding="utf-8")
    line = _one_line(capsys, ["cache", "verify", "--cache-dir", str(file)], USER_ERROR)
    assert line.startswith(f"error: --cache-dir {file}: not a directory")


# -- the README's placeholder account ---------------------------------------------------------


@pytest.mark.parametrize("command", [["run"], ["plan"]])
def test_the_readme_s_placeholder_account_fails_at_once_naming_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    workflow: Path,
    command: list[str],
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    document = json.loads(workflow.read_text(encoding="utf-8"))
    document["cloud_cache_config"] = {
        "account_url": "https://<account>.blob.core.windows.net",
        "container_name": "modelcache",
    }
    workflow.write_text(json.dumps(document), encoding="utf-8")
    started = time.monotonic()
    line = _one_line(capsys, [*command, str(workflow)], USER_ERROR)
    assert time.monotonic() - started < 5  # no credential was tried
    assert "<account>" in line
    assert "placeholder" in line
    assert "storage account" in line


def test_a_placeholder_account_is_refused_by_the_cache_commands_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    config = _write(
        tmp_path,
        {
            "input_model": {"type": "HfModel", "model_path": str(tmp_path)},
            "cloud_cache_config": {
                "account_url": "https://<account>.blob.core.windows.net/?sv=1&sig=SECRET",
                "container_name": "modelcache",
            },
        },
    )
    line = _one_line(capsys, ["cache", "ls", "--config", str(config)], USER_ERROR)
    assert "<account>" in line
    assert "SECRET" not in line  # a SAS in the URL is never quoted


# -- --version --------------------------------------------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"modelcache {version('modelcache-runner')}\n"
