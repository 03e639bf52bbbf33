"""Evaluation of pass outputs: size, latency, throughput and fidelity to the input model.

Fidelity is the mean cosine similarity between the output model's sentence embeddings (mean
pooling of the last hidden state over the attention mask) and the input model's, on a small
built-in set of sentences. Latency is the median wall time of one forward pass over that
set, after a warm-up; throughput, the sentences per second of that median pass (Olive's
``throughput`` metric: samples per second), from the same timed runs. Results are small
JSON objects, stored in the cache under the model's key and the evaluator's
:attr:`Evaluator.fingerprint`, which changes whenever anything that affects the numbers does
(metrics, sentences, evaluator and runtime versions, and the run count when latency or
throughput is measured).

A model the evaluator cannot run (onnxruntime cannot load it, or its inputs have fixed sizes
the sentences do not fit) is a :class:`~modelcache.runner.config.ConfigError` naming the
pass whose output it is: the chain the config describes made it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import canonical_json

from ._distributions import version
from ._telemetry import silence
from .config import ConfigError, EvaluatorConfig
from .models import openvino_ir

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
        found[name] = version(name) or "absent"
    return found


class Evaluator:
    """Measures models against the input model ``reference`` (a Hugging Face directory);
    Olive's metrics (``config.olive_metrics``) by Olive's own evaluator, their paths relative
    to ``base_dir``, the models loaded with the input model's ``settings``."""

    def __init__(
        self,
        config: EvaluatorConfig,
        *,
        reference: Path,
        base_dir: Path = Path("."),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.reference = reference
        self.base_dir = base_dir
        self.settings = dict(settings or {})
        self._reference_embeddings: Any = None
        document: dict[str, Any] = {
            "evaluator": EVALUATOR_VERSION,
            "metrics": sorted(config.metrics),
            "sentences": list(SENTENCES),
            "packages": _versions("torch", "transformers", "onnxruntime"),
        }
        if version("openvino"):  # it runs OpenVINO IR outputs where it is installed
            document["packages"]["openvino"] = version("openvino")
        if _timed(config.metrics):  # the run count changes nothing else measured
            document["latency_runs"] = config.latency_runs
        #: What Olive's measure of ``config.olive_metrics`` depends on besides the model.
        self.olive_inputs: dict[str, Any] | None = None
        if config.olive_metrics:  # as a config without them had it, when there are none
            from .olive._evaluate import metrics_fingerprint

            self.olive_inputs = metrics_fingerprint(config.olive_metrics, base_dir)
            document["olive"] = self.olive_inputs
        digest = hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
        #: Names this evaluator in the cache: results are stored per (model key, fingerprint).
        self.fingerprint = f"eval-{digest[:40]}"

    def evaluate(
        self, directory: Path, model_type: str, *, pass_name: str | None = None
    ) -> dict[str, Any]:
        """The configured metrics of the model in ``directory`` (``hf``, ``onnx`` or
        ``openvino``), the output of the pass ``pass_name``.

        :raises ConfigError: at ``$.passes.<pass_name>`` (``$.evaluator`` without a name)
            if the model cannot be run on the sentences.
        """
        try:
            return self._measure(directory, model_type)
        except ConfigError as error:
            if pass_name is None:
                raise
            raise ConfigError(path=f"$.passes.{pass_name}", problem=error.problem) from None

    def _measure(self, directory: Path, model_type: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if "size" in self.config.metrics:
            result["size_bytes"] = model_size(directory)
        if self.config.olive_metrics:
            result.update(self._olive(directory, model_type))
        metrics = self.config.metrics
        if _timed(metrics) or "fidelity" in metrics:
            embed = _embedder(directory, model_type)
            embeddings = embed()
            if _timed(metrics):
                timings = []
                for _ in range(self.config.latency_runs):
                    started = time.perf_counter()
                    embed()
                    timings.append(time.perf_counter() - started)
                import statistics  # only when measuring

                median = statistics.median(timings)
                if "latency" in metrics:
                    result["latency_ms"] = round(median * 1000, 3)
                if "throughput" in metrics:
                    result["throughput_sps"] = round(len(SENTENCES) / median, 3)
            if "fidelity" in self.config.metrics:
                if self._reference_embeddings is None:
                    self._reference_embeddings = _embedder(self.reference, "hf")()
                result["fidelity"] = round(_mean_cosine(embeddings, self._reference_embeddings), 6)
        return result

    def _olive(self, directory: Path, model_type: str) -> dict[str, Any]:
        from .olive._evaluate import evaluate_with_olive

        try:
            return evaluate_with_olive(directory, model_type, self.config.olive_metrics,
                                       base_dir=self.base_dir, settings=self.settings)  # fmt: skip
        except ValueError as error:
            raise _unusable(str(error), "correct the metric or its data config") from None


def _timed(metrics: tuple[str, ...]) -> bool:
    """Whether the metrics time forward passes (``latency_runs`` of them)."""
    return "latency" in metrics or "throughput" in metrics


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
        try:
            session = onnxruntime.InferenceSession(
                str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's errors share no base class but Exception
            raise _unusable(f"onnxruntime cannot load it ({_cause(error)})") from None
        names = {i.name for i in session.get_inputs()}
        feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in names}
        _check_shapes(session.get_inputs(), feed)
        return lambda: pool(session.run(None, feed)[0])

    if model_type == "openvino":
        return _openvino_embedder(directory, batch, pool)

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(directory))
    model.eval()
    tensors = {k: torch.tensor(v) for k, v in batch.items()}

    def run() -> Any:
        with torch.inference_mode():
            return pool(model(**tensors).last_hidden_state.float().numpy())

    return run


def _openvino_embedder(directory: Path, batch: Any, pool: Any) -> Any:
    """:func:`_embedder` of an OpenVINO IR model, compiled for the CPU on one thread."""
    import numpy as np

    silence()
    try:
        import openvino
    except ImportError:
        raise _unusable("OpenVINO is not installed", "pip install openvino") from None
    core = openvino.Core()
    try:
        compiled = core.compile_model(
            core.read_model(str(openvino_ir(directory)[0])), "CPU", {"INFERENCE_NUM_THREADS": 1}
        )
    except Exception as error:  # OpenVINO's runtime errors share no public base
        raise _unusable(f"OpenVINO cannot load it ({_first_line(error)})") from None
    names = {name for port in compiled.inputs for name in port.get_names()}
    feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in names}
    request = compiled.create_infer_request()

    def run() -> Any:
        try:
            return pool(request.infer(feed)[compiled.outputs[0]])
        except Exception as error:  # a static shape the sentences do not fit, mostly
            why = f"OpenVINO cannot run it on the sentences ({_first_line(error)})"
            raise _unusable(why) from None

    return run


