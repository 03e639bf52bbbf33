"""Olive's workflow schema read into modelcache's: a config written for ``olive run``, as
the document the converter structures.

Theory of operation
-------------------
Olive's ``RunConfig`` has fields of its own (``input_model``, ``passes``, ``systems``,
``data_configs``, ``evaluators``...) and gathers every other top-level field into its
``engine`` section; older configs write those inside ``engine``. :func:`read_olive` lifts
``engine``'s fields to the top (one given in both places is a problem), then takes out
every Olive field: those that mean something here become modelcache's own (an evaluator
named under ``evaluators`` becomes the evaluator; the cache settings become
``cloud_cache_config`` and ``cache_dir``, in :mod:`._cloud`; the passes' nested ``config``
is flattened and their data-config references resolved, in :mod:`._olive_passes`); those
that mean nothing here leave a note (:data:`IGNORED`). What remains is modelcache's schema;
any other key stays for the converter to call unknown. A value that moved is recorded in
the :class:`~._reading.Reading`'s origins, so a problem found in it later names the place
the file wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._cloud import CloudOverrides, read_cloud
from ._olive_evaluator import read_evaluator
from ._olive_passes import read_data_configs, read_passes
from ._reading import Reading, flatten_nested, json_type
from ._systems import read_system, resolve_system

__all__ = [
    "ENGINE_FIELDS",
    "IGNORED",
    "OLIVE_FIELDS",
    "read_olive",
    "search_strategy_of",
    "searches",
]

#: Olive fields that change nothing here, and why (or what modelcache does instead).
IGNORED: Final[Mapping[str, str]] = {
    "workflow_id": "the cache is keyed by content, so every workflow shares its outputs",
    "log_severity_level": "modelcache prints its own notes and errors",
    "ort_log_severity_level": "onnxruntime's own logs are kept to errors",
    "ort_py_log_severity_level": "onnxruntime's own logs are kept to errors",
    "log_to_file": "modelcache writes to the console; --report FILE records a run",
    "output_name": "the final model is written to output_dir under its own file names",
    "plot_pareto_frontier": (
        "nothing is plotted; `modelcache sweep` marks the Pareto front in its table"
    ),
    "no_artifacts": "modelcache writes only the final model to output_dir",
    "packaging_config": "modelcache does not package outputs; the final model is in output_dir",
    "azureml_client": "modelcache runs locally and caches in Azure Blob Storage instead",
    "auto_optimizer_config": "modelcache runs the passes the config lists",
    "evaluate_input_model": (
        "the input model is measured only as the reference of the fidelity metric"
    ),
    "clean_cache": (
        "cache entries are keyed by content, so none is ever stale; `modelcache cache prune` "
        "removes old ones and --no-cache runs every pass"
    ),
    "clean_evaluation_cache": (
        "evaluation results are keyed by the evaluator's fingerprint, so none is ever stale"
    ),
}
#: The fields of Olive's engine section (``EngineConfig``, ``RunEngineConfig``, and the
#: older ``cloud_cache_config`` and ``output_name``): each may be written at the top level.
ENGINE_FIELDS: Final = frozenset({
    "search_strategy", "host", "target", "evaluator", "plot_pareto_frontier", "no_artifacts",
    "evaluate_input_model", "output_dir", "output_name", "packaging_config", "cache_config",
    "cache_dir", "clean_cache", "clean_evaluation_cache", "enable_shared_cache",
    "log_severity_level", "ort_log_severity_level", "ort_py_log_severity_level",
    "log_to_file", "cloud_cache_config",
})  # fmt: skip
#: Every top-level field a config may have besides modelcache's own.
OLIVE_FIELDS: Final = frozenset({
    *ENGINE_FIELDS, *IGNORED, "engine", "systems", "data_configs", "evaluators",
    "pass_flows", "workflow_host",
})  # fmt: skip


def read_olive(document: dict[str, Any], overrides: CloudOverrides, source: str = "") -> Reading:
    """``document`` (a JSON object) rewritten into modelcache's schema, with the problems
    and notes of its Olive fields; ``document`` itself is left as it was (what is rewritten
    is copied first). ``source``: the config file, for the commands a problem suggests.

    :raises RecursionError: the document is nested too deeply to walk.
    """
    reading = Reading(document=dict(document))
    _lift_engine(reading)
    _read_output_dir(reading)
    for name in IGNORED:
        if name in reading.document:
            reading.document.pop(name)
            reading.note(f"{reading.where('$.' + name)} is ignored: {IGNORED[name]}")
    read_data_configs(reading)
    systems = _read_systems(reading)
    _read_search(reading, source)
    evaluators = _read_evaluators(reading)
    _flatten_input_model(reading)
    read_passes(reading, systems=systems, evaluators=evaluators)
    _read_pass_flows(reading, source)
    read_cloud(reading, overrides)
    return reading


def _lift_engine(reading: Reading) -> None:
    document = reading.document
    if "engine" not in document:
        return
    engine = document.pop("engine")
    if engine is None:
        return
    if not isinstance(engine, dict):
        reading.problem("$.engine", f"expected an object, got {json_type(engine)}")
        return
    unknown = sorted(name for name in engine if name not in ENGINE_FIELDS)
    if unknown:
        reading.problem("$.engine", f"unknown field(s) {unknown}; remove or rename them")
    for name, value in engine.items():
        if name not in ENGINE_FIELDS:
            continue
        if name in document:
            reading.problem(f"$.engine.{name}", f"also given as $.{name}; keep one of the two")
            continue
        document[name] = value
        reading.moved(f"$.{name}", f"$.engine.{name}")


def _read_output_dir(reading: Reading) -> None:
    """Olive's ``"output_dir": null``, its working directory, read as modelcache's default:
    a run replaces its output folder whole, which it must never do to the working
    directory."""
    if "output_dir" in reading.document and reading.document["output_dir"] is None:
        del reading.document["output_dir"]
        reading.note(
            f"{reading.where('$.output_dir')} is null, which Olive reads as the working "
            "directory; the final model is written to out/ beside the config instead"
        )


def _read_systems(reading: Reading) -> dict[str, Any]:
    document = reading.document
    systems = document.pop("systems", None)
    if systems is None:
        systems = {}
    elif not isinstance(systems, dict):
        reading.problem(
            "$.systems", f"expected an object of named systems, got {json_type(systems)}"
        )
        systems = {}
    for name, system in systems.items():
        read_system(reading, system, f"$.systems.{name}")
    for field in ("host", "target", "workflow_host"):
        if field in document:
            where = reading.where(f"$.{field}")
            resolve_system(reading, document.pop(field), where, systems, target=field == "target")
    return systems


def search_strategy_of(document: Any) -> tuple[str, Any] | None:
    """Where ``document`` (an Olive config, as written) gives its ``search_strategy`` (the top
    level or ``engine``) and its value; ``None`` if it gives none."""
    if not isinstance(document, dict):
        return None
    if "search_strategy" in document:
        return "$.search_strategy", document["search_strategy"]
    engine = document.get("engine")
    if isinstance(engine, dict) and "search_strategy" in engine:
        return "$.engine.search_strategy", engine["search_strategy"]
    return None


def pass_flows_of(document: Any) -> tuple[str, Any] | None:
    """Where ``document`` (an Olive config, as written) gives its ``pass_flows`` and their
    value; ``None`` if it gives none. (A top-level field: inside ``engine`` it is an error,
    as in Olive.)"""
    if not isinstance(document, dict) or "pass_flows" not in document:
        return None
    return "$.pass_flows", document["pass_flows"]


def searches(document: Any) -> bool:
    """Whether ``document`` is an Olive config that searches: its ``search_strategy`` is
    given and is not ``false``, ``null`` or ``{}`` (which Olive 0.13 refuses; read as no
    search). ``modelcache sweep`` runs such a config as a sweep."""
    found = search_strategy_of(document)
    return found is not None and not _no_search(found[1])


def _no_search(strategy: Any) -> bool:
    return strategy is None or strategy is False or strategy == {}


def _read_search(reading: Reading, source: str) -> None:
    if "search_strategy" not in reading.document:
        return
    strategy = reading.document.pop("search_strategy")
    if not _no_search(strategy):
        reading.searching = True
        reading.problem(reading.where("$.search_strategy"), _search_problem(source))


def _search_problem(source: str) -> str:
    """What ``modelcache run`` says of a config that searches, read from ``source``."""
    command = f"modelcache sweep {source}" if source else "modelcache sweep <this file>"
    return (
        f"this config searches: run it with `{command}`, which runs each point of the "
        "search as a variant (docs/olive.md), or set search_strategy to false"
    )


def _read_evaluators(reading: Reading) -> dict[str, Any]:
    """The named evaluators; ``evaluator``, if it names one, replaced by a copy of it."""
    document = reading.document
    evaluators = document.pop("evaluators", None)
    if evaluators is None:
        evaluators = {}
    elif not isinstance(evaluators, dict):
        problem = f"expected an object of named evaluators, got {json_type(evaluators)}"
        reading.problem("$.evaluators", problem)
        evaluators = {}
    chosen = document.get("evaluator")
    if isinstance(chosen, str):
        if chosen in evaluators:
            document["evaluator"] = evaluators[chosen]
            reading.moved("$.evaluator", f"$.evaluators.{chosen}")
        else:
            del document["evaluator"]
            reading.problem(reading.where("$.evaluator"), _unknown_evaluator(chosen, evaluators))
    for name in evaluators:
        if name != chosen:
            reading.note(f"$.evaluators.{name} is ignored: only $.evaluator measures outputs")
    if "evaluator" in document:
        read_evaluator(reading)
    return evaluators


def _unknown_evaluator(name: str, evaluators: Mapping[str, Any]) -> str:
    known = f"there are {sorted(evaluators)}" if evaluators else "there are none"
    return (
        f'no evaluator named {name!r} under "evaluators" ({known}): Olive configs name an '
        'evaluator defined under "evaluators"; define it there, or write the evaluator '
        'here as an object such as {"metrics": ["size", "fidelity"], "evaluate": "final"}'
    )


def _flatten_input_model(reading: Reading) -> None:
    model = reading.document.get("input_model")
    if not isinstance(model, dict):
        return
    model = reading.document["input_model"] = dict(model)
    for name in flatten_nested(reading, model, "$.input_model"):
        reading.moved(f"$.input_model.{name}", f"$.input_model.config.{name}")


def _read_pass_flows(reading: Reading, source: str) -> None:
    if "pass_flows" not in reading.document:
        return
    flows = reading.document.pop("pass_flows")
    passes = reading.document.get("passes")
    names = list(passes) if isinstance(passes, dict) else None
    if flows is None or flows == [names]:
        reading.note("$.pass_flows is ignored: it runs the passes in the order written")
        return
    command = f"modelcache sweep {source}" if source else "modelcache sweep <this file>"
    reading.problem(
        reading.where("$.pass_flows"),
        f"several flows are several chains: run them with `{command}`, which runs each flow "
        "as a variant (docs/olive.md), or make pass_flows the one flow [[every pass, in order]]",
    )
