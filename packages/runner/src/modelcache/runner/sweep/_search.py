"""An Olive config that searches, as a sweep: each point Olive's search would try is a
variant, whose config is the Olive config with that point's values written in.

Theory of operation
-------------------
1. The ``search_strategy`` is read into a :class:`~modelcache.runner.olive.Sampling`
   (:mod:`._strategy` says what maps to what).
2. The config is read as ``modelcache run`` reads it, without its ``search_strategy``: once
   for each config a pass lists (Olive's several configs for one pass are a choice of the
   search), the k-th reading taking each listed pass's k-th config (its last, past its end).
   Each pass config's parameters as read (nested ``config`` flattened, data configs
   resolved) are what Olive is asked to search.
3. :func:`~modelcache.runner.olive.search_points` gives the points Olive's engine would
   try: each pass's config index and concrete parameters (``olive/_search.py`` says how
   Olive makes them, default search spaces included).
4. Each point is a variant: the document with that config of each pass, its written
   searches taken out, the point's values (and the one value of a written search with one
   value to try) written in where the search was, or beside the pass's parameters (in its
   nested ``config`` when it has one), and read again as ``modelcache run`` reads a config.
   A pass's key is made from its fully resolved configuration, so equal points share
   entries; a point equal to one before it (Olive pads conditional spaces with repeats) is
   one variant.
5. A variant's name joins ``label=value`` for each parameter whose value differs between
   the variants, labelled as a matrix's axes are, and ``<pass>.config=<i>`` for a pass whose
   chosen config differs.

A listed pass is read as a one-item list, so the paths of its config are at ``[0]``: they
are moved to the index of the config it stands for (:func:`_relocated`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from attrs import evolve

from modelcache.planner import canonical_json

from ..config import (
    CloudOverrides,
    ConfigError,
    PassParameters,
    Problem,
    WorkflowConfig,
    parse_config,
    search_strategy_of,
)
from ..olive import PassSearch, SearchFound, olive_version, search_points, target_accelerator
from ..passes import PassConfigError
from ._matrix import MAX_VARIANTS, Axis, labelled, variant_name
from ._strategy import read_strategy

__all__ = ["search_variants"]

#: The config each listed pass takes: pass name -> index.
_Choice = Mapping[str, int]
#: A point: each pass's config index and parameters.
_Point = Mapping[str, tuple[int, Mapping[str, Any]]]
_SEARCH_TYPES: Final = ("Categorical", "Conditional", "ConditionalDefault")


def search_variants(
    document: dict[str, Any], *, folder: Path, source: str, overrides: CloudOverrides
) -> tuple[list[tuple[str, WorkflowConfig]], list[str], list[Problem]]:
    """The variants of the Olive config ``document``, whose ``search_strategy`` searches:
    each named, in Olive's order; the notes of the search; every problem, at its path in
    the config. Relative paths are relative to ``folder``; ``source`` names the config."""
    at, value = search_strategy_of(document) or ("$.search_strategy", True)
    sampling, notes, problems = read_strategy(value, at)
    if olive_version() is None:
        problem = "searching needs Olive's search spaces: pip install 'modelcache-runner[olive]'"
        problems.append(Problem(path=at, problem=problem))
    engine = document.get("engine")
    if at == "$.search_strategy" and isinstance(engine, dict) and "search_strategy" in engine:
        problem = "also given as $.search_strategy; keep one of the two"
        problems.append(Problem(path="$.engine.search_strategy", problem=problem))
    plain, dropped = _without_search(document)
    notes.extend(dropped)
    lengths = _listed(plain)
    readings = _readings(plain, lengths, folder, overrides, problems)
    places = _places(readings)
    problems.extend(_written_problems(places, lengths))
    if problems or sampling is None:
        return [], notes, problems
    searches = [_pass_search(name, index, params) for (name, index), params in places.items()]
    try:  # Olive makes each pass's search space for the target's accelerator
        accelerator = target_accelerator(readings[0][1].target_accelerators if readings else None)
    except PassConfigError as error:
        return [], notes, [Problem(path="$.target", problem=error.problem)]
    found = search_points(
        searches, sampling, base_dir=folder, limit=MAX_VARIANTS, accelerator=accelerator
    )
    if not isinstance(found, SearchFound):
        located = [
            Problem(path=_where(places, lengths, p.name, p.index, p.parameter), problem=p.problem)
            for p in found
        ]
        return [], notes, located
    notes.extend(_unsearchable_notes(found, places, lengths))
    problems.extend(_found_problems(found, at, places, lengths))
    if problems:
        return [], notes, problems
    points = _distinct(found.points)
    names, clashes = _names(points, Path(source).stem or "search")
    problems.extend(Problem(path=at, problem=clash) for clash in clashes)
    variants = _variants(zip(names, points, strict=True), plain, found, lengths, folder,
                         overrides, problems)  # fmt: skip
    return variants, notes, problems


def _variants(
    named: Iterable[tuple[str, _Point]],
    plain: dict[str, Any],
    found: SearchFound,
    lengths: Mapping[str, int],
    folder: Path,
    overrides: CloudOverrides,
    problems: list[Problem],
) -> list[tuple[str, WorkflowConfig]]:
    """Each named point's config, read as ``modelcache run`` reads one."""
    variants = []
    for name, point in named:
        choice = {pass_name: point[pass_name][0] for pass_name in lengths}
        written = _point_document(plain, point, found, choice)
        try:
            config = parse_config(written, base_dir=folder, overrides=overrides)
        except ConfigError as error:
            problems.extend(
                Problem(path=_relocated(p.path, choice), problem=f"{p.problem} (variant {name})")
                for p in error.problems
            )
            continue
        variants.append((name, _relocated_config(config, choice)))
    return variants


