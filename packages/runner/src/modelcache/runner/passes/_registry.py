"""The pass registry: the built-in passes and those other packages register.

Theory of operation
-------------------
A pass type (``"OnnxConversion"``) is registered under a *reference*, ``module:attribute``,
naming a :class:`Pass` object or a class whose no-argument constructor makes one. The
built-ins are in :data:`BUILTIN_PASSES`; another package adds a pass by declaring an entry
point in the ``modelcache.passes`` group, named after the pass type::

    [project.entry-points."modelcache.passes"]
    MyPass = "my_package.passes:MyPass"

modelcache-runner declares its built-ins as entry points too, so tools that read only entry
points see them; an entry point with a built-in's name and reference is the same
registration. Two different references under one name are an error when that name is looked
up, never a silent choice. Types are matched whatever their case (``onnxconversion`` is
``OnnxConversion``), as Olive matches them; the exact spelling wins when two types differ
only in case. A type none of those has is looked up in Olive's pass library when olive-ai
is installed (:mod:`modelcache.runner.olive`), and ``olive:<Type>`` is always Olive's.
Looking a pass up imports the module that holds it, and a
plugin's module should be as light as the built-ins', which import torch and onnxruntime
only when they run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from attrs import frozen

from .._distributions import EntryPoint, entry_points
from ._errors import PassRegistryError, UnknownPassType
from ._protocol import Pass

__all__ = ["BUILTIN_PASSES", "ENTRY_POINT_GROUP", "available_passes", "load_pass"]

ENTRY_POINT_GROUP = "modelcache.passes"
#: A type spelled ``olive:<Type>`` is Olive's implementation even where modelcache has a
#: built-in of that name (``olive:OnnxConversion``).
OLIVE_PREFIX = "olive:"

_HERE = "modelcache.runner.passes"
#: The built-in passes: type -> reference.
BUILTIN_PASSES: Mapping[str, str] = MappingProxyType(
    {
        "MagnitudePruning": f"{_HERE}._pruning:MagnitudePruning",
        "OnnxConversion": f"{_HERE}._onnx_conversion:OnnxConversion",
        "OnnxDynamicQuantization": f"{_HERE}._onnx_quantization:OnnxDynamicQuantization",
        "OrtGraphOptimization": f"{_HERE}._ort_optimization:OrtGraphOptimization",
        "TorchDtypeCast": f"{_HERE}._torch_cast:TorchDtypeCast",
    }
)
_BUILT_IN = "built into modelcache-runner"
#: What a pass must have; checked when a registered object is loaded.
_MEMBERS = ("type", "version", "input_types", "output_type", "packages", "validate", "run")


@frozen(kw_only=True)
class _Registration:
    reference: str
    origin: str


def load_pass(type_name: str) -> Pass:
    """The pass registered as ``type_name``, or as the one type that matches it whatever
    the case; the pass's own :attr:`~Pass.type` is the canonical spelling.

    Raises :class:`UnknownPassType` listing the available types if there is
    none, and :class:`PassRegistryError` if the registered pass cannot be loaded, is not a
    pass, or is registered twice.
    """
    registry = _registry(_entry_points())
    if type_name.startswith(OLIVE_PREFIX) or type_name not in registry:
        matches = [name for name in registry if name.casefold() == type_name.casefold()]
        if len(matches) != 1:
            from ..olive import find_olive_pass, olive_passes  # only when Olive may have it

            olive = find_olive_pass(type_name)
            if olive is None:
                raise UnknownPassType(type_name, {*registry, *olive_passes()})
            return olive
        type_name = matches[0]
    return _load(type_name, registry[type_name])


def available_passes() -> dict[str, Pass]:
    """Every registered pass, loaded, by type, in alphabetical order, then Olive's (when
    olive-ai is installed) by the name that finds them: their Olive name, or
    ``olive:<Type>`` where a registered pass has that name.

    Raises :class:`PassRegistryError` if any of them cannot be loaded.
    """
    from ..olive import OlivePass, olive_passes

    registry = _registry(_entry_points())
    found: dict[str, Pass] = {name: _load(name, registry[name]) for name in sorted(registry)}
    taken = {name.casefold() for name in registry}
    for name, info in sorted(olive_passes().items()):
        found[f"{OLIVE_PREFIX}{name}" if name.casefold() in taken else name] = OlivePass(info)
    return found


@functools.cache
def _entry_points() -> Iterable[EntryPoint]:
    """The passes other distributions register; read once per process (the read scans
    every installed distribution's metadata, and a run loads each of its passes)."""
    return entry_points(ENTRY_POINT_GROUP)


def _registry(entry_points: Iterable[EntryPoint]) -> dict[str, list[_Registration]]:
    registry = {
        name: [_Registration(reference=reference, origin=_BUILT_IN)]
        for name, reference in BUILTIN_PASSES.items()
    }
    for entry_point in entry_points:
        known = registry.setdefault(entry_point.name, [])
        if all(r.reference != entry_point.value for r in known):
            known.append(_Registration(reference=entry_point.value, origin=_origin(entry_point)))
    return registry


def _origin(entry_point: EntryPoint) -> str:
    return f"from {entry_point.dist}"


def _load(name: str, registrations: list[_Registration]) -> Pass:
    if len(registrations) > 1:
        listed = "; ".join(f"{r.reference} ({r.origin})" for r in registrations)
        raise PassRegistryError(
            name, f"is registered more than once: {listed}; uninstall all but one"
        )
    registration = registrations[0]
    where = f"{registration.reference} ({registration.origin})"
    try:
        loaded = EntryPoint(name=name, value=registration.reference, group=ENTRY_POINT_GROUP,
                            dist=registration.origin).load()  # fmt: skip
        implementation = loaded() if isinstance(loaded, type) else loaded
    except Exception as error:
        # A plugin that fails to import is its package's bug; the user's fix is to repair
        # or remove that package, so say which one rather than show a traceback.
        raise PassRegistryError(
            name, f"cannot load {where}: {type(error).__name__}: {' '.join(str(error).split())}"
        ) from error
    missing = [member for member in _MEMBERS if not hasattr(implementation, member)]
    if missing:
        raise PassRegistryError(name, f"{where} is not a pass: it has no {', '.join(missing)}")
    if implementation.type != name:
        raise PassRegistryError(
            name, f"{where} is registered as {name!r} but its type is {implementation.type!r}"
        )
    return implementation  # type: ignore[no-any-return]
