"""Olive's workflow configs read as Olive reads them (issue 13): its fields that mean
something here become modelcache's, those that mean nothing leave a note, and unknown
fields, contradictions and searches are problems at their paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.config import (
    CloudOverrides,
    ConfigError,
    PassParameters,
    Problem,
    WorkflowConfig,
    check_passes,
    parse_config,
    unsupported_input_model,
)
from modelcache.runner.olive import olive_version
from modelcache.runner.passes import PassContext

needs_olive = pytest.mark.skipif(olive_version() is None, reason="needs olive-ai")
SWEEP = "run it with `modelcache sweep"


def _document(**change: Any) -> dict[str, Any]:
    return {
        "input_model": {"type": "HfModel", "model_path": "model"},
        "passes": {"convert": {"type": "OnnxConversion"}},
        **change,
    }


def _problems(document: Any, **options: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, **options)
    return {problem.path: problem.problem for problem in caught.value.problems}


def _pass_problems(document: Any) -> dict[str, str]:
    """The problems of the passes, found as ``prepare`` finds them (``check_passes``)."""
    _sound, problems = check_passes(parse_config(document).passes)
    return {problem.path: problem.problem for problem in problems}


def _notes(config: WorkflowConfig, path: str) -> list[str]:
    return [note for note in config.notes if note.startswith(f"{path} ")]


# -- fields that mean nothing here ------------------------------------------------------------

IGNORED_FIELDS = [
    ("workflow_id", "w1"),
    ("log_severity_level", 0),
    ("ort_log_severity_level", 3),
    ("ort_py_log_severity_level", 3),
    ("log_to_file", True),
    ("output_name", "model"),
    ("plot_pareto_frontier", False),
    ("no_artifacts", True),
    ("packaging_config", {"type": "Zipfile", "name": "out"}),
    ("azureml_client", {"subscription_id": "s"}),
    ("auto_optimizer_config", {}),
    ("evaluate_input_model", False),
    ("clean_cache", True),
    ("clean_evaluation_cache", True),
]


#: RunConfig's own fields, which Olive's engine section does not take.
RUN_CONFIG_FIELDS = {"workflow_id", "azureml_client", "auto_optimizer_config"}


@pytest.mark.parametrize(("field", "value"), IGNORED_FIELDS)
@pytest.mark.parametrize("where", ["top", "engine"])
def test_an_olive_field_that_means_nothing_here_is_accepted_with_a_note(
    field: str, value: Any, where: str
) -> None:
    if where == "engine" and field in RUN_CONFIG_FIELDS:
        assert f"['{field}']" in _problems(_document(engine={field: value}))["$.engine"]
        return
    document = _document(**{field: value}) if where == "top" else _document(engine={field: value})
    config = parse_config(document)
    path = f"$.{field}" if where == "top" else f"$.engine.{field}"
    (note,) = _notes(config, path)
    assert "ignored" in note


def test_a_config_without_olive_fields_has_no_notes() -> None:
    assert parse_config(_document()).notes == ()


def test_unknown_fields_are_still_problems_everywhere_at_once() -> None:
    problems = _problems(
        _document(
            bogus=1,
            engine={"cache_dir": "c", "nonsense": 2},
            input_model={"type": "HfModel", "model_path": "m", "model_loader": "x"},
            cache_config={"cache_dir": "c2", "wat": 1},
        )
    )
    assert "['bogus']" in problems["$"]
    assert "['nonsense']" in problems["$.engine"]
    assert "['model_loader']" in problems["$.input_model"]  # a PyTorchModel field
    assert "['wat']" in problems["$.cache_config"]


def test_a_field_both_at_the_top_and_in_engine_is_a_problem() -> None:
    problems = _problems(_document(output_dir="a", engine={"output_dir": "b"}))
    assert problems == {"$.engine.output_dir": "also given as $.output_dir; keep one of the two"}


def test_engine_fields_read_as_if_top_level_and_problems_name_engine() -> None:
    config = parse_config(_document(engine={"output_dir": "o", "cache_dir": "c"}))
    assert (str(config.output_dir), str(config.cache_dir)) == ("o", "c")
    problems = _problems(_document(engine={"output_dir": 5}))
    assert problems["$.engine.output_dir"] == "expected a path, got a number"


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [False, None, {}])
def test_a_search_strategy_that_does_not_search_is_accepted(strategy: Any) -> None:
    parse_config(_document(search_strategy=strategy))
    parse_config(_document(engine={"search_strategy": strategy}))


@pytest.mark.parametrize("strategy", [True, {"execution_order": "joint", "sampler": "random"}])
def test_a_search_is_one_clear_problem(strategy: Any) -> None:
    (path, problem), *others = _problems(_document(engine={"search_strategy": strategy})).items()
    assert not others
    assert path == "$.engine.search_strategy"
    assert problem == (
        "this config searches: run it with `modelcache sweep <this file>`, which runs each "
        "point of the search as a variant (docs/olive.md), or set search_strategy to false"
    )


def test_several_configs_for_a_pass_are_a_search_and_one_is_the_pass() -> None:
    config = parse_config(_document(passes={"c": [{"type": "OnnxConversion", "target_opset": 17}]}))
    assert dict(config.passes[0][1]) == {"type": "OnnxConversion", "target_opset": 17}
    problems = _problems(_document(passes={"c": [{"type": "OnnxConversion"}] * 2}))
    assert SWEEP in problems["$.passes.c"]
    problems = _pass_problems(_document(passes={"c": [{"type": "OnnxConversion", "opset": 1}]}))
    assert "unknown parameter" in problems["$.passes.c[0].opset"]


# -- systems, evaluators ----------------------------------------------------------------------


def test_systems_host_and_target_are_checked_and_noted_unless_local() -> None:
    systems = {
        "local": {"type": "LocalSystem"},
        "docker": {"type": "Docker", "config": {"image_name": "x"}},
        "aml": {"type": "AzureML"},
        "env": {"type": "pythonenvironment"},
        "iso": {"type": "IsolatedORT"},
    }
    config = parse_config(_document(systems=systems, host="local", target="docker"))
    for name in ("docker", "aml", "env", "iso"):
        (note,) = _notes(config, f"$.systems.{name}")
        assert "runs everything locally" in note
    assert not _notes(config, "$.systems.local")
    inline = parse_config(_document(engine={"target": {"type": "Docker"}}))
    assert _notes(inline, "$.engine.target")


def test_an_unknown_system_name_or_type_is_a_problem() -> None:
    problems = _problems(
        _document(systems={"s": {"type": "Quantum"}}, host="nowhere", target={"x": 1})
    )
    assert "no system named 'nowhere'" in problems["$.host"]
    assert "one of LocalSystem, Docker" in problems["$.systems.s"]
    assert '"type"' in problems["$.target"]


def test_an_evaluator_named_under_evaluators_is_the_evaluator() -> None:
    evaluators = {
        "common": {"metrics": ["size", "latency"], "latency_runs": 3},
        "other": {"metrics": ["size"]},
    }
    config = parse_config(_document(evaluators=evaluators, engine={"evaluator": "common"}))
    assert config.evaluator is not None
    assert config.evaluator.metrics == ("size", "latency")
    assert config.evaluator.latency_runs == 3
    assert _notes(config, "$.evaluators.other")
    problems = _problems(_document(evaluators={"common": {"latency_runs": 0}}, evaluator="common"))
    assert "latency_runs must be at least 1" in problems["$.evaluators.common"]


def test_an_unknown_evaluator_name_is_a_problem_naming_the_known_ones() -> None:
    problems = _problems(_document(evaluators={"a": {}}, evaluator="b"))
    assert "no evaluator named 'b'" in problems["$.evaluator"]
    assert "['a']" in problems["$.evaluator"]


def test_olive_metric_objects_become_modelcache_metrics_or_notes() -> None:
    metrics = [
        {"name": "lat", "type": "latency", "sub_types": [{"name": "avg"}]},
        {"name": "disk", "type": "size_on_disk"},
        {"name": "acc", "type": "accuracy", "data_config": "d"},
        {"name": "tput", "type": "throughput", "sub_types": [{"name": "avg"}]},
    ]
    config = parse_config(
        _document(data_configs=[{"name": "d"}], evaluator={"metrics": metrics, "type": "X"})
    )
    assert config.evaluator is not None
    assert config.evaluator.metrics == ("latency", "size", "throughput")
    assert "measured as modelcache's 'throughput'" in _notes(config, "$.evaluator.metrics[3]")[0]
    assert len(_notes(config, "$.evaluator.metrics[0]")) == 1
    assert _notes(config, "$.evaluator.type")
    only_accuracy = parse_config(
        _document(evaluator={"metrics": [metrics[2]]}, data_configs=[{"name": "d"}])
    )
    if olive_version() is None:
        assert "left out" in _notes(config, "$.evaluator.metrics[2]")[0]
        assert (
            "pip install 'modelcache-runner[olive]'" in _notes(config, "$.evaluator.metrics[2]")[0]
        )
        assert only_accuracy.evaluator is None
    else:  # Olive's to measure, its data config named by a copy of it
        assert not _notes(config, "$.evaluator.metrics[2]")
        olives = ({"name": "acc", "type": "accuracy", "data_config": {"name": "d"}},)
        assert config.evaluator.olive_metrics == olives
        assert only_accuracy.evaluator is not None
        assert only_accuracy.evaluator.metrics == ()
        assert only_accuracy.evaluator.olive_metrics == olives
    problems = _problems(_document(evaluator={"metrics": [{"name": "m", "type": "speed"}]}))
    assert "unknown metric type" in problems["$.evaluator.metrics[0].type"]


@pytest.mark.skipif(olive_version() is None, reason="needs olive-ai")
def test_a_metric_of_hugging_face_evaluate_without_it_is_left_out_saying_so() -> None:
    from modelcache.runner._distributions import version

    if version("evaluate") is not None:
        pytest.skip("needs evaluate absent")
    metric = {"name": "acc", "type": "accuracy", "backend": "huggingface_metrics",
              "sub_types": [{"name": "accuracy"}]}  # fmt: skip
    config = parse_config(_document(evaluator={"metrics": [metric, {"type": "size_on_disk"}]}))
    assert config.evaluator is not None
    assert config.evaluator.olive_metrics == ()
    (note,) = _notes(config, "$.evaluator.metrics[0]")
    assert note.endswith("evaluate package, not installed here: pip install evaluate")


@pytest.mark.parametrize("kind", ["OnnxModel", "pytorchmodel"])
def test_olive_latency_is_left_out_for_an_input_with_no_tokenizer(kind: str) -> None:
    metrics = [{"name": "lat", "type": "latency"}, {"name": "disk", "type": "size_on_disk"},
               {"name": "tput", "type": "throughput"}]  # fmt: skip
    model = {"type": kind, "model_path": "m", "model_loader": "l", "model_script": "s.py"}
    if kind == "OnnxModel":
        model = {"type": kind, "model_path": "m.onnx"}
    config = parse_config(_document(input_model=model, evaluator={"metrics": metrics}))
    assert config.evaluator is not None
    assert config.evaluator.metrics == ("size",)
    (note,) = _notes(config, "$.evaluator.metrics[0]")
    assert "left out: modelcache times latency on sentences" in note
    (note,) = _notes(config, "$.evaluator.metrics[2]")
    assert "left out: modelcache times throughput on sentences" in note


@needs_olive
def test_olive_latency_with_data_of_an_input_with_no_tokenizer_is_measured_by_olive() -> None:
    data = {"name": "rows", "load_dataset_config": {"type": "dummy_dataset"}}
    metrics = [{"name": "lat", "type": "latency", "data_config": "rows",
                "sub_types": [{"name": "avg"}]}]  # fmt: skip
    model = {"type": "OnnxModel", "model_path": "m.onnx"}
    document = _document(input_model=model, evaluator={"metrics": metrics}, data_configs=[data])
    config = parse_config(document)
    assert config.evaluator is not None
    assert config.evaluator.metrics == ()
    (measured,) = config.evaluator.olive_metrics
    assert measured["data_config"] == data  # a copy of the one it names, as Olive resolves it
    (note,) = _notes(config, "$.evaluator.metrics[0]")
    assert "is measured by Olive's evaluator on its data_config" in note


@needs_olive
def test_a_metric_on_a_hugging_face_dataset_without_datasets_is_left_out_saying_so(
    not_installed: Callable[..., None],
) -> None:
    from modelcache.runner.config import _olive_evaluator

    not_installed(_olive_evaluator, "datasets")
    glue = {"name": "glue", "type": "HuggingfaceContainer",
            "load_dataset_config": {"data_name": "glue", "subset": "mrpc"}}  # fmt: skip
    rows = {"name": "rows", "load_dataset_config": {"type": "dummy_dataset"}}
    custom = {"name": "c", "type": "custom", "data_config": "rows",
              "sub_types": [{"name": "v", "priority": 1}],
              "user_config": {"user_script": "s.py", "evaluate_func": "f"}}  # fmt: skip
    accuracy = {**custom, "name": "acc", "data_config": "glue"}
    document = _document(evaluator={"metrics": [accuracy, custom]}, data_configs=[glue, rows])
    config = parse_config(document)
    assert config.evaluator is not None
    assert [m["name"] for m in config.evaluator.olive_metrics] == ["c"]
    (note,) = _notes(config, "$.evaluator.metrics[0]")
    assert note.endswith("needs the datasets package, not installed here: pip install datasets")


@needs_olive
def test_the_priorities_olive_is_given_run_from_one_without_the_metrics_left_out(
    not_installed: Callable[..., None],
) -> None:
    # As Olive's mobilenet example: its accuracy (priority 1) needs Hugging Face's evaluate.
    from modelcache.runner.config import _olive_evaluator

    not_installed(_olive_evaluator, "evaluate")
    data = {"name": "rows", "load_dataset_config": {"type": "dummy_dataset"}}
    accuracy = {"name": "acc", "type": "accuracy", "backend": "huggingface_metrics",
                "data_config": "rows",
                "sub_types": [{"name": "accuracy", "priority": 1}]}  # fmt: skip
    latency = {"name": "lat", "type": "latency", "data_config": "rows",
               "sub_types": [{"name": "avg", "priority": 2}, {"name": "max", "priority": 3},
                             {"name": "min"}]}  # fmt: skip
    model = {"type": "OnnxModel", "model_path": "m.onnx"}
    evaluator = {"metrics": [accuracy, latency]}
    config = parse_config(_document(input_model=model, evaluator=evaluator, data_configs=[data]))
    assert config.evaluator is not None
    (kept,) = config.evaluator.olive_metrics
    assert [sub.get("priority") for sub in kept["sub_types"]] == [1, 2, None]
    assert latency["sub_types"][0]["priority"] == 2  # the config itself is left as written


# -- passes ------------------------------------------------------------------------------------


def test_a_pass_nested_config_is_flattened_and_its_problems_named_where_written() -> None:
    passes = {"c": {"type": "OnnxConversion", "config": {"target_opset": 17}}}
    config = parse_config(_document(passes=passes))
    ((_name, parameters),) = config.passes
    assert dict(parameters) == {"type": "OnnxConversion", "target_opset": 17}
    assert isinstance(parameters, PassParameters)
    problems = _pass_problems(
        _document(passes={"c": {"type": "OnnxConversion", "config": {"target_opset": "x"}}})
    )
    assert problems == {"$.passes.c.config.target_opset": "must be an integer, got 'x'"}


def test_a_parameter_both_nested_and_flat_is_a_problem() -> None:
    passes = {"c": {"type": "OnnxConversion", "target_opset": 17, "config": {"target_opset": 18}}}
    problems = _problems(_document(passes=passes))
    also = "also given as $.passes.c.target_opset; keep one of the two"
    assert problems == {"$.passes.c.config.target_opset": also}


def test_pass_keys_that_are_not_parameters_are_taken_out_with_notes() -> None:
    spec = {
        "type": "OnnxConversion",
        "host": {"type": "Docker"},
        "evaluator": "common",
        "disable_search": True,
        "clean_run_cache": True,
        "output_name": "x",
    }
    config = parse_config(_document(passes={"c": spec}, evaluators={"common": {}}))
    assert dict(config.passes[0][1]) == {"type": "OnnxConversion"}
    for key in ("host", "evaluator", "disable_search", "clean_run_cache", "output_name"):
        assert _notes(config, f"$.passes.c.{key}"), key
    problems = _problems(
        _document(passes={"c": {"type": "OnnxConversion", "disable_search": False, "host": "h"}})
    )
    assert "`modelcache sweep`" in problems["$.passes.c.disable_search"]
    assert "no system named 'h'" in problems["$.passes.c.host"]


@needs_olive
def test_a_builtin_given_what_only_olives_pass_honours_runs_olives_with_a_note() -> None:
    written = {"type": "OnnxConversion", "use_dynamo_exporter": False, "target_opset": 17}
    config = parse_config(_document(passes={"c": written}))
    assert config.passes[0][1]["type"] == "olive:OnnxConversion"
    assert any("use_dynamo_exporter" in note for note in _notes(config, "$.passes.c"))
    same = parse_config(_document(passes={"c": {**written, "use_dynamo_exporter": True}}))
    assert same.passes[0][1]["type"] == "OnnxConversion"  # honoured: the built-in
    assert not _notes(same, "$.passes.c")
    asked = parse_config(_document(passes={"c": {**written, "type": "olive:OnnxConversion"}}))
    assert asked.passes[0][1]["type"] == "olive:OnnxConversion"
    assert not _notes(asked, "$.passes.c")


def test_parameters_olive_ignores_are_noted_where_written_and_kept() -> None:
    quantize = {"type": "OnnxQuantization", "config": {"weight_type": "QUInt8"},
                "prepare_qnn_config": True}  # fmt: skip
    config = parse_config(_document(passes={"q": quantize}))
    assert dict(config.passes[0][1]) == {"type": "OnnxQuantization", "weight_type": "QUInt8",
                                         "prepare_qnn_config": True}  # fmt: skip
    (weight,) = [n for n in config.notes if n.startswith("$.passes.q.config.weight_type:")]
    assert "Olive 0.13 ignores it" in weight
    assert "kept in the pass's key" in weight
    assert any(n.startswith("$.passes.q.prepare_qnn_config:") for n in config.notes)
    dynamic = parse_config(_document(passes={"q": {"type": "OnnxDynamicQuantization",
                                                   "weight_type": "QUInt8"}}))  # fmt: skip
    assert not dynamic.notes  # a parameter of the built-in


@pytest.mark.parametrize("weight_type", ["QUInt8", "uint8", "QInt8"])
def test_beside_precision_the_builtins_weight_type_is_ignored_as_olive_ignores_it(
    weight_type: str,
) -> None:
    # As a search writes precision beside the weight_type of a config of an older Olive.
    quantize = {"type": "OnnxDynamicQuantization", "weight_type": weight_type, "precision": "int8"}
    config = parse_config(_document(passes={"q": quantize}))
    assert dict(config.passes[0][1]) == {"type": "OnnxDynamicQuantization", "precision": "int8"}
    notes = _notes(config, "$.passes.q.weight_type")
    if weight_type == "QInt8":  # the same quantization: nothing to say
        assert not notes
    else:
        (note,) = notes
        assert "Olive 0.13 ignores weight_type" in note
        assert "as precision says ('int8')" in note


def test_an_older_olives_quant_type_name_is_read_as_olive_0_13_spells_it() -> None:
    quantize = {"type": "OnnxStaticQuantization", "activation_type": "QUInt16"}
    config = parse_config(_document(passes={"q": quantize}))
    assert dict(config.passes[0][1]) == {"type": "OnnxStaticQuantization",
                                         "activation_type": "uint16"}  # fmt: skip
    (note,) = [n for n in config.notes if n.startswith("$.passes.q.activation_type:")]
    assert "'QUInt16' is an older Olive's spelling of 'uint16'" in note
    assert "write that" in note
    spelt = parse_config(_document(passes={"q": {**quantize, "activation_type": "uint16"}}))
    assert dict(spelt.passes[0][1]) == dict(config.passes[0][1])  # one meaning, one key
    assert not [n for n in spelt.notes if "activation_type" in n]
    # Only where an older Olive took QuantType names: Olive 0.13 refuses it elsewhere.
    other = parse_config(_document(passes={"q": {"type": "OnnxStaticQuantization",
                                                 "precision": "QUInt8"}}))  # fmt: skip
    assert dict(other.passes[0][1])["precision"] == "QUInt8"


def test_a_data_config_reference_is_replaced_by_a_copy_before_the_passes_are_checked() -> None:
    data = {"name": "calib", "type": "HuggingfaceContainer", "params": {"split": "train"}}
    passes = {
        "c": {"type": "OnnxConversion", "config": {"data_config": "calib"}},
        "d": {"type": "OnnxDynamicQuantization", "inner": {"eval_data_config": "calib"}},
    }
    config = parse_config(_document(data_configs=[data], passes={"c": passes["c"]}), source="")
    assert config.data_configs == {"calib": data}
    parameters = dict(config.passes[0][1])
    assert parameters["data_config"] == data
    assert parameters["data_config"] is not config.data_configs["calib"]
    # check_passes sees the object, at the path the file wrote the name.
    _sound, problems = check_passes(config.passes)
    assert [p.path for p in problems] == ["$.passes.c.config.data_config"]
    both = _pass_problems(_document(data_configs=[data], passes=passes))
    assert "unknown parameter" in both["$.passes.d.inner"]


def test_an_unknown_data_config_name_is_a_problem_at_the_parameter() -> None:
    passes = {"c": {"type": "OnnxConversion", "config": {"calibration_data_config": "nope"}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(_document(data_configs=[{"name": "calib"}], passes=passes))
    (problem,) = [p for p in caught.value.problems if "data config" in p.problem]
    assert problem.path == "$.passes.c.config.calibration_data_config"
    assert "no data config named 'nope'" in problem.problem


def test_data_configs_need_distinct_names() -> None:
    problems = _problems(_document(data_configs=[{"name": "a"}, {"type": "x"}, {"name": "a"}]))
    assert "needs a name" in problems["$.data_configs[1].name"]
    assert "also $.data_configs[0]'s" in problems["$.data_configs[2].name"]
    older = parse_config(_document(data_configs={"a": {"type": "x"}}))
    assert older.data_configs == {"a": {"type": "x", "name": "a"}}


def test_pass_flows_other_than_the_written_order_point_at_the_sweep() -> None:
    passes = {"a": {"type": "OnnxConversion"}, "b": {"type": "OnnxDynamicQuantization"}}
    config = parse_config(_document(passes=passes, pass_flows=[["a", "b"]]))
    assert _notes(config, "$.pass_flows")
    problems = _problems(_document(passes=passes, pass_flows=[["a"], ["a", "b"]]))
    assert "run them with `modelcache sweep <this file>`" in problems["$.pass_flows"]


# -- input model -------------------------------------------------------------------------------


def test_an_hf_model_is_read_whatever_the_case_of_its_type_with_its_handler_settings() -> None:
    model = {
        "type": "hfmodel",
        "model_path": "m",
        "task": "feature-extraction",
        "io_config": {"input_names": ["input_ids"]},
        "load_kwargs": {"trust_remote_code": False},
        "model_attributes": {"a": 1},
        "adapter_path": None,
    }
    config = parse_config(_document(input_model=model))
    assert config.input_model.type == "HfModel"
    assert config.input_model.model_path == "m"
    assert config.input_model.handler_settings == {
        k: v for k, v in model.items() if k not in ("type", "model_path")
    }
    assert unsupported_input_model(config) is None


def test_an_input_model_nested_config_is_flattened() -> None:
    model = {"type": "HFModel", "config": {"model_path": "m", "task": "x", "revision": "main"}}
    config = parse_config(_document(input_model=model))
    assert (config.input_model.model_path, config.input_model.revision) == ("m", "main")
    assert config.input_model.handler_settings == {"task": "x"}
    problems = _problems(_document(input_model={"type": "HfModel", "config": {"model_path": 3}}))
    assert "$.input_model.config.model_path" in problems


def test_a_handler_setting_of_the_wrong_type_is_a_problem() -> None:
    model = {"type": "HfModel", "model_path": "m", "task": 5, "load_kwargs": []}
    problems = _problems(_document(input_model=model))
    assert problems == {
        "$.input_model.task": "expected a string, got a number",
        "$.input_model.load_kwargs": "expected an object, got a list",
    }


@pytest.mark.parametrize(
    ("kind", "fields", "spelt"),
    [
        (
            "PytorchModel",
            {"model_loader": "load", "model_script": "s.py", "dummy_inputs_func": "f"},
            "PyTorchModel",
        ),
        ("ONNXModel", {"onnx_file_name": "m.onnx", "use_ort_extensions": False}, "OnnxModel"),
    ],
)
def test_pytorch_and_onnx_models_are_read_for_a_run_to_start_from(
    kind: str, fields: dict[str, Any], spelt: str
) -> None:
    config = parse_config(_document(input_model={"type": kind, "model_path": "m", **fields}))
    assert config.input_model.type == spelt
    assert config.input_model.handler_settings == fields
    assert unsupported_input_model(config) is None


@pytest.mark.parametrize("name", ["external_initializers_file_name", "constant_inputs_file_name"])
def test_an_onnx_model_fed_from_other_files_is_refused_at_its_setting(name: str) -> None:
    model = {"type": "OnnxModel", "model_path": "m", name: "weights.npz"}
    problem = unsupported_input_model(parse_config(_document(input_model=model)))
    assert problem is not None
    assert problem.path == f"$.input_model.{name}"
    assert "not supported yet" in problem.problem
    assert f"remove {name}" in problem.problem


def test_a_pytorch_model_its_loader_builds_needs_no_model_path() -> None:
    model = {"type": "PyTorchModel", "model_loader": "load", "model_script": "s.py"}
    config = parse_config(_document(input_model=model))
    assert config.input_model.model_path is None


@pytest.mark.parametrize(
    "model",
    [
        {"type": "HfModel"},
        {"type": "HfModel", "model_path": None},
        {"type": "OnnxModel"},
        {"type": "PyTorchModel", "model_loader": "load"},  # a loader of no script's
        {"type": "PyTorchModel", "model_script": "s.py"},  # a script with no loader
    ],
)
def test_model_path_is_required_unless_the_loader_builds_the_model(
    model: dict[str, Any],
) -> None:
    problems = _problems(_document(input_model=model))
    assert problems["$.input_model.model_path"] == "required field missing"


def test_olive_output_dir_null_is_the_default_with_a_note() -> None:
    config = parse_config(_document(output_dir=None))
    assert str(config.output_dir) == "out"
    assert any(note.startswith("$.output_dir is null") for note in config.notes)
    engine = parse_config(_document(engine={"output_dir": None}))
    assert any(note.startswith("$.engine.output_dir is null") for note in engine.notes)


def test_a_model_type_olive_has_but_modelcache_does_not_read_is_still_refused() -> None:
    problems = _problems(_document(input_model={"type": "CompositeModel", "model_path": "m"}))
    assert "is not supported" in problems["$.input_model"]


# -- the shared cache --------------------------------------------------------------------------

URL = "https://acct.blob.core.windows.net/olive-cache"


def _cloud(config: WorkflowConfig) -> tuple[Any, ...]:
    cloud = config.cloud_cache_config
    assert cloud is not None
    return cloud.enable_cloud_cache, cloud.account_url, cloud.container_name, cloud.upload_to_cloud


def test_a_url_as_cache_dir_is_the_shared_cache_never_a_local_folder() -> None:
    config = parse_config(_document(cache_dir=URL))
    assert "https:" not in str(config.cache_dir)
    assert str(config.cache_dir) == ".modelcache/cache"  # the default local cache
    assert _cloud(config) == (True, "https://acct.blob.core.windows.net", "olive-cache", True)


def test_a_folder_and_a_url_as_cache_dir_are_the_two_tiers() -> None:
    config = parse_config(_document(cache_dir=["here", URL]))
    assert str(config.cache_dir) == "here"
    assert _cloud(config)[2] == "olive-cache"
    reversed_ = parse_config(_document(cache_dir=[URL, "here"]))
    assert str(reversed_.cache_dir) == "here"


def test_a_url_that_is_not_an_azure_container_is_a_problem_not_a_folder() -> None:
    for url, words in [
        ("http://127.0.0.1:10000/devstoreaccount1/c", "a URL is not a local folder"),
        ("https://acct.blob.core.windows.net/c/sub", "nothing below it"),
        ("https:/acct.blob.core.windows.net/c", "a URL is not a local folder"),
    ]:
        assert words in _problems(_document(cache_dir=url))["$.cache_dir"]
    problems = _problems(_document(cache_dir=["a", URL, "b"]))
    assert "at most two" in problems["$.cache_dir"]
    problems = _problems(_document(cache_dir=[URL, URL.replace("olive-cache", "other")]))
    assert "keep one of the two" in problems["$.cache_dir[1]"]


def test_a_container_url_may_carry_a_sas_which_no_problem_quotes() -> None:
    config = parse_config(_document(cache_dir=URL + "?sv=1&sig=SECRET"))
    assert _cloud(config)[1:3] == (URL + "?sv=1&sig=SECRET", "olive-cache")
    problems = _problems(_document(cache_dir=URL + "/sub?sig=SECRET"))
    assert all("SECRET" not in problem for problem in problems.values())


def test_cache_config_maps_onto_the_cloud_cache() -> None:
    cache_config = {
        "cache_dir": "local",
        "account_name": "acct",
        "container_name": "olive-cache",
        "update_shared_cache": False,
        "clean_cache": True,
    }
    config = parse_config(_document(cache_config=cache_config))
    assert str(config.cache_dir) == "local"
    assert _cloud(config) == (True, "https://acct.blob.core.windows.net", "olive-cache", False)
    assert _notes(config, "$.cache_config.clean_cache")


def test_enable_shared_cache_false_does_not_override_named_containers_as_in_olive() -> None:
    config = parse_config(_document(cache_dir=URL, enable_shared_cache=False))
    assert _cloud(config)[0] is True
    assert any(
        "Olive uses all the same" in note for note in _notes(config, "$.enable_shared_cache")
    )


def test_enable_shared_cache_without_a_container_says_what_to_write() -> None:
    problems = _problems(_document(enable_shared_cache=True))
    assert "olivecachemodels" in problems["$.enable_shared_cache"]
    assert "container_name" in problems["$.enable_shared_cache"]


def test_cloud_cache_config_true_is_accepted_when_another_form_names_the_container() -> None:
    config = parse_config(_document(cloud_cache_config=True, cache_dir=URL))
    assert _cloud(config)[:3] == (True, "https://acct.blob.core.windows.net", "olive-cache")
    alone = _problems(_document(cloud_cache_config=True))
    assert '"container_name"' in alone["$.cloud_cache_config"]


@pytest.mark.parametrize(
    ("change", "path", "other"),
    [
        (
            {"cloud_cache_config": {"container_name": "a-one"}, "cache_dir": URL},
            "$.cache_dir",
            "$.cloud_cache_config.container_name",
        ),
        (
            {"cache_config": {"account_name": "other", "container_name": "olive-cache"},
             "cache_dir": URL},
            "$.cache_config.account_name",
            "$.cache_dir",
        ),
        (
            {"cloud_cache_config": {"enable_cloud_cache": False, "container_name": "abc"},
             "enable_shared_cache": True},
            "$.enable_shared_cache",
            "$.cloud_cache_config.enable_cloud_cache",
        ),
        (
            {"cloud_cache_config": {"container_name": "abc", "upload_to_cloud": True},
             "cache_config": {"update_shared_cache": False}},
            "$.cache_config.update_shared_cache",
            "$.cloud_cache_config.upload_to_cloud",
        ),
        (
            {"cache_dir": "a", "cache_config": {"cache_dir": "b"}},
            "$.cache_config.cache_dir",
            "$.cache_dir",
        ),
    ],
)  # fmt: skip
def test_contradicting_cache_forms_are_a_problem_naming_both(
    change: dict[str, Any], path: str, other: str
) -> None:
    problems = _problems(_document(**change))
    assert other in problems[path]
    assert "keep one of the two" in problems[path]


def test_a_bad_container_name_from_a_url_is_named_at_the_url() -> None:
    problems = _problems(_document(cache_dir="https://acct.blob.core.windows.net/Bad_Name"))
    assert "not a valid container name" in problems["$.cache_dir"]


def test_the_command_line_overrides_the_account_and_container() -> None:
    overrides = CloudOverrides(account_name="mine", container_name="my-cache")
    config = parse_config(_document(cache_dir=URL), overrides=overrides)
    assert _cloud(config)[1:3] == ("https://mine.blob.core.windows.net", "my-cache")
    from_nothing = parse_config(_document(), overrides=CloudOverrides(container_name="c-1"))
    assert _cloud(from_nothing)[:3] == (True, None, "c-1")
    true = parse_config(_document(cloud_cache_config=True), overrides=overrides)
    assert _cloud(true)[2] == "my-cache"
    off = parse_config(_document(cloud_cache_config=False), overrides=overrides)
    assert _cloud(off)[0] is True


@needs_olive
def test_model_builder_takes_onnx_with_metadata_only_and_hugging_face_without() -> None:
    conversion = {"type": "OnnxConversion", "target_opset": 16}
    metadata = {"type": "ModelBuilder", "precision": "int4", "metadata_only": True}
    builder = {"type": "ModelBuilder", "precision": "int4"}
    assert _pass_problems(_document(passes={"c": conversion, "m": metadata})) == {}
    assert _pass_problems(_document(passes={"b": builder})) == {}
    after_conversion = _pass_problems(_document(passes={"c": conversion, "b": builder}))
    assert after_conversion == {"$.passes.b": (
        "without metadata_only, olive:ModelBuilder takes Hugging Face models, but receives "
        "ONNX models; reorder the passes or change metadata_only"
    )}  # fmt: skip
    first = _pass_problems(_document(passes={"m": metadata}))
    assert "takes ONNX models, but receives Hugging Face" in first["$.passes.m.metadata_only"]
    # After a pass of unknown type its input is unknown: nothing is said of metadata_only.
    unknown = _pass_problems(_document(passes={"x": {"type": "Nope"}, "m": metadata}))
    assert list(unknown) == ["$.passes.x.type"]


@needs_olive
def test_a_data_dir_not_made_yet_is_missing_and_mistakes_beside_it_still_show(
    tmp_path: Path,
) -> None:
    data = {"name": "d", "load_dataset_config": {"type": "dummy_dataset", "data_dir": "data"}}
    quantize = {"type": "OnnxStaticQuantization", "data_config": "d", "precision": "uint8"}

    def problems_of(written: dict[str, Any]) -> list[Problem]:
        model = {"type": "OnnxModel", "model_path": "m.onnx"}
        document = _document(input_model=model, data_configs=[data], passes={"q": written})
        passes = parse_config(document).passes
        return check_passes(passes, "onnx", PassContext(base_dir=tmp_path))[1]

    (problem,) = problems_of(quantize)
    assert problem.path == "$.passes.q.data_config"
    assert problem.missing
    assert "data_dir names 'data', which is not there" in problem.problem
    problems = problems_of({**quantize, "precision": "uint9"})
    assert [(p.path, p.missing) for p in problems] == [
        ("$.passes.q.data_config", True),
        ("$.passes.q.precision", False),
    ]
