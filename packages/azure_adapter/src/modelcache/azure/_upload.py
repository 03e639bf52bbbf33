"""Publishing to Azure: the blobs of an entry, sent so that a blob's bytes match its name.

Theory of operation
-------------------
*Round trips.* A publish refreshes each blob this store wrote or refreshed before, on
condition that it is still the version the store left (:mod:`modelcache.azure._sightings`);
sends each other small blob in one create-only PUT (a refusal, "already there", is followed
by a HEAD and a refresh); HEADs each other large blob, in one concurrent batch with the
manifest's, then refreshes or uploads it; then comes one conditional PUT of the manifest
(:meth:`AzureBlobStore.publish <modelcache.azure.AzureBlobStore.publish>`, which calls
:func:`send_blobs`).

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
is still the one it listed, which the refresh of a kept blob changes. A refresh is never
skipped: a blob remembered from an earlier publish is refreshed too, ``If-Match`` the ETag
it was left with, so that one gone or changed since is noticed and sent again.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
from ._sightings import Sightings

__all__ = ["send_blobs"]

_T = TypeVar("_T")


def send_blobs(
    container: ContainerClient,
    settings: TransferSettings,
    place: Place,
    source: Path,
    manifest: Manifest,
    progress: Progress | None = None,
    *,
    sightings: Sightings,
    look_for_manifest: bool = True,
) -> bool:
    """Make every blob of ``manifest`` stored, its bytes read from the directory ``source``.

    Costs, for each distinct blob: one conditional refresh if this store wrote or refreshed
    it before (``sightings`` holds its ETag); one create-only PUT if it is small (up to
    ``single_put_size``), followed, if it was there already, by a HEAD and a refresh; else a
    HEAD, then a refresh if it is stored with the right size, or its upload, each read
    through :func:`~modelcache.store.source_chunks` while it is sent (``CorruptEntry``
    before anything of it is committed, if it no longer matches). The HEADs go first, in one
    concurrent batch with the manifest's unless ``look_for_manifest`` is False (a claim just
    found it absent). ``progress`` hears of every chunk committed.

    :return: True once every blob is stored; False, having sent nothing, if the entry's
        manifest is stored already.
    """
    key = manifest.key
    distinct = list({item.sha256: item for item in manifest.files}.values())
    remembered = {
        item.sha256: etag
        for item in distinct
        if (etag := sightings.blob_etag(item.sha256, item.size)) is not None
    }
    unknown = [item for item in distinct if item.sha256 not in remembered]
    large = [item for item in unknown if item.size > settings.single_put_size]
    names = [blob_name(item.sha256) for item in large]
    if look_for_manifest:
        names.insert(0, manifest_name(key))
    with translated(place, f"check which blobs of entry {key} are stored"):
        sizes = _sizes(container, names, settings.max_concurrency)
    if look_for_manifest and sizes.pop(0) is not None:
        return False
    # A committed blob always has its bytes (see above), so one of the right size is kept
    # and refreshed (a new ETag: a prune that listed it before cannot delete it now); one
    # gone meanwhile, or of another size (damaged from outside), is sent.
    keeps = [partial(_keep_remembered, container, item, etag) for item in distinct
             if (etag := remembered.get(item.sha256)) is not None]  # fmt: skip
    keeps += [
        partial(_keep_checked, container, item, size)
        for item, size in zip(large, sizes, strict=True)
    ]
    with translated(place, f"refresh the stored blobs of entry {key}"):
        kept = _run_all(keeps, settings.max_concurrency)
    uploads = [(item, verdict.overwrite) for item, verdict in kept if verdict.send]
    uploads += [(item, False) for item in unknown if item.size <= settings.single_put_size]
    sent = _upload(container, settings, place, key, source, uploads, progress) if uploads else []
    for item, verdict in (*kept, *sent):
        if verdict.etag is not None:
            sightings.saw_blob(item.sha256, item.size, verdict.etag)
    return True


@dataclass(frozen=True)
class _Verdict:
    """What became of one blob: refreshed or written (``etag``, the version it now is, if
    this store made it), still to be ``send`` (over a blob of another size: ``overwrite``),
    or ``sent`` (bytes of this store's committed)."""

    etag: str | None = None
    send: bool = False
    overwrite: bool = False
    sent: bool = False


def _sizes(container: ContainerClient, names: list[str], concurrency: int) -> list[int | None]:
    """The size of each blob named (one HEAD each, concurrently); None for an absent one."""
    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(names))) as pool:
        return list(pool.map(lambda name: _stored_size(container.get_blob_client(name)), names))


def _run_all(
    tasks: Sequence[Callable[[], tuple[ManifestFile, _Verdict]]], concurrency: int
) -> list[tuple[ManifestFile, _Verdict]]:
    if not tasks:
        return []
    with ThreadPoolExecutor(max_workers=min(concurrency, len(tasks))) as pool:
        return list(pool.map(lambda task: task(), tasks))


def _stored_size(client: BlobClient) -> int | None:
    try:
        size: int = client.get_blob_properties().size
    except ResourceNotFoundError as error:
        if error_code(error) == "ContainerNotFound":
            raise
        return None
    return size


