"""A sweep prepared and planned as ``modelcache run`` prepares each variant: the plan drawn
without running or writing anything, and each variant's mistakes named once."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import SweepPlan, loads
from modelcache.runner.cli.sweep import add_arguments, handle, is_sweep_file
from modelcache.runner.config import ConfigError
from modelcache.runner.sweep import CacheRequired, parse_sweep, plan_sweep, prepare_sweep
from modelcache.runner.workflow import RunOptions


def _sweep(model: Path, matrix: dict[str, list[Any]]) -> dict[str, Any]:
    return {
        "base": {
            "input_model": {"type": "HfModel", "model_path": str(model)},
            "passes": {
                "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
                "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
            },
            "cache_dir": "cache",
        },
        "matrix": matrix,
    }


def test_plan_draws_the_sweep_and_writes_nothing(
    tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(_sweep(tiny_bert, {"passes.cast.dtype": ["float16", "bfloat16"]})))
    assert is_sweep_file(path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    assert handle(parser.parse_args([str(path), "--plan", "--format", "json"])) == 0

    plan = loads(capsys.readouterr().out, SweepPlan)
    assert [w.name for w in plan.workflows] == ["dtype=float16", "dtype=bfloat16"]
    assert [len(s.keys) for s in plan.segments] == [1, 1, 1]  # prune, shared; a cast each
    assert plan.totals.runs == 3
    assert not (tmp_path / "cache").exists()
    assert handle(parser.parse_args([str(path), "--plan"])) == 0
    assert capsys.readouterr().out.splitlines()[1] == "segment 0: all 2 variants"
    assert handle(parser.parse_args([str(path), "--plan", "--format", "mermaid"])) == 0
    drawn = capsys.readouterr().out.splitlines()
    assert drawn[0] == "flowchart LR"
    assert [line for line in drawn if "-->" in line] == [
        "    model --> k0", "    k0 --> k1", "    k0 --> k2",
    ]  # fmt: skip
    assert handle(parser.parse_args([str(path), "--plan", "--format", "dot"])) == 0
    assert capsys.readouterr().out.startswith("digraph modelcache_sweep {")


def test_a_sweep_plan_leaves_out_what_its_trust_refuses(tiny_bert: Path, tmp_path: Path) -> None:
    from modelcache.runner.sweep import plan_sweep
    from modelcache.store import LocalStore, manifest_name

    document = _sweep(tiny_bert, {"passes.cast.dtype": ["float16", "bfloat16"]})
    trusted = _sweep(tiny_bert, {"passes.cast.dtype": ["float16", "bfloat16"]})
    secret = {"hmac_secret_env": "SWEEP_TEST_SECRET", "key_id": "team"}
    trusted["base"]["trust"] = {"signers": [secret], "require_signatures": True}
    plain = prepare_sweep(parse_sweep(document, folder=tmp_path), RunOptions(no_cloud=True))
    from modelcache.runner.workflow import execute

    first = plain.prepared[0][1]
    execute(first)  # an unsigned prune in the local cache
    prune = first.keys[0]
    assert LocalStore(tmp_path / "cache").read_object(manifest_name(prune), 1 << 20)

    unchecked, _policy, notes = plan_sweep(plain)
    assert unchecked.totals.runs == 1  # the other cast only
    checked = prepare_sweep(parse_sweep(trusted, folder=tmp_path), RunOptions(no_cloud=True))
    plan, _policy, notes = plan_sweep(checked)
    assert plan.totals.runs == 3  # the unsigned entries are made again, as each run would
    assert notes == tuple(
        f"local entry {key[:12]} refused (unsigned, and signatures are required): planned "
        "without it, as the run will"
        for key in first.keys
    )


def test_a_mistake_of_some_variants_is_named_once_with_them(
    tiny_bert: Path, tmp_path: Path
) -> None:
    matrix = {"passes.prune.sparsity": [0.5, 2.0], "passes.cast.exclude": [[], ["x"]]}
    sweep = parse_sweep(_sweep(tiny_bert, matrix), folder=tmp_path)
    with pytest.raises(ConfigError) as caught:
        prepare_sweep(sweep)
    # The inline base's paths are under its place in the sweep file.
    assert caught.value.lines() == (
        "sweep: $.base.passes.cast.exclude: unknown parameter; TorchDtypeCast takes: dtype",
        "sweep: $.base.passes.prune.sparsity: must be below 1.0, got 2.0 "
        "(variants sparsity=2.0,exclude=[], sparsity=2.0,exclude=[x])",
    )


def test_a_sweep_needs_the_cache(tiny_bert: Path, tmp_path: Path) -> None:
    sweep = parse_sweep(_sweep(tiny_bert, {"passes.prune.sparsity": [0.5]}), folder=tmp_path)
    with pytest.raises(CacheRequired):
        prepare_sweep(sweep, RunOptions(no_cache=True))


def test_a_plan_stops_each_variant_at_what_this_machine_misses(
    tiny_bert: Path, tmp_path: Path
) -> None:
    absent = "modelcache-tests/never-downloaded"
    document = _sweep(tiny_bert, {"input_model.model_path": [str(tiny_bert), absent]})
    sweep = parse_sweep(document, folder=tmp_path)
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        prepare_sweep(sweep, RunOptions(no_cloud=True))

    prepared = prepare_sweep(sweep, RunOptions(no_cloud=True), known=True)

    there, missing = (v.name for v in sweep.variants)
    assert [name for name, _ in prepared.prepared] == [there]
    assert [(name, p.name) for name, p in prepared.unknown] == [
        (missing, "prune"),
        (missing, "cast"),
    ]
    notes = prepared.unknown_notes()
    assert notes[0].startswith(f"pass 'prune': key unknown: model {absent}")
    assert notes[0].endswith(f"(variant {missing})")
    assert notes[1] == f"pass 'cast': key unknown: its input's key is unknown (variant {missing})"
    assert notes[2] == f"nothing of variant {missing} is planned: no key of theirs is known"
    plan, _policy, _notes = plan_sweep(prepared)
    assert [w.name for w in plan.workflows] == [there]
    assert plan.totals.runs == 2


def test_a_plan_of_which_nothing_is_known_is_empty(tmp_path: Path) -> None:
    document = _sweep(tmp_path, {"passes.cast.dtype": ["float16", "bfloat16"]})
    document["base"]["input_model"]["model_path"] = "modelcache-tests/never-downloaded"
    prepared = prepare_sweep(parse_sweep(document, folder=tmp_path), known=True)
    assert prepared.prepared == ()
    assert len(prepared.unknown) == 4
    assert prepared.unknown_notes()[0].startswith("pass 'prune': key unknown: model ")
    assert "(variant" not in prepared.unknown_notes()[0], "all variants: none named"
    plan, _policy, notes = plan_sweep(prepared)
    assert (plan.workflows, plan.segments, notes) == ((), (), ())


def test_the_plan_command_draws_what_is_known_and_notes_the_rest(
    tiny_bert: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = "modelcache-tests/never-downloaded"
    path = tmp_path / "sweep.json"
    matrix = {"input_model.model_path": [str(tiny_bert), absent]}
    path.write_text(json.dumps(_sweep(tiny_bert, matrix)))
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    assert handle(parser.parse_args([str(path), "--plan"])) == 0

    out, err = capsys.readouterr()
    assert out.startswith("sweep: 1 variant, 1 segment (0 idle); 2 runs")
    assert "note: pass 'prune': key unknown: model modelcache-tests/never-downloaded" in err
    assert "note: nothing of variant model=never-downloaded is planned" in err
    # Running it needs everything present: one error naming what is missing.
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        handle(parser.parse_args([str(path), "--quiet"]))
    assert not (tmp_path / "cache").exists()
