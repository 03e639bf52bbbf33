"""Olive's accuracy and custom metrics, measured by Olive's own evaluator on a pass's output
(issue 13), cached under the model's key and a fingerprint that holds the metric objects
and the content of the user script they name.

A tiny ONNX model (``build_tiny_onnx``: ``relu(x @ W + b)`` over 8 features) and a user
script registering a labelled dataset of 16 rows; the expected accuracy is computed here
with onnxruntime, apart from Olive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import olive
from modelcache.runner.cli import main
from modelcache.runner.tiny_model import build_tiny_onnx

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai"),
]

USER_SCRIPT = """\
import numpy as np
from olive.data.registry import Registry

ROWS = 16


def rows():
    rng = np.random.default_rng(0)
    return rng.standard_normal((ROWS, 8)).astype(np.float32), rng.integers(0, 8, ROWS)


@Registry.register_dataset()
def tiny_dataset(**kwargs):
    inputs, labels = rows()
    return [({"x": inputs[i]}, int(labels[i])) for i in range(ROWS)]


@Registry.register_post_process()
def tiny_argmax(output, **kwargs):
    import torch

    logits = next(iter(output.values())) if isinstance(output, dict) else output
    return torch.as_tensor(logits).argmax(dim=-1)


def mean_output(model, device, execution_providers):
    import onnxruntime

    session = onnxruntime.InferenceSession(model.model_path, providers=["CPUExecutionProvider"])
    inputs, _ = rows()
    return float(session.run(None, {"x": inputs})[0].mean()) + OFFSET


OFFSET = 0.0
"""
ACCURACY = {
    "name": "acc",
    "type": "accuracy",
    "data_config": "tiny",
    "sub_types": [
        {"name": "accuracy_score", "priority": 1,
         "metric_config": {"task": "multiclass", "num_classes": 8}},
    ],
}  # fmt: skip
CUSTOM = {
    "name": "mean",
    "type": "custom",
    "sub_types": [{"name": "output", "priority": 2, "higher_is_better": False}],
    "user_config": {"user_script": "user_script.py", "evaluate_func": "mean_output"},
}


def _workflow(folder: Path) -> Path:
    build_tiny_onnx(folder / "model" / "model.onnx")
    (folder / "user_script.py").write_text(USER_SCRIPT, encoding="utf-8")
    document = {
        "input_model": {"type": "OnnxModel", "model_path": "model/model.onnx"},
        "data_configs": [{
            "name": "tiny", "type": "DataContainer", "user_script": "user_script.py",
            "load_dataset_config": {"type": "tiny_dataset"},
            "post_process_data_config": {"type": "tiny_argmax"},
            "dataloader_config": {"batch_size": 4},
        }],
        "evaluators": {"common": {"metrics": [ACCURACY, CUSTOM]}},
        "evaluator": "common",
        "passes": {"optimize": {"type": "OrtGraphOptimization"}},
        "cache_dir": "cache",
        "output_dir": "out",
    }  # fmt: skip
    config = folder / "workflow.json"
    config.write_text(json.dumps(document), encoding="utf-8")
    return config


def _run(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    report = config.parent / "report.json"
    code = main(["run", str(config), "--no-cloud", "--quiet", "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _expected(folder: Path) -> tuple[float, float]:
    """The accuracy and mean output of the model in ``folder``, by onnxruntime alone."""
    import numpy as np
    import onnxruntime

    rng = np.random.default_rng(0)
    inputs, labels = rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 8, 16)
    session = onnxruntime.InferenceSession(
        str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, {"x": inputs})[0]
    return float((outputs.argmax(axis=1) == labels).mean()), float(outputs.mean())


def test_olives_metrics_are_measured_by_olive_and_cached(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Olive's user code is found from the config, not from here
    config = _workflow(tmp_path / "project")
    first = _run(capsys, config)
    accuracy, mean = _expected(tmp_path / "project" / "out")
    measured = first["metrics"]["optimize"]
    assert measured["acc-accuracy_score"] == pytest.approx(accuracy)
    assert measured["mean-output"] == pytest.approx(mean)

    again = _run(capsys, config)
    assert again["metrics"] == first["metrics"]
    (evaluated,) = [step for step in again["steps"] if step["kind"] == "evaluate"]
    assert evaluated["detail"] == "cached result"

    # The user script is in the fingerprint: edited, the metrics are measured again.
    script = tmp_path / "project" / "user_script.py"
    script.write_text(USER_SCRIPT.replace("OFFSET = 0.0", "OFFSET = 1.0"), encoding="utf-8")
    edited = _run(capsys, config)
    (evaluated,) = [step for step in edited["steps"] if step["kind"] == "evaluate"]
    assert evaluated.get("detail") != "cached result"
    assert edited["metrics"]["optimize"]["mean-output"] == pytest.approx(mean + 1.0)


def test_a_metric_olive_cannot_measure_is_one_line_naming_the_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _workflow(tmp_path)
    document = json.loads(config.read_text(encoding="utf-8"))
    # Olive finds the function only when it measures: after the pass ran.
    document["evaluators"]["common"]["metrics"][1]["user_config"]["evaluate_func"] = "absent"
    config.write_text(json.dumps(document), encoding="utf-8")
    code = main(["run", str(config), "--no-cloud", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1, err
    assert (
        "$.passes.optimize: the evaluator cannot measure this output: Olive's evaluator"
        in (errors[0])
    )
    assert "Traceback" not in err


def test_metrics_olive_refuses_are_an_error_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _workflow(tmp_path)
    document = json.loads(config.read_text(encoding="utf-8"))
    for metric in document["evaluators"]["common"]["metrics"]:
        metric["sub_types"][0].pop("priority")  # two metrics: Olive needs their priorities
    config.write_text(json.dumps(document), encoding="utf-8")
    code = main(["run", str(config), "--no-cloud", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    (error,) = [line for line in err.splitlines() if line.startswith("error")]
    assert "$.evaluator: Olive refuses its metrics: " in error
    assert "Priority must be specified" in error
    assert not (tmp_path / "cache").exists()  # nothing ran


def test_latency_of_an_onnx_input_is_timed_by_olive_on_its_data(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _workflow(tmp_path)
    document = json.loads(config.read_text(encoding="utf-8"))
    latency = {"name": "lat", "type": "latency", "data_config": "tiny",
               "sub_types": [{"name": "avg", "priority": 3}, {"name": "max"}]}  # fmt: skip
    document["evaluators"]["common"]["metrics"].append(latency)
    config.write_text(json.dumps(document), encoding="utf-8")
    measured = _run(capsys, config)["metrics"]["optimize"]
    # Milliseconds per batch of the data config, as Olive times them: none is zero.
    assert 0 < measured["lat-avg"] <= measured["lat-max"]
    assert {"acc-accuracy_score", "mean-output"} <= set(measured)