def _refresh(client: BlobClient, etag: str | None = None) -> str | None:
    """Give a stored blob a new ETag without sending its bytes: its new ETag, None if it is
    gone. With ``etag``, only if it is still that version (else ``ResourceModifiedError``)."""
    condition: dict[str, Any] = {}
    if etag is not None:
        condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
    try:
        done = client.set_blob_metadata({}, **condition)
    except ResourceNotFoundError as error:
        if error_code(error) == "ContainerNotFound":
            raise
        return None
    except HttpResponseError as error:
        if error.status_code == 412:  # not every 412 comes as ResourceModifiedError
            raise ResourceModifiedError(message="changed") from None
        raise
    return str(done["etag"])


def _checked(client: BlobClient, expected: int, found: int | None) -> _Verdict:
    """A blob found at size ``found`` (None: absent): refreshed if of the ``expected``
    size, else to be sent."""
    if found is None:
        return _Verdict(send=True)
    if found != expected:
        return _Verdict(send=True, overwrite=True)
    etag = _refresh(client)
    return _Verdict(send=True) if etag is None else _Verdict(etag=etag)


def _keep_checked(
    container: ContainerClient, item: ManifestFile, size: int | None
) -> tuple[ManifestFile, _Verdict]:
    return item, _checked(container.get_blob_client(blob_name(item.sha256)), item.size, size)


def _keep_remembered(
    container: ContainerClient, item: ManifestFile, etag: str
) -> tuple[ManifestFile, _Verdict]:
    """Refresh a blob this store wrote or refreshed, as the version it left (one request).
    If it changed since (deleted, damaged, rewritten), look at it as at any other."""
    client = container.get_blob_client(blob_name(item.sha256))
    try:
        new = _refresh(client, etag)
    except ResourceModifiedError:
        return item, _checked(client, item.size, _stored_size(client))
    return item, _Verdict(send=True) if new is None else _Verdict(etag=new)


def _upload(
    container: ContainerClient,
    settings: TransferSettings,
    place: Place,
    key: str,
    source: Path,
    uploads: list[tuple[ManifestFile, bool]],
    progress: Progress | None,
) -> list[tuple[ManifestFile, _Verdict]]:
    # One more worker than the window, so that a commit waiting for its file's last
    # blocks never holds back the next file's blocks. A commit waits only for tasks
    # submitted before it, which have left the (first-in, first-out) queue by the time
    # it runs: no deadlock.
    pool = ThreadPoolExecutor(max_workers=settings.max_concurrency + 1)
    sender = _Sender(source, settings, pool, progress)
    try:
        with translated(place, f"upload the blobs of entry {key}"):
            commits = [
                (
                    item,
                    sender.send(item, container.get_blob_client(blob_name(item.sha256)), overwrite),
                )
                for item, overwrite in uploads
            ]
            return [(item, commit.result()) for item, commit in commits]
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

    def send(self, item: ManifestFile, client: BlobClient, overwrite: bool) -> Future[_Verdict]:
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
    """``future``, which reports ``size`` bytes to ``progress`` when it succeeds, unless it
    tells that the bytes were not stored (a ``_Verdict`` not ``sent``)."""
    if progress is not None:
        future.add_done_callback(partial(_report, size, progress))
    return future


def _report(size: int, progress: Progress, done: Future[Any]) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    result = done.result()
    if not isinstance(result, _Verdict) or result.sent:
        progress(size)


def _put(client: BlobClient, data: bytes, overwrite: bool) -> _Verdict:
    try:
        done = client.upload_blob(data, length=len(data), overwrite=overwrite, max_concurrency=1)
    except ResourceExistsError:
        # Stored already (by another publisher, or long ago): then it is checked and
        # refreshed as a blob found stored is. But Azurite also refuses a create-only PUT of
        # a blob that has only uncommitted blocks (an upload cut off midway), though no blob
        # is there: then the PUT is made unconditional, or the manifest would name a blob
        # that does not exist.
        verdict = _checked(client, len(data), _stored_size(client))
        if not verdict.send:
            return verdict
        done = client.upload_blob(data, length=len(data), overwrite=True, max_concurrency=1)
    return _Verdict(etag=str(done["etag"]), sent=True)


def _commit(
    client: BlobClient, block_ids: list[str], staged: list[Future[Any]], overwrite: bool
) -> _Verdict:
    for future in staged:
        future.result()
    blocks = [BlobBlock(block_id=block_id) for block_id in block_ids]
    try:
        if overwrite:
            done = client.commit_block_list(blocks)
        else:
            done = client.commit_block_list(blocks, match_condition=MatchConditions.IfMissing)
    except (ResourceExistsError, ResourceModifiedError):
        # Another publisher stored the same bytes first, usually; as in _put, make sure
        # a blob is really there before counting on it.
        if _stored_size(client) is not None:
            return _Verdict()
        done = client.commit_block_list(blocks)
    except HttpResponseError as error:
        # Another publisher's commit or single PUT of this blob discards our staged
        # blocks; if its blob is there, ours is not needed.
        lost = error_code(error) == "InvalidBlockList"
        if not lost or _stored_size(client) is None:
            raise
        return _Verdict()
    return _Verdict(etag=str(done["etag"]), sent=True)
