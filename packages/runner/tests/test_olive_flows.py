"""Olive's ``pass_flows`` run as a sweep: each flow a variant, the chain of its passes in its
order, sharing common prefixes by key; each flow of a config that searches a sweep of its own;
every mistake in the flows one line at its path; ``modelcache run`` pointing at the sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import chain_keys
from modelcache.runner.config import ConfigError, parse_config
from modelcache.runner.olive import olive_version
from modelcache.runner.sweep import SweepFile, parse_sweep, prepare_sweep

PASSES = {
    "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
    "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
    "cast_bf16": {"type": "TorchDtypeCast", "dtype": "bfloat16"},
}


def _document(model: Path, flows: Any, **more: Any) -> dict[str, Any]:
    return {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": PASSES,
        "pass_flows": flows,
        "cache_dir": "cache",
        "output_dir": "out",
        **more,
    }


def _sweep(document: dict[str, Any], folder: Path) -> SweepFile:
    return parse_sweep(document, folder=folder, source="olive.json")


def test_each_flow_is_a_variant_chaining_its_passes_in_its_order(
    tiny_bert: Path, tmp_path: Path
) -> None:
    flows = [["prune", "cast"], ["prune", "cast_bf16"], ["cast"]]
    sweep = _sweep(_document(tiny_bert, flows), tmp_path)

    assert [v.name for v in sweep.variants] == ["prune-cast", "prune-cast_bf16", "cast"]
    assert [[name for name, _ in v.config.passes] for v in sweep.variants] == flows
    assert sweep.output_dir == tmp_path / "out"
    assert [v.config.output_dir for v in sweep.variants] == [
        tmp_path / "out" / v.name for v in sweep.variants
    ]
    prepared = prepare_sweep(sweep)
    keys = {name: chain_keys(p.chain) for name, p in prepared.prepared}
    assert keys["prune-cast"][0] == keys["prune-cast_bf16"][0]  # the shared prune: one key
    assert keys["prune-cast"][1] != keys["cast"][0]  # a cast of another input


def test_every_mistake_of_the_flows_is_one_line_at_its_path(
    tiny_bert: Path, tmp_path: Path
) -> None:
    flows = [["prune", "nope"], [], ["cast"], ["cast"], "prune"]
    with pytest.raises(ConfigError) as caught:
        _sweep(_document(tiny_bert, flows), tmp_path)
    assert list(caught.value.lines()) == [
        "olive.json: $.pass_flows[0][1]: no pass named 'nope' under $.passes; passes are "
        "['prune', 'cast', 'cast_bf16']",
        "olive.json: $.pass_flows[1]: a flow is a non-empty list of pass names",
        "olive.json: $.pass_flows[3]: the same flow as $.pass_flows[2]",
        "olive.json: $.pass_flows[4]: a flow is a non-empty list of pass names",
    ]


def test_one_flow_of_every_pass_in_order_is_no_sweep_and_run_points_at_the_sweep(
    tiny_bert: Path, tmp_path: Path
) -> None:
    one = parse_config(_document(tiny_bert, [list(PASSES)]), base_dir=tmp_path)
    assert [name for name, _ in one.passes] == list(PASSES)
    with pytest.raises(ConfigError) as caught:
        parse_config(_document(tiny_bert, [["prune"], ["cast"]]), base_dir=tmp_path)
    (problem,) = caught.value.problems
    assert problem.path == "$.pass_flows"
    assert "run them with `modelcache sweep <this file>`" in problem.problem


@pytest.mark.skipif(olive_version() is None, reason="needs olive-ai")
def test_each_flow_of_a_config_that_searches_is_a_sweep_of_its_own(
    tiny_bert: Path, tmp_path: Path
) -> None:
    document = _document(
        tiny_bert,
        [["convert", "quantize"], ["convert"]],
        search_strategy={"execution_order": "joint", "sampler": "sequential"},
    )
    document["passes"] = {
        "convert": {"type": "OnnxConversion"},
        "quantize": {"type": "OnnxDynamicQuantization", "per_channel": [True, False],
                     "precision": "int8", "reduce_range": False, "quant_preprocess": False},
    }  # fmt: skip
    sweep = _sweep(document, tmp_path)
    names = [v.name for v in sweep.variants]
    assert names[:2] == ["convert-quantize.per_channel=true", "convert-quantize.per_channel=false"]
    assert names[2:] == ["convert"]
