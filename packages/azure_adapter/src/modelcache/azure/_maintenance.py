"""The maintenance side of the Azure store: raw objects by layout name, for ``modelcache cache``.

:class:`MaintainedBlobs` gives :class:`~modelcache.azure.AzureBlobStore` the methods of
``modelcache.store.MaintainedStore`` (list, read with a limit, hash, create, delete a listed
version) and the bounded read of a small blob that manifests and evaluation results use too.
They need nothing of the store but its client and settings, and keep its module short.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings
from modelcache.store import CorruptEntry, EntryNotFound, StoredObject, StoreError

from ._errors import Place, error_code, translated
from ._settings import TransferSettings

__all__ = ["JSON", "MaintainedBlobs"]

JSON = ContentSettings(content_type="application/json")


class MaintainedBlobs:
    """Objects of the container by layout name; mixed into ``AzureBlobStore``."""

    _container: ContainerClient
    _settings: TransferSettings
    _place: Place

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
                client.upload_blob(data, overwrite=False, content_settings=JSON)
            except ResourceExistsError:
                return False
        return True
