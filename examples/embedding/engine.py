"""Another engine, driving its own passes through the modelcache planner.

The engine's "models" are small JSON documents of named strings, and its passes are text
transformations. It knows nothing of ONNX, Azure or the modelcache runner: it gives the planner
its chain, a snapshot of its cache and a policy, and executes the plan it gets back, step by
step, with a ``match`` on the step kinds. The cache has two tiers: a local directory per
machine and a "cloud" that is a dictionary in memory, shared by the machines.

Run it with ``.venv/bin/python examples/embedding/engine.py``. It plays four scenes: a cold
cache, the same run again, a second machine sharing the cloud, and a changed last pass.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import (
    CachePolicy,
    Chain,
    Download,
    Evaluate,
    Evaluation,
    LocalModel,
    PassSpec,
    Run,
    Skip,
    Snapshot,
    SnapshotEntry,
    Upload,
    make_plan,
)

Model = dict[str, str]

# --- The engine's own passes -----------------------------------------------------------------


def lowercase(model: Model, config: Mapping[str, Any]) -> Model:
    return {name: text.lower() for name, text in model.items()}


def replace(model: Model, config: Mapping[str, Any]) -> Model:
    return {name: text.replace(config["old"], config["new"]) for name, text in model.items()}


def reverse(model: Model, config: Mapping[str, Any]) -> Model:
    return {name: text[::-1] for name, text in model.items()}


PASSES: dict[str, Callable[[Model, Mapping[str, Any]], Model]] = {
    "Lowercase": lowercase,
    "Replace": replace,
    "Reverse": reverse,
}
PASS_VERSION = "1"  # bump when a pass's code changes what it produces: the keys change with it
EVALUATOR = "letters-v1"  # the evaluator's fingerprint: results are cached per evaluator


def evaluate(model: Model) -> dict[str, int]:
    return {"letters": sum(character.isalpha() for text in model.values() for character in text)}


# --- The cache: a local directory per machine, and a shared in-memory cloud --------------------


def encode(model: Model) -> bytes:
    return json.dumps(model, sort_keys=True).encode("utf-8")


class Cloud:
    """Models and evaluation results by key, shared by every machine."""

    def __init__(self) -> None:
        self.models: dict[str, bytes] = {}
        self.results: dict[tuple[str, str], dict[str, int]] = {}


class Machine:
    """One machine: its local tier is a directory of ``<key>.json`` files."""

    def __init__(self, local: Path, cloud: Cloud) -> None:
        self.local = local
        self.cloud = cloud
        local.mkdir(parents=True)

    def path(self, key: str) -> Path:
        return self.local / f"{key}.json"

    def snapshot(self) -> Snapshot:
        """What both tiers hold. Listed once per tier; the snapshot merges the two."""
        listing = [
            SnapshotEntry(key=path.stem, in_local=True, size=path.stat().st_size)
            for path in self.local.glob("*.json")
        ]
        listing += [
            SnapshotEntry(key=key, in_cloud=True, size=len(data))
            for key, data in self.cloud.models.items()
        ]
        listing += [
            SnapshotEntry(key=key, evaluations=[evaluator]) for key, evaluator in self.cloud.results
        ]
        return Snapshot.from_listing(listing)

    def load(self, key: str) -> Model:
        model: Model = json.loads(self.path(key).read_bytes())
        return model


# --- The engine: plan, then execute the plan as written ----------------------------------------


def run_workflow(
    machine: Machine, input_path: Path, passes: list[tuple[str, str, dict[str, Any]]]
) -> Model:
    """Run ``passes`` (name, type, config) on the model in ``input_path``; return the result."""
    data = input_path.read_bytes()
    chain = Chain(
        model=LocalModel(digest=hashlib.sha256(data).hexdigest()),
        passes=[
            PassSpec(name=name, type=type_, version=PASS_VERSION, config=config)
            for name, type_, config in passes
        ],
    )
    plan = make_plan(chain, Evaluation.final(EVALUATOR), machine.snapshot(), CachePolicy())

    for step in plan.steps:
        print(f"  {type(step).__name__.lower():9} {step.pass_name:8} {step.reason}")
        match step:
            case Run(key=key, input_key=input_key):
                spec = chain.passes[chain.index(step.pass_name)]
                model = json.loads(data) if input_key is None else machine.load(input_key)
                output = PASSES[spec.type](model, spec.config)
                machine.path(key).write_bytes(encode(output))
            case Download(key=key):
                machine.path(key).write_bytes(machine.cloud.models[key])
            case Upload(key=key):
                machine.cloud.models[key] = machine.path(key).read_bytes()
            case Evaluate(key=key, cached=True):
                print(f"            result: {machine.cloud.results[(key, EVALUATOR)]} (cached)")
            case Evaluate(key=key):
                result = evaluate(machine.load(key))
                machine.cloud.results[(key, EVALUATOR)] = result
                print(f"            result: {result}")
            case Skip():
                pass

    totals = plan.totals
    print(
        f"  => ran {totals.runs}, downloaded {totals.downloads}, uploaded {totals.uploads}, "
        f"evaluated {totals.evaluations} ({totals.cached_evaluations} from the cache)"
    )
    assert plan.final_key is not None
    return machine.load(plan.final_key)


def main() -> None:
    workflow = [
        ("lower", "Lowercase", {}),
        ("moon", "Replace", {"old": "world", "new": "moon"}),
        ("mirror", "Reverse", {}),
    ]
    changed = [*workflow[:2], ("mirror", "Replace", {"old": "o", "new": "0"})]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        input_path = root / "input.json"
        input_path.write_bytes(encode({"greeting": "Hello, World", "question": "What a World?"}))
        cloud = Cloud()
        first, second = Machine(root / "a", cloud), Machine(root / "b", cloud)

        print("machine A, cold cache:")
        print(f"  output: {run_workflow(first, input_path, workflow)}")
        print("machine A, the same workflow again:")
        run_workflow(first, input_path, workflow)
        print("machine B, sharing the cloud:")
        run_workflow(second, input_path, workflow)
        print("machine B, last pass changed:")
        print(f"  output: {run_workflow(second, input_path, changed)}")


if __name__ == "__main__":
    main()
