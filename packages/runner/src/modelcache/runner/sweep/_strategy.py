"""Olive's ``search_strategy`` read: each of its forms, what it maps to here, and every
mistake at its JSON path.

* ``"sampler": "sequential"`` (older: ``"search_algorithm": "exhaustive"``; ``true``, an
  older Olive's default): every point in Olive's order, the first ``max_samples`` (0: all);
* ``"sampler": "random"`` (older: ``"search_algorithm": "random"``, ``num_samples`` for
  ``max_samples``, default 1): Olive's draw of ``max_samples`` points from ``Random(seed)``;
* ``"sampler": "tpe"`` (older: ``"search_algorithm": "tpe"``): random, with a note, since
  TPE needs the results of the points before it;
* ``"execution_order": "pass-by-pass"``: joint, with a note;
* ``max_iter``: as Olive stops (joint only); ``max_time``, ``stop_when_goals_met`` and
  ``output_model_num``: noted, since a sweep runs every point drawn and keeps every output.

Sampler settings may be written inside ``sampler_config`` (the older
``search_algorithm_config``) or beside the other fields, as Olive gathers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..config import Problem
from ..olive import Sampling

__all__ = ["read_strategy"]

#: Olive 0.13's samplers, and the older search algorithms, as the sampler each runs as.
_SAMPLERS: Final = {"sequential": "sequential", "random": "random", "tpe": "random"}
_ALGORITHMS: Final = {"exhaustive": "sequential", "random": "random", "tpe": "random"}
#: What each sampler (or algorithm) takes in its config.
_SAMPLER_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "sequential": frozenset({"max_samples", "seed"}),  # Olive's CLI writes a seed for every one
    "random": frozenset({"max_samples", "seed"}),
    "tpe": frozenset({"max_samples", "seed", "multivariate", "group"}),
    "exhaustive": frozenset(),
    "algorithm:random": frozenset({"num_samples", "seed", "with_replacement"}),
    "algorithm:tpe": frozenset({"num_samples", "seed"}),
}
_STRATEGY_FIELDS: Final = (
    "execution_order", "sampler", "sampler_config", "search_algorithm",
    "search_algorithm_config", "output_model_num", "stop_when_goals_met", "max_iter",
    "max_time", "include_pass_params",
)  # fmt: skip
_IGNORED: Final = {
    "max_time": "a sweep's points are drawn before anything runs, so time does not end it",
    "stop_when_goals_met": "a sweep runs every point drawn; its table marks the Pareto front",
    "output_model_num": "every variant's model is delivered to its own folder",
}
_TPE: Final = (
    "runs as the random sampler, with the same max_samples and seed: TPE chooses each point "
    "from the results of those before it, which only Olive's engine has (Optuna's TPE draws "
    "its first 10 points at random too, though not these)"
)


def read_strategy(value: Any, at: str) -> tuple[Sampling | None, list[str], list[Problem]]:
    """The sampling ``value`` (a ``search_strategy`` that searches, written at ``at``) asks
    for, the notes it leaves (what runs differently here) and every mistake in it."""
    if value is True:
        note = (
            f"{at} is true: read as an older Olive read it, a joint exhaustive search "
            '(Olive 0.13 needs {"execution_order": "joint", "sampler": "sequential"})'
        )
        return Sampling(), [note], []
    if not isinstance(value, dict):
        problem = 'expected an object such as {"execution_order": "joint", "sampler": "random"}'
        return None, [], [Problem(path=at, problem=f"{problem}, or true or false")]
    notes: list[str] = []
    problems: list[Problem] = []
    unknown = [name for name in value if name not in _STRATEGY_FIELDS and name not in _SETTINGS]
    if unknown:
        known = ", ".join(_STRATEGY_FIELDS)
        problems.append(Problem(path=at, problem=f"unknown field(s) {unknown}; it has {known}"))
    joint = _execution_order(value, at, notes, problems)
    kind, settings = _sampler(value, at, problems)
    max_iter = _count(value, "max_iter", at, problems)
    if max_iter is not None and not joint:
        notes.append(f"{at}.max_iter is ignored, as Olive ignores it for pass-by-pass")
        max_iter = None
    include = value.get("include_pass_params", True)
    if not isinstance(include, bool):
        problems.append(Problem(path=f"{at}.include_pass_params", problem="expected true or false"))
    for name, why in _IGNORED.items():
        if value.get(name) not in (None, False):
            notes.append(f"{at}.{name} is ignored: {why}")
    if kind is None or problems:
        return None, notes, problems
    if kind.endswith("tpe"):
        notes.append(f"{at}: the tpe sampler {_TPE}")
    if settings.get("with_replacement"):
        notes.append(f"{at}: with_replacement is ignored: each point is one variant, once")
    default_samples = 1 if kind.startswith("algorithm:") else 0  # the older Olive's default
    sampling = Sampling(
        sampler=_SAMPLERS.get(kind.removeprefix("algorithm:"), "sequential"),  # exhaustive
        max_samples=settings.get("max_samples", settings.get("num_samples", default_samples)),
        seed=settings.get("seed", 1),
        max_iter=max_iter,
        include_pass_params=include,
    )
    return sampling, notes, problems


#: Every sampler setting, which may be written beside the strategy's own fields too.
_SETTINGS: Final = frozenset().union(*_SAMPLER_FIELDS.values())


def _execution_order(
    value: dict[str, Any], at: str, notes: list[str], problems: list[Problem]
) -> bool:
    """Whether the search is joint (Olive reads the order whatever its case); pass-by-pass
    runs as joint, with a note."""
    order = value.get("execution_order")
    if isinstance(order, str) and order.lower() == "joint":
        return True
    if isinstance(order, str) and order.lower() == "pass-by-pass":
        notes.append(
            f"{at}.execution_order pass-by-pass runs as joint: every pass's points are drawn "
            "together, since the best point of a pass is known only once its variants are "
            "measured (the sweep's table marks the Pareto front)"
        )
        return False
    given = "" if order is None else f", got {order!r}"
    problem = f'give "joint" or "pass-by-pass"{given}'
    problems.append(Problem(path=f"{at}.execution_order", problem=problem))
    return True


def _sampler(
    value: dict[str, Any], at: str, problems: list[Problem]
) -> tuple[str | None, dict[str, Any]]:
    """The sampler (an older algorithm as ``algorithm:<name>``, exhaustive as itself) and its
    settings, gathered from its config object and the strategy's own fields."""
    if ("sampler" in value) == ("search_algorithm" in value):
        problem = (
            "give one of sampler and search_algorithm (its older name), not both"
            if "sampler" in value
            else 'give the sampler: "sequential", "random" or "tpe"'
        )
        problems.append(Problem(path=at, problem=problem))
        return None, {}
    older = "search_algorithm" in value
    field, choices = ("search_algorithm", _ALGORITHMS) if older else ("sampler", _SAMPLERS)
    name = value[field]
    if name not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        problems.append(Problem(path=f"{at}.{field}", problem=f"choose {listed}, got {name!r}"))
        _settings(value, f"{at}.{field}_config", None, at, problems)  # their values still
        return None, {}
    kind = f"algorithm:{name}" if older and name != "exhaustive" else name
    return kind, _settings(value, f"{at}.{field}_config", kind, at, problems)


