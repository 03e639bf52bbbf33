"""Olive's metrics modelcache does not measure itself (``accuracy``, ``custom``; ``latency``
and ``throughput`` of an input without a tokenizer), measured by Olive's own evaluator on a
pass's output, as Olive's engine measures them: the metric
objects as the config wrote them (each ``data_config`` a copy of the one it names), paths
resolved against the config's folder, the model given to Olive's evaluator for its
framework (``OliveEvaluatorConfig(...).create_evaluator(handler).evaluate(...)``), on this
machine's CPU, where modelcache's own evaluator measures too.

The results are Olive's, one value per sub-metric, named as Olive names them in its
footprints (``<metric>-<sub_type>``). Their fingerprint (:func:`metrics_fingerprint`) holds
the metric objects, olive-ai's version and the content of every file they name (the user
script, its folder, local data), so editing a user script measures again and moving the
project does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._keys import PATH_KEYS, digest_of, named_paths, resolve_paths
from ._library import olive_version
from ._memo import remembered
from ._pass import HF_SETTINGS

__all__ = ["evaluate_with_olive", "metrics_fingerprint", "metrics_problem"]


def metrics_fingerprint(metrics: Sequence[Mapping[str, Any]], base_dir: Path) -> dict[str, Any]:
    """What Olive's measure of ``metrics`` depends on besides the model, as JSON values: the
    metric objects, olive-ai's version and the digest of each file they name (``None`` for
    one not there: the evaluation then fails, saying which)."""
    files = {
        f"[{index}].{location}": digest_of(base_dir / written)
        for index, metric in enumerate(metrics)
        for location, written in named_paths(metric, frozenset())
    }
    return {"metrics": [dict(m) for m in metrics], "olive": olive_version(), "files": files}


def metrics_problem(
    metrics: Sequence[Mapping[str, Any]], base_dir: Path, fingerprint: Mapping[str, Any]
) -> str | None:
    """What Olive finds wrong with ``metrics`` (its evaluator config, in one line), or
    ``None``; checked before any pass runs, and remembered as Olive's other answers are,
    under their ``fingerprint`` (:func:`metrics_fingerprint`)."""
    question = {"question": "olive metrics", **fingerprint, "base_dir": str(base_dir)}
    return remembered(question, lambda: _problem(metrics, base_dir))


def _problem(metrics: Sequence[Mapping[str, Any]], base_dir: Path) -> str | None:
    from ._olive import fresh_user_code, quiet

    quiet()
    from olive.evaluator.olive_evaluator import OliveEvaluatorConfig

    fresh_user_code()
    try:
        OliveEvaluatorConfig(metrics=[resolve_paths(dict(m), base_dir, PATH_KEYS) for m in metrics])
    except Exception as error:  # pydantic's, and whatever a user script raises on import
        return f"Olive refuses its metrics: {' '.join(str(error).split())[:400]}"
    return None


def evaluate_with_olive(
    directory: Path,
    model_type: str,
    metrics: Sequence[Mapping[str, Any]],
    *,
    base_dir: Path,
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Olive's measure of ``metrics`` on the model of ``model_type`` in ``directory`` (its
    handler made with ``settings``, the input model's loading settings), by sub-metric.

    :raises ValueError: Olive's evaluator failed; its message, in one line.
    """
    from ._olive import fresh_user_code, handler_for, quiet

    quiet()
    from olive.evaluator.olive_evaluator import OliveEvaluatorConfig

    fresh_user_code()

    resolved = [resolve_paths(dict(metric), base_dir, PATH_KEYS) for metric in metrics]
    # A Hugging Face output loads with the input's settings (its task...); others need none.
    kept = {k: v for k, v in settings.items() if k in HF_SETTINGS} if model_type == "hf" else {}
    handler = handler_for(directory, model_type, kept)
    try:
        config = OliveEvaluatorConfig(metrics=resolved)
        evaluator = config.create_evaluator(handler)
        result = evaluator.evaluate(
            handler, config.metrics, device="cpu", execution_providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # Olive's evaluators raise whatever the user's code raises
        message = " ".join(str(error).split())[:400]
        raise ValueError(f"Olive's evaluator failed: {type(error).__name__}: {message}") from None
    return {name: _json(sub.value) for name, sub in result.items()}


def _json(value: Any) -> Any:
    """A metric value as JSON: numpy and torch scalars as Python numbers."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
