"""``modelcache cache show``: the entry a key or key prefix names, and the chain of entries it
was made from, back to the input model."""

from __future__ import annotations

from attrs import frozen
from cattrs.gen import override

from modelcache.planner import JsonMap

from ..errors import UserError
from ._codec import JsonObject, unstructure, wire_format
from .inventory import Inventory

__all__ = ["EntryLink", "MissingLink", "ModelLink", "UnknownEntry", "lineage", "resolve_key"]


class UnknownEntry(UserError):
    """A key or key prefix given on the command line names no entry, or several."""


def resolve_key(inventory: Inventory, text: str) -> str:
    """The key of the entry ``text`` (a key, or a unique prefix of at least 6 hex digits)
    names.

    :raises UnknownEntry: none or several entries do, or ``text`` is too short to tell.
    """
    text = text.strip().lower()
    if text in inventory.entries:
        return text
    if len(text) < 6:
        raise UnknownEntry(f"{text!r} is too short to name an entry: give at least 6 hex digits")
    matches = [key for key in inventory.entries if key.startswith(text)]
    if not matches:
        raise UnknownEntry(f"no entry whose key starts with {text!r} in this cache")
    if len(matches) > 1:
        raise UnknownEntry(f"{len(matches)} entries' keys start with {text!r}: give more digits")
    return matches[0]


@frozen(kw_only=True)
class EntryLink:
    """A link of a lineage: an entry in the cache."""

    key: str
    pass_type: str
    size: int


@frozen(kw_only=True)
class MissingLink:
    """A link of a lineage: an entry no longer in the cache, which ends the chain."""

    key: str
    missing: bool = True


@frozen(kw_only=True)
class ModelLink:
    """The last link of a lineage: the input model's identity."""

    model: JsonMap


wire_format(EntryLink, pass_type=override(rename="pass"))
wire_format(MissingLink)
wire_format(ModelLink)


def lineage(inventory: Inventory, key: str) -> list[JsonObject]:
    """The chain of entries ``key`` was made from, back to the input model: the entry
    first, then its input, and so on; an input no longer in the cache ends the chain."""
    chain: list[EntryLink | MissingLink | ModelLink] = []
    seen: set[str] = set()
    made_from: str | JsonMap | None = key
    while isinstance(made_from, str) and made_from not in seen:
        seen.add(made_from)
        entry = inventory.entries.get(made_from)
        if entry is None:
            chain.append(MissingLink(key=made_from))
            made_from = None
            break
        chain.append(EntryLink(key=made_from, pass_type=entry.pass_type, size=entry.size))
        made_from = entry.input
    if isinstance(made_from, JsonMap):
        chain.append(ModelLink(model=made_from))
    return [unstructure(link) for link in chain]