def _settings(
    value: dict[str, Any], nested_at: str, kind: str | None, at: str, problems: list[Problem]
) -> dict[str, Any]:
    """The sampler's settings: its config object's fields and those written beside the
    strategy's (one given in both places is a problem), each checked (``kind`` None: an
    unknown sampler, whose settings are checked for their values only)."""
    nested = value.get(nested_at.rpartition(".")[2])
    if nested is not None and not isinstance(nested, dict):
        problems.append(Problem(path=nested_at, problem="expected an object"))
        nested = None
    places = {name: f"{at}.{name}" for name in sorted(_SETTINGS & set(value))}
    for name in nested or {}:
        if name in places:
            problem = f"also given as {places[name]}; keep one of the two"
            problems.append(Problem(path=f"{nested_at}.{name}", problem=problem))
        places[name] = f"{nested_at}.{name}"
    settings = {**{name: value[name] for name in _SETTINGS & set(value)}, **(nested or {})}
    takes = _SETTINGS if kind is None else _SAMPLER_FIELDS[kind]
    for name, where in places.items():
        if name not in takes:
            takes_text = ", ".join(sorted(takes)) or "nothing"
            problems.append(Problem(path=where, problem=f"{_named(kind)} takes {takes_text}"))
        elif name in ("with_replacement", "multivariate", "group"):
            if not isinstance(settings[name], bool):
                problems.append(Problem(path=where, problem="expected true or false"))
        elif name == "seed":
            if not isinstance(settings[name], int) or isinstance(settings[name], bool):
                problems.append(Problem(path=where, problem="expected a whole number"))
        else:
            _count(settings, name, where.rpartition(".")[0], problems)
    return settings


def _named(kind: str | None) -> str:
    older = kind == "exhaustive" or str(kind).startswith("algorithm:")
    name = str(kind).removeprefix("algorithm:")
    return f"the {name} search algorithm" if older else f"the {name} sampler"


def _count(value: Mapping[str, Any], name: str, at: str, problems: list[Problem]) -> int | None:
    """``value[name]``: a whole number, 0 or more; ``None`` where absent or null, and a
    problem for anything else."""
    number = value.get(name)
    if number is None:
        return None
    if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
        return number
    problem = f"expected a whole number, 0 or more, got {number!r}"
    problems.append(Problem(path=f"{at}.{name}", problem=problem))
    return None
