"""Olive's configs through the command (issue 13): YAML files, the notes of fields that mean
nothing here on stderr and in the run report, and ``--account_name``/``--container_name``
over the config's cloud settings. In-process (``modelcache.runner.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.cli import main
from modelcache.runner.config import CloudOverrides, load_config

from .e2e import HALF, config_file, workflow

USER_ERROR = 2


def _yaml_file(folder: Path, text: str) -> Path:
    path = folder / "workflow.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_a_yaml_config_is_read_and_its_notes_said_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    config = _yaml_file(
        tmp_path,
        f"""\
input_model:
  type: hfmodel
  config:
    model_path: {fake_model}
passes:
  convert:
    type: OnnxConversion
    config:
      target_opset: 17
engine:
  log_severity_level: 0
  search_strategy: false
  cache_dir: cache
  output_dir: out
""",
    )
    code, out, err = _run(capsys, ["plan", str(config), "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["steps"]
    assert err.splitlines() == [
        "note: $.engine.log_severity_level is ignored: modelcache prints its own notes and errors"
    ]


def test_yaml_problems_are_one_line_each_with_their_json_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    config = _yaml_file(
        tmp_path,
        f"input_model: {{type: HfModel, model_path: {fake_model}}}\n"
        "passes: {c: {type: OnnxConversion}}\nbogus: 1\ncache_dir: 5\n",
    )
    code, _out, err = _run(capsys, ["plan", str(config)])
    assert code == USER_ERROR
    assert sorted(err.splitlines()) == [
        f"error: {config}: $.cache_dir: expected a path, got a number",
        f"error: {config}: $: unknown field(s) ['bogus']; remove or rename them",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("input_model:\n  type: HfModel\n   model_path: m\n", "at line 3 column 14"),
        ("passes: {a: [1}\n", "at line 1 column 15"),
        ("? [1]\n: 2\n", "a key must be a string; quote it at line 1 column 3"),
        ("a: !!set {x}\n", "a set is not a JSON value at line 1 column 4"),
        ("- 1\n", "$: a workflow config is a JSON object"),
    ],
)
def test_a_file_that_is_not_usable_yaml_is_one_line_saying_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, words: str
) -> None:
    config = _yaml_file(tmp_path, text)
    code, _out, err = _run(capsys, ["plan", str(config)])
    assert code == USER_ERROR
    (line,) = err.splitlines()
    assert line.startswith(f"error: {config}: $: ")
    assert words in line, line


def test_a_yml_file_is_yaml_too_and_a_json_file_is_never_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    text = (
        f"input_model: {{type: HfModel, model_path: {fake_model}}}\n"
        "passes: {c: {type: OnnxConversion}}\n"
    )
    (tmp_path / "w.yml").write_text(text, encoding="utf-8")
    assert _run(capsys, ["plan", str(tmp_path / "w.yml"), "--no-cloud"])[0] == 0
    (tmp_path / "w.json").write_text(text, encoding="utf-8")
    code, _out, err = _run(capsys, ["plan", str(tmp_path / "w.json")])
    assert code == USER_ERROR
    assert "not JSON" in err


def test_a_run_reports_the_config_notes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_model: Path
) -> None:
    document = workflow(
        tiny_model,
        passes={"half": {**HALF, "clean_run_cache": True}},
        cache_dir="cache",
        output_dir="out",
        workflow_id="w",
    )
    report = tmp_path / "report.json"
    code, _out, err = _run(
        capsys, ["run", str(config_file(tmp_path, document)), "--quiet", "--report", str(report)]
    )
    assert code == 0, err
    notes = [
        "$.workflow_id is ignored: the cache is keyed by content, so every workflow shares its "
        "outputs",
        "$.passes.half.clean_run_cache is ignored: cache entries are keyed by content, so none "
        "is ever stale",
    ]
    assert [f"note: {note}" for note in notes] == err.splitlines()
    assert json.loads(report.read_text(encoding="utf-8"))["notes"] == notes


def _cloud_true(tmp_path: Path, model: Path) -> Path:
    return config_file(tmp_path, workflow(model, cache_dir="c", cloud_cache_config=True))


@pytest.mark.parametrize("spelling", ["--container_name", "--container-name"])
def test_the_container_flag_names_the_cloud_cache_over_the_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path, spelling: str
) -> None:
    config = _cloud_true(tmp_path, fake_model)
    code, _out, err = _run(capsys, ["plan", str(config), "--no-cloud"])
    assert code == USER_ERROR  # true names no container...
    assert "$.cloud_cache_config: true names no container" in err
    code, _out, err = _run(capsys, ["plan", str(config), "--no-cloud", spelling, "my-cache"])
    assert code == 0, err  # ...the command line does


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--account_name", "Not-An-Account", "is not a storage account name"),
        ("--account-name", "ab", "is not a storage account name"),
        ("--container_name", "Bad_Name", "is not a valid container name"),
    ],
)
@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_bad_account_or_container_flag_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake_model: Path,
    command: str,
    flag: str,
    value: str,
    words: str,
) -> None:
    config = config_file(tmp_path, workflow(fake_model))
    with pytest.raises(SystemExit) as exit_:
        main([command, str(config), flag, value])
    assert exit_.value.code == USER_ERROR
    assert words in capsys.readouterr().err


def test_the_account_override_replaces_the_configs_account(
    tmp_path: Path, fake_model: Path
) -> None:
    document = workflow(fake_model, cache_dir="https://theirs.blob.core.windows.net/c-1")
    config = config_file(tmp_path, document)
    loaded = load_config(config, overrides=CloudOverrides(account_name="mine"))
    assert loaded.cloud_cache_config is not None
    assert loaded.cloud_cache_config.account_url == "https://mine.blob.core.windows.net"
    assert loaded.cloud_cache_config.container_name == "c-1"


def _onnx_workflow(folder: Path, **model: Any) -> Path:
    """Olive's ``OnnxModel`` input (a tiny graph, weights beside it) through two built-in
    ONNX passes, local cache only."""
    from modelcache.runner.tiny_model import build_tiny_onnx

    build_tiny_onnx(folder / "models" / "pre" / "pre.onnx", external=True)
    document = {
        "input_model": {"type": "ONNXModel", "model_path": "models/pre/pre.onnx", **model},
        "passes": {
            "quantize": {"type": "OnnxDynamicQuantization", "weight_type": "QUInt8"},
            "optimize": {"type": "OrtGraphOptimization"},
        },
        "cache_dir": "cache",
        "output_dir": "out",
    }
    return config_file(folder, document)


def _ran(folder: Path, capsys: pytest.CaptureFixture[str], config: Path) -> list[str]:
    report = folder / "report.json"
    code, _, err = _run(capsys, ["run", str(config), "--quiet", "--report", str(report)])
    assert code == 0, err
    steps = json.loads(report.read_text(encoding="utf-8"))["steps"]
    return [s["pass"] for s in steps if s["kind"] == "run" and s["outcome"] == "done"]


def test_an_onnx_model_input_runs_through_onnx_passes_and_is_keyed_by_content(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCACHE_DIGEST_CACHE", str(tmp_path / "digests"))
    config = _onnx_workflow(tmp_path / "a")
    assert _ran(tmp_path / "a", capsys, config) == ["quantize", "optimize"]
    assert (tmp_path / "a" / "out" / "model.onnx").is_file()
    assert _ran(tmp_path / "a", capsys, config) == []  # every output cached
    # The same files elsewhere share the cache; a handler setting Olive's passes read does not.
    moved = _onnx_workflow(tmp_path / "b")
    document = json.loads(moved.read_text(encoding="utf-8"))
    document["cache_dir"] = str(tmp_path / "a" / "cache")
    moved.write_text(json.dumps(document), encoding="utf-8")
    assert _ran(tmp_path / "b", capsys, moved) == []
    document["input_model"]["inference_settings"] = {"session_options": {"log_id": "x"}}
    moved.write_text(json.dumps(document), encoding="utf-8")
    assert _ran(tmp_path / "b", capsys, moved) == ["quantize", "optimize"]


@pytest.mark.parametrize("model_path", ["models/resnet_trained_for_cifar10.pt", "m/pre.onnx"])
def test_a_model_file_not_made_yet_plans_as_unknown_and_refuses_to_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, model_path: str
) -> None:
    (tmp_path / "user_script.py").write_text("def load(path):\n    return None\n")
    kind, settings = (
        ("PyTorchModel", {"model_loader": "load", "model_script": "user_script.py"})
        if model_path.endswith(".pt")
        else ("OnnxModel", {})
    )
    document = {
        "input_model": {"type": kind, "model_path": model_path, **settings},
        "passes": {"quantize": {"type": "OnnxDynamicQuantization"}},
        "cache_dir": "cache",
    }
    if kind == "PyTorchModel":
        document["passes"] = {"convert": {"type": "OnnxConversion"}, **document["passes"]}
    config = config_file(tmp_path, document)
    code, out, err = _run(capsys, ["plan", str(config)])
    assert code == 0, err
    assert "unknown" in out
    missing = f"model_path {tmp_path / model_path} does not exist; make it first"
    assert missing in err
    code, _, err = _run(capsys, ["run", str(config), "--quiet"])
    assert code == USER_ERROR
    assert err.strip().splitlines() == [
        f"error: {config}: $.input_model.model_path: {missing} "
        "(an example's own script may) or correct the path"
    ]
    assert not (tmp_path / "cache").exists()


def test_latency_of_an_onnx_model_input_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _onnx_workflow(tmp_path)
    document = json.loads(config.read_text(encoding="utf-8"))
    document["evaluator"] = {"metrics": ["size", "latency"]}
    config.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = _run(capsys, ["run", str(config), "--quiet"])
    assert code == USER_ERROR
    assert err.strip().splitlines() == [
        f"error: {config}: $.evaluator.metrics: latency is measured on sentences, through the "
        "tokenizer of a Hugging Face input model, which this OnnxModel input has not; "
        'measure "size" only'
    ]
