"""Parameters Olive 0.13 ignores that Olive's own example configs write: an older Olive's
name for a parameter since renamed. Olive drops them with a warning and runs the pass without
them; so does modelcache, saying so in a note, and keeps them in the pass's key (the
``ignored`` section of its configuration), so that an output is never served to a config
whose ignored value differs. Any other parameter Olive does not know stays an error: it is
more often a misspelling (``per_chanel``) than an older name.

Pure data and its readers: nothing here imports Olive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["IGNORED_BY_OLIVE", "ignored_note", "split_ignored"]

_WEIGHT_TYPE = (
    "an older Olive's name for precision; Olive 0.13 ignores it and quantizes the weights "
    'as precision says (default "int8"): write precision to choose'
)
_PREPARE_QNN = (
    "an older Olive's name for prepare_qdq_config; Olive 0.13 ignores it and prepares the QDQ "
    "config as prepare_qdq_config says (default true)"
)
_QUANTIZERS = ("onnxquantization", "onnxstaticquantization")
#: (pass type, casefolded, without ``olive:``; parameter) -> what Olive 0.13 makes of it.
IGNORED_BY_OLIVE: Final[Mapping[tuple[str, str], str]] = {
    **{(name, "weight_type"): _WEIGHT_TYPE for name in _QUANTIZERS},
    **{(name, "prepare_qnn_config"): _PREPARE_QNN for name in _QUANTIZERS},
}


def _key(pass_type: str) -> str:
    return pass_type.casefold().removeprefix("olive:")


def split_ignored(
    pass_type: str, parameters: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``parameters`` as (those Olive reads, those Olive 0.13 ignores) for ``pass_type``."""
    kind = _key(pass_type)
    read: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    for name, value in parameters.items():
        (ignored if (kind, name) in IGNORED_BY_OLIVE else read)[name] = value
    return read, ignored


def ignored_note(pass_type: str, name: str) -> str | None:
    """What to tell a user who gave ``pass_type`` the parameter ``name`` (``None``: it is
    not one Olive 0.13 ignores)."""
    why = IGNORED_BY_OLIVE.get((_key(pass_type), name))
    return None if why is None else f"{why}; the value is kept in the pass's key"
