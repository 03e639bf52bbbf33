"""The cloud tier: cache entries in an Azure Blob Storage container.

Theory of operation
-------------------
The layout, the manifest and its limits, the evaluation codec and the verified transfer are
:mod:`modelcache.store`'s, shared with every store; what is here is only Azure's: requests,
their concurrency and their conditions. Every SDK call runs inside
:func:`~modelcache.azure._errors.translated`, the one place Azure exceptions become store
errors.

*Round trips.* ``snapshot`` is two listings run side by side, ``entries/`` with blob
metadata (where ``publish`` put each entry's size and run time) and ``evaluations/``: one
request per 5,000 blobs in the store, whatever the number of keys asked about. ``publish``
is one concurrent batch of HEADs (the manifest and every distinct blob), the uploads of the
missing blobs, then one conditional PUT of the manifest. ``fetch`` is one GET of the
manifest, then ranged GETs of the blobs.

*Bounded memory.* Bytes move in ``block_size`` chunks through a window of at most
``max_concurrency`` requests in flight, so a transfer holds about ``(max_concurrency + 1) *
block_size`` bytes however big the model is.

*A blob's bytes always match its name.* A file is read through
:func:`modelcache.store.source_chunks` (no symbolic links followed, hashed as it streams)
while its blocks are staged; the block list is committed (``If-None-Match: *``) only once
the stream ended with the digest the manifest lists. An aborted upload leaves only
uncommitted blocks, which the service discards after a week. Block IDs start with a
per-upload random prefix, so two uploaders of one blob never commit each other's blocks.
Downloads are ranged GETs kept ``max_concurrency`` ahead, consumed in order by
:func:`modelcache.store.write_entry`, which checks and stages every file as it does for
every store.

*Races.* Two publishers of one entry both upload (identical) blobs; an upload that finds
its blob already there has succeeded. The manifest PUT is create-only: exactly one
publisher gets True, the others False. Nothing is ever deleted, on this path or any other
(Olive's bug was racing uploaders deleting each other's blobs).
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings
from modelcache.planner import SnapshotEntry
from modelcache.store import (
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    MAX_EVALUATION_SIZE,
    MAX_MANIFEST_SIZE,
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    Manifest,
    ManifestFile,
    Progress,
    StoreConfigError,
    StoredObject,
    StoreError,
    Tier,
    blob_name,
    evaluation_bytes,
    evaluation_name,
    manifest_bytes,
    manifest_name,
    parse_evaluation,
    parse_evaluation_name,
    parse_manifest_name,
    source_chunks,
    write_entry,
)

from ._auth import Credential, open_container
from ._errors import Place, error_code, public_url, translated
from ._settings import TransferSettings

if TYPE_CHECKING:
    from ._lock import BlobLeaseLocks

__all__ = ["AzureBlobStore"]

_JSON = ContentSettings(content_type="application/json")
_T = TypeVar("_T")


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


class _RangesAhead:
    """The ranged GETs of an entry's files, in manifest order, ``max_concurrency`` ahead.

    :func:`~modelcache.store.write_entry` asks for each file's chunks in manifest order;
    :meth:`blob_chunks` hands over the results of the GETs started for that file, and keeps
    the window full with the GETs of the files after it, so a fetch of many small files
    is as concurrent as a fetch of one large one.
    """

    def __init__(self, store: AzureBlobStore, manifest: Manifest, pool: ThreadPoolExecutor):
        self._store = store
        self._key = manifest.key
        self._pool = pool
        block = store.settings.block_size
        self._ranges: Iterator[tuple[ManifestFile, int, int]] = (
            (item, offset, min(block, item.size - offset))
            for item in manifest.files
            for offset in (range(0, item.size, block) if item.size else (0,))
        )
        self._pending: deque[tuple[ManifestFile, int, int, Future[tuple[bytes, int | None]]]]
        self._pending = deque()
        self._refill()

    def blob_chunks(self, sha256: str) -> Iterator[bytes]:
        """The bytes of the next file, whose SHA-256 is ``sha256``."""
        store, key = self._store, self._key
        while True:
            item, offset, length, future = self._pending.popleft()
            assert item.sha256 == sha256, "write_entry reads files in manifest order"
            with translated(
                store._place,
                f"download {item.path!r} of entry {key}",
                missing=partial(store._missing_blob, key, item),
            ):
                data, total = future.result()
            self._refill()
            if total != item.size or len(data) != length:
                raise _mismatch(key, item, f"a blob of {total or 0} bytes")
            yield data
            if offset + length >= item.size:
                return

    def _refill(self) -> None:
        limit = self._store.settings.max_concurrency
        while len(self._pending) < limit:
            job = next(self._ranges, None)
            if job is None:
                return
            item, offset, length = job
            client = self._store.container.get_blob_client(blob_name(item.sha256))
            future = self._pool.submit(self._store._get_range, client, offset, length)
            self._pending.append((*job, future))


def _counted(future: Future[_T], size: int, progress: Progress | None) -> Future[_T]:
    """``future``, which reports ``size`` bytes to ``progress`` when it succeeds."""
    if progress is not None:
        future.add_done_callback(
            lambda done: None if done.cancelled() or done.exception() else progress(size)
        )
    return future


def _place(container: ContainerClient) -> Place:
    url = public_url(container.url)
    return Place(
        account_url=url.rsplit("/", 1)[0],
        account_name=container.account_name or "",
        container=container.container_name,
    )


def _metadata_number(metadata: Mapping[str, str] | None, name: str) -> float | None:
    # Metadata is a hint for cost estimates, written by whoever published: parse leniently.
    try:
        value = float((metadata or {})[name])
    except (KeyError, ValueError):
        return None
    return value if 0 <= value < float("inf") else None


def _mismatch(key: str, item: ManifestFile, got: str) -> CorruptEntry:
    return CorruptEntry(
        f"entry {key}: file {item.path!r} does not match its manifest (expected "
        f"{item.size} bytes with SHA-256 {item.sha256[:12]}..., got {got})"
    )


class AzureBlobStore:
    """A cache store in an Azure Blob Storage container: the ``cloud`` tier.

    Satisfies ``modelcache.store.Store`` structurally. Build one with
    :meth:`from_config` (the usual way), :meth:`from_connection_string` or
    :meth:`from_sas_url`; or hand the constructor a ``ContainerClient`` you configured
    yourself. Thread-safe: calls may run concurrently. Close it (or use it as a context
    manager) to release its connections.
    """

    tier: Tier = "cloud"

    def __init__(
        self, container: ContainerClient, *, settings: TransferSettings | None = None
    ) -> None:
        self._container = container
        self._settings = settings or TransferSettings()
        self._place = _place(container)
        # Keys whose manifest this store read and refused: a listing cannot tell a bad
        # manifest from a good one, so the snapshot leaves these out, as LocalStore does.
        self._refused: set[str] = set()

    @classmethod
    def from_config(
        cls,
        *,
        account_url: str | None = None,
        container_name: str | None = None,
        credential: Credential | None = None,
        settings: TransferSettings | None = None,
        environ: Mapping[str, str] | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> AzureBlobStore:
        """The store for a configured account and container.

        :param account_url: ``https://<account>.blob.core.windows.net``; may carry a SAS
            query string (and then may end with the container's name).
        :param container_name: the container holding the cache (not needed when
            ``account_url`` is a container SAS URL).
        :param credential: a token credential, ``AzureNamedKeyCredential`` or
            ``AzureSasCredential`` to use instead of the environment's.
        :param environ: where to look for ``AZURE_STORAGE_CONNECTION_STRING``
            (``os.environ`` if not given).
        :param client_options: extra keyword arguments for the SDK client
            (``raw_request_hook``, ``connection_verify``, ``transport``...).

        Credentials are resolved as ``docs/storage.md`` and :mod:`modelcache.azure._auth`
        describe: a SAS in the URL, else ``credential``, else a connection string in the
        environment (whose endpoint must then match ``account_url``), else
        ``DefaultAzureCredential`` (``az login``). No request is made here; an unusable
        configuration raises ``StoreConfigError`` saying what to do.
        """
        settings = settings or TransferSettings()
        container = open_container(
            account_url=account_url,
            container_name=container_name,
            credential=credential,
            connection_string=None,
            environ=os.environ if environ is None else environ,
            settings=settings,
            client_options=client_options,
        )
        return cls(container, settings=settings)

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        container_name: str,
        *,
        settings: TransferSettings | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> AzureBlobStore:
        """The store for ``container_name`` in the account a connection string names."""
        settings = settings or TransferSettings()
        container = open_container(
            account_url=None,
            container_name=container_name,
            credential=None,
            connection_string=connection_string,
            environ={},
            settings=settings,
            client_options=client_options,
        )
        return cls(container, settings=settings)

    @classmethod
    def from_sas_url(
        cls,
        url: str,
        *,
        container_name: str | None = None,
        settings: TransferSettings | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> AzureBlobStore:
        """The store for a SAS URL: of the container (``https://<account>.blob.core.
        windows.net/<container>?sv=...&sig=...``), or of the account with
        ``container_name``. The SAS needs read, add, create, write and list permissions
        to publish, read and list to fetch."""
        settings = settings or TransferSettings()
        if "sig=" not in url.lower():
            raise StoreConfigError(f"{public_url(url)} carries no SAS (no 'sig=' in its query)")
        container = open_container(
            account_url=url,
            container_name=container_name,
            credential=None,
            connection_string=None,
            environ={},
            settings=settings,
            client_options=client_options,
        )
        return cls(container, settings=settings)

    @property
    def container(self) -> ContainerClient:
        """The SDK client the store works through."""
        return self._container

    @property
    def settings(self) -> TransferSettings:
        return self._settings

    def __repr__(self) -> str:
        return f"AzureBlobStore({self._place})"

    def close(self) -> None:
        """Release the store's connections."""
        self._container.close()

    def __enter__(self) -> AzureBlobStore:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    # -- snapshot -------------------------------------------------------------------------

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        """What the container holds for ``keys``, sorted by key: two listings run side by
        side (``entries/`` with metadata, ``evaluations/``), one request per 5,000 blobs
        of each kind in the store, however many keys are asked about. See
        ``modelcache.store.Store.snapshot``."""
        wanted = set(keys)
        if not wanted:
            return []
        with ThreadPoolExecutor(max_workers=2) as pool:
            manifests_future = pool.submit(self._list_manifests, wanted)
            evaluations_future = pool.submit(self._list_evaluations, wanted)
            with translated(self._place, "list the cache entries"):
                manifests = manifests_future.result()
            with translated(self._place, "list the evaluation results"):
                evaluations = evaluations_future.result()
        entries = []
        for key in sorted(manifests.keys() | evaluations.keys()):
            found = key in manifests and key not in self._refused
            if not found and key not in evaluations:
                continue
            metadata = manifests.get(key)
            size = _metadata_number(metadata, "size")
            entries.append(
                SnapshotEntry(
                    key=key,
                    in_cloud=found,
                    size=int(size) if size is not None and size == int(size) else None,
                    run_seconds=_metadata_number(metadata, "run_seconds"),
                    evaluations=evaluations.get(key, frozenset()),
                )
            )
        return entries

    def _list_manifests(self, wanted: set[str]) -> dict[str, Mapping[str, str]]:
        found: dict[str, Mapping[str, str]] = {}
        for blob in self._container.list_blobs(
            name_starts_with=ENTRIES_PREFIX, include=["metadata"]
        ):
            key = parse_manifest_name(blob.name)
            if key in wanted and blob.size <= MAX_MANIFEST_SIZE:
                found[key] = dict(blob.metadata or {})
        return found

    def _list_evaluations(self, wanted: set[str]) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for name in self._container.list_blob_names(name_starts_with=EVALUATIONS_PREFIX):
            parsed = parse_evaluation_name(name)
            if parsed is not None and parsed[0] in wanted:
                found.setdefault(parsed[0], set()).add(parsed[1])
        return {key: frozenset(fingerprints) for key, fingerprints in found.items()}

    # -- manifests and evaluation results ------------------------------------------------

    def _read_document(
        self, name: str, limit: int, doing: str, missing: Callable[[], StoreError]
    ) -> bytes:
        """A small blob's bytes; ``CorruptEntry`` (or ``missing()``) instead of reading one
        larger than ``limit`` into memory."""
        with translated(self._place, doing, missing=missing):
            downloader = self._container.get_blob_client(name).download_blob()
            if downloader.size > limit:
                raise CorruptEntry(f"{name} is larger than {limit} bytes: not read")
            return downloader.readall()

    def read_manifest(self, key: str) -> Manifest:
        """The validated manifest of ``key``: ``EntryNotFound`` if there is none,
        ``InvalidManifest`` if the stored one cannot be trusted (one GET)."""
        name = manifest_name(key)
        data = self._read_document(
            name,
            MAX_MANIFEST_SIZE,
            f"read the manifest of entry {key}",
            lambda: EntryNotFound(f"no cache entry {key} in {self._place}"),
        )
        try:
            return Manifest.from_json(data, key=key)
        except InvalidManifest:
            self._refused.add(key)
            raise

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        """The stored result of evaluator ``fingerprint`` on entry ``key``;
        ``EntryNotFound`` if there is none, ``CorruptEntry`` if it is not a JSON object."""
        name = evaluation_name(key, fingerprint)
        data = self._read_document(
            name,
            MAX_EVALUATION_SIZE,
            f"read evaluation {fingerprint} of entry {key}",
            lambda: EntryNotFound(f"no evaluation {fingerprint} of entry {key} in {self._place}"),
        )
        return parse_evaluation(data)

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        """Store an evaluation result (a small JSON object) if there is none yet; an
        existing one is kept (one create-only PUT)."""
        name = evaluation_name(key, fingerprint)
        data = evaluation_bytes(result)
        client = self._container.get_blob_client(name)
        # ResourceExistsError: a result is there already, and is kept.
        with (
            translated(self._place, f"write evaluation {fingerprint} of entry {key}"),
            suppress(ResourceExistsError),
        ):
            client.upload_blob(data, overwrite=False, content_settings=_JSON)

    # -- maintenance (modelcache.store.MaintainedStore) ----------------------------

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every blob whose name starts with ``prefix``: one listing request per 5,000."""
        with translated(self._place, "list the cache"):
            listed = [
                StoredObject(
                    name=blob.name,
                    size=blob.size,
                    modified=blob.last_modified.timestamp(),
                    version=str(blob.etag),
                )
                for blob in self._container.list_blobs(name_starts_with=prefix)
            ]
        return iter(listed)

    def read_object(self, name: str, limit: int) -> bytes | None:
        """A small object's bytes, None if absent (one GET); ``CorruptEntry`` if larger
        than ``limit``."""
        try:
            return self._read_document(
                name, limit, f"read {name}", lambda: EntryNotFound(f"no {name} in {self._place}")
            )
        except EntryNotFound:
            return None

    def hash_object(self, name: str) -> str | None:
        """The SHA-256 of a blob's bytes, streamed in ``block_size`` chunks; None if absent."""
        digest = hashlib.sha256()
        try:
            with translated(self._place, f"read {name}", missing=lambda: EntryNotFound(name)):
                downloader = self._container.get_blob_client(name).download_blob(
                    max_concurrency=self._settings.max_concurrency
                )
                for chunk in downloader.chunks():
                    digest.update(chunk)
        except EntryNotFound:
            return None
        return digest.hexdigest()

    def delete_object(self, stored: StoredObject) -> bool:
        """Delete a blob if its ETag is still the one listed (one conditional DELETE);
        False if it changed or is gone."""
        client = self._container.get_blob_client(stored.name)
        with translated(self._place, f"delete {stored.name}"):
            try:
                client.delete_blob(
                    etag=stored.version, match_condition=MatchConditions.IfNotModified
                )
            except (ResourceModifiedError, ResourceNotFoundError) as error:
                if error_code(error) == "ContainerNotFound":
                    raise
                return False
        return True

    def create_object(self, name: str, data: bytes) -> bool:
        """Create a small blob if ``name`` is free (one create-only PUT)."""
        client = self._container.get_blob_client(name)
        with translated(self._place, f"write {name}"):
            try:
                client.upload_blob(data, overwrite=False, content_settings=_JSON)
            except ResourceExistsError:
                return False
        return True

    # -- locks -----------------------------------------------------------------------------

    def locks(self) -> BlobLeaseLocks:
        """Blob leases on this container's lock blobs (see :mod:`modelcache.azure._lock`)."""
        from ._lock import BlobLeaseLocks  # the lock module builds on this one

        return BlobLeaseLocks.of(self)

    # -- publish ---------------------------------------------------------------------------

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        """Publish the directory ``source`` as the entry ``manifest`` describes.

        Costs one concurrent batch of HEADs (the manifest, every distinct blob); then, if
        the entry is not there yet, the blobs the store lacks, each read through
        :func:`~modelcache.store.source_chunks` while it is sent (``CorruptEntry`` before
        anything of it is committed, if it no longer matches); then the manifest,
        create-only, with the entry's size and run time as blob metadata for
        :meth:`snapshot`. See :meth:`modelcache.store.Store.publish`.

        :return: True if this call published the entry; False if it was there already.
        """
        key = manifest.key
        data = manifest_bytes(manifest)
        source = Path(source)
        distinct = {item.sha256: item for item in manifest.files}
        names = [manifest_name(key), *(blob_name(sha) for sha in distinct)]
        workers = min(self._settings.max_concurrency, len(names))
        with (
            ThreadPoolExecutor(max_workers=workers) as pool,
            translated(self._place, f"check which blobs of entry {key} are stored"),
        ):
            sizes = list(pool.map(self._stored_size, names))
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
                translated(self._place, f"refresh the stored blobs of entry {key}"),
            ):
                refreshed = list(pool.map(self._refresh, kept))
            uploads += [
                (item, False) for item, present in zip(kept, refreshed, strict=True) if not present
            ]
        if uploads:
            self._upload(key, source, uploads, progress)
        metadata = {"size": str(manifest.size)}
        if manifest.run_seconds is not None:
            metadata["run_seconds"] = repr(manifest.run_seconds)
        with translated(self._place, f"publish the manifest of entry {key}"):
            try:
                self._container.get_blob_client(manifest_name(key)).upload_blob(
                    data, overwrite=False, metadata=metadata, content_settings=_JSON
                )
            except ResourceExistsError:
                return False
        return True

    def _stored_size(self, name: str) -> int | None:
        try:
            size: int = self._container.get_blob_client(name).get_blob_properties().size
        except ResourceNotFoundError as error:
            if error_code(error) == "ContainerNotFound":
                raise
            return None
        return size

    def _refresh(self, item: ManifestFile) -> bool:
        """Give a stored blob a new ETag without sending its bytes; False if it is gone."""
        try:
            self._container.get_blob_client(blob_name(item.sha256)).set_blob_metadata({})
        except ResourceNotFoundError as error:
            if error_code(error) == "ContainerNotFound":
                raise
            return False
        return True

    def _upload(
        self,
        key: str,
        source: Path,
        uploads: list[tuple[ManifestFile, bool]],
        progress: Progress | None = None,
    ) -> None:
        settings = self._settings
        commits: list[Future[None]] = []
        # One more worker than the window, so that a commit waiting for its file's last
        # blocks never holds back the next file's blocks. A commit waits only for tasks
        # submitted before it, which have left the (first-in, first-out) queue by the time
        # it runs: no deadlock.
        pool = ThreadPoolExecutor(max_workers=settings.max_concurrency + 1)
        window = _Window(pool, settings.max_concurrency)
        try:
            with translated(self._place, f"upload the blobs of entry {key}"):
                for item, overwrite in uploads:
                    client = self._container.get_blob_client(blob_name(item.sha256))
                    commits.append(
                        self._send(source, item, client, overwrite, pool, window, progress)
                    )
                for commit in commits:
                    commit.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _send(
        self,
        source: Path,
        item: ManifestFile,
        client: BlobClient,
        overwrite: bool,
        pool: ThreadPoolExecutor,
        window: _Window,
        progress: Progress | None = None,
    ) -> Future[None]:
        """Read and send one file; the future completes when its blob is committed. The
        stream raises ``CorruptEntry`` at its end if the file no longer matches ``item``,
        before the blob is committed."""
        settings = self._settings
        if item.size <= settings.single_put_size:
            data = b"".join(source_chunks(source, item, chunk_size=max(item.size, 1)))
            return _counted(window.submit(self._put, client, data, overwrite), len(data), progress)
        prefix = uuid.uuid4().hex
        block_ids: list[str] = []
        staged: list[Future[Any]] = []
        for chunk in source_chunks(source, item, chunk_size=settings.block_size):
            block_id = f"{prefix}{len(block_ids):06d}"
            block_ids.append(block_id)
            sent = window.submit(client.stage_block, block_id, chunk, len(chunk))
            staged.append(_counted(sent, len(chunk), progress))
        return pool.submit(self._commit, client, block_ids, staged, overwrite)

    def _put(self, client: BlobClient, data: bytes, overwrite: bool) -> None:
        try:
            client.upload_blob(data, length=len(data), overwrite=overwrite, max_concurrency=1)
        except ResourceExistsError:
            # Another publisher stored the same bytes first, usually. But Azurite also refuses
            # a create-only PUT of a blob that has only uncommitted blocks (an upload cut off
            # midway), though no blob is there: then the PUT is made unconditional, or the
            # manifest would name a blob that does not exist.
            if self._stored_size(client.blob_name) is None:
                client.upload_blob(data, length=len(data), overwrite=True, max_concurrency=1)

    def _commit(
        self, client: BlobClient, block_ids: list[str], staged: list[Future[Any]], overwrite: bool
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
            if self._stored_size(client.blob_name) is None:
                client.commit_block_list(blocks)
        except HttpResponseError as error:
            # Another publisher's commit or single PUT of this blob discards our staged
            # blocks; if its blob is there, ours is not needed.
            lost = error_code(error) == "InvalidBlockList"
            if not lost or self._stored_size(client.blob_name) is None:
                raise

    # -- fetch -----------------------------------------------------------------------------

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        """Write entry ``key``'s files into ``destination``, which must not exist.

        Reads the manifest (one GET), then every file in ranged GETs, ``max_concurrency``
        ahead of the writer, through :func:`~modelcache.store.write_entry`: each file is
        hashed as it streams into a directory next to ``destination``, which is renamed
        into place once every file matched. On a missing blob, a mismatch or an unsafe
        manifest, ``CorruptEntry`` names the file and nothing is left behind. See
        :meth:`modelcache.store.Store.fetch`.
        """
        destination = Path(destination)
        if os.path.lexists(destination):
            raise FileExistsError(f"{destination} exists; fetch writes a new directory")
        manifest = self.read_manifest(key)
        with ThreadPoolExecutor(max_workers=self._settings.max_concurrency) as pool:
            ahead = _RangesAhead(self, manifest, pool)
            try:
                write_entry(destination, manifest, ahead.blob_chunks, progress)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return manifest

    def _missing_blob(self, key: str, item: ManifestFile) -> CorruptEntry:
        return CorruptEntry(
            f"entry {key}: the blob of file {item.path!r} is missing from {self._place}"
        )

    def _get_range(self, client: BlobClient, offset: int, length: int) -> tuple[bytes, int | None]:
        """Bytes ``offset`` to ``offset + length`` and the blob's total size (None if the
        blob ends before ``offset``)."""
        if length == 0:
            return b"", client.get_blob_properties().size
        try:
            downloader = client.download_blob(offset=offset, length=length, max_concurrency=1)
        except HttpResponseError as error:
            if error.status_code == 416:
                return b"", None
            raise
        total = str(downloader.properties.content_range or "").rpartition("/")[2]
        # The whole range came with the first GET (max_single_get_size is block_size): chunks()
        # hands that buffer over as it is, where readall() would copy it twice.
        data = b"".join(downloader.chunks())
        return data, int(total) if total.isdigit() else None
