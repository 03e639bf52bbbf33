"""Olive's systems (``systems``, ``host``, ``target``, a pass's ``host``): checked, and
noted when they are not local, since modelcache runs everything in this process."""

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
        return
    settings = value.get("config") if isinstance(value.get("config"), dict) else value
    if settings.get("accelerators"):
        reading.note(f"{path}: accelerators are ignored; modelcache's passes run on the CPU")


def resolve_system(reading: Reading, value: Any, path: str, systems: Mapping[str, Any]) -> None:
    """Check a ``host`` or ``target``: the name of one of ``systems``, or a system object."""
    if value is None:
        return
    if isinstance(value, str):
        if value not in systems:
            known = sorted(systems) or "none"
            reading.problem(path, f"no system named {value!r} under $.systems (there are {known})")
        return
    read_system(reading, value, path)
