"""The installed distributions' versions and entry points, as :mod:`importlib.metadata`
gives them, for a fraction of its cost.

A warm run asks for the versions of the packages its passes use (they are in the keys) and
for the passes other distributions register. :mod:`importlib.metadata` answers both by
importing the email parser and reading every distribution's metadata: about 35 ms of a
run that takes 250. Here the folders on ``sys.path`` are listed once per process, and a
version is read from the one ``METADATA`` (or ``PKG-INFO``) header it is in, the first
found in ``sys.path`` order, as :mod:`importlib.metadata` finds it. Where that cannot be
told without it (a zip archive on ``sys.path``), :mod:`importlib.metadata` answers.
``tests/test_distributions.py`` checks both against it for every installed distribution.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrs import frozen

__all__ = ["EntryPoint", "entry_points", "version"]

_SEPARATORS = re.compile(r"[-_.]+")
#: An entry point's value, as importlib reads it.
_REFERENCE = re.compile(r"\s*(?P<module>[\w.]+)\s*(?::\s*(?P<attribute>[\w.]+)\s*)?(?:\[.*\]\s*)?")


def _normalized(name: str) -> str:
    return _SEPARATORS.sub("_", name).lower()


@frozen
class _Found:
    """Every distribution's metadata folder, by normalized name, the first found winning;
    and whether a ``sys.path`` entry was an archive, which only importlib can read."""

    folders: dict[str, Path]
    archived: bool


def _found() -> _Found:
    """What ``sys.path`` holds now: listed once per process for each ``sys.path`` seen."""
    return _listed(tuple(sys.path))


@functools.cache
def _listed(path: tuple[str, ...]) -> _Found:
    folders: dict[str, Path] = {}
    archived = False
    for entry in path:
        try:
            listing = os.scandir(entry or ".")
        except NotADirectoryError:
            archived = True
            continue
        except OSError:
            continue
        infos: list[tuple[str, Path]] = []
        eggs: list[tuple[str, Path]] = []
        with listing:
            for item in listing:
                stem, dot, suffix = item.name.rpartition(".")
                if dot and suffix in ("dist-info", "egg-info"):
                    name = _normalized(stem.partition("-")[0])
                    (infos if suffix == "dist-info" else eggs).append((name, Path(item.path)))
        for name, folder in sorted(infos) + sorted(eggs):  # importlib: dist-info first
            folders.setdefault(name, folder)
    return _Found(folders=folders, archived=archived)


def version(name: str) -> str | None:
    """Distribution ``name``'s version, as ``importlib.metadata.version`` gives it; None if
    it is not installed."""
    found = _found()
    folder = found.folders.get(_normalized(name))
    if folder is not None:
        header = _headers(folder).get("version")
        if header is not None:
            return header
    elif not found.archived:
        return None
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _headers(folder: Path) -> dict[str, str]:
    """The ``Name`` and ``Version`` of a metadata folder (lowercase keys), read from its
    headers, the lines before the first empty one; what is not there is absent."""
    for file in ("METADATA", "PKG-INFO"):
        found: dict[str, str] = {}
        try:
            with open(folder / file, encoding="utf-8") as stream:
                for line in stream:
                    if not line.strip():
                        break
                    key, colon, value = line.partition(":")
                    if colon and key.lower() in ("name", "version"):
                        found.setdefault(key.lower(), value.strip())
        except OSError:
            continue
        return found
    return {}


@frozen
class EntryPoint:
    """An entry point: ``name = value`` in ``group`` of a distribution's
    ``entry_points.txt``; ``dist`` names the distribution and its version."""

    name: str
    value: str
    group: str
    dist: str

    def load(self) -> Any:
        """What the entry point names: ``module`` or ``module:attribute.path`` (extras in
        brackets after it are ignored, as importlib ignores them).

        :raises ValueError: the value is not of that form.
        """
        match = _REFERENCE.fullmatch(self.value)
        if match is None:
            raise ValueError(f"{self.value!r} is not module or module:attribute")
        found: Any = importlib.import_module(match["module"])
        for part in (match["attribute"] or "").split("."):
            if part:
                found = getattr(found, part)
        return found


def entry_points(group: str) -> tuple[EntryPoint, ...]:
    """The entry points of ``group`` of every installed distribution, one distribution per
    name (the first found), as ``importlib.metadata.entry_points(group=...)`` gives them."""
    found = _found()
    if found.archived:
        from importlib import metadata

        return tuple(
            EntryPoint(name=e.name, value=e.value, group=e.group,
                       dist=f"{e.dist.name} {e.dist.version}" if e.dist else "an entry point")
            for e in metadata.entry_points(group=group)
        )  # fmt: skip
    return tuple(
        point for folder in found.folders.values() for point in _entry_points(folder, group)
    )


def _entry_points(folder: Path, group: str) -> Iterator[EntryPoint]:
    try:
        text = (folder / "entry_points.txt").read_text(encoding="utf-8")
    except OSError:
        return
    section = None
    dist: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section != group:
            continue
        name, equals, value = line.partition("=")
        if equals:
            if dist is None:
                headers = _headers(folder)
                dist = f"{headers.get('name', folder.name)} {headers.get('version', '')}".strip()
            yield EntryPoint(name=name.strip(), value=value.strip(), group=group, dist=dist)