def _unusable(why: str, fix: str = "change the passes that made it") -> ConfigError:
    return ConfigError(
        path="$.evaluator",
        problem=f"the evaluator cannot measure this output: {why}; {fix}, or evaluate an "
        "earlier pass",
    )


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(error).__name__


def _cause(error: Exception) -> str:
    # onnxruntime's text names the scratch file it loaded; what follows "failed:" is the why.
    return " ".join(str(error).partition("failed:")[2].split()) or type(error).__name__


def _check_shapes(inputs: Any, feed: dict[str, Any]) -> None:
    """A clear problem, rather than onnxruntime's, for an input whose fixed size the
    sentences do not fit (a model exported with static axes)."""
    for graph_input in inputs:
        if graph_input.name not in feed:
            continue
        fed = feed[graph_input.name]
        for axis, size in enumerate(graph_input.shape):
            if isinstance(size, int) and axis < fed.ndim and size != fed.shape[axis]:
                rows, tokens = fed.shape[0], fed.shape[-1]
                raise _unusable(
                    f"its input {graph_input.name!r} has a fixed size {size} on axis {axis}, "
                    f"but the evaluator feeds {rows} sentences of {tokens} tokens",
                    "export with dynamic batch and sequence axes (OnnxConversion's "
                    'dynamic_axes null), measure "size" only',
                )


def _mean_cosine(a: Any, b: Any) -> float:
    import numpy as np

    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return float(np.mean(np.sum(a * b, axis=1)))
