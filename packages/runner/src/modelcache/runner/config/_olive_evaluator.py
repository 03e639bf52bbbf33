"""An evaluator as Olive writes it (``OliveEvaluatorConfig``: metric objects, a custom
evaluator ``type``, a user script) read into modelcache's: Olive's latency, throughput and
size metrics become modelcache's; its accuracy and custom metrics stay Olive's metric
objects (``olive_metrics``, each ``data_config`` a copy of the one it names), measured by
Olive's own evaluator when olive-ai is installed; what cannot be measured is left out with
a note. Latency and throughput of an input that is not a Hugging Face model, which
modelcache cannot time (it times sentences through the input's tokenizer), are Olive's to
measure too, on the data config they name."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from .._distributions import version
from ._reading import Reading, quote

__all__ = ["read_evaluator"]

#: Olive's metric types modelcache measures, and as which of its metrics.
MEASURED: Final[Mapping[str, str]] = {
    "latency": "latency", "throughput": "throughput", "size_on_disk": "size",
}  # fmt: skip
#: modelcache's metrics measured on sentences, through the input model's tokenizer.
TOKENIZED: Final = ("latency", "throughput", "fidelity")
#: Olive's other metric types (``MetricType``).
NOT_MEASURED: Final = ("accuracy", "custom")
#: The fields of Olive's evaluator that choose a custom evaluator.
_CUSTOM = ("type", "type_args", "user_script", "script_dir")


def olive_version() -> str | None:
    """olive-ai's version, or ``None`` (read without importing the Olive adapter)."""
    return version("olive-ai")


def read_evaluator(reading: Reading) -> None:
    """Rewrite ``reading.document["evaluator"]``, if it is an object, into modelcache's
    form; drop it, with a note, if none of its metrics can be measured here."""
    evaluator = reading.document["evaluator"]
    if not isinstance(evaluator, dict):
        return  # the converter says what an evaluator is
    evaluator = reading.document["evaluator"] = dict(evaluator)
    where = reading.where("$.evaluator")
    evaluator.pop("name", None)  # Olive's own label of a named evaluator
    for name in _CUSTOM:
        if name in evaluator:
            evaluator.pop(name)
            reading.note(
                f"{where}.{name} is ignored: modelcache's evaluator measures size, latency "
                "and fidelity itself"
            )
    metrics = evaluator.get("metrics")
    if not isinstance(metrics, list) or not any(isinstance(m, dict) for m in metrics):
        return
    found = len(reading.problems)
    model = reading.document.get("input_model")
    kind = model.get("type") if isinstance(model, dict) else None
    untokenized = kind if isinstance(kind, str) and kind.lower() != "hfmodel" else None
    olive: list[dict[str, Any]] = []
    kept = [
        _metric(reading, metric, f"{where}.metrics[{i}]", untokenized, olive)
        for i, metric in enumerate(metrics)
    ]
    evaluator["metrics"] = [metric for metric in kept if metric is not None]
    if olive:
        left = len(olive) < sum(isinstance(metric, dict) for metric in metrics)
        evaluator["olive_metrics"] = _ranked(olive) if left else olive
    if not evaluator["metrics"] and not olive and len(reading.problems) == found:
        del reading.document["evaluator"]
        reading.note(f"{where}: none of its metrics can be measured here, so nothing is evaluated")


