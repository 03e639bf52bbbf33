"""Verified transfer, shared by every store: model directories in and out of entries.

Theory of operation
-------------------
Every store moves the same things: the files of a model directory, each named in the
entry's :class:`~modelcache.store.Manifest` by relative POSIX path, size and SHA-256. This
module holds the parts that do not depend on where the bytes go:

* :func:`describe_directory` walks a model directory and hashes every regular file. It
  refuses symbolic links and special files (a symlink would make the entry depend on a file
  outside the directory; a FIFO or device has no content to cache).
* :func:`build_manifest` turns a directory and a key into a manifest a reader will accept.
* :func:`source_chunks` streams one file of a directory being published and fails with
  ``CorruptEntry`` at the end if the bytes no longer match the manifest, so a store that
  commits a blob only after the stream ended never commits a wrong one.
* :func:`write_entry` is the reading side: it writes an entry's files into a fresh temporary
  directory next to the destination, checking every size and digest while the bytes stream,
  and renames it into place only when every file matched. On any failure nothing is left.

All IO is in chunks of :data:`CHUNK_SIZE` (1 MiB), so memory does not grow with the model.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import shutil
import stat
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import canonical_json

from ._errors import CorruptEntry, InvalidManifest, ModelDirectoryError
from ._manifest import Manifest, ManifestFile, check_relative_path, manifest_bytes

__all__ = [
    "CHUNK_SIZE",
    "READ_AHEAD_FROM",
    "build_manifest",
    "counted",
    "describe_directory",
    "hash_file",
    "read_ahead",
    "source_chunks",
    "write_entry",
]

#: Bytes read or written at a time.
CHUNK_SIZE = 1 << 20

# O_NOFOLLOW: a symlink swapped in after the walk is refused when opened, not followed.
# O_NONBLOCK: opening a FIFO does not hang; fstat then refuses it. No effect on regular files.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
# A manifest path this file system cannot name (too long, a character it refuses) is the
# manifest's fault, not the destination's: the entry is unusable here.
_UNNAMEABLE = frozenset({errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ})
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def hash_file(path: Path) -> tuple[int, str]:
    """The size in bytes and the SHA-256 (lowercase hex) of the regular file at ``path``.

    Reads in 1 MiB chunks. Raises :class:`ModelDirectoryError` if ``path`` is a symbolic
    link or not a regular file, and ``OSError`` if it cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    chunks = _file_chunks(path)
    if _large(path):  # read the next chunk while this one is hashed: both release the GIL
        chunks = read_ahead(chunks)
    with contextlib.closing(chunks):
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


#: Files from this size on are read ahead of their hashing, by a thread of their own
#: (:func:`read_ahead`); smaller ones are not worth a thread.
READ_AHEAD_FROM = 16 * CHUNK_SIZE
#: Chunks a reading thread may hold ahead of the hashing: memory stays at a few MiB.
_READ_AHEAD_DEPTH = 4


def _large(path: Path) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_size >= READ_AHEAD_FROM
    except OSError:
        return False  # _file_chunks says what is wrong


