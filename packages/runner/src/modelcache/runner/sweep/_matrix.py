"""A sweep's matrix: its axes read and checked, every combination a variant with a name.

An axis is a path into the base workflow and the values it takes:

* ``passes.<pass>.<parameter>``: that parameter of that pass (any JSON value; the pass
  checks it when the variant is prepared, as ``modelcache run`` would);
* ``input_model.model_path``: the input model (a folder relative to the sweep file, a hub id);
* ``input_model.revision``: the hub model's revision.

The variants are the product of the axes, in the order the axes and their values are
written; a variant's name is ``label=value`` for each axis, joined with commas, where the label
is the parameter's name (``pass.parameter`` when two axes end in the same name, ``model`` and
``revision`` for the input model's).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from attrs import evolve, frozen

from modelcache.planner import canonical_json

from ..config import PassParameters, Problem, WorkflowConfig

__all__ = ["MAX_VARIANTS", "Axis", "labelled", "read_axes", "variant_name", "variants_of"]

#: The most variants a matrix may make: more is a mistake, not a sweep.
MAX_VARIANTS: Final = 10_000
_INPUT_FIELDS: Final = {"input_model.model_path": "model", "input_model.revision": "revision"}
#: What a variant's name may hold: it names a folder under the sweep's output_dir.
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,@\[\]{}-]")


@frozen(kw_only=True)
class Axis:
    """One axis of the matrix: where it is (``pass_name`` and ``parameter``, or the input
    model's ``field``), its label in variant names, and its values in order."""

    path: str
    label: str
    values: tuple[Any, ...]
    pass_name: str | None = None
    parameter: str | None = None
    field: str | None = None


def read_axes(
    matrix: Any, config: WorkflowConfig, *, folder: Path
) -> tuple[list[Axis], list[Problem]]:
    """The matrix's axes, or a problem for each mistake in it, at its path in the sweep file.

    :param folder: the sweep file's folder, which relative model paths are relative to.
    """
    if not isinstance(matrix, dict) or not matrix:
        shape = "an empty object" if matrix == {} else "not an object"
        problem = f'{shape}; give at least one axis, as {{"passes.<pass>.<parameter>": [values]}}'
        return [], [Problem(path="$.matrix", problem=problem)]
    axes: list[Axis] = []
    problems: list[Problem] = []
    names = [name for name, _ in config.passes]
    for path, values in matrix.items():
        at = f"$.matrix[{canonical_json(path)}]"
        found = _axis(path, names, at, problems)
        checked = _values(values, at, problems, model=found.get("field") == "model_path")
        if found and checked:
            axes.append(Axis(path=path, label="", values=_located(checked, found, folder), **found))
    named = labelled(axes)
    count = 1
    for axis in named:
        count *= len(axis.values)
    if count > MAX_VARIANTS:
        problem = f"{count} combinations; a sweep makes at most {MAX_VARIANTS} variants"
        problems.append(Problem(path="$.matrix", problem=problem))
    return named, problems


def _axis(path: str, names: Sequence[str], at: str, problems: list[Problem]) -> dict[str, str]:
    """Where the axis ``path`` points: the pass and parameter, or the input model's field."""
    if path in _INPUT_FIELDS:
        return {"field": path.rpartition(".")[2]}
    if path.startswith("passes."):
        rest = path.removeprefix("passes.")
        # Pass names may hold dots: the longest one that prefixes the rest is meant.
        for name in sorted(names, key=len, reverse=True):
            if rest.startswith(f"{name}.") and len(rest) > len(name) + 1:
                return {"pass_name": name, "parameter": rest[len(name) + 1 :]}
        pass_name = rest.partition(".")[0]
        if pass_name in names:
            problem = "no parameter named: write passes.<pass>.<parameter>"
        else:
            known = ", ".join(names) or "none"
            problem = f"no pass called {pass_name!r} in the base workflow; its passes are {known}"
        problems.append(Problem(path=at, problem=problem))
        return {}
    choices = "passes.<pass>.<parameter>, input_model.model_path or input_model.revision"
    problems.append(Problem(path=at, problem=f"unknown axis; an axis is {choices}"))
    return {}


def _values(values: Any, at: str, problems: list[Problem], *, model: bool) -> list[Any]:
    """The axis's values, each once; a problem for an empty list, a duplicate, a model path
    that is not a string."""
    if not isinstance(values, list) or not values:
        problems.append(Problem(path=at, problem="give a non-empty list of the values to try"))
        return []
    seen: dict[str, int] = {}
    ok = True
    for i, value in enumerate(values):
        text = canonical_json(value)
        if text in seen:
            problems.append(Problem(path=f"{at}[{i}]", problem=f"duplicate of [{seen[text]}]"))
            ok = False
        seen.setdefault(text, i)
        if model and not isinstance(value, str):
            problems.append(Problem(path=f"{at}[{i}]", problem="a model path is a string"))
            ok = False
    return list(values) if ok else []


def _located(values: list[Any], found: Mapping[str, str], folder: Path) -> tuple[Any, ...]:
    """Model paths that name a folder or file beside the sweep file, made absolute; hub ids
    and everything else as written."""
    if found.get("field") != "model_path":
        return tuple(values)
    return tuple(str((folder / v).resolve()) if (folder / v).exists() else v for v in values)


def labelled(axes: Sequence[Axis]) -> list[Axis]:
    """Each axis with its label: the parameter's name, or ``pass.parameter`` where two axes
    share it; ``model`` and ``revision`` for the input model's."""
    short = [_INPUT_FIELDS.get(axis.path) or str(axis.parameter) for axis in axes]
    return [
        evolve(axis, label=label if short.count(label) == 1 else axis.path.removeprefix("passes."))
        for axis, label in zip(axes, short, strict=True)
    ]


def variants_of(
    axes: Sequence[Axis], base: WorkflowConfig
) -> tuple[list[tuple[str, WorkflowConfig]], list[Problem]]:
    """Every combination of the axes' values: its name and the base workflow changed so; a
    problem if two combinations would have the same name."""
    variants: list[tuple[str, WorkflowConfig]] = []
    named: dict[str, tuple[Any, ...]] = {}
    problems: list[Problem] = []
    for combination in itertools.product(*(axis.values for axis in axes)):
        name = variant_name(zip(axes, combination, strict=True))
        if name in named:
            problem = (
                f"two combinations would both be called {name!r} "
                f"({_show(named[name])} and {_show(combination)}); list the workflows instead"
            )
            problems.append(Problem(path="$.matrix", problem=problem))
            continue
        named[name] = combination
        config = base
        for axis, value in zip(axes, combination, strict=True):
            config = _changed(config, axis, value)
        variants.append((name, config))
    return variants, problems


def variant_name(values: Iterable[tuple[Axis, Any]]) -> str:
    """The name of the variant whose axes take these values: ``label=value``, joined with
    commas."""
    return ",".join(f"{axis.label}={_value_text(axis, value)}" for axis, value in values)


def _value_text(axis: Axis, value: Any) -> str:
    """A value as a variant's name shows it: a model path by its last part, a string as is,
    anything else as JSON without its quotes; characters a folder name should not hold (on
    any system) become ``_``."""
    if axis.field == "model_path":
        text = Path(str(value)).name or str(value)
    elif isinstance(value, str):
        text = value
    else:
        text = canonical_json(value).replace('"', "")  # ["x"] is [x]
    return _UNSAFE.sub("_", text)


def _show(combination: tuple[Any, ...]) -> str:
    return ", ".join(canonical_json(value) for value in combination)


def _changed(config: WorkflowConfig, axis: Axis, value: Any) -> WorkflowConfig:
    """``config`` with the axis set to ``value``."""
    if axis.field is not None:
        return evolve(config, input_model=evolve(config.input_model, **{axis.field: value}))
    assert axis.pass_name is not None
    assert axis.parameter is not None
    passes = tuple(
        (
            name,
            _with(parameters, str(axis.parameter), value) if name == axis.pass_name else parameters,
        )
        for name, parameters in config.passes
    )
    return evolve(config, passes=passes)


def _with(parameters: Mapping[str, Any], name: str, value: Any) -> PassParameters:
    """The pass's parameters with ``name`` set to ``value``; where the file wrote the
    others is kept, for the problems of the prepared variant."""
    origins = parameters.origins if isinstance(parameters, PassParameters) else {}
    return PassParameters({**parameters, name: value}, origins)
