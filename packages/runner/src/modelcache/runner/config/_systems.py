"""Olive's systems (``systems``, ``host``, ``target``, a pass's ``host``): checked, and
noted when they are not local, since modelcache runs everything in this process. The
target's ``accelerators`` are kept: Olive configures (and modelcache keys) each pass that
depends on the accelerator for the one Olive picks from them (``modelcache.runner.olive``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._reading import Reading

__all__ = ["SYSTEM_TYPES", "read_system", "resolve_system"]

#: Olive's system types (``SystemType``, and the older AzureML and IsolatedORT), by their
#: lowercase spelling.
SYSTEM_TYPES: Final[Mapping[str, str]] = {
    "localsystem": "LocalSystem",
    "docker": "Docker",
    "pythonenvironment": "PythonEnvironment",
    "azureml": "AzureML",
    "isolatedort": "IsolatedORT",
}


def read_system(reading: Reading, value: Any, path: str) -> None:
    """Check a system object (``{"type": "LocalSystem", ...}``); a note for one that is
    not local, since modelcache runs everything in this process."""
    kind = value.get("type") if isinstance(value, dict) else None
    if not isinstance(kind, str) or kind.lower() not in SYSTEM_TYPES:
        known = ", ".join(SYSTEM_TYPES.values())
        reading.problem(path, f'a system is an object with a "type", one of {known}')
        return
    kind = SYSTEM_TYPES[kind.lower()]
    if kind != "LocalSystem":
        reading.note(f"{path} is a {kind} system: modelcache runs everything locally")


def resolve_system(
    reading: Reading, value: Any, path: str, systems: Mapping[str, Any], *, target: bool = False
) -> None:
    """Check a ``host`` or ``target``: the name of one of ``systems``, or a system object.
    A ``target``'s accelerators go to ``reading.accelerators``, with a note, unless they
    are the CPU's alone (modelcache's own passes and evaluator run on the CPU whatever they
    say)."""
    if value is None:
        return
    if isinstance(value, str):
        if value not in systems:
            known = sorted(systems) or "none"
            reading.problem(path, f"no system named {value!r} under $.systems (there are {known})")
            return
        system, where = systems[value], f"$.systems.{value}"
    else:
        read_system(reading, value, path)
        system, where = value, path
    if not target or not isinstance(system, dict):
        return
    inner = system.get("config")
    accelerators = (inner if isinstance(inner, dict) else system).get("accelerators")
    if not accelerators:
        return
    accelerators = _first_only(reading, accelerators, where)
    if _cpu_only(accelerators):
        return  # the CPU, as with none: Olive need not be asked
    reading.accelerators = accelerators
    reading.note(
        f"{where}: Olive's passes are configured and keyed for this target's accelerator, "
        "the one Olive 0.13 picks from its accelerators; they run on this machine, and "
        "modelcache's built-in passes and evaluator run on its CPU"
    )


def _first_only(reading: Reading, accelerators: Any, where: str) -> Any:
    """``accelerators``' first, with its first execution provider only, noted where there
    were more: Olive 0.13 refuses more than one of either, where an older Olive ran the
    workflow for each."""
    if not isinstance(accelerators, list):
        return accelerators  # Olive's own check says what is wrong
    if len(accelerators) > 1:
        reading.note(
            f"{where}.accelerators: Olive 0.13 takes one accelerator (an older Olive ran the "
            "workflow for each); modelcache configures Olive's passes for the first"
        )
    first = accelerators[0]
    providers = first.get("execution_providers") if isinstance(first, dict) else None
    if isinstance(providers, list) and len(providers) > 1:
        name = providers[0][0] if isinstance(providers[0], list) else providers[0]
        reading.note(
            f"{where}.accelerators[0].execution_providers: Olive 0.13 takes one execution "
            "provider per accelerator (an older Olive ran the workflow for each); modelcache "
            f"configures Olive's passes for the first, {name}"
        )
        first = {**first, "execution_providers": providers[:1]}
    return [first]


def _cpu_only(accelerators: Any) -> bool:
    """Whether ``accelerators`` (one, as :func:`_first_only` leaves them) name the CPU and
    its execution provider only."""
    accelerator = accelerators[0] if isinstance(accelerators, list) else None
    if not isinstance(accelerator, dict):
        return False
    providers = accelerator.get("execution_providers") or []
    names = {p[0] if isinstance(p, list) and p else p for p in providers}
    return str(accelerator.get("device") or "cpu").lower() == "cpu" and names <= {
        "CPUExecutionProvider"
    }
