"""Issue 12: a config's problems all at once, one line each naming the file and the JSON
path, and no traceback for configs that once ended in one.

The commands run in-process (``modelcache.runner.cli.main``); the cases that must run a
pass use the session's tiny model (root ``conftest.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.cli import main
from modelcache.runner.config import load_config
from modelcache.runner.workflow import prepare

from .e2e import config_file, workflow

USER_ERROR = 2


def _workflow(model: Path | str, **extra: Any) -> dict[str, Any]:
    return workflow(model, **{"cache_dir": "cache", "output_dir": "out", **extra})


def _error_lines(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    """Run the command, check it failed as the user's fault without a traceback; its lines."""
    code = main(argv)
    captured = capsys.readouterr()
    assert code == USER_ERROR, captured.err
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert all(line.startswith("error: ") for line in lines), captured.err
    return lines


def test_every_problem_of_a_config_is_one_line_naming_file_and_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    config = config_file(
        tmp_path,
        _workflow(
            fake_model,
            bogus=1,
            cache_dir=5,
            passes={
                "convert": {"type": "OnnxConversion", "opset": 17},
                "quantize": {"type": "OnnxQuant"},
            },
            evaluator={"metrics": ["speed"]},
            cloud_cache_config={"container_name": "Bad_Name"},
        ),
    )
    lines = _error_lines(capsys, ["plan", str(config)])
    expected = [
        "$: unknown field(s) ['bogus']",
        "$.cache_dir: expected a path",
        "$.evaluator: unknown metric 'speed'",
        "$.cloud_cache_config.container_name: 'Bad_Name' is not a valid container name",
        "$.passes.convert.opset: unknown parameter; did you mean 'target_opset'?",
        "$.passes.quantize.type: unknown pass type 'OnnxQuant'",
    ]
    assert len(lines) == len(expected), lines
    for words in expected:
        assert any(line.startswith(f"error: {config}: {words}") for line in lines), (words, lines)


def test_problems_found_when_preparing_come_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = config_file(
        tmp_path,
        _workflow(
            tmp_path / "nowhere",
            passes={
                "quantize": {"type": "OnnxDynamicQuantization", "weight_type": "int4"},
                "convert": {"type": "onnxconversion"},
            },
            evaluator={"evaluate": ["nope"]},
        ),
    )
    lines = _error_lines(capsys, ["run", str(config)])
    expected = [
        "$.input_model.model_path: model directory",
        "$.passes.quantize.weight_type: must be one of",
        "$.passes.quantize: OnnxDynamicQuantization takes ONNX models, but receives Hugging Face",
        "$.passes.convert: OnnxConversion takes Hugging Face models, but receives ONNX",
        "$.evaluator.evaluate: no pass called 'nope'",
    ]
    assert len(lines) == len(expected), lines
    for words in expected:
        assert any(line.startswith(f"error: {config}: {words}") for line in lines), (words, lines)
    assert not (tmp_path / "cache").exists()


def test_a_pass_type_in_any_case_is_the_same_pass_with_the_same_key(
    tmp_path: Path, fake_model: Path
) -> None:
    def keys(type_name: str) -> tuple[str, ...]:
        document = _workflow(fake_model, passes={"convert": {"type": type_name}})
        return prepare(load_config(config_file(tmp_path, document))).keys

    assert keys("onnxconversion") == keys("OnnxConversion")


def test_minus_zero_and_zero_give_the_same_key(tmp_path: Path, fake_model: Path) -> None:
    def keys(sparsity: float) -> tuple[str, ...]:
        passes = {"prune": {"type": "MagnitudePruning", "sparsity": sparsity}}
        return prepare(
            load_config(config_file(tmp_path, _workflow(fake_model, passes=passes)))
        ).keys

    assert keys(-0.0) == keys(0.0)


def test_an_evaluator_name_says_what_is_expected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    config = config_file(tmp_path, _workflow(fake_model, evaluator="common_evaluator"))
    (line,) = _error_lines(capsys, ["plan", str(config)])
    assert line.startswith(f"error: {config}: $.evaluator: ")
    assert '"evaluators"' in line


def test_cloud_cache_config_true_says_what_to_write_instead(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    config = config_file(tmp_path, _workflow(fake_model, cloud_cache_config=True))
    (line,) = _error_lines(capsys, ["plan", str(config)])
    assert line.startswith(f"error: {config}: $.cloud_cache_config: ")
    assert '"container_name"' in line


def _run_fails_naming(
    capsys: pytest.CaptureFixture[str], folder: Path, document: dict[str, Any], pass_name: str
) -> str:
    config = config_file(folder, document)
    (line,) = _error_lines(capsys, ["run", str(config), "--no-cloud", "--quiet"])
    assert line.startswith(f"error: {config}: $.passes.{pass_name}: "), line
    return line


def test_static_axes_with_fidelity_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model: Path
) -> None:
    document = _workflow(
        tiny_model,
        passes={"convert": {"type": "OnnxConversion", "dynamic_axes": {}}},
        evaluator={"metrics": ["fidelity"]},
    )
    line = _run_fails_naming(capsys, tmp_path, document, "convert")
    assert "dynamic_axes" in line
    assert "fixed size" in line


def test_the_fp16_chain_with_an_evaluator_ends_in_one_line_naming_the_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model: Path
) -> None:
    document = _workflow(
        tiny_model,
        passes={
            "cast": {"type": "TorchDtypeCast", "dtype": "fp16"},
            "convert": {"type": "OnnxConversion", "target_opset": 18},  # 20 makes it load
            "quantize": {"type": "OnnxDynamicQuantization"},
        },
        evaluator={"metrics": ["size", "fidelity"]},
    )
    code = main(["run", str(config_file(tmp_path, document)), "--no-cloud", "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # The pass's output is checked before it is cached, so evaluation never sees it.
    assert code == 1, err
    (line,) = err.splitlines()
    assert "pass OnnxDynamicQuantization wrote a model that does not load" in line, line
    assert "onnxruntime cannot load" in line
