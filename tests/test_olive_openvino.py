"""Olive's OpenVINO passes through the cache (issue 13): OpenVINO IR is a model type between
passes, planned as Olive chains it, run by Olive's own implementation to the bytes Olive
writes, checked before it is published, evaluated, and never reported to OpenVINO's
telemetry.

The runs need olive-ai and openvino (the runner's ``openvino`` extra); the plans need only
olive-ai.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import olive
from modelcache.runner._distributions import version
from modelcache.runner.cli import main
from modelcache.runner.models import model_type
from modelcache.runner.tiny_model import build_tiny_onnx
from tests.olive_engine import olive_run

pytestmark = pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai")
needs_openvino = pytest.mark.skipif(version("openvino") is None, reason="needs openvino")

USER_ERROR = 2
LOCAL_SYSTEM = {
    "local_system": {
        "type": "LocalSystem",
        "accelerators": [{"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}],
    }
}
#: Olive's OpenVINO example chain (resnet_context_ov_static, vit, llama3...), less its
#: quantization: IR in, IR out, then wrapped in an ONNX EPContext model.
OPENVINO_PASSES: dict[str, Any] = {
    "ov_convert": {"type": "OpenVINOConversion"},
    "io_update": {"type": "OpenVINOIoUpdate", "static": False, "reuse_cache": True},
    "encapsulation": {
        "type": "OpenVINOEncapsulation",
        "target_device": "cpu",
        "ov_version": "2025.1",
        "reuse_cache": True,
    },
}


def _config(folder: Path, input_model: dict[str, Any], passes: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "input_model": input_model,
        "systems": copy.deepcopy(LOCAL_SYSTEM),
        "passes": copy.deepcopy(passes),
        "host": "local_system",
        "target": "local_system",
        "log_severity_level": 3,
        "cache_dir": "cache",
        "output_dir": "out",
    }
    path = folder / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _plan(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, Any, str]:
    code = main(["plan", str(config), "--no-cloud", "--format", "json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, json.loads(captured.out) if code == 0 else None, captured.err


def test_an_openvino_chain_plans_with_ir_between_its_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    passes = {"conversion": {"type": "OnnxConversion", "use_dynamo_exporter": True}}
    passes |= OPENVINO_PASSES
    model = {"type": "HfModel", "model_path": str(fake_model), "task": "feature-extraction"}
    code, plan, err = _plan(capsys, _config(tmp_path, model, passes))
    assert code == 0, err
    assert [step["pass"] for step in plan["steps"]] == list(passes)
    assert all(step["kind"] == "run" for step in plan["steps"])


def test_an_openvino_pass_given_another_model_type_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    passes = {"io_update": OPENVINO_PASSES["io_update"]}
    config = _config(tmp_path, {"type": "HfModel", "model_path": str(fake_model)}, passes)
    code, _, err = _plan(capsys, config)
    assert code == USER_ERROR
    problems = [line for line in err.splitlines() if line.startswith("error")]
    assert problems == [
        f"error: {config}: $.passes.io_update: olive:OpenVINOIoUpdate takes OpenVINO IR "
        "models, but receives Hugging Face models; reorder the passes"
    ], err


@pytest.mark.skipif(version("nncf") is not None, reason="needs nncf absent")
def test_a_pass_missing_a_package_plans_as_unknown_naming_that_package_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    passes = {"ov_convert": {"type": "OpenVINOConversion", "output_model": "vit"}}
    passes["ov_quantize"] = {"type": "OpenVINOQuantization", "target_device": "npu"}
    config = _config(tmp_path, {"type": "HfModel", "model_path": str(fake_model)}, passes)
    code, plan, err = _plan(capsys, config)
    assert code == 0, err
    # The plan stops at the pass whose key is unknown, and says why.
    assert [step["pass"] for step in plan["steps"]] == ["ov_convert"]
    assert "pass 'ov_quantize': key unknown" in err
    # Olive's openvino extra would also pin numpy below 2: only what the pass lacks.
    assert "needs the 'nncf' package, which is not installed; pip install nncf" in err
    assert "$.passes.ov_convert.output_model: an older Olive's name for model_name" in err


def test_an_openvino_pass_keys_what_it_imports_not_all_of_olives_openvino_extra() -> None:
    found = olive.find_olive_pass("OpenVINOConversion")
    assert found is not None
    if version("openvino") is None:
        with pytest.raises(olive.OliveMissingPackage, match="'openvino'"):
            found.packages()
        return
    packages = found.packages()
    assert packages["openvino"] == version("openvino")
    # The extra's nncf, optimum and onnxruntime-openvino are not the conversion's: a key
    # holding them would change with packages the pass never loads.
    assert not {"nncf", "optimum", "onnxruntime-openvino"} & set(packages)


def test_quantization_writes_the_type_it_receives() -> None:
    info = olive.olive_passes()["OpenVINOQuantization"]
    assert info.input_types == {"onnx", "openvino"}
    assert (info.output_of("openvino"), info.output_of("onnx")) == ("openvino", "onnx")


@pytest.mark.slow
@needs_openvino
def test_olive_and_modelcache_write_the_same_openvino_model_and_send_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = tmp_path / "modelcache", tmp_path / "olive"
    for folder in (ours, theirs):
        build_tiny_onnx(folder / "model" / "model.onnx")
    model = {"type": "OnnxModel", "model_path": "model/model.onnx"}
    config = _config(ours, model, OPENVINO_PASSES)
    home = tmp_path / "home"
    home.mkdir()
    # Its own process, with its own home: OpenVINO's converter writes its telemetry client id
    # under ~/intel when it reports a conversion.
    environment = {**os.environ, "HOME": str(home)}
    command = [sys.executable, "-m", "modelcache.runner.cli", "run", str(config), "--no-cloud"]
    for _ in range(2):  # cold, then warm: served from the cache
        done = subprocess.run(
            [*command, "--quiet", "--report", str(ours / "report.json")],
            cwd=ours, env=environment, capture_output=True, text=True, timeout=300, check=False
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "WARNING" not in done.stderr, done.stderr  # none of Olive's about our layout
    report = json.loads((ours / "report.json").read_text(encoding="utf-8"))
    assert [step["kind"] for step in report["steps"]] == ["skip"] * len(OPENVINO_PASSES)
    assert not (home / "intel").exists(), "OpenVINO's telemetry was loaded"

    olive_run(json.loads(config.read_text(encoding="utf-8")), theirs, monkeypatch)
    made = sorted(path.name for path in (ours / "out").iterdir())
    assert made == [".modelcache-output.json", "model.onnx", "ov_model_dy.bin", "ov_model_dy.xml"]
    assert model_type(ours / "out") == "onnx"
    for name in ("ov_model_dy.bin", "ov_model_dy.xml"):
        assert (ours / "out" / name).read_bytes() == (theirs / "out" / name).read_bytes(), name
    # Olive names the EPContext graph after the IR; modelcache's ONNX graph is model.onnx.
    assert (ours / "out" / "model.onnx").read_bytes() == (
        theirs / "out" / "ov_model_dy.onnx"
    ).read_bytes()


@pytest.mark.slow
@needs_openvino
def test_an_openvino_ir_output_is_evaluated_against_its_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model: Path
) -> None:
    passes = {
        "conversion": {"type": "OnnxConversion", "use_dynamo_exporter": True},
        "ov_convert": {"type": "OpenVINOConversion", "static": False, "compress_to_fp16": False},
    }
    model = {"type": "HfModel", "model_path": str(tiny_model), "task": "feature-extraction"}
    config = _config(tmp_path, model, passes)
    document = json.loads(config.read_text(encoding="utf-8"))
    document["evaluator"] = {"metrics": ["size", "fidelity"], "evaluate": "final"}
    config.write_text(json.dumps(document), encoding="utf-8")
    report = tmp_path / "report.json"
    code = main(["run", str(config), "--no-cloud", "--quiet", "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert model_type(tmp_path / "out") == "openvino"
    measured = json.loads(report.read_text(encoding="utf-8"))["metrics"]["ov_convert"]
    # float32 IR of the same graph: the same embeddings, to rounding.
    assert measured["fidelity"] > 0.999, measured
    assert measured["size_bytes"] > 0


def _ir(folder: Path) -> Path:
    """An OpenVINO IR of the tiny ONNX graph, written by OpenVINO itself into ``folder``."""
    from modelcache.runner._telemetry import silence

    silence()
    import openvino

    graph = build_tiny_onnx(folder.parent / f"{folder.name}-source" / "model.onnx")
    folder.mkdir(parents=True)
    model = openvino.convert_model(str(graph))
    openvino.save_model(model, str(folder / "ov_model.xml"), compress_to_fp16=False)
    return folder


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.slow
@needs_openvino
def test_an_openvino_model_input_is_read_where_it_lies_and_never_changed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = tmp_path / "modelcache", tmp_path / "olive"
    _ir(ours / "ir")
    shutil.copytree(ours / "ir", theirs / "ir")
    before = _contents(ours / "ir")
    passes = {name: OPENVINO_PASSES[name] for name in ("io_update", "encapsulation")}
    config = _config(ours, {"type": "OpenVINOModel", "model_path": "ir"}, passes)
    report = ours / "report.json"
    code = main(["run", str(config), "--no-cloud", "--quiet", "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 0, err
    # OpenVINOIoUpdate with reuse_cache writes into its input's folder: given a copy here.
    assert _contents(ours / "ir") == before
    assert model_type(ours / "out") == "onnx"

    olive_run(json.loads(config.read_text(encoding="utf-8")), theirs, monkeypatch)
    assert _contents(theirs / "ir") != before  # Olive's own run renames the user's files
    for name in ("ov_model_dy.bin", "ov_model_dy.xml"):
        assert (ours / "out" / name).read_bytes() == (theirs / "out" / name).read_bytes(), name

    # Its identity is its content: the same IR elsewhere plans the same keys.
    moved = tmp_path / "moved"
    shutil.copytree(ours, moved, ignore=shutil.ignore_patterns("out", "cache", "report.json"))
    assert main(["plan", str(moved / "workflow.json"), "--no-cloud", "--format", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["keys"] == [step["key"] for step in json.loads(
        report.read_text(encoding="utf-8"))["steps"]]  # fmt: skip


def test_an_openvino_model_input_that_is_not_one_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "model.xml").write_text("<net/>", encoding="utf-8")  # no weights
    passes = {"io_update": OPENVINO_PASSES["io_update"]}
    config = _config(tmp_path, {"type": "openvinomodel", "model_path": "ir"}, passes)
    code, _, err = _plan(capsys, config)
    assert code == USER_ERROR
    (error,) = [line for line in err.splitlines() if line.startswith("error")]
    assert error.endswith(
        "is not an OpenVINO model: a folder holding one <name>.xml beside its <name>.bin "
        "(found: none)"
    ), error
