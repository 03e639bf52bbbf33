"""A sweep's results: each variant's measures, and the Pareto front over size, latency and
quality. Pure: numbers in, numbers out.

The objectives are a table (:data:`OBJECTIVES`): the evaluator's metric each reads, and
whether lower or higher is better. Quality is fidelity (the evaluator's), else accuracy (an
Olive metric's), higher better. A variant *dominates* another when it is no worse in every
objective and better in one; the front is the variants no other dominates, among those
measured, over the objectives every one of them measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from attrs import frozen

__all__ = ["OBJECTIVES", "Measures", "dominates", "measures_of", "pareto_front"]

#: objective -> (the metrics it is read from, first found wins; which way is better).
OBJECTIVES: Final[Mapping[str, tuple[tuple[str, ...], Literal["lower", "higher"]]]] = {
    "size": (("size_bytes",), "lower"),
    "latency": (("latency_ms",), "lower"),
    "quality": (("fidelity", "accuracy"), "higher"),
}


@frozen(kw_only=True)
class Measures:
    """A variant's objectives, as measured (an objective not measured is absent)."""

    name: str
    values: Mapping[str, float]


def measures_of(name: str, metrics: Mapping[str, Any]) -> Measures:
    """The objectives a variant's metrics give (numbers only; booleans are not measures)."""
    values: dict[str, float] = {}
    for objective, (names, _better) in OBJECTIVES.items():
        for metric in names:
            value = metrics.get(metric)
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[objective] = float(value)
                break
    return Measures(name=name, values=values)


def dominates(a: Mapping[str, float], b: Mapping[str, float], objectives: Iterable[str]) -> bool:
    """Whether ``a`` is no worse than ``b`` in every objective and better in one."""
    better = False
    for objective in objectives:
        x, y = _oriented(objective, a[objective]), _oriented(objective, b[objective])
        if x > y:
            return False
        better = better or x < y
    return better


def _oriented(objective: str, value: float) -> float:
    """The value where lower is better."""
    return value if OBJECTIVES[objective][1] == "lower" else -value


def pareto_front(measured: Sequence[Measures]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The non-dominated variants, in the order given, and the objectives compared: those
    every variant with any measure has. Variants with none are on no front; with no
    objective in common, the front is empty."""
    candidates = [m for m in measured if m.values]
    if not candidates:
        return (), ()
    common = [o for o in OBJECTIVES if all(o in m.values for m in candidates)]
    if not common:
        return (), ()
    front = tuple(
        m.name
        for m in candidates
        if not any(dominates(other.values, m.values, common) for other in candidates)
    )
    return front, tuple(common)
