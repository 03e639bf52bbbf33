"""The ``modelcache`` command's answers to mistakes a user can make: exit code 2 and one line.

Most cases call ``modelcache.runner.cli.main`` in-process (each fails before any model is
loaded, so they are fast); one runs the real command in a subprocess to check what a shell
sees. None needs Azurite or runs a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.cli import main

USER_ERROR = 2


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    """A folder that passes for a Hugging Face model: enough for config checks, never run."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"not read by these tests")
    return folder


def _config(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _workflow(model: Path | str, **extra: Any) -> dict[str, Any]:
    return {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": {"convert": {"type": "OnnxConversion"}},
        **extra,
    }


def _fails_in_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == USER_ERROR, captured.err
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"bogus": 1}, "$:", "unknown field(s) ['bogus']"),
        ({"cache_dir": 5}, "$.cache_dir:", "expected a path, got a number"),
        ({"passes": {}}, "$.passes:", "non-empty object"),
        ({"evaluator": {"metrics": ["speed"]}}, "$.evaluator:", "unknown metric 'speed'"),
        (
            {"cloud_cache_config": {"container_name": "c", "enable": True}},
            "$.cloud_cache_config:",
            "unknown field(s) ['enable']",
        ),
        (
            {"cloud_cache_config": {"upload_to_cloud": "yes"}},
            "$.cloud_cache_config.upload_to_cloud:",
            "expected true or false, got a string",
        ),
    ],
)
def test_bad_config_is_one_line_naming_the_path(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake_model: Path,
    change: dict[str, Any],
    path: str,
    words: str,
) -> None:
    config = _config(tmp_path, _workflow(fake_model, **change))
    line = _fails_in_one_line(capsys, ["run", str(config)])
    assert f"{config}: {path}" in line
    assert words in line


def test_bad_pass_parameter_names_the_parameter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = _workflow(fake_model)
    document["passes"]["convert"]["opset"] = 17
    line = _fails_in_one_line(capsys, ["plan", str(_config(tmp_path, document))])
    assert "$.passes.convert.opset" in line
    assert "did you mean 'target_opset'" in line


def test_missing_model_directory_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _config(tmp_path, _workflow(tmp_path / "nowhere"))
    line = _fails_in_one_line(capsys, ["run", str(config)])
    assert f"model directory {tmp_path / 'nowhere'} does not exist" in line
    assert not (tmp_path / ".modelcache").exists()


def test_onnx_model_input_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = _workflow(fake_model)
    document["input_model"]["type"] = "OnnxModel"
    line = _fails_in_one_line(capsys, ["run", str(_config(tmp_path, document))])
    assert "$.input_model" in line
    assert "only Hugging Face models" in line


def test_unknown_pass_type_lists_the_available_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = _workflow(fake_model)
    document["passes"]["convert"]["type"] = "OnnxConverter"
    line = _fails_in_one_line(capsys, ["run", str(_config(tmp_path, document))])
    assert "$.passes.convert.type" in line
    assert "unknown pass type 'OnnxConverter'" in line
    for name in ("OnnxConversion", "OnnxDynamicQuantization", "OrtGraphOptimization"):
        assert name in line


def test_passes_in_the_wrong_order_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = _workflow(fake_model)
    document["passes"] = {"quantize": {"type": "OnnxDynamicQuantization"}}
    line = _fails_in_one_line(capsys, ["run", str(_config(tmp_path, document))])
    assert "$.passes.quantize" in line
    assert "reorder the passes" in line


def test_cloud_without_any_account_says_how_to_configure_one(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_model: Path,
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    config = _config(tmp_path, _workflow(fake_model, cloud_cache_config={"container_name": "c1x"}))
    line = _fails_in_one_line(capsys, ["run", str(config)])
    assert "AZURE_STORAGE_CONNECTION_STRING" in line
    assert "az login" in line


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _fails_in_one_line(capsys, ["run", str(tmp_path / "absent.json")])
    assert "no such file" in line


def test_a_shell_sees_exit_code_2_and_one_line(tmp_path: Path, fake_model: Path) -> None:
    config = _config(tmp_path, _workflow(fake_model, output="out"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "modelcache.runner.cli", "run", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == USER_ERROR
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {config}: $: unknown field(s) ['output']; remove or rename them"
    ]
    assert result.stdout == ""


def test_passes_lists_the_built_in_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["passes"]) == 0
    listed = {line.split("\t")[0] for line in capsys.readouterr().out.splitlines()}
    assert {"OnnxConversion", "OnnxDynamicQuantization", "OrtGraphOptimization"} <= listed
