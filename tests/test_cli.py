"""The ``modelcache`` command's answers to mistakes a user can make: exit code 2 and one line.

Most cases call ``modelcache.runner.cli.main`` in-process (each fails before any model is
loaded, so they are fast); one runs the real command in a subprocess to check what a shell
sees. None needs Azurite or runs a pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import InvalidChain
from modelcache.runner.cli import main
from modelcache.runner.cli.exit import EXIT_STATUS, exit_status
from modelcache.runner.config import ConfigError, naming_config_file
from modelcache.runner.errors import RunnerError, UserError
from modelcache.runner.models import ModelNotFound, UnknownModelType
from modelcache.runner.passes import (
    PassConfigError,
    PassInputError,
    PassRegistryError,
    PassUnavailable,
    UnknownPassType,
)
from modelcache.store import AccessDenied, CorruptEntry, StoreConfigError, StoreUnavailable

from .e2e import config_file, workflow

USER_ERROR = 2


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
            {"cloud_cache_config": {"container_name": "abc", "enable": True}},
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
    config = config_file(tmp_path, workflow(fake_model, **change))
    line = _fails_in_one_line(capsys, ["run", str(config)])
    assert f"{config}: {path}" in line
    assert words in line


def test_bad_pass_parameter_names_the_parameter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = workflow(fake_model)
    document["passes"]["convert"]["opset"] = 17
    line = _fails_in_one_line(capsys, ["plan", str(config_file(tmp_path, document))])
    assert "$.passes.convert.opset" in line
    assert "did you mean 'target_opset'" in line


def test_missing_model_directory_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = config_file(tmp_path, workflow(tmp_path / "nowhere"))
    line = _fails_in_one_line(capsys, ["run", str(config)])
    assert f"model directory {tmp_path / 'nowhere'} does not exist" in line
    assert not (tmp_path / ".modelcache").exists()


def test_an_onnx_model_input_to_a_hugging_face_pass_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from modelcache.runner.tiny_model import build_tiny_onnx

    document = workflow(build_tiny_onnx(tmp_path / "model.onnx"))
    document["input_model"]["type"] = "OnnxModel"
    document["passes"] = {"half": {"type": "TorchDtypeCast", "dtype": "float16"}}
    line = _fails_in_one_line(capsys, ["run", str(config_file(tmp_path, document))])
    assert "$.passes.half: TorchDtypeCast takes Hugging Face models, but receives ONNX" in line


def test_unknown_pass_type_lists_the_available_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = workflow(fake_model)
    document["passes"]["convert"]["type"] = "OnnxConverter"
    line = _fails_in_one_line(capsys, ["run", str(config_file(tmp_path, document))])
    assert "$.passes.convert.type" in line
    assert "unknown pass type 'OnnxConverter'" in line
    for name in ("OnnxConversion", "OnnxDynamicQuantization", "OrtGraphOptimization"):
        assert name in line


def test_passes_in_the_wrong_order_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = workflow(fake_model)
    document["passes"] = {"quantize": {"type": "OnnxDynamicQuantization"}}
    line = _fails_in_one_line(capsys, ["run", str(config_file(tmp_path, document))])
    assert "$.passes.quantize" in line
    assert "reorder the passes" in line


def test_cloud_without_any_account_says_how_to_configure_one(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_model: Path,
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    config = config_file(
        tmp_path, workflow(fake_model, cloud_cache_config={"container_name": "c1x"})
    )
    line = _fails_in_one_line(capsys, ["run", str(config)])
    assert "AZURE_STORAGE_CONNECTION_STRING" in line
    assert "az login" in line


def test_missing_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _fails_in_one_line(capsys, ["run", str(tmp_path / "absent.json")])
    assert "no such file" in line


def test_a_shell_sees_exit_code_2_and_one_line(tmp_path: Path, fake_model: Path) -> None:
    config = config_file(tmp_path, workflow(fake_model, output="out"))
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


def test_cache_why_names_the_config_file_of_a_pass_it_cannot_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    document = workflow(fake_model)
    document["passes"]["convert"]["type"] = "OnnxConverter"
    config = config_file(tmp_path, document)
    line = _fails_in_one_line(capsys, ["cache", "why", str(config), "convert"])
    assert line.startswith(f"error: {config}: $.passes.convert.type: unknown pass type")


# The one table from errors to exit statuses.


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConfigError(path="$", problem="p"), 2),
        (UserError("u"), 2),
        (ModelNotFound("m"), 2),
        (UnknownModelType("m"), 2),
        (PassConfigError("T", "f", "p"), 2),
        (UnknownPassType("T", ["A"]), 2),
        (StoreConfigError("s"), 2),
        (AccessDenied("s"), 2),
        (StoreUnavailable("s"), 1),
        (CorruptEntry("s"), 1),
        (PassUnavailable("T", "torch"), 1),
        (PassInputError("T", "p"), 1),
        (PassRegistryError("T", "p"), 1),
        (OSError(28, "No space left on device"), 1),
        (KeyboardInterrupt(), 1),
        (InvalidChain("a planner error reaching the command line is a bug"), None),
        (ValueError("a bug"), None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_each_error_ends_the_command_with_its_fault_s_exit_status(
    error: BaseException, status: int | None
) -> None:
    assert exit_status(error) == status


@pytest.mark.parametrize(
    "error",
    [
        ConfigError(path="$", problem="p"),
        UserError("u"),
        ModelNotFound("m"),
        PassConfigError("T", None, "p"),
        UnknownPassType("T", ["A"]),
        PassUnavailable("T", "torch"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_the_runner_s_errors_share_one_root(error: RunnerError) -> None:
    assert isinstance(error, RunnerError)
    assert error.fault in EXIT_STATUS


def test_an_error_with_no_exit_status_keeps_its_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> int:
        raise InvalidChain("the runner handed the planner a bad chain")

    monkeypatch.setattr("modelcache.runner.cli.run.available_passes", broken)
    with pytest.raises(InvalidChain):
        main(["passes"])
    assert capsys.readouterr().err == ""


def test_an_os_error_is_one_line_naming_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_args: Any) -> int:
        raise OSError(28, "No space left on device", "/cache/blob")

    monkeypatch.setattr("modelcache.runner.cli.run.available_passes", full)
    assert main(["passes"]) == 1
    assert capsys.readouterr().err == "error: No space left on device: /cache/blob\n"


def test_a_config_error_is_located_by_a_copy_not_changed() -> None:
    error = ConfigError(path="$.passes.x", problem="wrong")
    located = error.located("workflow.json")
    assert str(located) == "workflow.json: $.passes.x: wrong"
    assert str(error) == "$.passes.x: wrong"
    assert located.located("other.json") is located


def test_naming_the_config_file_raises_a_new_error_from_the_first() -> None:
    original = ConfigError(path="$.output_dir", problem="holds files")
    with pytest.raises(ConfigError) as raised, naming_config_file(Path("workflow.json")):
        raise original
    assert str(raised.value) == "workflow.json: $.output_dir: holds files"
    assert raised.value.__cause__ is original
    assert original.source == ""
