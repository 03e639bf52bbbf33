"""Every pass gives the same bytes in another process under another global seed, or refuses
with one line (issue 12: a ``config.json`` naming a head its weights lack made the casts and
pruning save randomly initialized tensors under one key)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Run in a fresh interpreter: seed every global generator with argv[1], then run each pass on
#: each fixture model in argv[2] and print {fixture/pass: digest or error line}.
WORKER = r"""
import json, random, sys
from pathlib import Path
import numpy, torch
seed, root = int(sys.argv[1]), Path(sys.argv[2])
random.seed(seed); numpy.random.seed(seed); torch.manual_seed(seed)
from modelcache.runner.models import model_digest
from modelcache.runner.passes import PassError, load_pass

CONFIGS = {
    "TorchDtypeCast": [{}], "MagnitudePruning": [{"sparsity": 0.5}], "OnnxConversion": [{}],
    "OnnxDynamicQuantization": [{}],
    "OrtGraphOptimization": [{"level": "basic"}, {"level": "extended"}, {"level": "all"}],
}
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
print(json.dumps(results))
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
    # One thread each: the two workers run side by side on the suite's two cores.
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


@pytest.mark.slow
def test_every_pass_is_deterministic_across_processes_and_seeds(fixtures: Path) -> None:
    workers = [_start_worker(1, fixtures), _start_worker(2, fixtures)]
    first, second = (_results(worker) for worker in workers)
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
