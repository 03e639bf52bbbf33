"""What an older Olive's configs wrote that Olive 0.13 no longer runs, run through modelcache
as that Olive meant it (``olive/_older.py``): the same model as Olive 0.13 makes from the
config written its way.

The calibration data an older Olive named by function (``user_script``, ``data_dir``,
``dataloader_func``) calibrates the quantizer as Olive 0.13's ``data_config`` of the same
batches does, byte for byte; its key holds the script's and the data's content.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelcache.runner import olive
from modelcache.runner.cli import main as modelcache
from modelcache.runner.tiny_model import build_tiny_onnx
from tests.olive_engine import olive_run

pytestmark = pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai")

#: The calibration data both ways: an older Olive's reader, and Olive 0.13's dataset.
USER_SCRIPT = """
from pathlib import Path

import numpy as np
from olive.data.registry import Registry
from onnxruntime.quantization import CalibrationDataReader


def _batches(data_dir, batch_size):
    data = np.load(Path(data_dir) / "calibration.npy")
    return [data[i : i + batch_size] for i in range(0, len(data), batch_size)]


class Reader(CalibrationDataReader):
    def __init__(self, data_dir, batch_size):
        self.batches = iter(_batches(data_dir, batch_size))

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {"x": batch}


def calibration_reader(data_dir, batch_size, *args, **kwargs):
    return Reader(data_dir, batch_size)


@Registry.register_dataset()
def calibration_batches(data_dir, batch_size, **kwargs):
    return [({"x": batch}, 0) for batch in _batches(data_dir, batch_size)]
"""
OLDER_QUANTIZATION = {
    "type": "OnnxStaticQuantization",
    "user_script": "user_script.py",
    "data_dir": "data",
    "dataloader_func": "calibration_reader",
    "batch_size": 4,
}
#: The same data as Olive 0.13 takes it.
DATA_CONFIG = {
    "name": "calibration",
    "user_script": "user_script.py",
    "load_dataset_config": {"type": "calibration_batches", "data_dir": "data", "batch_size": 4},
    "dataloader_config": {"type": "no_auto_batch_dataloader"},
}


def _project(folder: Path, quantization: dict[str, Any], **fields: Any) -> Path:
    """An Olive config quantizing a tiny ONNX model, with its script and data, in
    ``folder``; returns the config's path."""
    build_tiny_onnx(folder / "model" / "model.onnx")
    (folder / "user_script.py").write_text(USER_SCRIPT, encoding="utf-8")
    (folder / "data").mkdir()
    data = np.random.default_rng(7).normal(size=(12, 8)).astype(np.float32)
    np.save(folder / "data" / "calibration.npy", data)
    document = {
        "input_model": {"type": "OnnxModel", "model_path": "model/model.onnx"},
        "passes": {"quantization": copy.deepcopy(quantization)},
        "cache_dir": "cache",
        "output_dir": "out",
        **fields,
    }
    config = folder / "workflow.json"
    config.write_text(json.dumps(document), encoding="utf-8")
    return config


