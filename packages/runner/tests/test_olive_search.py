"""An Olive config whose ``search_strategy`` searches, run as a sweep: the points Olive's
search would try, each a variant whose config holds that point's concrete values, named
after what varies, keyed as the point; every mistake in the search one line at its path;
``modelcache run`` on such a config pointing at ``modelcache sweep``."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcache.planner import chain_keys
from modelcache.runner.cli import main
from modelcache.runner.config import ConfigError, check_passes, load_config
from modelcache.runner.olive import olive_version
from modelcache.runner.sweep import SweepFile, load_sweep, parse_sweep, prepare_sweep
from modelcache.runner.workflow import prepare

needs_olive = pytest.mark.skipif(olive_version() is None, reason="needs olive-ai")
USER_ERROR = 2
#: The parameters of OnnxDynamicQuantization that have searchable values in Olive 0.13, and
#: those values (``_default_config``'s ``search_defaults``).
SEARCHABLE = {
    "precision": ["int8", "uint8"],
    "per_channel": [True, False],
    "reduce_range": [True, False],
    "quant_preprocess": [True, False],
}
FIXED = {
    "precision": "int8",
    "per_channel": False,
    "reduce_range": False,
    "quant_preprocess": False,
}


def _document(quantize: dict[str, Any], strategy: Any, **more: Any) -> dict[str, Any]:
    return {
        "input_model": {"type": "HfModel", "model_path": "model"},
        "passes": {
            "convert": {"type": "OnnxConversion"},
            "quantize": {"type": "OnnxDynamicQuantization", **quantize},
        },
        "search_strategy": strategy,
        "cache_dir": "cache",
        "output_dir": "out",
        **more,
    }


JOINT = {"execution_order": "joint", "sampler": "sequential"}


def _sweep(document: dict[str, Any], folder: Path) -> SweepFile:
    return parse_sweep(document, folder=folder, source="olive.json")


def _lines(document: Any, folder: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _sweep(document, folder)
    return list(caught.value.lines())


def _points(sweep: SweepFile, names: list[str]) -> list[tuple[Any, ...]]:
    """Each variant's values of ``names`` in its quantize pass."""
    return [tuple(dict(v.config.passes[1][1])[n] for n in names) for v in sweep.variants]


# -- which points ------------------------------------------------------------------------------


@needs_olive
def test_an_exhaustive_search_is_the_product_of_the_searchable_values(tmp_path: Path) -> None:
    quantize = {
        **FIXED,
        "per_channel": [True, False],
        "precision": {
            "olive_parameter_type": "SearchParameter",
            "type": "Categorical",
            "support": ["int8", "uint8"],
        },
    }
    sweep = _sweep(_document(quantize, JOINT), tmp_path)
    points = _points(sweep, ["precision", "per_channel"])
    assert sorted(points) == sorted(itertools.product(["int8", "uint8"], [True, False]))
    assert [v.name for v in sweep.variants] == [
        "precision=int8,per_channel=true",
        "precision=uint8,per_channel=true",
        "precision=int8,per_channel=false",
        "precision=uint8,per_channel=false",
    ]  # Olive's order: the first parameter changes fastest
    assert sweep.output_dir == tmp_path / "out"
    assert sweep.variants[0].config.output_dir == tmp_path / "out" / sweep.variants[0].name


@needs_olive
def test_parameters_left_out_are_searched_as_olive_searches_them(tmp_path: Path) -> None:
    """With a search strategy, Olive searches every parameter the config leaves out that has
    searchable values: the variants are the product of Olive's own ``search_defaults``."""
    from olive.hardware import AcceleratorSpec
    from olive.passes.onnx.quantization import OnnxDynamicQuantization

    cpu = AcceleratorSpec(accelerator_type="cpu", execution_provider="CPUExecutionProvider")
    defaults = OnnxDynamicQuantization.default_config(cpu)
    olive_space = {
        name: [getattr(v, "value", v) for v in param.search_defaults.get_support()]
        for name, param in defaults.items()
        if param.search_defaults is not None
    }
    assert olive_space == SEARCHABLE  # the table above is Olive 0.13's

    sweep = _sweep(_document({"reduce_range": True}, True), tmp_path)
    searched = ["precision", "per_channel", "quant_preprocess"]
    expected = itertools.product(*(SEARCHABLE[name] for name in searched))
    assert sorted(_points(sweep, searched)) == sorted(expected)
    assert {dict(v.config.passes[1][1])["reduce_range"] for v in sweep.variants} == {True}
    assert sweep.notes[0].startswith("$.search_strategy is true: read as an older Olive")


