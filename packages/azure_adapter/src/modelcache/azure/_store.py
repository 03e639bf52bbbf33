"""The cloud tier: cache entries in an Azure Blob Storage container.

Theory of operation
-------------------
The layout, the manifest and its limits, the evaluation codec and the verified transfer are
:mod:`modelcache.store`'s, shared with every store; what is here is only Azure's: requests,
their concurrency and their conditions. Every SDK call runs inside
:func:`~modelcache.azure._errors.translated`, the one place Azure exceptions become store
errors.

*Round trips.* ``snapshot`` is one listing of the prefix that ``entries/`` and
``evaluations/`` share (and no other kind of object does), with blob metadata (where
``publish`` put each entry's size and run time): one request per 5,000 manifests and
evaluation results in the store, whatever the number of keys asked about. ``publish``
is a HEAD of the manifest (spared when this store's claim just found it absent), a
request or two per distinct blob (:mod:`modelcache.azure._upload`), then one conditional
PUT of the manifest. ``fetch`` is one GET of the manifest, then ranged GETs of the blobs.
What the store's own requests told it is kept in :mod:`modelcache.azure._sightings`, and
trusted only as far as that module's theory says.

*Transfers.* The blobs' side of ``publish`` is :mod:`modelcache.azure._upload`'s, that of
``fetch`` is :mod:`modelcache.azure._download`'s; each opens with its theory: how memory
stays bounded, why a blob's bytes always match its name, what racing publishers see.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import ContainerClient
from modelcache.planner import SnapshotEntry
from modelcache.store import (
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    MAX_EVALUATION_SIZE,
    MAX_MANIFEST_SIZE,
    EntryNotFound,
    InvalidManifest,
    Manifest,
    Progress,
    StoreConfigError,
    Tier,
    evaluation_bytes,
    evaluation_name,
    manifest_bytes,
    manifest_name,
    parse_evaluation,
    parse_evaluation_name,
    parse_manifest_name,
)

from ._auth import Credential, open_container
from ._download import download_entry
from ._errors import Place, public_url, translated
from ._maintenance import JSON, MaintainedBlobs
from ._settings import TransferSettings
from ._sightings import Sightings
from ._upload import send_blobs

if TYPE_CHECKING:
    from ._lock import BlobLeaseLocks

__all__ = ["SNAPSHOT_PREFIX", "AzureBlobStore"]

#: What a snapshot lists: the longest prefix of both ``entries/`` and ``evaluations/``
#: (``modelcache-v1/e``), so that one listing answers for both. Other kinds of object
#: (``blobs/``, ``runs/``, ``locks/``) do not start with it, so a page holds nothing the
#: snapshot does not read; if one ever did, the listing would cost more, never answer wrong,
#: as each name is checked against its own prefix.
SNAPSHOT_PREFIX = os.path.commonprefix([ENTRIES_PREFIX, EVALUATIONS_PREFIX])  # noqa: RUF071 - by character, on purpose


def _metadata_number(metadata: Mapping[str, str] | None, name: str) -> float | None:
    # Metadata is a hint for cost estimates, written by whoever published: parse leniently.
    try:
        value = float((metadata or {})[name])
    except (KeyError, ValueError):
        return None
    return value if 0 <= value < float("inf") else None


class AzureBlobStore(MaintainedBlobs):
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
        self._place = Place.of(container)
        # Keys whose manifest this store read and refused: a listing cannot tell a bad
        # manifest from a good one, so the snapshot leaves these out, as LocalStore does.
        self._refused: set[str] = set()
        # What its own requests told it, to spare asking again (see _sightings).
        self._sightings = Sightings()

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
        """What the container holds for ``keys``, sorted by key: one listing of manifests
        (with metadata) and evaluation results together, one request per 5,000 of them in
        the store, however many keys are asked about. See ``modelcache.store.Store.snapshot``."""
        wanted = set(keys)
        if not wanted:
            return []
        with translated(self._place, "list the cache entries and evaluation results"):
            manifests, evaluations = self._list_snapshot(wanted)
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

    def _list_snapshot(
        self, wanted: set[str]
    ) -> tuple[dict[str, Mapping[str, str]], dict[str, frozenset[str]]]:
        """The manifests of ``wanted`` keys (their metadata) and their evaluation results'
        fingerprints, from one listing of :data:`SNAPSHOT_PREFIX`."""
        manifests: dict[str, Mapping[str, str]] = {}
        listed: set[str] = set()  # every manifest there, even one too big to be read
        evaluations: dict[str, set[str]] = {}
        for blob in self._container.list_blobs(
            name_starts_with=SNAPSHOT_PREFIX, include=["metadata"]
        ):
            name: str = blob.name
            if name.startswith(ENTRIES_PREFIX):
                key = parse_manifest_name(name)
                if key in wanted:
                    listed.add(key)
                    if blob.size <= MAX_MANIFEST_SIZE:
                        manifests[key] = dict(blob.metadata or {})
            elif name.startswith(EVALUATIONS_PREFIX):
                parsed = parse_evaluation_name(name)
                if parsed is not None and parsed[0] in wanted:
                    evaluations.setdefault(parsed[0], set()).add(parsed[1])
        self._sightings.listed(wanted, listed)
        return manifests, {key: frozenset(found) for key, found in evaluations.items()}

    # -- manifests and evaluation results ------------------------------------------------

    def read_manifest(self, key: str) -> Manifest:
        """The validated manifest of ``key``: ``EntryNotFound`` if there is none,
        ``InvalidManifest`` if the stored one cannot be trusted (one GET)."""
        name = manifest_name(key)
        try:
            data = self._read_document(
                name,
                MAX_MANIFEST_SIZE,
                f"read the manifest of entry {key}",
                lambda: EntryNotFound(f"no cache entry {key} in {self._place}"),
            )
            manifest = Manifest.from_json(data, key=key)
        except InvalidManifest:
            self._refused.add(key)
            self._sightings.exists(key)
            raise
        except EntryNotFound:
            self._refused.discard(key)  # removed (a repair), perhaps to be published anew
            self._sightings.gone(key)
            raise
        self._refused.discard(key)
        self._sightings.exists(key)
        return manifest

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
            client.upload_blob(data, overwrite=False, content_settings=JSON)

    # -- locks -----------------------------------------------------------------------------

    def locks(self) -> BlobLeaseLocks:
        """Blob leases on this container's lock blobs (see :mod:`modelcache.azure._lock`)."""
        from ._lock import BlobLeaseLocks  # the lock module builds on this one

        return BlobLeaseLocks.of(self)

    # -- transfers -------------------------------------------------------------------------

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        """Publish the directory ``source`` as the entry ``manifest`` describes.

        Costs a HEAD of the manifest, unless this store's claim of the entry found it absent
        (in one concurrent batch with the HEADs of large blobs this store has not seen);
        then, if the entry is not there yet, the blobs as :func:`~._upload.send_blobs`
        sends them (each read through :func:`~modelcache.store.source_chunks` while it is
        sent: ``CorruptEntry`` before anything of it is committed, if it no longer
        matches); then the manifest, create-only, with the entry's size and run time as
        blob metadata for :meth:`snapshot`. See :meth:`modelcache.store.Store.publish`.

        :return: True if this call published the entry; False if it was there already.
        """
        key = manifest.key
        data = manifest_bytes(manifest)
        look = not self._sightings.take_claimed(key)
        if not send_blobs(
            self._container,
            self._settings,
            self._place,
            Path(source),
            manifest,
            progress,
            sightings=self._sightings,
            look_for_manifest=look,
        ):
            self._sightings.exists(key)
            return False
        metadata = {"size": str(manifest.size)}
        if manifest.run_seconds is not None:
            metadata["run_seconds"] = repr(manifest.run_seconds)
        with translated(self._place, f"publish the manifest of entry {key}"):
            try:
                self._container.get_blob_client(manifest_name(key)).upload_blob(
                    data, overwrite=False, metadata=metadata, content_settings=JSON
                )
            except ResourceExistsError:
                self._sightings.exists(key)
                return False
        self._sightings.exists(key)
        self._refused.discard(key)  # the manifest this store refused is gone: this one stands
        return True

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
        download_entry(
            self._container, self._settings, self._place, manifest, destination, progress
        )
        return manifest
