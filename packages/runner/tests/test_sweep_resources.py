"""Per-pass resources: the sweep file's ``resources`` read, every mistake a problem at its
path; a segment asks for the most its run steps' passes ask for; the machine's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import (
    CachePolicy,
    Chain,
    HubModel,
    PassSpec,
    Snapshot,
    Sweep,
    Workflow,
    make_sweep_plan,
)
from modelcache.runner.config import ConfigError
from modelcache.runner.sweep import (
    DEFAULT_RESOURCES,
    PassResources,
    Resources,
    machine,
    parse_sweep,
)

BASE: dict[str, Any] = {
    "input_model": {"type": "HfModel", "model_path": "model"},
    "passes": {
        "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
        "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
    },
    "cache_dir": "cache",
}


def _sweep(resources: Any, folder: Path) -> Any:
    document = {"base": BASE, "matrix": {"passes.prune.sparsity": [0.5, 0.6]}}
    return parse_sweep({**document, "resources": resources}, folder=folder, source="sweep.json")


def test_each_pass_named_asks_for_what_its_entry_says(tmp_path: Path) -> None:
    sweep = _sweep({"prune": {"memory": "4 GB", "gpus": 1}, "cast": {"cpus": 2.5}}, tmp_path)
    assert sweep.resources.of_pass("prune") == Resources(cpus=1, gpus=1, memory=4 * 2**30)
    assert sweep.resources.of_pass("cast") == Resources(cpus=2.5)
    assert sweep.resources.of_pass("other") == DEFAULT_RESOURCES
    assert _sweep({"cast": {"memory": 1024}}, tmp_path).resources.of_pass("cast").memory == 1024
    assert _sweep(None, tmp_path).resources == PassResources()


def test_every_mistake_is_a_problem_at_its_path(tmp_path: Path) -> None:
    resources = {
        "prun": {"cpus": 1},
        "prune": {"cpu": 2, "cpus": 0, "gpus": -1, "memory": "lots"},
        "cast": [1],
    }
    with pytest.raises(ConfigError) as caught:
        _sweep(resources, tmp_path)
    assert list(caught.value.lines()) == [
        "sweep.json: $.resources[\"prun\"]: no pass called 'prun' in the sweep's workflows; "
        "they have cast, prune",
        "sweep.json: $.resources[\"prune\"]: unknown field(s) ['cpu']; give cpus, gpus, memory",
        'sweep.json: $.resources["prune"].cpus: a number of CPUs, more than 0; got 0',
        'sweep.json: $.resources["prune"].gpus: a number of GPUs, 0 or more; got -1',
        "sweep.json: $.resources[\"prune\"].memory: 'lots' is not a size: give a number and a "
        "unit, as in 500GB, 750MB, 1024",
        'sweep.json: $.resources["cast"]: an object: {"cpus": 2, "gpus": 1, "memory": "4 GB"}, '
        "any of them",
    ]
    with pytest.raises(ConfigError) as caught:
        _sweep({"cast": {"gpus": True, "memory": 1.5}}, tmp_path)
    assert [p.path for p in caught.value.problems] == [
        'sweep.json: $.resources["cast"].gpus',
        'sweep.json: $.resources["cast"].memory',
    ]
    with pytest.raises(ConfigError) as caught:
        _sweep(["prune"], tmp_path)
    assert caught.value.problems[0].path == "sweep.json: $.resources"


def test_a_segment_asks_for_the_most_its_run_steps_ask_for() -> None:
    model = HubModel(repo_id="org/model", revision="0" * 40)
    chain = Chain(
        model=model,
        passes=[PassSpec(name=name, type="T", version="1") for name in ("a", "b", "c")],
    )
    plan = make_sweep_plan(
        Sweep(workflows=[Workflow(name="only", chain=chain)]),
        Snapshot.empty(),
        CachePolicy(enable_cloud_cache=False),
    )
    (segment,) = plan.segments  # one chain: one segment, three run steps
    asked = PassResources(
        by_pass=[
            ("a", Resources(gpus=1)),
            ("b", Resources(cpus=4, memory=10)),
            ("x", Resources(gpus=8)),
        ]
    )
    assert asked.of_segment(segment) == Resources(cpus=4, gpus=1, memory=10)
    assert asked.of_call((segment,)) == asked.of_segment(segment)
    assert asked.of_call(("a variant's name",)) == DEFAULT_RESOURCES
    assert PassResources().of_segment(segment) == DEFAULT_RESOURCES
    # A variant's own run after a let-down segment: what its passes ask for.
    assert asked.of_variant(plan, "only") == asked.of_segment(segment)
    assert asked.of_variant(plan, "another") == DEFAULT_RESOURCES
    shape = asked.of_variant(plan, "only")
    assert asked.of_call(("only", shape)) == shape


def test_what_asks_for_more_than_is_had_is_said_in_words() -> None:
    have = Resources(cpus=2, gpus=0, memory=2**32)
    asked = PassResources(by_pass=[("q", Resources(cpus=1, gpus=2)), ("c", Resources(cpus=2))])
    assert asked.beyond(have) == ["pass 'q' asks for 2 GPUs; the machine has 0 GPUs"]
    assert asked.beyond(have, where="the cluster") == [
        "pass 'q' asks for 2 GPUs; the cluster has 0 GPUs"
    ]
    assert str(Resources(cpus=1, memory=2**31)) == "1 CPU, 2.0 GiB of memory"
    here = machine()
    assert here.cpus >= 1
    assert here.memory > 0
