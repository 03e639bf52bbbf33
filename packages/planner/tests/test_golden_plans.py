"""Golden plans: each file in ``golden/`` describes a world and the plan expected for it.

A fixture holds ``chain``, ``evaluation`` and ``policy`` in their wire format, ``cache``: the
snapshot's entries by pass name (the key is filled in), and the expected ``steps`` (in the
plan's wire format, less ``key`` and ``input_key``, which this test checks on its own) and
``totals``. One test runs them all; to add a case, add a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluation,
    Snapshot,
    SnapshotEntry,
    chain_keys,
    make_plan,
    structure,
    unstructure,
)

from .replay import MemoryCache, replay

GOLDEN = Path(__file__).parent / "golden"
FIXTURES = sorted(GOLDEN.glob("*.json"))
CHECKED_APART = ("key", "input_key")


def test_there_are_golden_plans() -> None:
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("path", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_golden_plan(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert case["description"]
    chain = structure(case["chain"], Chain)
    evaluation = structure(case["evaluation"], Evaluation)
    policy = structure(case["policy"], CachePolicy)
    keys = chain_keys(chain)
    snapshot = Snapshot.from_listing(
        structure({"key": keys[chain.index(name)], **fields}, SnapshotEntry)
        for name, fields in case["cache"].items()
    )

    plan = make_plan(chain, evaluation, snapshot, policy)

    data = unstructure(plan)
    steps = [{k: v for k, v in step.items() if k not in CHECKED_APART} for step in data["steps"]]
    assert steps == case["steps"]
    assert data["totals"] == case["totals"]
    for step in data["steps"]:
        index = chain.index(step["pass"])
        assert step["key"] == keys[index]
        if step["kind"] == "run":
            assert step["input_key"] == (keys[index - 1] if index else None)
    replay(plan, chain, evaluation, policy, MemoryCache(snapshot))
