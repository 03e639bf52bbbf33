"""Publishing to Azure: the blobs of an entry, sent so that a blob's bytes match its name.

Theory of operation
-------------------
*Round trips.* A publish is one concurrent batch of HEADs (the manifest and every distinct
blob), a refresh of the blobs found stored, the uploads of the missing blobs, then one
conditional PUT of the manifest (:meth:`AzureBlobStore.publish
<modelcache.azure.AzureBlobStore.publish>`, which calls :func:`send_blobs`).

*Bounded memory.* Bytes move in ``block_size`` chunks through a window of at most
``max_concurrency`` requests in flight, so an upload holds about ``(max_concurrency + 1) *
block_size`` bytes however big the model is.

*A blob's bytes always match its name.* A file is read through
:func:`modelcache.store.source_chunks` (no symbolic links followed, hashed as it streams)
while its blocks are staged; the block list is committed (``If-None-Match: *``) only once
the stream ended with the digest the manifest lists. An aborted upload leaves only
uncommitted blocks, which the service discards after a week. Block IDs start with a
per-upload random prefix, so two uploaders of one blob never commit each other's blocks.

*Races.* Two publishers of one entry both upload (identical) blobs; an upload that finds
its blob already there has succeeded. The manifest PUT that follows is create-only: exactly
one publisher gets True, the others False. Publishing never deletes anything (Olive's bug
was racing uploaders deleting each other's blobs); a prune deletes a blob only if its ETag
is still the one it listed, which the refresh of a kept blob changes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient
from modelcache.store import (
    Manifest,
    ManifestFile,
    Progress,
    blob_name,
    manifest_name,
    source_chunks,
)

from ._errors import Place, error_code, translated
from ._settings import TransferSettings

__all__ = ["send_blobs"]

_T = TypeVar("_T")


def send_blobs(
    container: ContainerClient,
    settings: TransferSettings,
    place: Place,
    source: Path,
    manifest: Manifest,
    progress: Progress | None = None,
) -> bool:
    """Make every blob of ``manifest`` stored, its bytes read from the directory ``source``.

    Costs one concurrent batch of HEADs (the manifest, every distinct blob); a refresh of
    each blob found stored with the right size; then the upload of the others, each read
    through :func:`~modelcache.store.source_chunks` while it is sent (``CorruptEntry``
    before anything of it is committed, if it no longer matches). ``progress`` hears of
    every chunk sent.

    :return: True once every blob is stored; False, having sent nothing, if the entry's
        manifest is stored already.
    """
    key = manifest.key
    distinct = {item.sha256: item for item in manifest.files}
    names = [manifest_name(key), *(blob_name(sha) for sha in distinct)]
    workers = min(settings.max_concurrency, len(names))
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        translated(place, f"check which blobs of entry {key} are stored"),
    ):
        sizes = list(pool.map(lambda name: _stored_size(container.get_blob_client(name)), names))
    if sizes[0] is not None:
        return False
    uploads: list[tuple[ManifestFile, bool]] = []
    kept: list[ManifestFile] = []
    for item, size in zip(distinct.values(), sizes[1:], strict=True):
        # A committed blob always has its bytes (see above), so one of the right size is
        # kept; one of another size was damaged from outside and is written again.
        if size == item.size:
            kept.append(item)
        else:
            uploads.append((item, size is not None))
    if kept:
        # Refresh what is kept (a new ETag), so that a prune that listed it before now
        # cannot delete it; a blob pruned meanwhile is sent after all.
        with (
            ThreadPoolExecutor(max_workers=min(workers, len(kept))) as pool,
            translated(place, f"refresh the stored blobs of entry {key}"),
        ):
            refreshed = list(pool.map(partial(_refresh, container), kept))
        uploads += [
            (item, False) for item, present in zip(kept, refreshed, strict=True) if not present
        ]
    if uploads:
        _upload(container, settings, place, key, source, uploads, progress)
    return True


def _stored_size(client: BlobClient) -> int | None:
    try:
        size: int = client.get_blob_properties().size
    except ResourceNotFoundError as error:
        if error_code(error) == "ContainerNotFound":
            raise
        return None
    return size


def _refresh(container: ContainerClient, item: ManifestFile) -> bool:
    """Give a stored blob a new ETag without sending its bytes; False if it is gone."""
    try:
        container.get_blob_client(blob_name(item.sha256)).set_blob_metadata({})
    except ResourceNotFoundError as error:
        if error_code(error) == "ContainerNotFound":
            raise
        return False
    return True


def _upload(
    container: ContainerClient,
    settings: TransferSettings,
    place: Place,
    key: str,
    source: Path,
    uploads: list[tuple[ManifestFile, bool]],
    progress: Progress | None,
) -> None:
    # One more worker than the window, so that a commit waiting for its file's last
    # blocks never holds back the next file's blocks. A commit waits only for tasks
    # submitted before it, which have left the (first-in, first-out) queue by the time
    # it runs: no deadlock.
    pool = ThreadPoolExecutor(max_workers=settings.max_concurrency + 1)
    sender = _Sender(source, settings, pool, progress)
    try:
        with translated(place, f"upload the blobs of entry {key}"):
            commits = [
                sender.send(item, container.get_blob_client(blob_name(item.sha256)), overwrite)
                for item, overwrite in uploads
            ]
            for commit in commits:
                commit.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Window:
    """At most ``limit`` tasks in flight on ``pool``; after a failure, nothing more starts."""

    def __init__(self, pool: ThreadPoolExecutor, limit: int) -> None:
        self._pool = pool
        self._slots = threading.Semaphore(limit)
        self._failure: BaseException | None = None

    def submit(self, function: Callable[..., _T], *args: Any) -> Future[_T]:
        self._slots.acquire()
        if self._failure is not None:
            self._slots.release()
            raise self._failure
        future = self._pool.submit(function, *args)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None and self._failure is None:
            self._failure = future.exception()
        self._slots.release()


class _Sender:
    """Files of ``source`` sent through one window of ``max_concurrency`` requests."""

    def __init__(
        self,
        source: Path,
        settings: TransferSettings,
        pool: ThreadPoolExecutor,
        progress: Progress | None,
    ) -> None:
        self._source = source
        self._settings = settings
        self._pool = pool
        self._window = _Window(pool, settings.max_concurrency)
        self._progress = progress

    def send(self, item: ManifestFile, client: BlobClient, overwrite: bool) -> Future[None]:
        """Read and send one file; the future completes when its blob is committed. The
        stream raises ``CorruptEntry`` at its end if the file no longer matches ``item``,
        before the blob is committed."""
        settings, window, progress = self._settings, self._window, self._progress
        if item.size <= settings.single_put_size:
            data = b"".join(source_chunks(self._source, item, chunk_size=max(item.size, 1)))
            return _counted(window.submit(_put, client, data, overwrite), len(data), progress)
        prefix = uuid.uuid4().hex
        block_ids: list[str] = []
        staged: list[Future[Any]] = []
        for chunk in source_chunks(self._source, item, chunk_size=settings.block_size):
            block_id = f"{prefix}{len(block_ids):06d}"
            block_ids.append(block_id)
            sent = window.submit(client.stage_block, block_id, chunk, len(chunk))
            staged.append(_counted(sent, len(chunk), progress))
        return self._pool.submit(_commit, client, block_ids, staged, overwrite)


def _counted(future: Future[_T], size: int, progress: Progress | None) -> Future[_T]:
    """``future``, which reports ``size`` bytes to ``progress`` when it succeeds."""
    if progress is not None:
        future.add_done_callback(
            lambda done: None if done.cancelled() or done.exception() else progress(size)
        )
    return future


def _put(client: BlobClient, data: bytes, overwrite: bool) -> None:
    try:
        client.upload_blob(data, length=len(data), overwrite=overwrite, max_concurrency=1)
    except ResourceExistsError:
        # Another publisher stored the same bytes first, usually. But Azurite also refuses
        # a create-only PUT of a blob that has only uncommitted blocks (an upload cut off
        # midway), though no blob is there: then the PUT is made unconditional, or the
        # manifest would name a blob that does not exist.
        if _stored_size(client) is None:
            client.upload_blob(data, length=len(data), overwrite=True, max_concurrency=1)


def _commit(
    client: BlobClient, block_ids: list[str], staged: list[Future[Any]], overwrite: bool
) -> None:
    for future in staged:
        future.result()
    blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
    try:
        if overwrite:
            client.commit_block_list(blocks)
        else:
            client.commit_block_list(blocks, match_condition=MatchConditions.IfMissing)
    except (ResourceExistsError, ResourceModifiedError):
        # Another publisher stored the same bytes first, usually; as in _put, make sure
        # a blob is really there before counting on it.
        if _stored_size(client) is None:
            client.commit_block_list(blocks)
    except HttpResponseError as error:
        # Another publisher's commit or single PUT of this blob discards our staged
        # blocks; if its blob is there, ours is not needed.
        lost = error_code(error) == "InvalidBlockList"
        if not lost or _stored_size(client) is None:
            raise
