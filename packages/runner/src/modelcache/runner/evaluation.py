"""Evaluation of pass outputs: size, latency and fidelity to the input model.

Fidelity is the mean cosine similarity between the output model's sentence embeddings (mean
pooling of the last hidden state over the attention mask) and the input model's, on a small
built-in set of sentences. Latency is the median wall time of one forward pass over that
set, after a warm-up. Results are small JSON objects, stored in the cache under the model's
key and the evaluator's :attr:`Evaluator.fingerprint`, which changes whenever anything that
affects the numbers does (metrics, sentences, run count, evaluator and runtime versions).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from modelcache.planner import canonical_json

from .config import EvaluatorConfig

__all__ = ["SENTENCES", "Evaluator", "model_size"]

EVALUATOR_VERSION = "modelcache-eval/1"

SENTENCES = (
    "The cache keeps every pass output under a key derived from its inputs.",
    "A quantized model is smaller and usually faster on a CPU.",
    "Colleagues share intermediate models through blob storage.",
    "Rain is expected in the afternoon, with clearing skies by evening.",
    "She bought fresh bread and a jar of honey at the market.",
    "The committee postponed its decision until next week.",
    "Graph optimizations fuse operators without changing results.",
    "How many passes does this workflow run before evaluation?",
)


def model_size(directory: Path) -> int:
    """Bytes of every file in the model directory."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


class Evaluator:
    """Measures models against the input model ``reference`` (a Hugging Face directory)."""

    def __init__(self, config: EvaluatorConfig, *, reference: Path) -> None:
        self.config = config
        self.reference = reference
        self._reference_embeddings: Any = None
        document = {
            "evaluator": EVALUATOR_VERSION,
            "metrics": sorted(config.metrics),
            "latency_runs": config.latency_runs,
            "sentences": list(SENTENCES),
            "packages": _versions("torch", "transformers", "onnxruntime"),
        }
        digest = hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
        #: Names this evaluator in the cache: results are stored per (model key, fingerprint).
        self.fingerprint = f"eval-{digest[:40]}"

    def evaluate(self, directory: Path, model_type: str) -> dict[str, Any]:
        """The configured metrics of the model in ``directory`` (``hf`` or ``onnx``)."""
        result: dict[str, Any] = {}
        if "size" in self.config.metrics:
            result["size_bytes"] = model_size(directory)
        if "latency" in self.config.metrics or "fidelity" in self.config.metrics:
            embed = _embedder(directory, model_type)
            embeddings = embed()
            if "latency" in self.config.metrics:
                timings = []
                for _ in range(self.config.latency_runs):
                    started = time.perf_counter()
                    embed()
                    timings.append(time.perf_counter() - started)
                result["latency_ms"] = round(statistics.median(timings) * 1000, 3)
            if "fidelity" in self.config.metrics:
                if self._reference_embeddings is None:
                    self._reference_embeddings = _embedder(self.reference, "hf")()
                result["fidelity"] = round(_mean_cosine(embeddings, self._reference_embeddings), 6)
        return result


def _embedder(directory: Path, model_type: str) -> Any:
    """A function computing the sentence embeddings (numpy, float32) of the model."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    batch = tokenizer(list(SENTENCES), padding=True, truncation=True, max_length=64)
    mask = np.asarray(batch["attention_mask"], dtype=np.float32)

    def pool(hidden: Any) -> Any:
        hidden = np.asarray(hidden, dtype=np.float32)
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        return summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)

    if model_type == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        names = {i.name for i in session.get_inputs()}
        feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in names}
        return lambda: pool(session.run(None, feed)[0])

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(directory))
    model.eval()
    tensors = {k: torch.tensor(v) for k, v in batch.items()}

    def run() -> Any:
        with torch.inference_mode():
            return pool(model(**tensors).last_hidden_state.float().numpy())

    return run


def _mean_cosine(a: Any, b: Any) -> float:
    import numpy as np

    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return float(np.mean(np.sum(a * b, axis=1)))
