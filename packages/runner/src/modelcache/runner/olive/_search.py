"""Olive's search over a workflow's passes, as Olive's engine makes it: each pass's search
space, sampled by Olive's own sampler, each point as the concrete parameters of every pass.

Theory of operation
-------------------
With a search strategy, Olive's engine asks each pass for its search parameters
(``get_config_params(accelerator, config, disable_search=False)``): the values the config
writes as searches (``"SEARCHABLE_VALUES"``, a search parameter object such as
``{"olive_parameter_type": "SearchParameter", "type": "Categorical", "support": [...]}``, a
list of values for a parameter that has searchable values) and, for every parameter that
has searchable values (``search_defaults``) and that the config leaves out, those values. A
parameter with one value to try is fixed to it. With ``execution_order: joint`` the engine
makes one space of every pass's parameters, a pass's several configs a choice among them,
and its sampler draws from it: ``sequential`` in the space's index order, ``random`` without
replacement from ``random.Random(seed)``; both stop after ``max_samples`` (0: never), the
strategy after ``max_iter`` iterations. A sample holding a value that is invalid beside the
others is pruned; a parameter that means nothing beside the others (Olive's ``IGNORED``)
is left out of the point, and the pass takes its default.

:func:`search_points` does exactly that, with Olive's classes (:mod:`._olive`), on the CPU
accelerator the passes are configured for, and returns each point as every pass's config index and
concrete parameters. A pass type Olive does not have (modelcache's own) has no search space.
The points are a function of olive-ai's version, the passes' types, their parameters and
the sampling, so they are remembered (:mod:`._memo`): a warm sweep does not import Olive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from attrs import asdict, frozen

from ..passes import PassConfigError, PassConfigProblems
from ._keys import resolve_paths
from ._library import olive_version
from ._memo import remembered

__all__ = ["PassSearch", "SearchFound", "SearchProblem", "Sampling", "search_points"]

#: The accelerator a search space is made for when the target names none.
_DEVICE: Final = ("cpu", "CPUExecutionProvider")
#: The values that write a search in a pass type Olive does not have.
_SEARCHABLE = "SEARCHABLE_VALUES"


@frozen(kw_only=True)
class PassSearch:
    """One config of one pass as the workflow writes it: ``name`` is the pass's, ``index``
    which of its configs (0 for a pass with one), ``parameters`` its parameters (JSON
    values; data configs already resolved)."""

    name: str
    index: int
    type: str
    parameters: Mapping[str, Any]


@frozen(kw_only=True)
class Sampling:
    """How points are drawn: Olive's ``sampler`` (``"sequential"`` or ``"random"``),
    ``max_samples`` (0: every point), the ``seed`` of the random sampler, ``max_iter`` (the
    strategy stops once its iterations pass it), and whether the passes' parameters are
    searched (``include_pass_params``; false: only the choice among a pass's configs)."""

    sampler: str = "sequential"
    max_samples: int = 0
    seed: int = 1
    max_iter: int | None = None
    include_pass_params: bool = True


@frozen(kw_only=True)
class SearchProblem:
    """A config Olive cannot search: the pass, which config, the parameter (``None``: the
    config as a whole) and what is wrong."""

    name: str
    index: int
    parameter: str | None
    problem: str


@frozen(kw_only=True)
class SearchFound:
    """What :func:`search_points` found: ``points``, each ``{pass: (config index,
    parameters)}`` in Olive's order (pruned samples left out); ``size``, the points of the
    whole space; ``drawn``, the samples Olive drew (``0``: more than the limit would be);
    and for each pass config, by ``(pass, index)``: the parameters it writes as searches,
    the values of those with one value to try, and those written ``"SEARCHABLE_VALUES"``
    that have no searchable values (Olive takes their default)."""

    points: tuple[Mapping[str, tuple[int, Mapping[str, Any]]], ...]
    size: int
    drawn: int
    written: Mapping[tuple[str, int], tuple[str, ...]]
    one_value: Mapping[tuple[str, int], Mapping[str, Any]]
    unsearchable: Mapping[tuple[str, int], tuple[str, ...]]


class _Refused(Exception):
    def __init__(self, problems: list[SearchProblem]) -> None:
        super().__init__(problems)
        self.problems = problems


def search_points(
    passes: Sequence[PassSearch],
    sampling: Sampling,
    *,
    base_dir: Path,
    limit: int,
    accelerator: tuple[str, str] = _DEVICE,
) -> SearchFound | list[SearchProblem]:
    """The points Olive's engine would try for ``passes`` (every config of every pass, in
    the workflow's order) under ``sampling``, or every problem that stops it. ``base_dir``:
    the folder relative paths are relative to; ``limit``: the most samples to draw (more is
    ``drawn`` 0 and no points); ``accelerator``: the (device, execution provider) the
    passes are configured for (:func:`~._accelerator.target_accelerator`).

    Imports Olive (seconds), unless the answer is remembered.
    """
    question = {
        "search": "olive-search/1",
        "olive": olive_version(),
        "device": list(accelerator),
        "sampling": asdict(sampling),
        "passes": [[p.name, p.index, p.type, dict(p.parameters)] for p in passes],
        "base_dir": str(base_dir),
        "limit": limit,
    }
    try:
        answer = remembered(
            question, lambda: _search(passes, sampling, base_dir, limit, accelerator)
        )
    except _Refused as refused:
        return refused.problems
    return _found(answer)


def _search(
    passes: Sequence[PassSearch],
    sampling: Sampling,
    base_dir: Path,
    limit: int,
    accelerator: tuple[str, str],
) -> dict[str, Any]:
    """:func:`search_points`' answer, as JSON values (it is remembered)."""
    from ._olive import search_samples

    found, configs = _spaces(passes, sampling, base_dir, accelerator)
    spaces: dict[str, list[Mapping[str, Any]]] = {}
    for search, space in found:
        spaces.setdefault(search.name, []).append(space)
    strategy = {
        "execution_order": "joint",
        "sampler": sampling.sampler,
        "sampler_config": {"max_samples": sampling.max_samples}
        | ({"seed": sampling.seed} if sampling.sampler == "random" else {}),
        "max_iter": sampling.max_iter,
    }
    size, samples = search_samples(list(spaces.items()), strategy, limit=limit)
    points = [
        {name: [index, parameters] for name, (index, parameters) in sample.items()}
        for sample in samples
        if sample is not None
    ]
    return {"size": size, "drawn": len(samples), "points": points, "configs": configs}


def _spaces(
    passes: Sequence[PassSearch],
    sampling: Sampling,
    base_dir: Path,
    accelerator: tuple[str, str],
) -> tuple[list[tuple[PassSearch, dict[str, Any]]], list[dict[str, Any]]]:
    """Each pass config's search space (Olive's objects), and what the answer records of it;
    :class:`_Refused` with every problem found."""
    found: list[tuple[PassSearch, dict[str, Any]]] = []
    configs: list[dict[str, Any]] = []
    problems: list[SearchProblem] = []
    for search in passes:
        try:
            space, one_value, written, unsearchable = _space_of(search, base_dir, accelerator)
        except PassConfigError as error:
            errors = error.errors if isinstance(error, PassConfigProblems) else (error,)
            problems.extend(
                SearchProblem(name=search.name, index=search.index, parameter=e.field,
                              problem=e.problem)
                for e in errors
            )  # fmt: skip
            continue
        if not sampling.include_pass_params:
            problems.extend(
                SearchProblem(name=search.name, index=search.index, parameter=name, problem=(
                    "the search_strategy's include_pass_params is false, so no parameter of "
                    "a pass is searched: give one value"
                ))
                for name in written
            )  # fmt: skip
            space = {}
        found.append((search, space))
        configs.append({"name": search.name, "index": search.index, "written": written,
                        "one_value": one_value, "unsearchable": unsearchable})  # fmt: skip
    problems.extend(_nothing_to_try(found))
    if problems:
        raise _Refused(problems)
    return found, configs


def _space_of(
    search: PassSearch, base_dir: Path, device: tuple[str, str]
) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """One pass config's search space (Olive's objects), or none for a type Olive lacks."""
    from . import find_olive_pass
    from ._olive import accelerator_spec, olive_pass_class, path_parameters, search_space

    found = find_olive_pass(search.type)
    if found is None:
        _no_space(search)
        return {}, {}, [], []
    cls = olive_pass_class(found.info)
    accelerator = accelerator_spec(*device)
    absolute = resolve_paths(dict(search.parameters), base_dir, path_parameters(cls, accelerator))
    return search_space(cls, accelerator, absolute, pass_type=found.type)


def _no_space(search: PassSearch) -> None:
    """A pass type Olive does not have cannot be searched: a search written in it is refused."""
    errors = [
        PassConfigError(search.type, name, (
            f"{search.type} is not one of Olive's passes, so Olive cannot search it: give one "
            "value (a matrix sweeps modelcache's own passes, docs/sweeps.md)"
        ))
        for name, value in search.parameters.items()
        if value == _SEARCHABLE
        or (isinstance(value, Mapping) and value.get("olive_parameter_type") == "SearchParameter")
    ]  # fmt: skip
    if errors:
        raise PassConfigProblems.of(errors)


def _nothing_to_try(found: Sequence[tuple[PassSearch, Mapping[str, Any]]]) -> list[SearchProblem]:
    """A search parameter with nothing to try empties the whole space: a problem each."""
    return [
        SearchProblem(name=search.name, index=search.index, parameter=parameter,
                      problem="nothing to try: give at least one value in support")
        for search, space in found
        for parameter, value in space.items()
        if getattr(value, "support", None) == []
    ]  # fmt: skip


def _found(answer: Mapping[str, Any]) -> SearchFound:
    configs = answer["configs"]
    place = {(c["name"], c["index"]): c for c in configs}
    return SearchFound(
        points=tuple(
            {name: (int(index), dict(parameters)) for name, (index, parameters) in point.items()}
            for point in answer["points"]
        ),
        size=int(answer["size"]),
        drawn=int(answer["drawn"]),
        written={key: tuple(c["written"]) for key, c in place.items()},
        one_value={key: dict(c["one_value"]) for key, c in place.items()},
        unsearchable={key: tuple(c["unsearchable"]) for key, c in place.items()},
    )
