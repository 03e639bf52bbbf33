"""What of an Olive pass's configuration names files, and the digests that key them.

Olive resolves a relative path against the current directory and keeps it absolute in the
configuration; a key holding it would differ on every machine and store a host path in
every manifest (one of the holes of Olive's own shared cache). Here a path stays as the
config wrote it, and what the key holds is the *content* of the file or folder it names
(``files`` of the validated configuration): editing a user script moves the key, moving the
project to another folder does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..inputs import path_digest

__all__ = ["PATH_KEYS", "digest_of", "named_paths", "resolve_paths"]

#: Keys whose string values are paths wherever they appear in a pass's configuration (its
#: data configs included): user code, its folder, and local data.
PATH_KEYS = frozenset({"user_script", "script_dir", "data_dir", "data_files"})


def named_paths(config: Mapping[str, Any], path_params: frozenset[str]) -> Iterator[
    tuple[str, str]
]:  # fmt: skip
    """Every (dotted location, path as written) of ``config``: the values of
    ``path_params`` at the top and of :data:`PATH_KEYS` at any depth. A list of paths
    (``data_files``) gives one location per item."""
    yield from _walk(config, "", path_params | PATH_KEYS, top=True)


def _walk(value: Any, where: str, names: frozenset[str], *, top: bool) -> Iterator[
    tuple[str, str]
]:  # fmt: skip
    if isinstance(value, Mapping):
        for key, inner in value.items():
            location = f"{where}.{key}" if where else str(key)
            if (key in names if top else key in PATH_KEYS) and inner is not None:
                yield from _paths_in(inner, location)
            else:
                yield from _walk(inner, location, names, top=False)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _walk(inner, f"{where}[{index}]", names, top=False)


def _paths_in(value: Any, location: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield location, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield f"{location}[{index}]", item


def resolve_paths(value: Any, base_dir: Path, names: frozenset[str], *, top: bool = True) -> Any:
    """``value`` with every path :func:`named_paths` finds made absolute against
    ``base_dir``; what Olive is handed, so that it never reads the current directory."""
    if isinstance(value, Mapping):
        resolved = {}
        for key, inner in value.items():
            if (key in names if top else key in PATH_KEYS) and inner is not None:
                resolved[key] = _absolute(inner, base_dir)
            else:
                resolved[key] = resolve_paths(inner, base_dir, names, top=False)
        return resolved
    if isinstance(value, list):
        return [resolve_paths(item, base_dir, names, top=False) for item in value]
    return value


def _absolute(value: Any, base_dir: Path) -> Any:
    if isinstance(value, str):
        return str(base_dir / Path(value).expanduser())
    if isinstance(value, list):
        return [_absolute(item, base_dir) for item in value]
    return value


def digest_of(path: Path) -> str | None:
    """``sha256:<hex>`` of a file's bytes, or the digest of a folder's files; ``None`` if
    nothing is there (the caller says which path is missing)."""
    return path_digest(path)
