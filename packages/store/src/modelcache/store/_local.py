"""A store in a local directory, laid out as ``docs/storage-layout.md`` describes.

Theory of operation
-------------------
The directory holds the layout's objects as files: ``<root>/modelcache-v1/blobs/sha256/ab/
<sha256>``, ``<root>/modelcache-v1/entries/<key>.json`` and ``<root>/modelcache-v1/
evaluations/<key>/<fingerprint>.json``. Several processes may use it at once, with no lock:

* Every file is written under a temporary name (``.<random>.tmp``, which no reader takes
  for an object) in the directory it belongs to, flushed to disk, and then given its name
  with ``os.link``, which fails if the name exists. So a name, once it exists, always
  holds complete content, and is never rewritten.
* A blob that exists is not written again: its name is its content's SHA-256. Its
  modification time is refreshed instead, which tells a concurrent prune that it is wanted
  (see :meth:`LocalStore.delete_object`).
* The manifest is linked last. Of several processes publishing one key, exactly one
  link succeeds (that publish returns True); the others find the name taken and return
  False. Readers that find a manifest therefore find every blob it names.
* Evaluation results are created the same way: the first one written stands.

Nothing in the store is trusted on reading: manifests are parsed by
:meth:`Manifest.from_json`, blobs are hashed while they are copied out, symbolic links are
refused, and a fetch builds the model in a temporary directory it renames into place.

Operating-system errors on the store's side are translated into the store error family in
one place, :meth:`LocalStore._store_errors`; errors on the caller's side (the directory
being published, the fetch destination) are not the store's and propagate unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import SnapshotEntry

from ._atomic import create_file
from ._errors import (
    AccessDenied,
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from ._evaluations import MAX_EVALUATION_SIZE, evaluation_bytes, parse_evaluation
from ._file_locks import FILE_LOCKS_WORK, FileLocks
from ._layout import (
    StoredObject,
    blob_name,
    evaluation_name,
    evaluations_prefix,
    is_key,
    manifest_name,
    parse_evaluation_name,
)
from ._manifest import MAX_MANIFEST_SIZE, Manifest, ManifestFile, manifest_bytes
from ._port import Progress, Tier, listed
from ._transfer import CHUNK_SIZE, counted, source_chunks, write_entry

__all__ = ["LocalStore"]

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class LocalStore:
    """A :class:`~modelcache.store.Store` in the directory ``root``.

    :param root: the cache directory; the layout lives under ``root/modelcache-v1/``. It
        is created on the first write; a missing directory reads as an empty store. It
        must be on a file system with hard links (any local POSIX file system, NTFS).
    :param tier: ``local`` (the machine's own cache, the default) or ``cloud`` (a shared
        network directory standing in for a blob container).

    Safe to use from several threads and processes at once. Costs: :meth:`snapshot` reads
    one manifest and lists one directory per key (local disk, so no round trips to
    speak of); :meth:`publish` writes only the blobs the store lacks and flushes each
    new file to disk before it is named.
    """

    def __init__(self, root: Path, tier: Tier = "local") -> None:
        self.root = Path(root)
        self.tier: Tier = tier

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r}, tier={self.tier!r})"

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        """What the directory holds for ``keys``; see :meth:`Store.snapshot`.

        An entry whose manifest cannot be trusted is listed as absent (a miss), with its
        evaluation results if it has any. Values that are not keys are left out.
        """
        listing: list[SnapshotEntry] = []
        for key in dict.fromkeys(keys):
            if not is_key(key):
                continue
            try:
                manifest: Manifest | None = self.read_manifest(key)
            except (EntryNotFound, CorruptEntry):
                manifest = None
            entry = listed(key, self.tier, manifest, self._fingerprints(key))
            if entry is not None:
                listing.append(entry)
        return listing

    def read_manifest(self, key: str) -> Manifest:
        """The validated manifest of ``key``; see :meth:`Store.read_manifest`.

        A manifest file that is a symbolic link, not a regular file, or larger than
        :data:`~modelcache.store.MAX_MANIFEST_SIZE` is ``InvalidManifest``.
        """
        data = self._read(manifest_name(key), MAX_MANIFEST_SIZE, InvalidManifest)
        if data is None:
            raise EntryNotFound(f"no entry {key} in the local cache {self.root}")
        return Manifest.from_json(data, key=key)

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        """Copy the entry's files into the new directory ``destination``; see
        :meth:`Store.fetch`.

        Files are copied, never linked, so the caller may change them freely. Each blob is
        hashed while it is copied; a blob that is missing, a symbolic link, or does not
        match the manifest raises ``CorruptEntry`` and leaves nothing at ``destination``.
        ``destination`` must not exist (``FileExistsError``); errors writing it (a full
        disk) are the caller's and propagate as ``OSError``.
        """
        manifest = self.read_manifest(key)
        write_entry(destination, manifest, self._blob_chunks, progress)
        return manifest

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        """Publish the directory ``source`` as ``manifest``'s entry; see :meth:`Store.publish`.

        Only the files the manifest lists are published; anything else in ``source`` is
        ignored. Returns False at once, writing nothing, if the entry exists already.
        """
        data = manifest_bytes(manifest)
        final = self._path(manifest_name(manifest.key))
        with self._store_errors("publish an entry"):
            if os.path.lexists(final):
                return False
            for item in manifest.files:
                self._put_blob(source, item, progress)
            return create_file(final, [data])

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        """The stored result of ``fingerprint`` on ``key``; see :meth:`Store.read_evaluation`.

        A result that is not a JSON object raises ``CorruptEntry``.
        """
        data = self._read(evaluation_name(key, fingerprint), MAX_EVALUATION_SIZE, CorruptEntry)
        if data is None:
            raise EntryNotFound(f"no result of evaluator {fingerprint} for entry {key}")
        return parse_evaluation(data)

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        """Store an evaluation result, keeping an existing one; see
        :meth:`Store.write_evaluation`."""
        final = self._path(evaluation_name(key, fingerprint))
        data = evaluation_bytes(result)
        with self._store_errors("store an evaluation result"):
            create_file(final, [data])

    def locks(self) -> FileLocks | None:
        """``flock`` on a lock file per entry under this directory (None where the system
        has no ``flock``); see :meth:`Store.locks`."""
        return FileLocks(self.root) if FILE_LOCKS_WORK else None

    def _path(self, name: str) -> Path:
        """The file that holds the layout object ``name``.

        :raises CorruptEntry: a folder on the way (``blobs/``, ``entries/``...) is a symbolic
            link. The store never makes one, and following it would read or write objects
            outside the cache directory.
        """
        parts = name.split("/")
        folder = self.root
        for part in parts[:-1]:
            folder = folder / part
            try:
                linked = stat.S_ISLNK(os.lstat(folder).st_mode)
            except OSError:
                break  # absent (made later by mkdir, as a real folder), or reported later
            if linked:
                raise CorruptEntry(
                    f"{folder} is a symbolic link; the local cache never makes one, and does "
                    "not follow it outside the cache directory: remove it"
                )
        return self.root.joinpath(*parts)

    @contextlib.contextmanager
    def _store_errors(self, doing: str) -> Iterator[None]:
        """Translate the operating system's errors about the store into store errors."""
        try:
            yield
        except PermissionError as error:
            raise AccessDenied(
                f"cannot {doing} in the local cache {self.root}: permission denied on "
                f"{error.filename}; fix the directory's permissions or choose another cache_dir"
            ) from None
        except (NotADirectoryError, FileExistsError, IsADirectoryError) as error:
            raise StoreConfigError(
                f"cannot {doing} in the local cache {self.root}: {error.filename} is in the "
                "way; the cache directory must hold only what modelcache puts there"
            ) from None
        except OSError as error:
            if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
                problem = "no space left on the device; free some or choose another cache_dir"
            else:
                problem = error.strerror or str(error)
            raise StoreUnavailable(
                f"cannot {doing} in the local cache {self.root}: {problem}"
            ) from None

    def _read(self, name: str, limit: int, corrupt: type[StoreError]) -> bytes | None:
        """The content of a small object, None if absent; ``corrupt`` if it is not a plain
        file of at most ``limit`` bytes."""
        path = self._path(name)
        with self._store_errors("read"):
            try:
                descriptor = os.open(path, _READ_FLAGS)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError:
                if os.path.islink(path):
                    raise corrupt(f"{name} is a symbolic link; the store never makes one") from None
                raise
            with os.fdopen(descriptor, "rb") as stream:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    raise corrupt(f"{name} is not a regular file")
                data = stream.read(limit + 1)
            if len(data) > limit:
                raise corrupt(f"{name} is larger than {limit} bytes")
            return data

    def _fingerprints(self, key: str) -> tuple[str, ...]:
        """The fingerprints of the evaluation results stored for ``key``."""
        prefix = evaluations_prefix(key)
        with self._store_errors("list evaluation results"):
            try:
                folder = self._path(prefix.rstrip("/"))
                if os.path.islink(folder):
                    return ()
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError, CorruptEntry):
                return ()
        parsed = (parse_evaluation_name(prefix + name) for name in names)
        return tuple(item[1] for item in parsed if item is not None)

    def _blob_chunks(self, sha256: str) -> Iterator[bytes]:
        """The bytes of a stored blob, 1 MiB at a time."""
        try:
            yield from self._chunks(blob_name(sha256))
        except EntryNotFound:
            raise CorruptEntry(f"blob {sha256} is missing from the local cache") from None

    def _chunks(self, name: str) -> Iterator[bytes]:
        """The bytes of a stored object, 1 MiB at a time; ``EntryNotFound`` if absent."""
        path = self._path(name)
        with self._store_errors("read a blob"):
            try:
                descriptor = os.open(path, _READ_FLAGS)
            except (FileNotFoundError, NotADirectoryError):
                raise EntryNotFound(f"{name} is missing from the local cache") from None
            except OSError:
                if os.path.islink(path):
                    raise CorruptEntry(f"{name} is a symbolic link") from None
                raise
            with os.fdopen(descriptor, "rb", buffering=0) as stream:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    raise CorruptEntry(f"{name} is not a regular file")
                while chunk := stream.read(CHUNK_SIZE):
                    yield chunk

    def _put_blob(self, source: Path, item: ManifestFile, progress: Progress | None = None) -> None:
        """Store one file of ``source`` as a blob, unless the blob is there already, in
        which case it is refreshed (a new modification time). A blob of the wrong size
        (damaged from outside) is replaced: its name says what its bytes must be."""
        final = self._path(blob_name(item.sha256))
        try:
            info = os.lstat(final)
        except (FileNotFoundError, NotADirectoryError):
            info = None
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_size == item.size:
            with contextlib.suppress(FileNotFoundError):
                os.utime(final, follow_symlinks=False)
                return
        chunks = source_chunks(source, item)
        create_file(
            final,
            chunks if progress is None else counted(chunks, progress),
            replace=info is not None,
        )

    # -- maintenance (MaintainedStore) -----------------------------------------------------

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every regular file whose layout name starts with ``prefix``, by name; temporary
        files and symbolic links are left out. See :meth:`MaintainedStore.list_objects`."""
        folder, _, _start = prefix.rpartition("/")
        top = self._path(folder) if folder else self.root
        found: list[StoredObject] = []
        with self._store_errors("list the cache"):
            for directory, folders, files in os.walk(top):
                folders[:] = [name for name in folders if not name.startswith(".")]
                for file in files:
                    if file.startswith("."):
                        continue
                    path = Path(directory, file)
                    name = path.relative_to(self.root).as_posix()
                    if not name.startswith(prefix):
                        continue
                    try:
                        info = os.lstat(path)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        found.append(_stored(name, info))
        return iter(sorted(found, key=lambda item: item.name))

    def read_object(self, name: str, limit: int) -> bytes | None:
        """A small object's bytes; see :meth:`MaintainedStore.read_object`."""
        return self._read(name, limit, CorruptEntry)

    def hash_object(self, name: str) -> str | None:
        """The SHA-256 of an object's bytes; see :meth:`MaintainedStore.hash_object`."""
        digest = hashlib.sha256()
        try:
            for chunk in self._chunks(name):
                digest.update(chunk)
        except EntryNotFound:
            return None
        return digest.hexdigest()

    def delete_object(self, stored: StoredObject) -> bool:
        """Delete ``stored`` if unchanged since it was listed; see
        :meth:`MaintainedStore.delete_object`.

        The file is first renamed aside, then its version is checked on the renamed file: a
        publisher that refreshed it before the rename is seen and the file is put back; one
        that comes after finds it gone and writes it again.
        """
        path = self._path(stored.name)
        with self._store_errors("delete from the cache"):
            aside = path.parent / f".{os.urandom(8).hex()}.deleted"
            try:
                os.rename(path, aside)
            except (FileNotFoundError, NotADirectoryError):
                return False
            try:
                if _stored(stored.name, os.lstat(aside)).version == stored.version:
                    return True
                with contextlib.suppress(FileExistsError):
                    os.link(aside, path)  # changed meanwhile: put it back
                return False
            finally:
                os.unlink(aside)

    def create_object(self, name: str, data: bytes) -> bool:
        """Create a small object if absent; see :meth:`MaintainedStore.create_object`."""
        with self._store_errors("write to the cache"):
            return create_file(self._path(name), [data])


def _stored(name: str, info: os.stat_result) -> StoredObject:
    return StoredObject(
        name=name,
        size=info.st_size,
        modified=info.st_mtime,
        version=f"{info.st_ino}-{info.st_mtime_ns}-{info.st_size}",
    )
