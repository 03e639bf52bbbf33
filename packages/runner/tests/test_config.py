"""The workflow config's validation: every problem at once, each with its JSON path, and
values that mean the same giving the same cache key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import canonical_json
from modelcache.runner.config import ConfigError, EvaluatorConfig, Problem, parse_config
from modelcache.runner.evaluation import Evaluator
from modelcache.runner.passes import PassConfigError, UnknownPassType, load_pass


def _document(**change: Any) -> dict[str, Any]:
    return {
        "input_model": {"type": "HfModel", "model_path": "model"},
        "passes": {"convert": {"type": "OnnxConversion"}},
        **change,
    }


def _problems(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return [(problem.path, problem.problem) for problem in caught.value.problems]


def test_every_structural_problem_is_reported_with_its_path() -> None:
    problems = _problems(
        _document(
            bogus=1,
            cache_dir=5,
            input_model={"type": "HfModel", "model_path": "m", "revision": 3},
            cloud_cache_config={"upload_to_cloud": "yes", "container_name": "Bad_Name"},
        )
    )
    paths = [path for path, _ in problems]
    assert set(paths) == {
        "$",
        "$.cache_dir",
        "$.input_model.revision",
        "$.cloud_cache_config.upload_to_cloud",
        "$.cloud_cache_config.container_name",
    }


def test_pass_problems_come_with_the_structural_ones() -> None:
    problems = _problems(
        _document(
            cache_dir=5,
            passes={
                "a": {"type": "OnnxConversion", "opset": 3, "target_opset": "x"},
                "c": {"type": "TorchDtypeCast", "dtype": "fp8"},
                "b": {"type": "OnnxQuantisation"},
            },
        )
    )
    assert [path for path, _ in problems] == [
        "$.cache_dir",
        "$.passes.a.opset",
        "$.passes.a.target_opset",
        "$.passes.c.dtype",
        "$.passes.c",  # TorchDtypeCast takes an hf model, and "a" makes an onnx one
        "$.passes.b.type",
    ]


def test_each_problem_is_one_line_naming_the_file() -> None:
    problems = [Problem(path="$.a", problem="first"), Problem(path="$.b", problem="second")]
    error = ConfigError.of(problems).located("workflow.json")
    assert error.lines() == ("workflow.json: $.a: first", "workflow.json: $.b: second")
    assert str(error) == "workflow.json: $.a: first\nworkflow.json: $.b: second"
    assert (error.path, error.problem) == ("$.a", "first")


def test_a_pass_type_is_matched_whatever_its_case() -> None:
    assert load_pass("onnxconversion").type == "OnnxConversion"
    assert load_pass("ONNXDYNAMICQUANTIZATION").type == "OnnxDynamicQuantization"


def test_an_unknown_pass_type_suggests_the_closest() -> None:
    problems = _problems(_document(cache_dir=5, passes={"c": {"type": "OnnxConverson"}}))
    path, problem = problems[-1]
    assert path == "$.passes.c.type"
    assert problem.startswith("unknown pass type 'OnnxConverson'; did you mean 'OnnxConversion'?")
    with pytest.raises(UnknownPassType):
        load_pass("OnnxConverson")


def test_every_bad_parameter_of_a_pass_is_reported() -> None:
    with pytest.raises(PassConfigError) as caught:
        load_pass("OnnxDynamicQuantization").validate(
            {"weight_type": "int4", "per_channel": "yes", "bogus": 1}
        )
    fields = [error.field for error in getattr(caught.value, "errors", (caught.value,))]
    assert sorted(f or "" for f in fields) == ["bogus", "per_channel", "weight_type"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("common_evaluator", 'Olive configs name an evaluator defined under "evaluators"'),
        (["size"], "expected an object"),
    ],
)
def test_an_evaluator_that_is_not_an_object_says_what_is_expected(value: Any, words: str) -> None:
    problems = _problems(_document(evaluator=value))
    assert problems[0][0] == "$.evaluator"
    assert words in problems[0][1]
    assert '{"metrics"' in problems[0][1]


def test_cloud_cache_config_true_says_what_to_write() -> None:
    (path, problem), *_ = _problems(_document(cloud_cache_config=True))
    assert path == "$.cloud_cache_config"
    assert '"container_name"' in problem


def test_cloud_cache_config_false_is_the_local_cache_only() -> None:
    config = parse_config(_document(cloud_cache_config=False))
    assert not config.cloud_enabled


def test_every_evaluator_problem_is_reported() -> None:
    problems = _problems(_document(evaluator={"metrics": ["speed"], "latency_runs": 0}))
    assert [path for path, _ in problems] == ["$.evaluator", "$.evaluator"]
    assert "unknown metric 'speed'" in problems[0][1]
    assert "latency_runs" in problems[1][1]


def test_minus_zero_is_zero_in_a_validated_pass_config() -> None:
    pruning = load_pass("MagnitudePruning")
    negative = pruning.validate({"sparsity": -0.0})
    assert canonical_json(negative) == canonical_json(pruning.validate({"sparsity": 0.0}))


def test_the_evaluator_fingerprint_ignores_latency_runs_when_latency_is_not_measured() -> None:
    def fingerprint(**fields: Any) -> str:
        return Evaluator(EvaluatorConfig(**fields), reference=Path(".")).fingerprint

    assert fingerprint(metrics=["size"], latency_runs=3) == fingerprint(metrics=["size"])
    assert fingerprint(metrics=["latency"], latency_runs=3) != fingerprint(metrics=["latency"])
    assert fingerprint(metrics=["throughput"], latency_runs=3) != fingerprint(
        metrics=["throughput"]
    )
    # Throughput is a metric of its own: asking for it is another evaluator; the default
    # evaluator (no metrics given) is the one it was before throughput existed.
    assert fingerprint(metrics=["latency", "throughput"]) != fingerprint(metrics=["latency"])
    assert fingerprint() == fingerprint(metrics=["size", "latency", "fidelity"])


def test_throughput_is_the_sentences_per_second_of_the_median_timed_pass(
    tiny_bert: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcache.runner import evaluation

    ticks = iter(range(1000))  # each timed pass takes one tick of 0.25 s
    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: next(ticks) * 0.25)
    config = EvaluatorConfig(metrics=["latency", "throughput"], latency_runs=3)
    result = Evaluator(config, reference=tiny_bert).evaluate(tiny_bert, "hf")
    assert result == {
        "latency_ms": 250.0,
        "throughput_sps": round(len(evaluation.SENTENCES) / 0.25, 3),
    }
    alone = Evaluator(EvaluatorConfig(metrics=["throughput"], latency_runs=3), reference=tiny_bert)
    assert set(alone.evaluate(tiny_bert, "hf")) == {"throughput_sps"}