def _without_search(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``document`` without its ``search_strategy`` and its passes' ``disable_search``
    (Olive 0.13 ignores it, with a note each); a copy, the caller's left as it was."""
    plain = copy.deepcopy(document)
    plain.pop("search_strategy", None)
    if isinstance(plain.get("engine"), dict):
        plain["engine"].pop("search_strategy", None)
    notes = []
    passes = plain.get("passes")
    for name, spec in passes.items() if isinstance(passes, dict) else ():
        listed = spec if isinstance(spec, list) else [spec]
        for i, item in enumerate(listed):
            if isinstance(item, dict) and "disable_search" in item:
                item.pop("disable_search")
                where = f"$.passes.{name}[{i}]" if isinstance(spec, list) else f"$.passes.{name}"
                notes.append(
                    f"{where}.disable_search is ignored, as Olive 0.13 ignores it: the pass's "
                    "searchable parameters are searched; give a parameter a value to fix it"
                )
    return plain, notes


def _listed(document: dict[str, Any]) -> dict[str, int]:
    """The passes given as a list of configs, and how many each lists."""
    passes = document.get("passes")
    if not isinstance(passes, dict):
        return {}
    return {name: len(spec) for name, spec in passes.items() if isinstance(spec, list) and spec}


def _chosen(document: dict[str, Any], choice: _Choice) -> dict[str, Any]:
    """A copy of ``document`` whose listed passes are each the one-item list of the config
    ``choice`` names."""
    chosen = copy.deepcopy(document)
    for name, index in choice.items():
        chosen["passes"][name] = [chosen["passes"][name][index]]
    return chosen


def _readings(
    plain: dict[str, Any],
    lengths: Mapping[str, int],
    folder: Path,
    overrides: CloudOverrides,
    problems: list[Problem],
) -> list[tuple[_Choice, WorkflowConfig]]:
    """The config read once for each config a listed pass has (see the module's docstring)."""
    readings: list[tuple[_Choice, WorkflowConfig]] = []
    for k in range(max(lengths.values(), default=1)):
        choice = {name: min(k, count - 1) for name, count in lengths.items()}
        try:
            config = parse_config(_chosen(plain, choice), base_dir=folder, overrides=overrides)
        except ConfigError as error:
            found = (Problem(path=_relocated(p.path, choice), problem=p.problem)
                     for p in error.problems)  # fmt: skip
            problems.extend(p for p in found if p not in problems)
            continue
        readings.append((choice, _relocated_config(config, choice)))
    return readings


def _places(
    readings: Sequence[tuple[_Choice, WorkflowConfig]],
) -> dict[tuple[str, int], Mapping[str, Any]]:
    """Every config of every pass, by (pass, index), in the workflow's order."""
    places: dict[tuple[str, int], Mapping[str, Any]] = {}
    for choice, config in readings:
        for name, parameters in config.passes:
            places.setdefault((name, choice.get(name, 0)), parameters)
    order = [name for name, _ in readings[0][1].passes] if readings else []
    return dict(sorted(places.items(), key=lambda item: (order.index(item[0][0]), item[0][1])))


def _pass_search(name: str, index: int, parameters: Mapping[str, Any]) -> PassSearch:
    return PassSearch(
        name=name,
        index=index,
        type=str(parameters.get("type")),
        parameters={key: value for key, value in parameters.items() if key != "type"},
    )


def _where(
    places: Mapping[tuple[str, int], Mapping[str, Any]],
    lengths: Mapping[str, int],
    name: str,
    index: int,
    parameter: str | None,
) -> str:
    """Where the file writes ``parameter`` of that pass config (or would, left out)."""
    config = f"$.passes.{name}[{index}]" if name in lengths else f"$.passes.{name}"
    if parameter is None:
        return config
    parameters = places.get((name, index))
    origins = parameters.origins if isinstance(parameters, PassParameters) else {}
    return origins.get(parameter, f"{config}.{parameter}")


def _written_problems(
    places: Mapping[tuple[str, int], Mapping[str, Any]], lengths: Mapping[str, int]
) -> Iterator[Problem]:
    """The mistakes of the search parameter objects the passes write, before Olive reads
    them (Olive's own messages for these name no path)."""
    for (name, index), parameters in places.items():
        for parameter, value in parameters.items():
            if isinstance(value, dict) and "support" in value:
                where = _where(places, lengths, name, index, parameter)
                yield from _search_object_problems(value, where)


def _search_object_problems(value: dict[str, Any], where: str) -> Iterator[Problem]:
    kind = value.get("type")
    if value.get("olive_parameter_type") != "SearchParameter":
        yield Problem(path=where, problem=(
            'to search it, write "olive_parameter_type": "SearchParameter" beside "type" and '
            '"support", as Olive reads search parameters'
        ))  # fmt: skip
    elif kind not in _SEARCH_TYPES:
        listed = ", ".join(repr(t) for t in _SEARCH_TYPES)
        yield Problem(path=f"{where}.type", problem=f"choose {listed}, got {kind!r}")
    elif kind == "Categorical":
        support = value["support"]
        if not isinstance(support, list) or not support:
            yield Problem(path=f"{where}.support", problem="give a non-empty list of values to try")
        else:
            yield from _duplicates(support, f"{where}.support")


def _duplicates(values: list[Any], where: str) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        text = canonical_json(value)
        if text in seen:
            yield Problem(path=f"{where}[{i}]", problem=f"duplicate of [{seen[text]}]")
        seen.setdefault(text, i)


def _unsearchable_notes(
    found: SearchFound,
    places: Mapping[tuple[str, int], Mapping[str, Any]],
    lengths: Mapping[str, int],
) -> Iterator[str]:
    for (name, index), parameters in found.unsearchable.items():
        for parameter in parameters:
            where = _where(places, lengths, name, index, parameter)
            yield (
                f"{where} is SEARCHABLE_VALUES, but {places[(name, index)].get('type')} has no "
                "searchable values for it: Olive takes its default, and so does every variant"
            )


def _found_problems(
    found: SearchFound,
    at: str,
    places: Mapping[tuple[str, int], Mapping[str, Any]],
    lengths: Mapping[str, int],
) -> Iterator[Problem]:
    """Too many points, none, and the duplicates of a list of values Olive searches."""
    if found.size and not found.drawn:
        yield Problem(path=at, problem=(
            f"the search has {found.size} points; a sweep makes at most {MAX_VARIANTS} "
            "variants: give max_samples, or fewer values to try"
        ))  # fmt: skip
    elif found.drawn and not found.points:
        yield Problem(path=at, problem=(
            f"each of the {found.drawn} points drawn is one Olive prunes (a value invalid "
            "beside the others): give other values to try, or a larger max_samples"
        ))  # fmt: skip
    elif not found.points:
        yield Problem(path=at, problem="the search has no point to try: give values to try")
    for (name, index), written in found.written.items():
        for parameter in written:
            value = places[(name, index)].get(parameter)
            if isinstance(value, list):
                yield from _duplicates(value, _where(places, lengths, name, index, parameter))


def _distinct(points: Sequence[_Point]) -> list[_Point]:
    """The points, each once, in order: Olive pads a conditional space with repeats."""
    seen: dict[str, _Point] = {}
    for point in points:
        seen.setdefault(canonical_json({name: list(chosen) for name, chosen in point.items()}),
                        point)  # fmt: skip
    return list(seen.values())


#: A parameter left out of a point (Olive's ``IGNORED``): the variant's name skips it.
_ABSENT: Final = object()


def _names(points: Sequence[_Point], single: str) -> tuple[list[str], list[str]]:
    """Each point's name (``single`` when there is one point), and a sentence for each two
    points that would have one name."""
    axes = labelled(_axes(points))
    names: list[str] = []
    clashes: list[str] = []
    for point in points:
        values = [(axis, _value(point, axis)) for axis in axes]
        name = variant_name((axis, v) for axis, v in values if v is not _ABSENT) or single
        if name in names:
            clashes.append(f"two points would both be called {name!r}; give fewer values to try")
        names.append(name)
    return names, clashes


def _axes(points: Sequence[_Point]) -> list[Axis]:
    """The pass configs and parameters that take two values or more among the points, in
    the workflow's order. The choice among a pass's configs is labelled ``<pass>.config``."""
    places: dict[tuple[str, str | None], None] = {}
    for point in points:
        for pass_name, (_index, parameters) in point.items():
            places.setdefault((pass_name, None), None)
            places.update(dict.fromkeys((pass_name, written) for written in parameters))
    axes = []
    for name, parameter in places:
        axis = Axis(
            path=f"passes.{name}.{parameter or 'config'}",
            label="",
            values=(),
            pass_name=name,
            parameter=parameter or f"{name}.config",
            field=None if parameter else "config",
        )
        # A parameter that only comes and goes (Olive leaves it out beside some values of
        # another) follows that other parameter: it names nothing the other does not.
        shown = {canonical_json(v) for p in points if (v := _value(p, axis)) is not _ABSENT}
        if len(shown) > 1:
            axes.append(axis)
    return axes


def _value(point: _Point, axis: Axis) -> Any:
    index, parameters = point[str(axis.pass_name)]
    if axis.field == "config":
        return index
    return parameters.get(str(axis.parameter), _ABSENT)


def _point_document(
    plain: dict[str, Any], point: _Point, found: SearchFound, choice: _Choice
) -> dict[str, Any]:
    """The Olive config of ``point``: each pass's chosen config, its values written in."""
    document = _chosen(plain, choice)
    for name, (index, parameters) in point.items():
        spec = document["passes"][name]
        target = spec[0] if isinstance(spec, list) else spec
        values = {**found.one_value.get((name, index), {}), **parameters}
        _write(target, found.written.get((name, index), ()), values)
    return document


def _write(spec: dict[str, Any], written: Sequence[str], values: Mapping[str, Any]) -> None:
    """``spec`` (a pass config as written) with its searches ``written`` taken out and
    ``values`` written in: where the search was written, or in the nested ``config`` when
    the pass has one, else beside ``type``."""
    nested = spec.get("config") if isinstance(spec.get("config"), dict) else None
    flat = {name for name in written if name in spec}
    for name in written:
        spec.pop(name, None)
        if nested is not None:
            nested.pop(name, None)
    for name, value in values.items():
        if nested is not None and name not in flat and name not in spec:
            nested[name] = value
        else:
            spec[name] = value


def _relocated(text: str, choice: _Choice) -> str:
    """``text`` with each path into a listed pass's one-item list (``$.passes.c[0]``) moved
    to the config it stands for (``$.passes.c[2]``)."""
    for name, index in choice.items():
        if index:
            pattern = re.escape(f"$.passes.{name}[0]") + r"(?=$|[.\[\s:,)])"
            text = re.sub(pattern, f"$.passes.{name}[{index}]".replace("\\", "\\\\"), text)
    return text


def _relocated_config(config: WorkflowConfig, choice: _Choice) -> WorkflowConfig:
    """``config`` with the paths its passes' origins and its notes hold moved (see
    :func:`_relocated`)."""
    if not any(choice.values()):
        return config
    passes = tuple(
        (name, PassParameters(dict(parameters), {
            key: _relocated(origin, choice) for key, origin in parameters.origins.items()
        }) if isinstance(parameters, PassParameters) else parameters)
        for name, parameters in config.passes
    )  # fmt: skip
    notes = tuple(_relocated(note, choice) for note in config.notes)
    return evolve(config, passes=passes, notes=notes)
