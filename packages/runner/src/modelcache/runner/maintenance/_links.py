"""Symbolic links inside a local cache: found and removed, never followed.

A local cache never makes a link (``docs/storage-layout.md``), so one found in its layout
was put there from outside: a manifest that is a link, or a folder (``blobs/``,
``entries/``...) swapped for a link to somewhere else. :class:`~modelcache.store.LocalStore`
refuses to read or write through one, and its listing leaves links out, so maintenance looks
at the directory itself to see them; this module is the one place it does. Removing a link
removes the link alone, never what it points to. Stores other than a local directory hold
no links: for them every function here finds or does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from modelcache.store import LAYOUT_PREFIX, LocalStore, MaintainedStore

__all__ = ["find_links", "links_on_the_way", "remove_link", "under_link"]

_LAYOUT = LAYOUT_PREFIX.rstrip("/")


def find_links(store: MaintainedStore) -> tuple[str, ...]:
    """Every symbolic link in ``store``'s layout, by layout name, sorted; links are not
    followed, so nothing under a linked folder is looked at."""
    if not isinstance(store, LocalStore):
        return ()
    root = store.root
    top = root / _LAYOUT
    if top.is_symlink():
        return (_LAYOUT,)
    found: list[str] = []
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            listing = list(os.scandir(folder))
        except OSError:  # absent, or removed meanwhile: nothing there to report
            continue
        for item in listing:
            if item.is_symlink():
                found.append(Path(item.path).relative_to(root).as_posix())
            elif item.is_dir(follow_symlinks=False):
                pending.append(Path(item.path))
    return tuple(sorted(found))


def links_on_the_way(store: MaintainedStore, names: Iterable[str]) -> tuple[str, ...]:
    """The symbolic links among the objects ``names`` and the folders that lead to them."""
    if not isinstance(store, LocalStore):
        return ()
    found: set[str] = set()
    for name in names:
        parts = name.split("/")
        for end in range(1, len(parts) + 1):
            partial = "/".join(parts[:end])
            if (store.root / partial).is_symlink():
                found.add(partial)
                break
    return tuple(sorted(found))


def under_link(name: str, links: Iterable[str]) -> bool:
    """Whether the object ``name`` is one of ``links`` or lies in a linked folder."""
    return any(name == link or name.startswith(f"{link}/") for link in links)


def remove_link(store: MaintainedStore, name: str) -> bool:
    """Remove the symbolic link ``name`` (not what it points to); False if it is no longer
    a link. Errors (a permission) are the operating system's."""
    if not isinstance(store, LocalStore):
        return False
    path = store.root / name
    if not path.is_symlink():
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