def read_ahead(chunks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    """``chunks``, read by a thread of their own up to :data:`_READ_AHEAD_DEPTH` chunks ahead
    of the caller; what reading raises is raised here, in order. Closed early (the caller
    stopped), the thread stops at its next chunk and closes ``chunks``.

    A file's reads and SHA-256 both release the GIL, so on two cores a file is hashed at
    about the speed of the slower of the two rather than of their sum."""
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(_READ_AHEAD_DEPTH)
    stop = threading.Event()

    def offer(item: tuple[str, Any]) -> bool:
        """``item`` queued, unless the caller stops first (then ``False``)."""
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not offer(("chunk", chunk)):
                    return
            offer(("end", None))
        except BaseException as error:  # handed to the caller, which raises it
            offer(("error", error))
        finally:
            chunks.close()

    reader = threading.Thread(target=read, name="modelcache-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        reader.join()


def describe_directory(
    path: Path, *, hashing: Callable[[Path], tuple[int, str]] = hash_file
) -> tuple[ManifestFile, ...]:
    """Every regular file under ``path``: relative POSIX path, size and SHA-256, by path.

    ``path`` itself may be reached through a symbolic link; nothing inside it may be one.
    Empty directories are not described (a manifest lists files only). ``hashing`` gives a
    file's size and SHA-256 (:func:`hash_file`; a caller may remember digests between runs).

    :raises ModelDirectoryError: ``path`` is not a directory, or holds a symbolic link, a
        special file (FIFO, socket, device) or a name a manifest cannot carry (a backslash,
        bytes that are not UTF-8, a path longer than 1024 characters).
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelDirectoryError(path=root, problem="is not a directory")
    files: list[ManifestFile] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as listing:
            items = sorted(listing, key=lambda item: item.name)
        for item in items:
            full = Path(item.path)
            if item.is_symlink():
                raise ModelDirectoryError(
                    path=full, problem="is a symbolic link; copy the file it points to instead"
                )
            if item.is_dir(follow_symlinks=False):
                pending.append(full)
                continue
            if not item.is_file(follow_symlinks=False):
                raise ModelDirectoryError(
                    path=full, problem="is not a regular file (a FIFO, socket or device)"
                )
            relative = _relative_name(root, full)
            size, sha256 = hashing(full)
            files.append(ManifestFile(path=relative, size=size, sha256=sha256))
    return tuple(sorted(files, key=lambda item: item.path))


def build_manifest(
    *,
    key: str,
    key_inputs: Mapping[str, Any],
    model_type: str,
    directory: Path,
    run_seconds: float | None,
    created: str,
    producer: str,
) -> Manifest:
    """The manifest of the model in ``directory`` as the cache entry ``key``.

    :param key: the entry's key: the SHA-256 of the canonical JSON of ``key_inputs``.
    :param key_inputs: the key document the key was derived from (see
        :func:`modelcache.planner.key_document`).
    :param model_type: what kind of model the directory holds (``onnx``, ``hf``...).
    :param directory: the model directory; described with :func:`describe_directory`.
    :param run_seconds: how long the pass took, or None if unknown.
    :param created: when the entry was made, ISO 8601 UTC (the caller owns the clock).
    :param producer: the modelcache version writing the entry.
    :raises ModelDirectoryError: see :func:`describe_directory`.
    :raises ValueError: ``key`` is not the SHA-256 of ``key_inputs``: every reader would
        refuse the entry, so this is a bug in the caller.
    """
    digest = hashlib.sha256(canonical_json(key_inputs).encode("utf-8")).hexdigest()
    if digest != key:
        raise ValueError(f"key {key} is not the SHA-256 of its key inputs ({digest})")
    manifest = Manifest(
        key=key,
        model_type=model_type,
        files=describe_directory(directory),
        key_inputs=key_inputs,
        producer=producer,
        run_seconds=run_seconds,
        created=created,
    )
    manifest_bytes(manifest)
    return manifest


def counted(chunks: Iterable[bytes], progress: Callable[[int], None]) -> Iterator[bytes]:
    """``chunks``, reporting each one's size to ``progress`` as it passes."""
    stream = iter(chunks)
    try:
        for chunk in stream:
            progress(len(chunk))
            yield chunk
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def source_chunks(
    source: Path, item: ManifestFile, *, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The bytes of ``item`` read from the directory ``source`` being published,
    ``chunk_size`` bytes at a time (the last chunk may be shorter).

    The stream checks what it reads against ``item``: reading more bytes than ``item.size``
    fails at once, and a size or SHA-256 that differs fails after the last chunk, before
    the stream ends. A store writes each chunk as it comes and commits the blob only once
    the stream ended normally.

    :raises CorruptEntry: the file is missing, or its bytes do not match the manifest (it
        changed after the manifest was built).
    :raises ModelDirectoryError: the file is a symbolic link or a special file, or cannot
        be read (no permission, an IO error): trouble with the source, not the store.
    """
    path = source.joinpath(*check_relative_path(item.path).split("/"))
    digest = hashlib.sha256()
    size = 0
    try:
        with contextlib.closing(_file_chunks(path, chunk_size)) as chunks:
            for chunk in chunks:
                size += len(chunk)
                if size > item.size:
                    break
                digest.update(chunk)
                yield chunk
    except (FileNotFoundError, NotADirectoryError):
        raise CorruptEntry(f"cannot publish {item.path!r}: it is missing from {source}") from None
    except OSError as error:
        raise ModelDirectoryError(
            path=path, problem=f"cannot be read: {error.strerror or error}"
        ) from None
    if size != item.size or digest.hexdigest() != item.sha256:
        raise CorruptEntry(
            f"cannot publish {item.path!r}: the file changed after its manifest was built"
        )


def write_entry(
    destination: Path,
    manifest: Manifest,
    blob_chunks: Callable[[str], Iterable[bytes]],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the files of ``manifest`` into the new directory ``destination``, all or nothing.

    :param destination: must not exist; its parent is created if needed. The files are
        written into a temporary directory beside it, which is renamed to ``destination``
        once every file matched, and removed on any failure.
    :param manifest: the validated manifest of the entry.
    :param blob_chunks: called with a SHA-256, returns the bytes of that blob in chunks. It
        may raise ``CorruptEntry`` for a missing blob, or any other store error, which
        propagates unchanged.
    :raises CorruptEntry: a blob is longer or shorter than the manifest says, or hashes to
        something else, or two manifest paths collide on this file system.
    :raises FileExistsError: ``destination`` exists already.
    """
    destination = Path(destination)
    if os.path.lexists(destination):
        raise FileExistsError(f"{destination} exists; fetch writes into a new directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    scratch = _scratch_directory(destination)
    try:
        inside = scratch.resolve()
        for item in manifest.files:
            chunks = blob_chunks(item.sha256)
            if progress is not None:
                chunks = counted(chunks, progress)
            _write_verified(_target(inside, item), item, chunks)
        os.rename(scratch, destination)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _scratch_directory(destination: Path) -> Path:
    """A new, empty directory beside ``destination``, with the permissions a plain mkdir gives
    (``tempfile.mkdtemp`` would make it private, and so the fetched model too)."""
    while True:
        scratch = destination.with_name(f".{destination.name[:64]}.{os.urandom(6).hex()}.fetch")
        try:
            scratch.mkdir()
            return scratch
        except FileExistsError:
            continue


def _target(inside: Path, item: ManifestFile) -> Path:
    """Where ``item`` goes under the resolved scratch directory ``inside``; never outside it."""
    target = inside.joinpath(*check_relative_path(item.path).split("/"))
    if not target.resolve().is_relative_to(inside):
        raise InvalidManifest(f"file path {item.path!r} leads outside the model directory")
    return target


def _write_verified(target: Path, item: ManifestFile, chunks: Iterable[bytes]) -> None:
    """Stream ``chunks`` into the new file ``target``, checking them against ``item``."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(target, _CREATE_FLAGS, 0o644)
    except (FileExistsError, IsADirectoryError, NotADirectoryError):
        raise CorruptEntry(
            f"file path {item.path!r} collides with another file of the entry on this system"
        ) from None
    except OSError as error:
        if error.errno not in _UNNAMEABLE:
            raise
        raise CorruptEntry(
            f"file path {item.path!r} cannot be created on this system: {error.strerror}"
        ) from None
    digest = hashlib.sha256()
    size = 0
    stream = iter(chunks)
    try:
        with os.fdopen(descriptor, "wb") as output:
            for chunk in stream:
                size += len(chunk)
                if size > item.size:
                    raise CorruptEntry(
                        f"blob of {item.path!r} is longer than the {item.size} bytes listed"
                    )
                digest.update(chunk)
                output.write(chunk)
    finally:
        # A blob stream left early (too long, or the disk filled) releases its file now.
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    if size != item.size:
        raise CorruptEntry(
            f"blob of {item.path!r} has {size} bytes, the manifest lists {item.size}"
        )
    if digest.hexdigest() != item.sha256:
        raise CorruptEntry(f"blob of {item.path!r} does not match its SHA-256 {item.sha256}")


def _file_chunks(path: Path, chunk_size: int = CHUNK_SIZE) -> Generator[bytes, None, None]:
    """The bytes of a regular file, ``chunk_size`` at a time; symlinks and special files
    refused."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if os.path.islink(path):
            raise ModelDirectoryError(path=path, problem="is a symbolic link") from None
        raise error
    with os.fdopen(descriptor, "rb", buffering=0) as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ModelDirectoryError(path=path, problem="is not a regular file")
        while chunk := _read_full(stream, chunk_size):
            yield chunk


def _read_full(stream: Any, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end of the file (an unbuffered read may
    return less than asked)."""
    data = stream.read(size)
    if len(data) in (0, size):
        return bytes(data)
    parts = [data]
    got = len(data)
    while got < size and (more := stream.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _relative_name(root: Path, full: Path) -> str:
    """``full`` relative to ``root`` as a manifest path, or a clear error."""
    relative = full.relative_to(root).as_posix()
    try:
        relative.encode("utf-8")
        return check_relative_path(relative)
    except UnicodeEncodeError:
        problem = "has a name that is not valid UTF-8; rename it"
    except InvalidManifest as error:
        problem = f"cannot be stored in a manifest: {error}"
    raise ModelDirectoryError(path=full, problem=problem)