@needs_olive
def test_the_search_space_is_made_for_the_targets_accelerator(tmp_path: Path) -> None:
    """Olive makes a pass's search space for its target: OnnxStaticQuantization searches
    more for QNN than for the CPU (the space made for the CPU everywhere would miss points
    a QNN target's search tries)."""
    from modelcache.runner.olive import PassSearch, Sampling, SearchFound, search_points

    search = [PassSearch(name="q", index=0, type="OnnxStaticQuantization", parameters={})]
    sizes = {}
    for device, provider in (("cpu", "CPUExecutionProvider"), ("npu", "QNNExecutionProvider")):
        found = search_points(search, Sampling(), base_dir=tmp_path, limit=1000,
                              accelerator=(device, provider))  # fmt: skip
        assert isinstance(found, SearchFound)
        sizes[provider] = found.size
    assert sizes["QNNExecutionProvider"] > sizes["CPUExecutionProvider"] > 1


@needs_olive
@given(
    seed=st.integers(min_value=0, max_value=10**6),
    max_samples=st.integers(min_value=1, max_value=20),
    searched=st.sets(st.sampled_from(sorted(SEARCHABLE)), min_size=1),
)
def test_random_sampling_is_deterministic_bounded_and_without_repeats(
    tmp_path_factory: pytest.TempPathFactory, seed: int, max_samples: int, searched: set[str]
) -> None:
    folder = tmp_path_factory.getbasetemp()
    quantize = {name: value for name, value in FIXED.items() if name not in searched}
    strategy = {"execution_order": "joint", "sampler": "random", "seed": seed,
                "max_samples": max_samples}  # fmt: skip
    document = _document(quantize, strategy)
    first, again = _sweep(document, folder), _sweep(copy.deepcopy(document), folder)
    names = sorted(SEARCHABLE)
    points = _points(first, names)
    assert points == _points(again, names)
    assert [v.name for v in first.variants] == [v.name for v in again.variants]
    assert 1 <= len(points) <= max_samples
    assert len(set(points)) == len(points)
    space = set(itertools.product(*(SEARCHABLE[n] if n in searched else [FIXED[n]] for n in names)))
    assert set(points) <= space
    if max_samples >= len(space):
        assert set(points) == space


@needs_olive
def test_random_points_are_the_ones_olives_sampler_draws(tmp_path: Path) -> None:
    from olive.search.search_parameter import Categorical
    from olive.search.search_strategy import SearchStrategy

    strategy = {"execution_order": "joint", "sampler": "random", "max_samples": 5, "seed": 11}
    sweep = _sweep(_document({}, strategy), tmp_path)
    search = SearchStrategy(
        {"execution_order": "joint", "sampler": "random",
         "sampler_config": {"max_samples": 5, "seed": 11}}
    )  # fmt: skip
    space = {name: Categorical(values) for name, values in SEARCHABLE.items()}
    search.initialize({"convert": [{}], "quantize": [space]}, "input", {})
    drawn = [dict(s.passes_configs["quantize"]["params"]) for s in search]
    names = list(SEARCHABLE)
    assert _points(sweep, names) == [tuple(point[n] for n in names) for point in drawn]


@needs_olive
@pytest.mark.parametrize(
    ("strategy", "count", "note"),
    [
        ({"execution_order": "joint", "search_algorithm": "exhaustive"}, 16, None),
        ({"execution_order": "joint", "search_algorithm": "random",
          "search_algorithm_config": {"num_samples": 3, "seed": 2}}, 3, None),
        ({"execution_order": "joint", "search_algorithm": "random"}, 1, None),  # older default
        ({"execution_order": "JOINT", "sampler": "tpe", "max_samples": 4}, 4, "the tpe sampler"),
        ({"execution_order": "pass-by-pass", "sampler": "sequential"}, 16, "pass-by-pass"),
        ({"execution_order": "joint", "sampler": "sequential", "max_samples": 5}, 5, None),
        ({"execution_order": "joint", "sampler": "sequential", "max_iter": 2}, 3, None),
        ({"execution_order": "joint", "sampler": "sequential", "seed": 0}, 16, None),  # Olive's CLI
    ],
)  # fmt: skip
def test_each_form_of_search_strategy_draws_what_olive_would(
    tmp_path: Path, strategy: dict[str, Any], count: int, note: str | None
) -> None:
    sweep = _sweep(_document({}, strategy), tmp_path)
    assert len(sweep.variants) == count
    if note is not None:
        assert any(note in n for n in sweep.notes), sweep.notes