def _metric(
    reading: Reading, metric: Any, path: str, untokenized: str | None, olive: list[dict[str, Any]]
) -> Any:
    """The modelcache metric an Olive metric object asks for, or ``None`` (with a note or a
    problem; an accuracy or custom metric Olive measures appended to ``olive``); anything
    else is left for the converter to judge. ``untokenized``: the input model's type when it
    has no tokenizer to time latency through."""
    if not isinstance(metric, dict):
        return metric
    kind = metric.get("type")
    label = quote(metric.get("name", kind))
    if isinstance(kind, str) and MEASURED.get(kind.lower()) in TOKENIZED and untokenized:
        timed = MEASURED[kind.lower()]
        if olive_version() is not None and metric.get("data_config") is not None:
            if _for_olive(reading, metric, path, olive):
                reading.note(
                    f"{path} ({label}) is measured by Olive's evaluator on its data_config: "
                    f"modelcache times {timed} on sentences, through the tokenizer of a "
                    f"Hugging Face input model, which this {untokenized} input has not"
                )
            return None
        reading.note(
            f"{path} ({label}) is left out: modelcache times {timed} on sentences, through "
            f"the tokenizer of a Hugging Face input model, which this {untokenized} input has "
            "not, and Olive's evaluator needs its data_config (and olive-ai)"
        )
        _check_data_config(reading, metric, path)
        return None
    if isinstance(kind, str) and kind.lower() in MEASURED:
        ours = MEASURED[kind.lower()]
        reading.note(
            f"{path} ({label}) is measured as modelcache's {ours!r} metric; its other "
            "settings (sub_types, user_config, data_config...) are ignored"
        )
        _check_data_config(reading, metric, path)
        return ours
    if isinstance(kind, str) and kind.lower() in NOT_MEASURED:
        if olive_version() is None:
            reading.note(
                f"{path} ({label}) is left out: modelcache measures size, latency, throughput "
                f"and fidelity, and Olive, not installed here, {kind.lower()} metrics: pip "
                "install 'modelcache-runner[olive]'"
            )
            _check_data_config(reading, metric, path)
            return None
        backend = metric.get("backend")
        if str(backend).lower() == "huggingface_metrics" and version("evaluate") is None:
            reading.note(
                f"{path} ({label}) is left out: Olive measures it with Hugging Face's "
                "evaluate package, not installed here: pip install evaluate"
            )
            _check_data_config(reading, metric, path)
            return None
        _for_olive(reading, metric, path, olive)
        return None
    known = ", ".join([*MEASURED, *NOT_MEASURED])
    reading.problem(f"{path}.type", f"unknown metric type {quote(kind)}; Olive's are {known}")
    return None


def _for_olive(
    reading: Reading, metric: dict[str, Any], path: str, olive: list[dict[str, Any]]
) -> bool:
    """Whether ``metric`` was appended to ``olive``, with a copy of its data config: not if
    it names none there is (a problem), nor if its data config needs a package not installed
    (``datasets`` for a Hugging Face dataset: a note; Olive would fail measuring it, after the
    passes)."""
    if not _check_data_config(reading, metric, path):
        return False
    from ..olive import data_config_packages

    measured = _with_data_config(reading, metric)
    data = measured.get("data_config")
    needed = data_config_packages(data) if isinstance(data, Mapping) else []
    missing = [package for package in needed if version(package) is None]
    if missing:
        reading.note(
            f"{path} ({quote(metric.get('name', metric.get('type')))}) is left out: its data "
            f"config needs the {missing[0]} package, not installed here: pip install "
            f"{missing[0]}"
        )
        return False
    olive.append(measured)
    return True


def _ranked(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``metrics``, some of a config's, with their sub-metrics' priorities ranked among
    themselves (2 and 3 become 1 and 2; a tie stays one): Olive wants them to run from 1,
    and those of the metrics left out (or measured by modelcache) are not there."""
    metrics = copy.deepcopy(metrics)
    subs = [sub for m in metrics for sub in m.get("sub_types") or () if isinstance(sub, dict)]
    given = {sub["priority"] for sub in subs if isinstance(sub.get("priority"), int)} - {-1}
    rank = {priority: i for i, priority in enumerate(sorted(given), start=1)}
    for sub in subs:
        if sub.get("priority") in rank:
            sub["priority"] = rank[sub["priority"]]
    return metrics


def _check_data_config(reading: Reading, metric: dict[str, Any], path: str) -> bool:
    """Whether the ``data_config`` ``metric`` names, if any, is one of ``data_configs``."""
    name = metric.get("data_config")
    if isinstance(name, str) and name not in reading.data_configs:
        known = sorted(reading.data_configs) or "none"
        reading.problem(
            f"{path}.data_config", f"no data config named {name!r} in $.data_configs ({known})"
        )
        return False
    return True


def _with_data_config(reading: Reading, metric: dict[str, Any]) -> dict[str, Any]:
    """``metric`` with the data config it names replaced by a copy of it, as Olive does."""
    name = metric.get("data_config")
    if isinstance(name, str):
        return {**metric, "data_config": copy.deepcopy(reading.data_configs[name])}
    return dict(metric)
