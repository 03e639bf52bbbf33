"""Olive's pass library through this cache (the ``[olive]`` extra: olive-ai).

With olive-ai installed, every pass type of Olive's library is a pass type here, found by
its Olive name whatever its case, as Olive finds it. Types modelcache has a built-in of
(``OnnxConversion``, ``OnnxDynamicQuantization``) stay the built-ins, so a workflow keeps
one meaning and one key on every machine whether or not Olive is installed; written
``olive:<Type>``, any type is Olive's own. An Olive pass runs Olive's implementation on
Olive's model handlers (:class:`OlivePass`); its key covers Olive's fully resolved
configuration, olive-ai's version and its libraries', the accelerator where the pass
depends on it, the input model's loading settings and the content of every file its
configuration names; the accelerator is the one Olive picks from the target's
(:func:`target_accelerator`). :func:`search_points` draws the points Olive's search would try
(``_search``). ``docs/olive.md`` says more.

Nothing here imports Olive until a pass is validated or run.
"""

from __future__ import annotations

from ._accelerator import target_accelerator
from ._errors import OliveMissingPackage, OlivePassFailed, OliveUnsupported
from ._ignored import ignored_note, precision_of, respelt
from ._library import DISTRIBUTION, OlivePassInfo, olive_passes, olive_version
from ._older import read_older
from ._pass import OLIVE_PREFIX, OlivePass, data_config_packages
from ._search import PassSearch, Sampling, SearchFound, SearchProblem, search_points

__all__ = [
    "DISTRIBUTION",
    "FORMER_NAMES",
    "OLIVE_PREFIX",
    "OliveMissingPackage",
    "OlivePass",
    "OlivePassFailed",
    "OlivePassInfo",
    "OliveUnsupported",
    "PassSearch",
    "Sampling",
    "SearchFound",
    "SearchProblem",
    "data_config_packages",
    "find_olive_pass",
    "ignored_note",
    "respelt",
    "olive_passes",
    "olive_version",
    "precision_of",
    "read_older",
    "search_points",
    "target_accelerator",
]


#: Olive's former names of passes it renamed (as its own configs of the time wrote them),
#: by their lowercase spelling; each finds the pass by its current name.
FORMER_NAMES = {
    "ortperftuning": "OrtSessionParamsTuning",
    "onnxmodeloptimizer": "OnnxPeepholeOptimizer",
    "onnxmatmul4quantizer": "OnnxBlockWiseRtnQuantization",
}


def find_olive_pass(type_name: str) -> OlivePass | None:
    """Olive's pass ``type_name`` (``olive:`` prefix optional, any case, or a name Olive
    had for it before renaming it), or ``None`` if Olive is not installed or has no such
    pass."""
    name = type_name.removeprefix(OLIVE_PREFIX)
    name = FORMER_NAMES.get(name.casefold(), name)
    library = olive_passes()
    info = library.get(name)
    if info is None:
        matches = [found for key, found in library.items() if key.casefold() == name.casefold()]
        info = matches[0] if len(matches) == 1 else None
    return OlivePass(info) if info is not None else None