@needs_olive
def test_a_pass_with_several_configs_is_a_choice_named_by_its_index(tmp_path: Path) -> None:
    document = _document({}, JOINT)
    document["passes"]["quantize"] = [
        {"type": "OnnxDynamicQuantization", **FIXED},
        {"type": "OnnxDynamicQuantization", "config": {**FIXED, "per_channel": [True, False]},
         "disable_search": True},
    ]  # fmt: skip
    sweep = _sweep(document, tmp_path)
    assert [v.name for v in sweep.variants] == [
        "quantize.config=0",
        "quantize.config=1,per_channel=true",
        "quantize.config=1,per_channel=false",
    ]
    origins = sweep.variants[1].config.passes[1][1].origins  # type: ignore[attr-defined]
    assert origins["per_channel"] == "$.passes.quantize[1].config.per_channel"
    assert any("disable_search is ignored, as Olive 0.13 ignores it" in n for n in sweep.notes)


# -- the variants' configs ---------------------------------------------------------------------


def _is_search(value: Any) -> bool:
    return value == "SEARCHABLE_VALUES" or isinstance(value, (list, dict))


@needs_olive
def test_variant_configs_carry_concrete_values_the_passes_accept(tmp_path: Path) -> None:
    quantize = {"config": {"per_channel": "SEARCHABLE_VALUES", "precision": ["int8", "uint8"]}}
    sweep = _sweep(_document(quantize, JOINT), tmp_path)
    assert len(sweep.variants) == 16
    for variant in sweep.variants:
        parameters = dict(variant.config.passes[1][1])
        assert set(parameters) == {"type", *SEARCHABLE}
        assert not any(_is_search(value) for value in parameters.values())
        _sound, problems = check_passes(variant.config.passes)
        assert problems == []


