"""The sweep file: a base and a matrix, or a list of workflows, read into named variants;
every mistake reported at once, each at its file and JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.config import ConfigError
from modelcache.runner.sweep import load_sweep, parse_sweep

BASE: dict[str, Any] = {
    "input_model": {"type": "HfModel", "model_path": "model"},
    "passes": {
        "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
        "quantize": {"type": "OnnxDynamicQuantization"},
    },
    "cache_dir": "cache",
    "output_dir": "results",
}


def _lines(document: Any, folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_sweep(document, folder=folder, source="sweep.json")
    return list(caught.value.lines())


def test_every_combination_of_the_matrix_is_a_named_variant_of_the_base(tmp_path: Path) -> None:
    sweep = parse_sweep(
        {
            "base": BASE,
            "matrix": {
                "passes.quantize.per_channel": [True, False],
                "passes.quantize.reduce_range": [True, False],
            },
        },
        folder=tmp_path,
    )
    names = [variant.name for variant in sweep.variants]
    assert names == [
        "per_channel=true,reduce_range=true",
        "per_channel=true,reduce_range=false",
        "per_channel=false,reduce_range=true",
        "per_channel=false,reduce_range=false",
    ]
    second = dict(sweep.variants[1].config.passes)
    assert dict(second["quantize"]) == {
        "type": "OnnxDynamicQuantization",
        "per_channel": True,
        "reduce_range": False,
    }
    assert dict(second["prune"]) == BASE["passes"]["prune"]
    # Each variant's model in a folder of its own, under the base's output_dir by default.
    assert sweep.output_dir == tmp_path / "results"
    assert [v.config.output_dir for v in sweep.variants] == [
        tmp_path / "results" / name for name in names
    ]


def test_labels_are_the_parameters_names_unless_two_axes_share_one(tmp_path: Path) -> None:
    sweep = parse_sweep(
        {
            "base": BASE,
            "matrix": {"passes.prune.type": ["MagnitudePruning"], "passes.quantize.type": ["A"]},
        },
        folder=tmp_path,
    )
    assert sweep.variants[0].name == "prune.type=MagnitudePruning,quantize.type=A"


def test_input_models_beside_the_sweep_file_are_found_there(tmp_path: Path) -> None:
    (tmp_path / "models" / "small").mkdir(parents=True)
    sweep = parse_sweep(
        {
            "base": BASE,
            "matrix": {"input_model.model_path": ["models/small", "org/hub-model"]},
            "output_dir": "sweep-out",
            "cache_dir": "shared",
        },
        folder=tmp_path,
    )
    assert [v.name for v in sweep.variants] == ["model=small", "model=hub-model"]
    paths = [v.config.input_model.model_path for v in sweep.variants]
    assert paths == [str(tmp_path / "models" / "small"), "org/hub-model"]
    assert {v.config.cache_dir for v in sweep.variants} == {tmp_path / "shared"}
    assert sweep.variants[1].config.output_dir == tmp_path / "sweep-out" / "model=hub-model"


def test_a_list_of_workflow_files_is_a_sweep_of_them(tmp_path: Path) -> None:
    for name in ("fp16", "int8"):
        (tmp_path / f"{name}.json").write_text(json.dumps(BASE), encoding="utf-8")
    sweep = load_sweep(
        _write(tmp_path, {"workflows": ["fp16.json", {"name": "q", "workflow": "int8.json"}]})
    )
    assert [v.name for v in sweep.variants] == ["fp16", "q"]
    assert sweep.variants[0].config.output_dir == tmp_path / "out" / "fp16"


def _write(folder: Path, document: Any) -> Path:
    path = folder / "sweep.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_every_mistake_of_a_matrix_is_one_line_at_its_path(tmp_path: Path) -> None:
    lines = _lines(
        {
            "base": BASE,
            "matrix": {
                "passes.quantise.per_channel": [True],
                "passes.quantize.reduce_range": [],
                "passes.prune.sparsity": [0.5, 0.6, 0.5],
                "evaluator.metrics": [["size"]],
            },
            "outptu_dir": "x",
        },
        tmp_path,
    )
    assert lines == [
        "sweep.json: $: unknown field(s) ['outptu_dir']; a sweep has "
        "['base', 'matrix', 'workflows', 'output_dir', 'cache_dir', 'resources']",
        "sweep.json: $.matrix[\"passes.quantise.per_channel\"]: no pass called 'quantise' in "
        "the base workflow; its passes are prune, quantize",
        'sweep.json: $.matrix["passes.quantize.reduce_range"]: give a non-empty list of the '
        "values to try",
        'sweep.json: $.matrix["passes.prune.sparsity"][2]: duplicate of [0]',
        'sweep.json: $.matrix["evaluator.metrics"]: unknown axis; an axis is '
        "passes.<pass>.<parameter>, input_model.model_path or input_model.revision",
    ]


def test_an_empty_matrix_is_refused(tmp_path: Path) -> None:
    assert _lines({"base": BASE, "matrix": {}}, tmp_path) == [
        "sweep.json: $.matrix: an empty object; give at least one axis, as "
        '{"passes.<pass>.<parameter>": [values]}'
    ]


def test_a_sweep_is_a_base_or_a_list_never_both(tmp_path: Path) -> None:
    both = _lines(
        {"base": BASE, "matrix": {"passes.prune.sparsity": [0.1]}, "workflows": []}, tmp_path
    )
    assert both[0] == 'sweep.json: $: give either "base" with a "matrix", or "workflows"'
    assert _lines([], tmp_path) == ["sweep.json: $: a sweep file is a JSON object"]


def test_two_combinations_with_one_name_are_refused(tmp_path: Path) -> None:
    lines = _lines({"base": BASE, "matrix": {"input_model.model_path": ["a/m", "b/m"]}}, tmp_path)
    assert lines == [
        "sweep.json: $.matrix: two combinations would both be called 'model=m' "
        '("a/m" and "b/m"); list the workflows instead'
    ]


def test_the_mistakes_of_listed_workflows_name_their_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(BASE), encoding="utf-8")
    (tmp_path / "bad.json").write_text(json.dumps({**BASE, "passes": 3}), encoding="utf-8")
    elsewhere = {**BASE, "cache_dir": "elsewhere"}
    lines = _lines(
        {
            "workflows": [
                "a.json",
                {"name": "a", "workflow": "a.json"},
                "missing.json",
                "bad.json",
                {"workflow": elsewhere},
                {"name": "c", "workflow": {**BASE, "passes": {"p": {"sparsity": 1}}}},
                {"name": "d", "workflow": elsewhere},
            ]
        },
        tmp_path,
    )
    missing, bad = tmp_path / "missing.json", tmp_path / "bad.json"
    assert lines[0] == "sweep.json: $.workflows[1].name: 'a' names [0] too"
    assert lines[1] == f"{missing}: $: no such file"
    assert lines[2].startswith(f"{bad}: $.passes: ")
    assert lines[3] == (
        'sweep.json: $.workflows[4].name: give the workflow a name: {"name": ..., "workflow": ...}'
    )
    assert lines[4].startswith("sweep.json: $.workflows[5].workflow.passes.p")
    assert lines[-1] == (
        "sweep.json: $.workflows[6]: its cache_dir differs from 'a''s: the workflows of a "
        "sweep share one cache (give cache_dir in the sweep file, or align them)"
    )
    assert len(lines) == 6


def test_a_sweep_file_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sweep.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    (line,) = caught.value.lines()
    assert line.startswith(f"{path}: $: not JSON: ")


def test_a_workflow_config_given_as_a_sweep_says_what_to_do(tmp_path: Path) -> None:
    (line,) = _lines(BASE, tmp_path)
    assert line.startswith("sweep.json: $: a workflow config, not a sweep: run it with `modelcache")


# -- YAML --------------------------------------------------------------------------------------

MATRIX = {"passes.quantize.per_channel": [True, False], "passes.prune.sparsity": [0.5, 0.7]}


def _both(folder: Path, document: Any) -> tuple[Path, Path]:
    """``document`` as ``sweep.json`` and as ``sweep.yaml``."""
    import yaml  # type: ignore[import-untyped]

    json_path = _write(folder, document)
    yaml_path = folder / "sweep.yaml"
    yaml_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return json_path, yaml_path


@pytest.mark.parametrize("form", ["matrix", "workflows"])
def test_a_yaml_sweep_file_is_read_as_its_json_twin(tmp_path: Path, form: str) -> None:
    (tmp_path / "base.yml").write_text(json.dumps(BASE), encoding="utf-8")  # JSON is YAML
    document: dict[str, Any] = (
        {"base": "base.yml", "matrix": MATRIX, "output_dir": "o"}
        if form == "matrix"
        else {"workflows": ["base.yml", {"name": "inline", "workflow": BASE}]}
    )
    from_json, from_yaml = (load_sweep(path) for path in _both(tmp_path, document))
    assert [v.name for v in from_yaml.variants] == [v.name for v in from_json.variants]
    assert [v.config for v in from_yaml.variants] == [v.config for v in from_json.variants]
    assert len(from_yaml.variants) == (4 if form == "matrix" else 2)


def test_the_mistakes_of_a_yaml_sweep_file_are_named_as_in_json(tmp_path: Path) -> None:
    document = {
        "base": BASE,
        "matrix": {"passes.quantise.per_channel": [True], "passes.prune.sparsity": [0.5, 0.5]},
        "outptu_dir": "x",
    }
    lines = []
    for path in _both(tmp_path, document):
        with pytest.raises(ConfigError) as caught:
            load_sweep(path)
        lines.append([line.replace(str(path), "SWEEP") for line in caught.value.lines()])
    assert lines[0] == lines[1]
    assert lines[1] == [
        "SWEEP: $: unknown field(s) ['outptu_dir']; a sweep has "
        "['base', 'matrix', 'workflows', 'output_dir', 'cache_dir', 'resources']",
        "SWEEP: $.matrix[\"passes.quantise.per_channel\"]: no pass called 'quantise' in "
        "the base workflow; its passes are prune, quantize",
        'SWEEP: $.matrix["passes.prune.sparsity"][1]: duplicate of [0]',
    ]


def test_a_yaml_sweep_file_that_is_not_yaml_is_one_line_at_its_place(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("base: base.json\nmatrix: {passes.q.x: [1, 2]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_sweep(path)
    (line,) = caught.value.lines()
    assert line.startswith(f"{path}: $: not YAML: ")
    assert " at line 3 column 1" in line


def test_sweep_files_are_told_from_workflow_configs_whatever_their_format(tmp_path: Path) -> None:
    from modelcache.runner.sweep import is_sweep_file

    json_path, yaml_path = _both(tmp_path, {"base": "base.json", "matrix": MATRIX})
    searching = tmp_path / "olive.yml"
    searching.write_text(json.dumps({**BASE, "engine": {"search_strategy": True}}), "utf-8")
    plain = tmp_path / "workflow.yaml"
    plain.write_text(json.dumps({**BASE, "search_strategy": False}), "utf-8")
    assert [is_sweep_file(p) for p in (json_path, yaml_path, searching)] == [True] * 3
    assert [is_sweep_file(p) for p in (plain, tmp_path / "missing.yaml")] == [False, False]
