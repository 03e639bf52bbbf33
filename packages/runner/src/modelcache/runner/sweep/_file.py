"""The sweep file: a base workflow and a matrix, or a list of workflows, read into variants.

::

    {"base": "workflow.json",
     "matrix": {"passes.quantize.per_channel": [true, false],
                "passes.quantize.reduce_range": [true, false]},
     "output_dir": "sweep-out"}

    {"workflows": ["fp16.json", {"name": "int8", "workflow": "quantized.yaml"}]}

A sweep file is JSON, or YAML when its name ends in ``.yaml`` or ``.yml`` (read as
``modelcache run`` reads a YAML config). An Olive config whose ``search_strategy`` searches
is a sweep too: each point of its search a variant (:mod:`._search`); so is one with several
``pass_flows``: each flow a variant, or a sweep of its own if the config searches
(:mod:`._flows`).

A workflow is a path to a workflow config (modelcache's or Olive's, JSON or YAML, as
``modelcache run`` reads them; relative to the sweep file) or the config itself, inline.
Every mistake is reported at once, one :class:`~modelcache.runner.config.Problem` each. A sweep
spans several files, so each problem's path starts with the file it is in
(``sweep.json: $.matrix["passes.q.x"]``) and the error names no single file.

The document is a handful of fields whose values are a path or an object: checked by hand
here, rather than through a converter, so that each mistake names the place to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from attrs import evolve, field, frozen

from ..config import (
    CloudOverrides,
    ConfigError,
    Problem,
    WorkflowConfig,
    load_config,
    parse_config,
    read_document,
    searches,
)
from ._flows import flow_documents, has_flows
from ._matrix import read_axes, variants_of
from ._resources import PassResources, read_resources
from ._search import search_variants

__all__ = ["SWEEP_FIELDS", "SweepFile", "Variant", "is_sweep_file", "load_sweep", "parse_sweep"]

_NO_OVERRIDES: Final = CloudOverrides()
#: A variant found: its name, its config, where the sweep file gives it, and its origin.
_Found = tuple[str, WorkflowConfig, str, str]
SWEEP_FIELDS: Final = ("base", "matrix", "workflows", "output_dir", "cache_dir", "resources")


@frozen(kw_only=True)
class Variant:
    """One workflow of the sweep: its name (unique; its output folder's name) and config,
    whose ``output_dir`` is its own folder under the sweep's."""

    name: str
    config: WorkflowConfig
    #: Where the config's JSON paths are: ``file: $`` for a workflow file, ``sweep file:
    #: $.base`` for an inline one. A problem at ``$.passes.x`` is at ``origin`` + ``.passes.x``.
    origin: str = "$"


@frozen(kw_only=True)
class SweepFile:
    """A sweep file read: its variants, in order, and what their configs ask for that
    modelcache ignores (each note once)."""

    source: str
    output_dir: Path
    variants: tuple[Variant, ...]
    notes: tuple[str, ...] = ()
    #: What each pass asks of the worker that runs it (``resources``; :mod:`._resources`).
    resources: PassResources = field(factory=PassResources)


def load_sweep(path: Path, *, overrides: CloudOverrides = _NO_OVERRIDES) -> SweepFile:
    """Read the sweep file ``path`` (JSON, or YAML for a ``.yaml`` or ``.yml`` file; or an
    Olive config that searches) and the workflows it names.

    :param overrides: the command line's account and container, over every workflow's.
    :raises ConfigError: naming every mistake of the sweep file and of its workflows.
    """
    document = read_document(path)
    return parse_sweep(
        document, folder=path.parent.resolve(), source=str(path), overrides=overrides
    )


def is_sweep_file(path: Path) -> bool:
    """Whether ``path`` holds a sweep (an object with ``matrix`` or ``workflows``, or an
    Olive config whose ``search_strategy`` searches or that has several ``pass_flows``)
    rather than one workflow; a file that
    cannot be read is not one (the caller says why)."""
    try:
        document = read_document(path)
    except ConfigError:
        return False
    return isinstance(document, dict) and (
        "matrix" in document or "workflows" in document or searches(document)
        or has_flows(document)
    )  # fmt: skip


def parse_sweep(
    document: Any,
    *,
    folder: Path,
    source: str = "sweep",
    overrides: CloudOverrides = _NO_OVERRIDES,
) -> SweepFile:
    """The sweep a parsed JSON document describes; relative paths are relative to ``folder``.

    :raises ConfigError: naming every mistake, each at ``<file>: <JSON path>``.
    """
    problems: list[Problem] = []
    if not isinstance(document, dict):
        raise ConfigError(path=f"{source}: $", problem="a sweep file is a JSON object")
    if has_flows(document):
        return _flowed(document, folder, source, overrides)
    if searches(document):
        return _searched(document, folder, source, overrides)
    if "passes" in document or "input_model" in document:
        problem = (
            "a workflow config, not a sweep: run it with `modelcache run`, or make it a "
            'sweep\'s base: {"base": "<this file>", "matrix": {...}}'
        )
        raise ConfigError(path=f"{source}: $", problem=problem)
    unknown = sorted(set(document) - set(SWEEP_FIELDS))
    if unknown:
        problems.append(
            _at(source, "$", f"unknown field(s) {unknown}; a sweep has {list(SWEEP_FIELDS)}")
        )
    if ("base" in document) == ("workflows" in document):
        problem = 'give either "base" with a "matrix", or "workflows"'
        problems.append(_at(source, "$", problem))
    output_dir = _folder(document, "output_dir", folder, source, problems)
    cache_dir = _folder(document, "cache_dir", folder, source, problems)
    found: list[_Found] = []
    if "base" in document:
        found = _matrix_variants(document, folder, source, overrides, problems)
    elif "workflows" in document:
        found = _listed_variants(document["workflows"], folder, source, overrides, problems)
    if output_dir is None:
        output_dir = _default_output(document, found, folder)
    variants = [_placed(item, output_dir, cache_dir) for item in found]
    problems.extend(_unshared(variants, found, source))
    resources = _resources(document, variants, source, problems)
    if problems:
        raise ConfigError.of(problems)
    notes = tuple(dict.fromkeys(note for v in variants for note in v.config.notes))
    return SweepFile(source=source, output_dir=output_dir, variants=tuple(variants), notes=notes,
                     resources=resources)  # fmt: skip


def _searched(
    document: dict[str, Any], folder: Path, source: str, overrides: CloudOverrides
) -> SweepFile:
    """The sweep of an Olive config that searches: a variant for each point of its search,
    in the config's output_dir and cache."""
    found, notes, problems = search_variants(
        document, folder=folder, source=source, overrides=overrides
    )
    return _one_config_sweep(found, notes, problems, source)


def _flowed(
    document: dict[str, Any], folder: Path, source: str, overrides: CloudOverrides
) -> SweepFile:
    """The sweep of an Olive config with several ``pass_flows``: a variant for each flow
    (each point of its search, if the config searches), in the config's output_dir."""
    flows, problems = flow_documents(document)
    found: list[tuple[str, WorkflowConfig]] = []
    notes: list[str] = []
    for flow, single in flows:
        if searches(single):
            points, said, wrong = search_variants(
                single, folder=folder, source=source, overrides=overrides
            )
            if len(points) == 1:  # nothing to search in this flow
                points = [(flow, points[0][1])]
            else:
                points = [(f"{flow}.{name}", config) for name, config in points]
            found.extend(points)
            notes.extend(said)
            problems.extend(p for p in wrong if p not in problems)
            continue
        try:
            found.append((flow, parse_config(single, base_dir=folder, overrides=overrides)))
        except ConfigError as error:
            problems.extend(p for p in error.problems if p not in problems)
    return _one_config_sweep(found, notes, problems, source)


def _one_config_sweep(
    found: list[tuple[str, WorkflowConfig]], notes: list[str], problems: list[Problem],
    source: str,
) -> SweepFile:  # fmt: skip
    """The sweep of the variants one config (``source``) made, each in its own folder of
    the config's output_dir; or every problem, at its path in the config."""
    if problems:
        raise ConfigError.of(_at(source, p.path, p.problem) for p in problems)
    origin = f"{source}: $"
    output_dir = found[0][1].resolve(found[0][1].output_dir)
    variants = [_placed((name, config, "$", origin), output_dir, None) for name, config in found]
    notes.extend(note for v in variants for note in v.config.notes)
    return SweepFile(source=source, output_dir=output_dir, variants=tuple(variants),
                     notes=tuple(dict.fromkeys(notes)))  # fmt: skip


def _resources(
    document: dict[str, Any], variants: list[Variant], source: str, problems: list[Problem]
) -> PassResources:
    """The ``resources`` field; its pass names are checked once every workflow was read."""
    names = set() if problems else {name for v in variants for name, _ in v.config.passes}
    resources, found = read_resources(document.get("resources"), passes=names, source=source)
    problems.extend(found)
    return resources


def _at(source: str, path: str, problem: str) -> Problem:
    return Problem(path=f"{source}: {path}", problem=problem)


def _folder(
    document: dict[str, Any], name: str, folder: Path, source: str, problems: list[Problem]
) -> Path | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append(_at(source, f"$.{name}", "a folder's path, as a string"))
        return None
    return (folder / value).resolve()


def _workflow(
    value: Any, at: str, folder: Path, source: str, overrides: CloudOverrides
) -> WorkflowConfig:
    """The workflow ``value`` names (a path) or is (inline); problems at their place."""
    if isinstance(value, str):
        return load_config(folder / value, overrides=overrides)
    if isinstance(value, dict):
        try:
            return parse_config(value, base_dir=folder, overrides=overrides)
        except ConfigError as error:
            raise ConfigError.of(
                _at(source, at + p.path.removeprefix("$"), p.problem) for p in error.problems
            ) from None
    problem = "a workflow config's path, or the config itself (an object)"
    raise ConfigError(path=f"{source}: {at}", problem=problem)


def _origin(value: Any, at: str, folder: Path, source: str) -> str:
    """Where a workflow's JSON paths are: its file's ``$``, or its place in the sweep file."""
    return f"{folder / value}: $" if isinstance(value, str) else f"{source}: {at}"


def _located(error: ConfigError) -> Iterator[Problem]:
    """``error``'s problems, each naming its file in its path (see the module's docstring)."""
    for problem in error.problems:
        where = f"{error.source}: " if error.source else ""
        yield Problem(path=f"{where}{problem.path}", problem=problem.problem)


def _matrix_variants(
    document: dict[str, Any],
    folder: Path,
    source: str,
    overrides: CloudOverrides,
    problems: list[Problem],
) -> list[_Found]:
    try:
        base = _workflow(document["base"], "$.base", folder, source, overrides)
    except ConfigError as error:
        problems.extend(_located(error))
        return []
    axes, found = read_axes(document.get("matrix"), base, folder=folder)
    problems.extend(_at(source, p.path, p.problem) for p in found)
    if found:
        return []
    variants, clashes = variants_of(axes, base)
    problems.extend(_at(source, p.path, p.problem) for p in clashes)
    origin = _origin(document["base"], "$.base", folder, source)
    return [(name, config, "$.base", origin) for name, config in variants]


def _listed_variants(
    listed: Any, folder: Path, source: str, overrides: CloudOverrides, problems: list[Problem]
) -> list[_Found]:
    if not isinstance(listed, list) or not listed:
        problems.append(_at(source, "$.workflows", "give a non-empty list of workflows"))
        return []
    variants: list[_Found] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(listed):
        at = f"$.workflows[{i}]"
        named = entry if isinstance(entry, dict) and "workflow" in entry else {"workflow": entry}
        extra = sorted(set(named) - {"name", "workflow"})
        if extra:
            problems.append(_at(source, at, f"unknown field(s) {extra}; give name and workflow"))
        name = named.get("name", Path(entry).stem if isinstance(entry, str) else None)
        why = _bad_name(name) or (f"{name!r} names [{seen[name]}] too" if name in seen else None)
        if why is not None:
            problems.append(_at(source, f"{at}.name", why))
        try:
            config = _workflow(named["workflow"], f"{at}.workflow", folder, source, overrides)
        except ConfigError as error:
            problems.extend(_located(error))
            continue
        if why is None:
            seen[str(name)] = i
            origin = _origin(named["workflow"], f"{at}.workflow", folder, source)
            variants.append((str(name), config, at, origin))
    return variants


def _bad_name(name: Any) -> str | None:
    """Why ``name`` cannot name a variant (it names its output folder), or None."""
    if not isinstance(name, str) or not name:
        return 'give the workflow a name: {"name": ..., "workflow": ...}'
    if name.startswith(".") or "/" in name or "\\" in name:
        return f"{name!r} cannot name a folder: no leading dot, no slashes"
    return None


def _default_output(document: dict[str, Any], found: list[_Found], folder: Path) -> Path:
    """Without ``output_dir``: the base workflow's output_dir, or ``out`` beside the sweep."""
    if "base" in document and found:
        config = found[0][1]
        return config.resolve(config.output_dir)
    return (folder / "out").resolve()


def _placed(found: _Found, output: Path, cache: Path | None) -> Variant:
    """The variant, its output in a folder of its own under the sweep's output_dir."""
    name, config, _at, origin = found
    config = evolve(config, output_dir=output / name)
    if cache is not None:
        config = evolve(config, cache_dir=cache)
    return Variant(name=name, config=config, origin=origin)


def _unshared(variants: list[Variant], found: list[_Found], source: str) -> Iterator[Problem]:
    """The workflows of a sweep share one cache: the same cache_dir, cloud and trust."""
    if not variants:
        return
    first = variants[0].config
    for variant, (_name, _config, at, _origin) in zip(variants[1:], found[1:], strict=True):
        config = variant.config
        differ = [
            name
            for name, same in (
                ("cache_dir", config.resolve(config.cache_dir) == first.resolve(first.cache_dir)),
                ("cloud_cache_config", config.cloud_cache_config == first.cloud_cache_config),
                ("signing", config.signing == first.signing),
                ("trust", config.trust == first.trust),
            )
            if not same
        ]
        if differ:
            verb = "differs" if len(differ) == 1 else "differ"
            problem = (
                f"its {' and '.join(differ)} {verb} from {variants[0].name!r}'s: the workflows "
                "of a sweep share one cache (give cache_dir in the sweep file, or align them)"
            )
            yield _at(source, at, problem)
