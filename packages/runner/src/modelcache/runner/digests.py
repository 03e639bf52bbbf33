"""Digests of model files: :func:`model_digest` of a directory, and :class:`DigestCache`,
which remembers digests between runs by the files' stats, as git and DVC remember file
hashes, and keeps small facts named by content digests (``recall``, ``remember``).

Every input model is identified by the digest of its files; a large model is thus read in
full once per change, not on every plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from attrs import field, frozen

from modelcache.store import READ_AHEAD_FROM, create_file, read_ahead

from ._model_errors import ModelNotFound

__all__ = ["DIGEST_CACHE_VARIABLE", "DigestCache", "model_digest"]

#: Top-level folders left out of a digest: version control and download bookkeeping
#: (``huggingface_hub`` keeps timestamps in ``.cache/``), never part of the model.
_DIGEST_IGNORED_DIRS = frozenset({".git", ".cache"})
_CHUNK = 1 << 20
#: The environment variable naming the folder :class:`DigestCache` keeps its records in.
DIGEST_CACHE_VARIABLE = "MODELCACHE_DIGEST_CACHE"
_DIGEST_RECORD_FORMAT = "modelcache-digest/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def model_digest(path: Path) -> str:
    """The SHA-256 (lowercase hex) of the files in directory ``path``.

    Deterministic: it depends on the files' relative paths and bytes only, not on their
    timestamps, permissions or the order the file system lists them in. Format: one SHA-256
    over, for each regular file in order of its relative POSIX path's UTF-8 bytes::

        <relative path, UTF-8> 0x00 <size in bytes, ASCII decimal> 0x00 <content>

    The size makes the boundaries unambiguous. Symbolic links are followed (a Hugging Face
    cache snapshot is made of links into its blob store); empty folders count for nothing;
    the top-level ``.git`` and ``.cache`` folders are left out. Files are read in 1 MiB
    chunks, so memory use does not grow with the model.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelNotFound(f"{root} is not a directory")
    digest = hashlib.sha256()
    for relative in _files(root):
        file = root / relative
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(str(file.stat().st_size).encode("ascii") + b"\0")
        with contextlib.closing(_file_chunks(file)) as chunks:
            for chunk in chunks:
                digest.update(chunk)
    return digest.hexdigest()


def _file_chunks(file: Path) -> Generator[bytes, None, None]:
    """The bytes of ``file`` (links followed), a chunk at a time; a large file read ahead of
    its hashing by a thread of its own (:func:`modelcache.store.read_ahead`)."""

    def chunks() -> Generator[bytes, None, None]:
        with file.open("rb", buffering=0) as stream:
            while chunk := stream.read(_CHUNK):
                yield chunk

    return read_ahead(chunks()) if file.stat().st_size >= READ_AHEAD_FROM else chunks()


def _hash_model(root: Path) -> str:
    # The one place DigestCache reads a model in full (a seam the tests count calls through).
    return model_digest(root)


#: One file of a model as its digest record remembers it: relative path, device, inode, size,
#: modification and change times in nanoseconds. Any write moves the change time, which no
#: tool can set back; a replaced file or retargeted link has another inode.
_FileStat = tuple[str, int, int, int, int, int]


