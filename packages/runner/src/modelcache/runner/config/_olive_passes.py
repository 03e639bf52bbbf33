"""Olive's passes and data configs read into modelcache's passes: each pass's nested
``config`` flattened into its parameters, its keys that are not parameters (``host``,
``evaluator``, ``disable_search``...) taken out, and every parameter that names one of the
``data_configs`` (``"data_config": "calib"``, at any depth, as Olive resolves them)
replaced by a copy of it, before the passes are checked."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from ._model import PassParameters
from ._reading import Reading, flatten_nested, json_type
from ._systems import resolve_system

__all__ = ["PASS_KEYS", "read_data_configs", "read_passes"]

_SEVERAL_CONFIGS = (
    "several configs for one pass are a search: give the config a search_strategy and run "
    "it with `modelcache sweep` (docs/olive.md), or give one config"
)
#: The keys of Olive's pass config (``RunPassConfig``, and older ones) that are not the
#: pass's parameters, and what modelcache makes of them (``None``: checked apart).
PASS_KEYS: Final[Mapping[str, str | None]] = {
    "host": None,
    "evaluator": None,
    "disable_search": None,
    "clean_run_cache": "cache entries are keyed by content, so none is ever stale",
    "output_name": "only the final model is written, to output_dir",
}


def read_data_configs(reading: Reading) -> None:
    """``data_configs`` (Olive's list of objects with a ``name``, or the older object of
    them by name) into ``reading.data_configs``; a missing or repeated name is a problem."""
    value = reading.document.pop("data_configs", None)
    if value is None:
        return
    if isinstance(value, dict):
        items = [(f"$.data_configs.{name}", name, config) for name, config in value.items()]
    elif isinstance(value, list):
        items = [
            (f"$.data_configs[{i}]", c.get("name") if isinstance(c, dict) else None, c)
            for i, c in enumerate(value)
        ]
    else:
        reading.problem(
            "$.data_configs",
            f"expected a list of data configs, each with a name, got {json_type(value)}",
        )
        return
    first: dict[str, str] = {}
    for path, name, config in items:
        if not isinstance(config, dict):
            reading.problem(path, f"a data config is an object, got {json_type(config)}")
        elif isinstance(value, dict) and config.get("name", name) != name:
            reading.problem(f"{path}.name", f"the name differs from its key {name!r}")
        elif not isinstance(name, str) or not name:
            reading.problem(f"{path}.name", "a data config needs a name (a non-empty string)")
        elif name in first:
            reading.problem(f"{path}.name", f"the name {name!r} is also {first[name]}'s")
        else:
            first[name] = path
            reading.data_configs[name] = {**config, "name": name}


def read_passes(
    reading: Reading, *, systems: Mapping[str, Any], evaluators: Mapping[str, Any]
) -> None:
    """Rewrite each pass of ``reading.document["passes"]`` into :class:`PassParameters`;
    leave anything that is not a pass object for the converter to judge."""
    passes = reading.document.get("passes")
    if not isinstance(passes, dict):
        return
    passes = reading.document["passes"] = dict(passes)
    for name, spec in list(passes.items()):
        path = f"$.passes.{name}"
        if isinstance(spec, list):  # Olive's several configs for one pass, to search over
            if not spec:
                reading.problem(path, "an empty list of configs; give one config")
                del passes[name]
                continue
            if len(spec) > 1 and not reading.searching:  # the first is still checked
                reading.problem(path, _SEVERAL_CONFIGS)
            spec = passes[name] = spec[0]
            reading.moved(path, f"{path}[0]")
        if isinstance(spec, dict):
            passes[name] = _read_pass(reading, dict(spec), path, systems, evaluators)


def _read_pass(
    reading: Reading,
    spec: dict[str, Any],
    path: str,
    systems: Mapping[str, Any],
    evaluators: Mapping[str, Any],
) -> PassParameters:
    written = reading.where(path)
    nested = flatten_nested(reading, spec, written)
    origins = {name: f"{written}.{name}" for name in spec} if written != path else {}
    origins.update({name: f"{written}.config.{name}" for name in nested})
    for name, meaning in PASS_KEYS.items():
        if name not in spec:
            continue
        value = spec.pop(name)
        where = origins.get(name, f"{written}.{name}")
        if name == "host":
            resolve_system(reading, value, where, systems)
        elif name == "evaluator":
            _pass_evaluator(reading, value, where, evaluators)
        elif name == "disable_search":
            _disable_search(reading, value, where)
        else:
            reading.note(f"{where} is ignored: {meaning}")
    for name in list(spec):
        where = origins.get(name, f"{written}.{name}")
        spec[name] = _resolve_data_configs(reading, name, spec[name], where)
    _as_olive_runs_it(reading, spec, written, origins)
    return PassParameters(spec, origins)


def _as_olive_runs_it(
    reading: Reading, spec: dict[str, Any], written: str, origins: Mapping[str, str]
) -> None:
    """What an older Olive wrote that Olive 0.13 cannot run read as that Olive meant it
    (:func:`_read_older`), each value an older Olive spelt otherwise read as Olive 0.13
    spells it, and each parameter Olive 0.13 ignores noted (``olive._ignored``); a built-in
    pass whose Olive parameters it cannot honour as written given Olive's implementation
    instead, as ``olive:<Type>``, with a note: the workflow then means what it means in
    Olive."""
    from ..olive import OLIVE_PREFIX, find_olive_pass, ignored_note, respelt
    from ..passes import UnknownPassType, load_pass
    from ..passes._builtin import BuiltinPass

    type_name = spec.get("type")
    if not isinstance(type_name, str):
        return
    _read_older(reading, spec, written, origins)
    for name in list(spec):
        where = origins.get(name, f"{written}.{name}")
        newer = respelt(type_name, name, spec[name])
        if newer is not None:
            reading.note(
                f"{where}: {spec[name]!r} is an older Olive's spelling of {newer!r}, which "
                f"Olive 0.13 refuses; read as {newer!r} (the same quantization): write that"
            )
            spec[name] = newer
        note = ignored_note(type_name, name)
        if note is not None:
            reading.note(f"{where}: {note}")
    if type_name.startswith(OLIVE_PREFIX):
        return
    try:
        builtin = load_pass(type_name)
    except UnknownPassType:
        return
    if builtin.type == "OnnxDynamicQuantization" and {"precision", "weight_type"} <= set(spec):
        _precision_governs(reading, spec, origins.get("weight_type", f"{written}.weight_type"))
    unhonoured = builtin.unhonoured(spec) if isinstance(builtin, BuiltinPass) else ()
    if unhonoured and find_olive_pass(type_name) is not None:
        spec["type"] = f"{OLIVE_PREFIX}{builtin.type}"
        reading.note(
            f"{written} runs Olive's {builtin.type} ({spec['type']}): the built-in cannot "
            f"honour {', '.join(unhonoured)} as written; its outputs are keyed as Olive's pass's"
        )


def _read_older(
    reading: Reading, spec: dict[str, Any], written: str, origins: Mapping[str, str]
) -> None:
    """``spec`` with what ``olive._older`` reads as an older Olive meant it, its notes and
    problems named where the config wrote them."""
    from ..olive import read_older

    read, notes, problems = read_older(spec["type"], spec, searching=reading.searching)
    spec.clear()
    spec.update(read)
    for name, note in notes:
        reading.note(f"{origins.get(name, f'{written}.{name}') if name else written}: {note}")
    for name, problem in problems:
        reading.problem(origins.get(name, f"{written}.{name}"), problem)


def _precision_governs(reading: Reading, spec: dict[str, Any], where: str) -> None:
    """``weight_type`` beside ``precision`` (a search's, often) taken out: Olive 0.13 ignores
    it there and quantizes as ``precision`` says; said in a note when the two disagree."""
    weight_type = spec.pop("weight_type")
    if not isinstance(weight_type, str) or not isinstance(spec["precision"], str):
        spec["weight_type"] = weight_type  # the pass's own check says what is wrong
        return
    from ..olive import precision_of

    if precision_of(weight_type) != spec["precision"]:
        reading.note(
            f"{where} is ignored: beside precision, Olive 0.13 ignores weight_type (an older "
            f"Olive's name for it) and quantizes as precision says ({spec['precision']!r})"
        )


def _pass_evaluator(
    reading: Reading, value: Any, where: str, evaluators: Mapping[str, Any]
) -> None:
    if isinstance(value, str) and value not in evaluators:
        known = sorted(evaluators) or "none"
        reading.problem(where, f"no evaluator named {value!r} under $.evaluators ({known})")
    elif value is not None:
        reading.note(
            f"{where} is ignored: the workflow's evaluator measures the outputs its "
            '"evaluate" names'
        )


def _disable_search(reading: Reading, value: Any, where: str) -> None:
    if value is True or value is None or (value is False and reading.searching):
        reading.note(f"{where} is ignored: nothing is searched without a search_strategy")
    elif value is False:
        reading.problem(
            where,
            "nothing is searched without a search_strategy: give the config one and run it "
            "with `modelcache sweep` (docs/olive.md), or set it to true",
        )
    else:
        reading.problem(where, f"expected true or false, got {json_type(value)}")


def _resolve_data_configs(reading: Reading, name: str, value: Any, where: str) -> Any:
    """``value`` with each ``*data_config`` naming a data config replaced by a copy of it."""
    if name.endswith("data_config") and isinstance(value, str):
        if value in reading.data_configs:
            return copy.deepcopy(reading.data_configs[value])
        known = sorted(reading.data_configs) or "none"
        reading.problem(where, f"no data config named {value!r} in $.data_configs ({known})")
        return value
    if isinstance(value, dict):
        return {k: _resolve_data_configs(reading, k, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_data_configs(reading, "", v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value
