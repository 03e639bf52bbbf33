"""Fetching from Azure: an entry's blobs in ranged GETs, fed to the shared verified writer.

Theory of operation
-------------------
*Round trips.* A fetch is one GET of the manifest (:meth:`AzureBlobStore.fetch
<modelcache.azure.AzureBlobStore.fetch>`), then ranged GETs of the blobs
(:func:`download_entry`).

*Bounded memory.* The GETs are ``block_size`` ranges kept ``max_concurrency`` ahead of the
writer, so a download holds about ``(max_concurrency + 1) * block_size`` bytes however big
the model is.

*A blob's bytes always match its name.* The ranges are consumed in order by
:func:`modelcache.store.write_entry`, which checks and stages every file as it does for
every store; here a blob of the wrong size is refused, and a missing one is a
``CorruptEntry`` that names the file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient, ContainerClient
from modelcache.store import CorruptEntry, Manifest, ManifestFile, Progress, blob_name, write_entry

from ._errors import Place, translated
from ._settings import TransferSettings

__all__ = ["download_entry"]


def download_entry(
    container: ContainerClient,
    settings: TransferSettings,
    place: Place,
    manifest: Manifest,
    destination: Path,
    progress: Progress | None = None,
) -> None:
    """Write the files ``manifest`` lists into ``destination``, which must not exist.

    Every file comes in ranged GETs, ``max_concurrency`` ahead of the writer, through
    :func:`~modelcache.store.write_entry`: each file is hashed as it streams into a
    directory next to ``destination``, which is renamed into place once every file
    matched. On a missing blob, a mismatch or an unsafe manifest, ``CorruptEntry`` names
    the file and nothing is left behind. ``progress`` hears of every chunk written.
    """
    with ThreadPoolExecutor(max_workers=settings.max_concurrency) as pool:
        ahead = _RangesAhead(container, settings, place, manifest, pool)
        try:
            write_entry(destination, manifest, ahead.blob_chunks, progress)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class _RangesAhead:
    """The ranged GETs of an entry's files, in manifest order, ``max_concurrency`` ahead.

    :func:`~modelcache.store.write_entry` asks for each file's chunks in manifest order;
    :meth:`blob_chunks` hands over the results of the GETs started for that file, and keeps
    the window full with the GETs of the files after it, so a fetch of many small files
    is as concurrent as a fetch of one large one.
    """

    def __init__(
        self,
        container: ContainerClient,
        settings: TransferSettings,
        place: Place,
        manifest: Manifest,
        pool: ThreadPoolExecutor,
    ) -> None:
        self._container = container
        self._limit = settings.max_concurrency
        self._place = place
        self._key = manifest.key
        self._pool = pool
        block = settings.block_size
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
        key = self._key
        while True:
            item, offset, length, future = self._pending.popleft()
            assert item.sha256 == sha256, "write_entry reads files in manifest order"
            with translated(
                self._place,
                f"download {item.path!r} of entry {key}",
                missing=partial(_missing_blob, self._place, key, item),
            ):
                data, total = future.result()
            self._refill()
            if total != item.size or len(data) != length:
                raise _mismatch(key, item, f"a blob of {total or 0} bytes")
            yield data
            if offset + length >= item.size:
                return

    def _refill(self) -> None:
        while len(self._pending) < self._limit:
            job = next(self._ranges, None)
            if job is None:
                return
            item, offset, length = job
            client = self._container.get_blob_client(blob_name(item.sha256))
            future = self._pool.submit(_get_range, client, offset, length)
            self._pending.append((*job, future))


def _get_range(client: BlobClient, offset: int, length: int) -> tuple[bytes, int | None]:
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


def _missing_blob(place: Place, key: str, item: ManifestFile) -> CorruptEntry:
    return CorruptEntry(f"entry {key}: the blob of file {item.path!r} is missing from {place}")


def _mismatch(key: str, item: ManifestFile, got: str) -> CorruptEntry:
    return CorruptEntry(
        f"entry {key}: file {item.path!r} does not match its manifest (expected "
        f"{item.size} bytes with SHA-256 {item.sha256[:12]}..., got {got})"
    )