def _plan(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str]:
    capsys.readouterr()
    assert modelcache(["plan", str(config), "--no-cloud", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    return json.loads(out), err


@pytest.mark.slow
def test_an_older_olives_calibration_data_quantizes_as_olives_data_config_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = tmp_path / "modelcache", tmp_path / "olive"
    config = _project(ours, OLDER_QUANTIZATION)
    report = ours / "report.json"
    command = ["run", str(config), "--no-cloud", "--quiet", "--report", str(report)]
    for _ in range(2):  # cold, then warm: served from the cache
        assert modelcache(command) == 0
    steps = json.loads(report.read_text(encoding="utf-8"))["steps"]
    assert [step["kind"] for step in steps] == ["skip"]
    records = [path for path in (ours / "cache").rglob("*.json") if "blobs" not in path.parts]
    assert records  # the entry's manifest, the run's record
    for record in records:  # the script and the data are keyed by content, not where they are
        assert str(tmp_path) not in record.read_text(encoding="utf-8"), record

    newer = {"type": "OnnxStaticQuantization", "data_config": "calibration"}
    olive_config = _project(theirs, newer, data_configs=[DATA_CONFIG])
    olive_run(json.loads(olive_config.read_text(encoding="utf-8")), theirs, monkeypatch)
    made = (ours / "out" / "model.onnx").read_bytes()
    assert made == (theirs / "out" / "model.onnx").read_bytes()
    assert made != (ours / "model" / "model.onnx").read_bytes()  # it did quantize


def test_the_calibration_datas_content_and_function_are_in_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path, OLDER_QUANTIZATION)
    plan, notes = _plan(config, capsys)
    assert "an older Olive's calibration data" in notes
    assert "calibration_reader(data_dir, batch_size) of user_script" in notes
    key = plan["steps"][0]["key"]

    np.save(tmp_path / "data" / "calibration.npy", np.zeros((12, 8), dtype=np.float32))
    other_data = _plan(config, capsys)[0]["steps"][0]["key"]
    with (tmp_path / "user_script.py").open("a", encoding="utf-8") as script:
        script.write("\n# edited\n")
    other_script = _plan(config, capsys)[0]["steps"][0]["key"]
    document = json.loads(config.read_text(encoding="utf-8"))
    document["passes"]["quantization"]["batch_size"] = 3
    config.write_text(json.dumps(document), encoding="utf-8")
    other_batches = _plan(config, capsys)[0]["steps"][0]["key"]
    assert len({key, other_data, other_script, other_batches}) == 4


def test_calibration_data_not_there_yet_plans_as_unknown_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _project(tmp_path, OLDER_QUANTIZATION)
    (tmp_path / "data" / "calibration.npy").unlink()
    (tmp_path / "data").rmdir()
    capsys.readouterr()
    assert modelcache(["plan", str(config), "--no-cloud"]) == 0
    assert "key unknown: data_dir names 'data', which is not there" in capsys.readouterr().err
    assert modelcache(["run", str(config), "--no-cloud", "--quiet"]) == 2
    assert "'data', which is not there" in capsys.readouterr().err


def test_a_function_without_its_script_is_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = {**OLDER_QUANTIZATION, "batch_size": 0}
    del older["user_script"]
    config = _project(tmp_path, older)
    assert modelcache(["plan", str(config), "--no-cloud"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert any("$.passes.quantization.user_script: " in line for line in errors), errors
    assert any("$.passes.quantization.batch_size: " in line for line in errors), errors


def test_beside_a_data_config_olive_0_13_ignores_them_and_so_does_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = {**OLDER_QUANTIZATION, "data_config": "calibration"}
    config = _project(tmp_path, both, data_configs=[DATA_CONFIG])
    plan, notes = _plan(config, capsys)
    assert "calibrates on the data_config" in notes
    newer = {"type": "OnnxStaticQuantization", "data_config": "calibration"}
    alone = _plan(_project(tmp_path / "newer", newer, data_configs=[DATA_CONFIG]), capsys)[0]
    # Kept in the key (another value of what Olive ignores is another key), as every
    # parameter Olive 0.13 ignores.
    assert plan["steps"][0]["key"] != alone["steps"][0]["key"]


def test_an_older_perf_tunings_lists_of_one_are_their_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tuning = {
        "type": "OrtPerfTuning",
        "providers_list": ["CPUExecutionProvider"],
        "execution_mode_list": ["ORT_SEQUENTIAL"],
        "data_config": "calibration",
    }
    config = _project(tmp_path, tuning, data_configs=[DATA_CONFIG])
    plan, notes = _plan(config, capsys)
    assert "execution_mode_list: an older Olive's OrtPerfTuning took a list" in notes
    newer = {**tuning, "type": "OrtSessionParamsTuning", "providers_list": "CPUExecutionProvider",
             "execution_mode_list": 0}  # fmt: skip
    same = _plan(_project(tmp_path / "newer", newer, data_configs=[DATA_CONFIG]), capsys)[0]
    assert plan["steps"][0]["key"] == same["steps"][0]["key"]

    tuning["providers_list"] = ["CPUExecutionProvider", "DmlExecutionProvider"]
    config.write_text(
        json.dumps({**json.loads(config.read_text(encoding="utf-8")),
                    "passes": {"tuning": tuning}}),
        encoding="utf-8",
    )  # fmt: skip
    assert modelcache(["plan", str(config), "--no-cloud"]) == 2
    err = capsys.readouterr().err
    assert "$.passes.tuning.providers_list: an older Olive's OrtPerfTuning tuned over" in err
