"""Every pass gives the same bytes in another process under another global seed, or refuses
with one line (issue 12: a ``config.json`` naming a head its weights lack made the casts and
pruning save randomly initialized tensors under one key).

The two processes are a fresh interpreter and this one (the test's worker, which has run
other tests before and has the libraries imported already): each seeds every global
generator differently, then runs every pass on every fixture model."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: ``seeded_results(seed, root)``: seed every global generator with ``seed``, then run each
#: pass on each fixture model in ``root``; {fixture/pass/config: digest or error line}. Run
#: as a script (``python -c``), it prints them for ``seed`` argv[1] and ``root`` argv[2].
WORKER = r"""
import json, random, sys
from pathlib import Path

CONFIGS = {
    "TorchDtypeCast": [{}], "MagnitudePruning": [{"sparsity": 0.5}], "OnnxConversion": [{}],
    "OnnxDynamicQuantization": [{}],
    "OrtGraphOptimization": [{"level": "basic"}, {"level": "extended"}, {"level": "all"}],
}

def seeded_results(seed, root):
    import numpy, torch
    random.seed(seed); numpy.random.seed(seed); torch.manual_seed(seed)
    from modelcache.runner.models import model_digest
    from modelcache.runner.passes import PassError, load_pass
    results = {}

    def run(name, source, type_name, config):
        implementation = load_pass(type_name)
        output = root / "out" / str(seed) / f"{name}-{type_name}-{len(results)}"
        output.mkdir(parents=True)
        label = f"{name}/{type_name}/{json.dumps(config, sort_keys=True)}"
        try:
            implementation.run(source, output, implementation.validate(config))
        except PassError as error:
            results[label] = f"refused: {error}"
            return None
        results[label] = model_digest(output)
        return output

    for fixture in sorted(p for p in root.iterdir() if p.name != "out"):
        sources = {"hf": fixture}
        for type_name in ("TorchDtypeCast", "MagnitudePruning", "OnnxConversion"):
            for config in CONFIGS[type_name]:
                output = run(fixture.name, fixture, type_name, config)
                if output is not None and type_name == "OnnxConversion":
                    sources["onnx"] = output
        if "onnx" in sources:
            for type_name in ("OnnxDynamicQuantization", "OrtGraphOptimization"):
                for config in CONFIGS[type_name]:
                    run(fixture.name, sources["onnx"], type_name, config)
    return results

if __name__ == "__main__":
    print(json.dumps(seeded_results(int(sys.argv[1]), Path(sys.argv[2]))))
"""


def _edit_config(model: Path, **changes: Any) -> None:
    config = json.loads((model / "config.json").read_text())
    config.update(changes)
    (model / "config.json").write_text(json.dumps(config))


def _drop_tensors(model: Path, prefix: str) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(model / "model.safetensors"))
    kept = {name: t for name, t in tensors.items() if not name.startswith(prefix)}
    assert len(kept) < len(tensors)
    save_file(kept, str(model / "model.safetensors"), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def fixtures(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT; the same with ``config.json`` naming a classification head its weights
    lack; the same without its pooler's weights."""
    root = tmp_path_factory.mktemp("determinism")
    shutil.copytree(tiny_bert, root / "complete")
    headless = shutil.copytree(tiny_bert, root / "head-missing")
    _edit_config(headless, architectures=["BertForSequenceClassification"])
    _drop_tensors(shutil.copytree(tiny_bert, root / "pooler-missing"), "pooler.")
    return root


def _start_worker(seed: int, root: Path) -> subprocess.Popen[str]:
    # One thread each: the two runs go side by side on the suite's two cores.
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(seed), str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def _results(worker: subprocess.Popen[str]) -> dict[str, str]:
    out, err = worker.communicate(timeout=900)
    assert worker.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


@contextlib.contextmanager
def _global_state_kept() -> Iterator[None]:
    """One torch thread, as in the fresh interpreter; then every global generator and the
    thread count as they were, for the tests this process runs next."""
    import numpy
    import torch

    states = random.getstate(), numpy.random.get_state(), torch.random.get_rng_state()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        random.setstate(states[0])
        numpy.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


def _results_here(seed: int, root: Path) -> dict[str, str]:
    worker: dict[str, Any] = {"__name__": "determinism_worker"}
    exec(WORKER, worker)  # this module's own code: the script's functions, defined here
    with _global_state_kept():
        return worker["seeded_results"](seed, root)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_every_pass_is_deterministic_across_processes_and_seeds(fixtures: Path) -> None:
    elsewhere = _start_worker(2, fixtures)
    try:
        first = _results_here(1, fixtures)
    finally:
        second = _results(elsewhere)
    assert first == second
    # 3 fixtures x (cast, prune, convert), and quantize + 3 optimization levels where converted.
    assert len(first) == 3 * 3 + 3 * 4
    for name in ("head-missing", "pooler-missing"):
        for pass_type in ("TorchDtypeCast", "MagnitudePruning"):
            (outcome,) = [v for k, v in first.items() if k.startswith(f"{name}/{pass_type}/")]
            assert outcome.startswith(f"refused: {pass_type}: the weights in "), outcome
            assert "would be random" in outcome
            assert "\n" not in outcome
    assert not any(v.startswith("refused") for k, v in first.items() if k.startswith("complete/"))