@needs_olive
def test_equal_points_have_equal_keys_whatever_searched_them(
    tiny_bert: Path, tmp_path: Path
) -> None:
    model = {"input_model": {"type": "HfModel", "model_path": str(tiny_bert)}}
    exhaustive = {**_document({**FIXED, "per_channel": [True, False]}, JOINT), **model}
    randomly = _document(
        {"config": {**FIXED, "per_channel": "SEARCHABLE_VALUES"}},
        {"execution_order": "joint", "sampler": "random", "seed": 5},
        **model,
    )
    plain = {**_document({**FIXED, "per_channel": True}, False), **model}
    keys = []
    for name, document in (("a", exhaustive), ("b", randomly)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        prepared = prepare_sweep(load_sweep(path))
        keys.append({n: chain_keys(p.chain) for n, p in prepared.prepared})
    (tmp_path / "plain.json").write_text(json.dumps(plain), encoding="utf-8")
    assert keys[0] == keys[1]
    assert set(keys[0]) == {"per_channel=true", "per_channel=false"}
    assert keys[0]["per_channel=true"] != keys[0]["per_channel=false"]
    plain_keys = chain_keys(prepare(load_config(tmp_path / "plain.json")).chain)
    assert keys[0]["per_channel=true"] == plain_keys


# -- mistakes ----------------------------------------------------------------------------------


def test_every_mistake_of_a_search_strategy_is_one_line_at_its_path(tmp_path: Path) -> None:
    strategy = {
        "execution_order": "sideways",
        "sampler": "grid",
        "max_iter": -1,
        "include_pass_params": "yes",
        "bogus": 1,
    }
    document = _document({}, None, engine={"search_strategy": strategy})
    del document["search_strategy"]
    assert _lines(document, tmp_path) == [
        "olive.json: $.engine.search_strategy: unknown field(s) ['bogus']; it has "
        "execution_order, sampler, sampler_config, search_algorithm, search_algorithm_config, "
        "output_model_num, stop_when_goals_met, max_iter, max_time, include_pass_params",
        'olive.json: $.engine.search_strategy.execution_order: give "joint" or '
        "\"pass-by-pass\", got 'sideways'",
        "olive.json: $.engine.search_strategy.sampler: choose 'sequential', 'random', 'tpe', "
        "got 'grid'",
        "olive.json: $.engine.search_strategy.max_iter: expected a whole number, 0 or more, got -1",
        "olive.json: $.engine.search_strategy.include_pass_params: expected true or false",
    ]


def test_sampler_settings_are_checked_where_they_are_written(tmp_path: Path) -> None:
    strategy = {
        "execution_order": "joint",
        "sampler": "random",
        "seed": 1,
        "sampler_config": {"seed": 2, "max_samples": "3", "group": True},
    }
    assert _lines(_document({}, strategy), tmp_path) == [
        "olive.json: $.search_strategy.sampler_config.seed: also given as "
        "$.search_strategy.seed; keep one of the two",
        "olive.json: $.search_strategy.sampler_config.max_samples: expected a whole number, "
        "0 or more, got '3'",
        "olive.json: $.search_strategy.sampler_config.group: the random sampler takes "
        "max_samples, seed",
    ]
    both = {"execution_order": "joint", "sampler": "random", "search_algorithm": "random"}
    assert _lines(_document({}, both), tmp_path) == [
        "olive.json: $.search_strategy: give one of sampler and search_algorithm (its older "
        "name), not both"
    ]


@needs_olive
def test_every_mistake_in_a_search_space_is_one_line_at_its_path(tmp_path: Path) -> None:
    quantize = {
        "per_channel": {"type": "Categorical", "support": [True, False]},
        "config": {
            "reduce_range": {"olive_parameter_type": "SearchParameter", "type": "Categorical",
                             "support": []},
            "precision": {"olive_parameter_type": "SearchParameter", "type": "Choice",
                          "support": ["int8"]},
            "quant_preprocess": {"olive_parameter_type": "SearchParameter",
                                 "type": "Categorical", "support": [True, False, True]},
        },
    }  # fmt: skip
    lines = _lines(_document(quantize, JOINT), tmp_path)
    assert lines == [
        "olive.json: $.passes.quantize.per_channel: to search it, write "
        '"olive_parameter_type": "SearchParameter" beside "type" and "support", as Olive reads '
        "search parameters",
        "olive.json: $.passes.quantize.config.reduce_range.support: give a non-empty list of "
        "values to try",
        "olive.json: $.passes.quantize.config.precision.type: choose 'Categorical', "
        "'Conditional', 'ConditionalDefault', got 'Choice'",
        "olive.json: $.passes.quantize.config.quant_preprocess.support[2]: duplicate of [0]",
    ]


@needs_olive
def test_what_olive_refuses_in_a_search_is_one_line_at_its_path(tmp_path: Path) -> None:
    document = _document({"per_channel": [1, "x"]}, JOINT)
    document["passes"]["prune"] = {"type": "MagnitudePruning", "sparsity": "SEARCHABLE_VALUES"}
    document["passes"] = {"prune": document["passes"].pop("prune"), **document["passes"]}
    lines = _lines(document, tmp_path)
    assert lines == [
        "olive.json: $.passes.prune.sparsity: MagnitudePruning is not one of Olive's passes, so "
        "Olive cannot search it: give one value (a matrix sweeps modelcache's own passes, "
        "docs/sweeps.md)",
        "olive.json: $.passes.quantize.per_channel: Input should be a valid boolean, got [1, 'x']",
    ]
    duplicated = _lines(_document({**FIXED, "per_channel": [True, True]}, JOINT), tmp_path)
    assert duplicated == ["olive.json: $.passes.quantize.per_channel[1]: duplicate of [0]"]


@needs_olive
def test_a_search_too_large_for_a_sweep_says_to_sample_it(tmp_path: Path) -> None:
    values = {"olive_parameter_type": "SearchParameter", "type": "Categorical"}
    quantize = {
        "op_types_to_exclude": {**values, "support": [[str(i)] for i in range(200)]},
        "nodes_to_exclude": {**values, "support": [[str(i)] for i in range(100)]},
    }
    (line,) = _lines(_document(quantize, JOINT), tmp_path)
    assert line == (
        "olive.json: $.search_strategy: the search has 320000 points; a sweep makes at most "
        "10000 variants: give max_samples, or fewer values to try"
    )


# -- run, plan ---------------------------------------------------------------------------------


def test_run_on_a_searching_config_points_at_sweep_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = _document({"per_channel": [True, False]}, JOINT)
    document["passes"]["convert"] = [{"type": "OnnxConversion"}] * 2  # a choice: no line of its own
    path = tmp_path / "olive.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    assert main(["run", str(path)]) == USER_ERROR

    assert capsys.readouterr().err.splitlines() == [
        f"error: {path}: $.search_strategy: this config searches: run it with `modelcache "
        f"sweep {path}`, which runs each point of the search as a variant (docs/olive.md), or "
        "set search_strategy to false"
    ]


@needs_olive
def test_plan_of_a_searching_config_plans_the_sweep(
    tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelcache.planner import SweepPlan, loads
    from modelcache.runner.cli.sweep import is_sweep_file

    document = _document(
        {**FIXED, "per_channel": [True, False]},
        {"execution_order": "joint", "sampler": "random", "seed": 3},
        input_model={"type": "HfModel", "model_path": str(tiny_bert)},
        evaluator={"metrics": ["size"]},
    )
    path = tmp_path / "olive.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML too

    assert is_sweep_file(path)
    commands = [["sweep", str(path), "--plan", "--format", "json"],
                ["plan", str(path), "--format", "json"]]  # fmt: skip
    for command in commands:
        assert main(command) == 0, command
        plan = loads(capsys.readouterr().out, SweepPlan)
        assert sorted(w.name for w in plan.workflows) == ["per_channel=false", "per_channel=true"]
        assert [len(s.keys) for s in plan.segments] == [1, 1, 1]  # convert shared
    assert not (tmp_path / "cache").exists()
