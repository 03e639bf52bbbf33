"""Pass parameters as a table, and the one function that checks a configuration against it.

Each built-in pass declares a tuple of :class:`Parameter` rows. A row's ``check`` turns a
user's value into its canonical JSON form (``1`` -> ``1.0`` for a number, aliases to the
canonical name, lists sorted where order means nothing, ``-0.0`` -> ``0.0``) or raises
``ValueError`` whose text is the problem shown to the user. Canonical forms matter: the
validated configuration is hashed into the cache key, so values that mean the same must be
equal. :func:`check_config` reports every problem of a configuration at once.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from ._errors import PassConfigError

__all__ = [
    "REQUIRED",
    "Check",
    "Parameter",
    "PassConfigProblems",
    "boolean",
    "canonical",
    "check_config",
    "did_you_mean",
    "integer",
    "nullable",
    "number",
    "one_of",
    "only",
    "string_set",
]

Check = Callable[[Any], Any]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a parameter the user must give.
REQUIRED: Any = _Required()


@frozen(kw_only=True)
class Parameter:
    """One configuration parameter: its name, default (or :data:`REQUIRED`), a one-line
    description for error messages and documentation, and its check."""

    name: str
    default: Any
    description: str
    check: Check


class PassConfigProblems(PassConfigError):
    """Several problems in one pass configuration: :attr:`errors`, one per parameter, in
    the order found. The first one's ``field`` and ``problem`` are this error's own, so a
    caller that shows one problem shows the first."""

    def __init__(self, errors: Sequence[PassConfigError]) -> None:
        first = errors[0]
        super().__init__(first.pass_type, first.field, first.problem)
        self.errors = tuple(errors)

    def __str__(self) -> str:
        return "; ".join(PassConfigError.__str__(error) for error in self.errors)

    @staticmethod
    def of(errors: Sequence[PassConfigError]) -> PassConfigError:
        """What to raise for ``errors`` (at least one): the error itself when it is alone,
        else all of them."""
        return errors[0] if len(errors) == 1 else PassConfigProblems(errors)


def check_config(
    pass_type: str, parameters: Sequence[Parameter], config: Mapping[str, Any]
) -> dict[str, Any]:
    """``config`` checked against ``parameters``: canonical values, defaults filled in, in
    table order. Raises :class:`PassConfigError` for a single problem and
    :class:`PassConfigProblems` listing them all when there are several."""
    if not isinstance(config, Mapping):
        raise PassConfigError(
            pass_type, None, "the configuration must be a JSON object of parameters"
        )
    names = [p.name for p in parameters]
    errors = [
        PassConfigError(pass_type, str(key), _unknown(pass_type, str(key), names))
        for key in config
        if key not in names
    ]
    validated: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.name not in config:
            if parameter.default is REQUIRED:
                problem = f"missing; give {parameter.description}"
                errors.append(PassConfigError(pass_type, parameter.name, problem))
            validated[parameter.name] = parameter.default
            continue
        try:
            validated[parameter.name] = canonical(parameter.check(config[parameter.name]))
        except ValueError as error:
            errors.append(PassConfigError(pass_type, parameter.name, str(error)))
    if errors:
        raise PassConfigProblems.of(errors)
    return validated


def canonical(value: Any) -> Any:
    """``value`` with every ``-0.0`` made ``0.0``, however deep: they are equal numbers, but
    canonical JSON writes them differently, so they would make different cache keys."""
    if isinstance(value, float):
        return value + 0.0  # -0.0 + 0.0 is 0.0; every other float is unchanged
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def did_you_mean(name: str, names: Sequence[str]) -> str:
    """``"did you mean 'X'? "`` for the entry of ``names`` closest to ``name`` (one that
    contains it or is contained in it, whatever the case, else a close spelling); ``""``
    if none is close."""
    by_lower = {n.lower(): n for n in names}
    key = name.lower()
    close = [n for low, n in by_lower.items() if key and (key in low or low in key)]
    close = close or [by_lower[m] for m in difflib.get_close_matches(key, list(by_lower), n=1)]
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown(pass_type: str, key: str, names: Sequence[str]) -> str:
    takes = ", ".join(names) if names else "no parameters"
    return f"unknown parameter; {did_you_mean(key, names)}{pass_type} takes: {takes}"


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Check:
    """An integer (not a bool) within the bounds."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, got {value!r}")
        _within(value, minimum, maximum)
        return int(value)

    return check


def number(*, minimum: float | None = None, below: float | None = None) -> Check:
    """A number in ``[minimum, below)``, canonically a float."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value!r}")
        if below is not None and not value < below:
            raise ValueError(f"must be below {below}, got {value!r}")
        return float(value)

    return check


def _within(value: int, minimum: int | None, maximum: int | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}, got {value!r}")


def boolean() -> Check:
    """``true`` or ``false``."""

    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value

    return check


def one_of(*choices: str, aliases: Mapping[str, str] | None = None) -> Check:
    """One of ``choices``; an alias stands for its canonical choice."""
    aliases = dict(aliases or {})

    def check(value: Any) -> str:
        if isinstance(value, str):
            if value in choices:
                return value
            if value in aliases:
                return aliases[value]
        accepted = ", ".join(repr(c) for c in (*choices, *aliases))
        raise ValueError(f"must be one of {accepted}; got {value!r}")

    return check


def string_set() -> Check:
    """A list of strings whose order and repetitions mean nothing: canonically sorted,
    without duplicates."""

    def check(value: Any) -> list[str]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"must be a list of strings, got {value!r}")
        for item in value:
            if not isinstance(item, str) or not item:
                raise ValueError(f"must hold non-empty strings only, got {item!r}")
        return sorted(set(value))

    return check


def nullable(inner: Check) -> Check:
    """``null``, or what ``inner`` accepts."""

    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def only(*accepted: Any, otherwise: str) -> Check:
    """A parameter the pass takes at the ``accepted`` values only, each compared with its JSON
    type (``true`` never stands for ``1``); ``otherwise`` says why, and what to do instead."""

    def check(value: Any) -> Any:
        for choice in accepted:
            if type(value) is type(choice) and value == choice:
                return choice
        raise ValueError(f"got {_shown(value)}, but {otherwise}")

    return check


def _shown(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
