"""Checks on JSON that comes from a store, before anything else touches it.

Manifests and evaluation results are written by other machines. Python's ``json`` module
accepts documents that later break their readers far from where they were read: nesting deep
enough to exhaust the interpreter's stack (a ``RecursionError`` in whatever walks them next)
and lone surrogates (``"\\ud800"``), which are valid JSON escapes but not text, and fail
when encoded for a file name or a terminal. :func:`load_untrusted` parses and refuses both,
walking the document without recursion.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "UntrustedJson", "load_untrusted"]

#: The deepest nesting accepted; a key document is about six levels deep.
MAX_DEPTH = 64


class UntrustedJson(ValueError):
    """The bytes are not JSON that a reader can safely hand on; ``str()`` says why."""


def load_untrusted(data: bytes | str) -> Any:
    """The JSON value of ``data``: UTF-8, no NaN or infinity, at most :data:`MAX_DEPTH`
    levels deep, every string (keys too) free of lone surrogates.

    :raises UntrustedJson: saying which of these ``data`` breaks.
    """
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise UntrustedJson(f"it is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UntrustedJson(f"it is not JSON: {error}") from None
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise UntrustedJson(f"it is nested more than {MAX_DEPTH} levels deep")
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for name, child in children:
                if isinstance(name, str):
                    _check_text(name)
                pending.append((child, depth + 1))
    return value


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UntrustedJson(f"a string holds a lone surrogate: {text[:40]!a}") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