@frozen(kw_only=True)
class DigestCache:
    """:func:`model_digest`, remembered per model directory, as git and DVC remember file
    hashes: a record per directory holds its digest and every file's path, device, inode,
    size, modification and change time (links followed). A directory whose files all still
    stat the same gets the remembered digest; any difference (a file added, removed, renamed,
    rewritten, replaced, a link retargeted) hashes it again.

    A file changed less than ``settle_seconds`` before the hashing began may change again
    without its times moving (file-system timestamps are coarse), so such a directory's
    digest is not remembered (git's "racily clean" entries). Records are one small JSON file
    each, written atomically; an unreadable or damaged record is a miss, an unwritable folder
    only means nothing is remembered. ``clock`` gives the current time in seconds.
    """

    directory: Path = field(converter=Path)
    settle_seconds: float = 2.0
    clock: Callable[[], float] = time.time

    @classmethod
    def default(cls) -> DigestCache:
        """The user's digest cache: ``$MODELCACHE_DIGEST_CACHE`` if set, else
        ``modelcache/digests`` in ``$XDG_CACHE_HOME`` (default ``~/.cache``). Per user, not
        per workflow cache: a digest is a fact about this machine's files, and inodes mean
        nothing on another machine that may share a workflow's ``cache_dir``."""
        configured = os.environ.get(DIGEST_CACHE_VARIABLE)
        if configured:
            return cls(directory=Path(configured).expanduser())
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(directory=Path(base) / "modelcache" / "digests")

    def digest(self, path: Path) -> str:
        """:func:`model_digest` of directory ``path``, from the record if it is still true."""
        root = Path(path).resolve()
        if not root.is_dir():
            raise ModelNotFound(f"{root} is not a directory")
        record = self.directory / f"{hashlib.sha256(os.fsencode(root)).hexdigest()}.json"
        started = self.clock()
        listing = _stat_listing(root)
        remembered = _read_record(record, root, listing)
        if remembered is not None:
            return remembered
        digest = _hash_model(root)
        settled = (started - self.settle_seconds) * 1e9
        if _stat_listing(root) == listing and all(
            max(mtime, ctime) < settled for *_, mtime, ctime in listing
        ):
            _write_record(record, root, listing, digest)
        return digest

    def file_digest(self, path: Path) -> str:
        """The SHA-256 of file ``path``'s bytes, from the record if the file still stats
        the same (a 2 GB ONNX input is then not read on every run); remembered and settled
        as a directory's digest is."""
        file = Path(path).resolve()
        name = hashlib.sha256(b"file:" + os.fsencode(file)).hexdigest()
        record = self.directory / f"{name}.json"
        started = self.clock()
        listing = [_stat_of(file, file.name)]
        remembered = _read_record(record, file, listing)
        if remembered is not None:
            return remembered
        digest = hashlib.sha256()
        with contextlib.closing(_file_chunks(file)) as chunks:
            for chunk in chunks:
                digest.update(chunk)
        settled = (started - self.settle_seconds) * 1e9
        _, *_ids, mtime, ctime = listing[0]
        if [_stat_of(file, file.name)] == listing and max(mtime, ctime) < settled:
            _write_record(record, file, listing, digest.hexdigest())
        return digest.hexdigest()

    def recall(self, fact: str) -> Any:
        """What :meth:`remember` kept as ``fact`` (a name made of content digests, so never
        stale), or None."""
        try:
            return json.loads((self.directory / "facts" / f"{fact}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def remember(self, fact: str, value: Any) -> None:
        """Keep ``value`` (JSON) as ``fact``; best effort, as the digests' records are."""
        with contextlib.suppress(OSError):
            create_file(self.directory / "facts" / f"{fact}.json",
                        [json.dumps(value).encode("utf-8")], replace=True)  # fmt: skip


def _stat_of(path: Path, relative: str) -> _FileStat:
    stat = path.stat()
    return (relative, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _stat_listing(root: Path) -> list[_FileStat]:
    return [_stat_of(root / relative, relative) for relative in _files(root)]


def _read_record(record: Path, root: Path, listing: list[_FileStat]) -> str | None:
    try:
        document: Any = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != _DIGEST_RECORD_FORMAT:
        return None
    files = document.get("files")
    digest = document.get("digest")
    if document.get("root") != str(root) or not isinstance(digest, str):
        return None
    if not isinstance(files, list) or [tuple(f) for f in files if isinstance(f, list)] != listing:
        return None
    return digest if _HEX64.fullmatch(digest) else None


def _write_record(record: Path, root: Path, listing: list[_FileStat], digest: str) -> None:
    document = {
        "format": _DIGEST_RECORD_FORMAT,
        "root": str(root),
        "digest": digest,
        "files": listing,
    }
    # Remembering is an optimization: a folder that cannot be written costs only the hashing.
    with contextlib.suppress(OSError):
        create_file(record, [json.dumps(document).encode("utf-8")], replace=True)


def _files(root: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        base = Path(folder).relative_to(root)
        if base == Path("."):
            dirs[:] = [d for d in dirs if d not in _DIGEST_IGNORED_DIRS]
        for name in files:
            if (Path(folder) / name).is_file():
                found.append((base / name).as_posix())
    return sorted(found, key=lambda p: p.encode("utf-8"))
