"""An Olive workflow config, run by Olive 0.13 itself and through modelcache: the same
model comes out, and modelcache caches it.

Olive's engine runs in this process (its telemetry heartbeat stubbed, as the project's
guide says); modelcache runs through its command line, in-process too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import olive
from modelcache.runner.cli import main as modelcache
from tests.olive_engine import olive_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai"),
]

#: An Olive config as Olive's examples write them: a local system, the model's task, and a
#: conversion, a transformer optimization and a dynamic quantization.
OLIVE_CONFIG: dict[str, Any] = {
    "input_model": {"type": "HfModel", "model_path": "<model>", "task": "feature-extraction"},
    "systems": {
        "local_system": {
            "type": "LocalSystem",
            "accelerators": [{"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}],
        }
    },
    "passes": {
        "conversion": {"type": "OnnxConversion", "use_dynamo_exporter": True, "target_opset": 18},
        "transformers_optimization": {"type": "OrtTransformersOptimization", "model_type": "bert"},
        "quantization": {"type": "OnnxDynamicQuantization"},
    },
    "host": "local_system",
    "target": "local_system",
    "log_severity_level": 3,
    "cache_dir": "cache",
    "output_dir": "out",
}


def _modelcache_run(document: dict[str, Any], folder: Path) -> dict[str, Any]:
    folder.mkdir()
    config = folder / "workflow.json"
    config.write_text(json.dumps(document), encoding="utf-8")
    report = folder / "report.json"
    assert modelcache(["run", str(config), "--quiet", "--report", str(report)]) == 0
    return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_olives_passes_make_olives_bytes_and_are_cached(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = copy.deepcopy(OLIVE_CONFIG)
    document["input_model"]["model_path"] = str(tiny_model)
    (tmp_path / "olive").mkdir()
    olive_run(document, tmp_path / "olive", monkeypatch)
    theirs = tmp_path / "olive" / "out" / "model.onnx"
    # The same config, but for the two types modelcache has built-ins of, spelt as Olive's.
    for name in ("conversion", "quantization"):
        document["passes"][name]["type"] = "olive:" + document["passes"][name]["type"]
    document["cache_dir"] = str(tmp_path / "modelcache-cache")
    report = _modelcache_run(document, tmp_path / "modelcache")
    ours = tmp_path / "modelcache" / "out" / "model.onnx"
    assert ours.read_bytes() == theirs.read_bytes()
    assert [step["kind"] for step in report["steps"]] == ["run", "run", "run"]
    # Run again from another folder over the same cache: nothing runs, the same model comes.
    again = _modelcache_run(document, tmp_path / "again")
    assert "run" not in [step["kind"] for step in again["steps"]]
    assert (tmp_path / "again" / "out" / "model.onnx").read_bytes() == theirs.read_bytes()


TINY_MODULE = """
import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x) * SCALE


SCALE = 1.0


def load(model_path):
    model = Tiny()
    model.load_state_dict(torch.load(model_path))
    return model.eval()
"""


def _pytorch_project(folder: Path) -> dict[str, Any]:
    import torch

    folder.mkdir()
    (folder / "tiny_model.py").write_text(TINY_MODULE, encoding="utf-8")
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 2).state_dict()
    torch.save({f"linear.{name}": value for name, value in linear.items()}, folder / "tiny.pt")
    return {
        "input_model": {
            "type": "PyTorchModel",
            "model_path": "tiny.pt",
            "model_loader": "load",
            "model_script": "tiny_model.py",
            "io_config": {"input_names": ["x"], "input_shapes": [[1, 4]], "output_names": ["y"]},
        },
        "passes": {"convert": {"type": "OnnxConversion", "target_opset": 18}},
        "cache_dir": "cache",
        "output_dir": "out",
    }


def _plan_keys(config: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert modelcache(["plan", str(config), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["keys"]  # type: ignore[no-any-return]


def test_a_pytorch_model_is_loaded_by_its_script_converted_by_olive_and_keyed_by_its_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import onnxruntime
    import torch

    project = tmp_path / "project"
    config = project / "workflow.json"
    document = _pytorch_project(project)
    config.write_text(json.dumps(document), encoding="utf-8")
    keys = _plan_keys(config, capsys)
    assert modelcache(["run", str(config), "--quiet"]) == 0
    # Olive's OnnxConversion converted it (the built-in takes Hugging Face models only).
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    session = onnxruntime.InferenceSession(str(project / "out" / "model.onnx"))
    (got,) = session.run(None, {"x": x})
    weights = torch.load(project / "tiny.pt")
    expected = x @ weights["linear.weight"].numpy().T + weights["linear.bias"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The loader's code is part of the model: changing it moves the key.
    script = project / "tiny_model.py"
    script.write_text(TINY_MODULE.replace("SCALE = 1.0", "SCALE = 2.0"), encoding="utf-8")
    assert _plan_keys(config, capsys) != keys
    script.write_text(TINY_MODULE, encoding="utf-8")
    assert _plan_keys(config, capsys) == keys


def test_the_olive_example_plans_as_written(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``examples/olive/workflow.yaml``, unchanged, beside the tiny model it names."""
    example = Path(__file__).parent.parent / "examples" / "olive" / "workflow.yaml"
    (tmp_path / "olive").mkdir()
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "model").symlink_to(tiny_model, target_is_directory=True)
    config = tmp_path / "olive" / "workflow.yaml"
    config.write_bytes(example.read_bytes())
    assert modelcache(["plan", str(config), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [step["kind"] for step in json.loads(out)["steps"]] == ["run", "run", "run"]
    assert "Traceback" not in err
