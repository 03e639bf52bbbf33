"""The wire format: one converter round-trips every input and the plan; bad input is refused
with the path of what is wrong."""

from __future__ import annotations

import json
from typing import Any

import cattrs
import pytest
from hypothesis import given

from modelcache.planner import (
    PLAN_FORMAT,
    CachePolicy,
    Chain,
    Evaluation,
    InvalidInput,
    ModelIdentity,
    Plan,
    Snapshot,
    SnapshotEntry,
    chain_keys,
    converter,
    dumps,
    loads,
    make_plan,
    structure,
    unstructure,
)

from .strategies import World, chains, evaluations, models, policies, worlds

MODEL = {"kind": "hf_hub", "repo_id": "org/model", "revision": "main"}
PASS = {"name": "convert", "type": "OnnxConversion", "version": "1"}


def round_trip(value: Any, as_type: Any) -> Any:
    return loads(dumps(value, as_type), as_type)


def test_the_converter_is_the_projects_own() -> None:
    assert converter is not cattrs.global_converter


@given(chains())
def test_a_chain_survives_json_and_keeps_its_keys(chain: Chain) -> None:
    again = round_trip(chain, Chain)
    assert again == chain
    assert chain_keys(again) == chain_keys(chain)


@given(models())
def test_a_model_identity_survives_json(model: ModelIdentity) -> None:
    assert round_trip(model, ModelIdentity) == model


@given(worlds(judged=True))
def test_every_input_and_the_plan_survive_json(world: World) -> None:
    assert round_trip(world.evaluation, Evaluation) == world.evaluation
    assert round_trip(world.snapshot, Snapshot) == world.snapshot
    assert round_trip(world.policy, CachePolicy) == world.policy
    plan = make_plan(world.chain, world.evaluation, world.snapshot, world.policy)
    assert round_trip(plan, Plan) == plan


@given(chains().flatmap(evaluations))
def test_an_evaluation_survives_json(evaluation: Evaluation) -> None:
    assert round_trip(evaluation, Evaluation) == evaluation


@given(policies(judged=True))
def test_a_policy_survives_json(policy: CachePolicy) -> None:
    assert round_trip(policy, CachePolicy) == policy


@given(worlds(min_passes=1, judged=True))
def test_the_plan_json_is_as_documented(world: World) -> None:
    plan = make_plan(world.chain, world.evaluation, world.snapshot, world.policy)
    data = json.loads(dumps(plan))
    assert list(data) == ["format", "final_key", "keys", "steps", "totals"]
    assert data["format"] == PLAN_FORMAT
    assert data["final_key"] == data["keys"][-1]
    fields = {
        "run": ["kind", "pass", "key", "reason", "input_key"],
        "skip": ["kind", "pass", "key", "reason", "location"],
        "download": ["kind", "pass", "key", "reason", "size"],
        "upload": ["kind", "pass", "key", "reason", "size"],
        "evaluate": ["kind", "pass", "key", "reason", "cached"],
    }
    for step in data["steps"]:
        # ``if_worthwhile`` is on the wire only when true: plans without it read as before.
        judged = ["if_worthwhile"] if step.get("if_worthwhile") is True else []
        assert list(step) == fields[step["kind"]] + judged
    totals = data["totals"]
    assert totals["bytes_to_move"] == totals["bytes_to_download"] + totals["bytes_to_upload"]


def test_snapshot_entries_are_listed_by_key_with_sorted_evaluations() -> None:
    listing = [
        SnapshotEntry(key="b" * 64, in_cloud=True, evaluations=["z", "a"]),
        SnapshotEntry(key="a" * 64, in_local=True, size=3),
    ]
    data = unstructure(Snapshot.from_listing(listing))
    assert [entry["key"] for entry in data["entries"]] == ["a" * 64, "b" * 64]
    assert data["entries"][1]["evaluations"] == ["a", "z"]


def refused(data: Any, as_type: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        structure(data, as_type)
    return raised.value


@pytest.mark.parametrize(
    ("data", "as_type", "path", "problem"),
    [
        (
            {"model": MODEL, "passes": [{**PASS, "typo": 1}]},
            Chain,
            "$.passes[0]",
            "extra fields found (typo)",
        ),
        (
            {"model": MODEL, "passes": [{**PASS, "version": ""}]},
            Chain,
            "$.passes[0]",
            "version must not be empty",
        ),
        (
            {"model": MODEL, "passes": [{**PASS, "config": {"x": [1, float("nan")]}}]},
            Chain,
            "$.passes[0].config",
            "$.x[1]: nan is not JSON; use a finite number or a string",
        ),
        # The problem cattrs reports for an unknown tag is "required field missing"; only the
        # path is worth pinning.
        ({"model": {**MODEL, "kind": "s3"}, "passes": []}, Chain, "$.model", ""),
        ({"passes": []}, Chain, "$.model", "required field missing"),
        ({"model": MODEL, "passes": [PASS, PASS]}, Chain, "$", "appears twice"),
        ({"entries": [{"key": "zz"}]}, Snapshot, "$.entries[0]", "64 lowercase hex digits"),
        ({"entries": [], "more": []}, Snapshot, "$", "extra fields found (more)"),
        ([], Snapshot, "$", 'a snapshot is {"entries": [...]}'),
        ({"enable_cloud_cache": "false"}, CachePolicy, "$.enable_cloud_cache", "expected bool"),
        ({"bandwidth": 0}, CachePolicy, "$", "bandwidth must be positive"),
        ({"targets": "some"}, Evaluation, "$.targets", "some"),
        ({"format": "modelcache-plan/0"}, Plan, "$", "unknown plan format"),
        ([], Chain, "$", "expected a JSON object"),
    ],
)
def test_bad_input_is_refused_with_the_path_of_what_is_wrong(
    data: Any, as_type: Any, path: str, problem: str
) -> None:
    error = refused(data, as_type)
    assert error.path == path
    assert problem in error.problem
    assert "\n" not in str(error)


def test_a_plan_whose_totals_do_not_add_up_is_refused() -> None:
    chain = structure({"model": MODEL, "passes": [PASS]}, Chain)
    data = unstructure(make_plan(chain, Evaluation.nothing(), Snapshot.empty()))
    data["totals"]["runs"] = 7
    assert "do not add up" in refused(data, Plan).problem


def test_an_unknown_step_kind_is_refused() -> None:
    chain = structure({"model": MODEL, "passes": [PASS]}, Chain)
    data = unstructure(make_plan(chain, Evaluation.nothing(), Snapshot.empty()))
    data["steps"][0]["kind"] = "teleport"
    refused(data, Plan)


def test_text_that_is_not_json_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^\$: not JSON"):
        loads("{'model': 1}", Chain)
