"""Opening the cloud tier named by ``cloud_cache_config``."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from modelcache.planner import SnapshotEntry
from modelcache.store import (
    EntryLocks,
    MaintainedStore,
    Manifest,
    Progress,
    Store,
    StoreConfigError,
    StoredObject,
    Tier,
)

from .config import CloudCacheConfig

__all__ = ["TRANSFER_VARIABLE", "DeferredStore", "defer_cloud_store", "open_cloud_store"]

#: ``name=value,...`` overrides of the Azure store's transfer settings, for this machine.
TRANSFER_VARIABLE = "MODELCACHE_AZURE_TRANSFER"


def open_cloud_store(
    config: CloudCacheConfig,
    *,
    environ: Mapping[str, str] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> Store:
    """The Azure Blob store for the config; ``StoreConfigError`` saying what to do if the
    adapter is missing or the configuration names no usable account and container.

    :param environ: where to look for the credentials and :data:`TRANSFER_VARIABLE`
        (``os.environ`` if not given).
    :param client_options: extra keyword arguments for the SDK client (a
        ``raw_request_hook``, ...), as ``AzureBlobStore.from_config`` takes them.
    """
    try:
        from modelcache.azure import AzureBlobStore
    except ImportError:
        raise StoreConfigError(
            "cloud_cache_config needs the Azure adapter: pip install 'modelcache-runner[azure]'"
        ) from None
    if config.account_url is not None:
        _refuse_placeholder(config.account_url)
    environ = os.environ if environ is None else environ
    return AzureBlobStore.from_config(
        account_url=config.account_url,
        container_name=config.container_name,
        settings=_transfer_settings(environ.get(TRANSFER_VARIABLE, "")),
        environ=environ,
        client_options=client_options,
    )


def defer_cloud_store(
    config: CloudCacheConfig, *, environ: Mapping[str, str] | None = None
) -> Store:
    """:func:`open_cloud_store`, opened on the store's first use (:class:`DeferredStore`): a
    warm run that needs nothing of the cloud never imports the Azure SDK. What can be
    checked without it is checked now (the adapter installed, no placeholder in the URL,
    the transfer settings); where the configuration does not say where the container is
    without the SDK reading the credentials, the store is opened now, so that its mistakes
    are said before any work, as always.
    """
    environ = os.environ if environ is None else environ
    if importlib.util.find_spec("modelcache.azure") is None:
        raise StoreConfigError(
            "cloud_cache_config needs the Azure adapter: pip install 'modelcache-runner[azure]'"
        )
    if config.account_url is not None:
        _refuse_placeholder(config.account_url)
    where = _place(config, environ)
    if where is None or environ.get(TRANSFER_VARIABLE):
        return open_cloud_store(config, environ=environ)
    return DeferredStore(lambda: cast(MaintainedStore, open_cloud_store(config, environ=environ)),
                         where)  # fmt: skip


def _place(config: CloudCacheConfig, environ: Mapping[str, str]) -> str | None:
    """Where the container is, without a credential: its account's endpoint (from
    ``account_url``, or the connection string's ``BlobEndpoint`` or ``AccountName``) and
    its name; None where only the SDK can tell (a container SAS URL, no account at all)."""
    if config.container_name is None:
        return None
    if config.account_url is not None:
        parts = urlsplit(config.account_url)
        endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    else:
        fields = dict(
            item.split("=", 1)
            for item in environ.get("AZURE_STORAGE_CONNECTION_STRING", "").split(";")
            if "=" in item
        )
        endpoint = fields.get("BlobEndpoint") or fields.get("AccountName") or ""
    return f"container {config.container_name!r} at {endpoint}" if endpoint else None


class DeferredStore:
    """A cloud store opened on its first use by ``opener``; ``repr`` says where it is
    (``where``) without opening it. Once opened, it is the opened store's methods that run,
    and raise."""

    tier: Tier = "cloud"

    def __init__(self, opener: Callable[[], MaintainedStore], where: str) -> None:
        self._opener = opener
        self._store: MaintainedStore | None = None
        self.where = where

    def opened(self) -> MaintainedStore:
        """The store, opened now if it was not."""
        if self._store is None:
            self._store = self._opener()
        return self._store

    def __repr__(self) -> str:
        return f"DeferredStore({self.where})"

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        return self.opened().snapshot(keys)

    def read_manifest(self, key: str) -> Manifest:
        return self.opened().read_manifest(key)

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        return self.opened().fetch(key, destination, progress=progress)

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        return self.opened().publish(source, manifest, progress=progress)

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        return self.opened().read_evaluation(key, fingerprint)

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        self.opened().write_evaluation(key, fingerprint, result)

    def locks(self) -> EntryLocks | None:
        return self.opened().locks()

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        return self.opened().list_objects(prefix)

    def read_object(self, name: str, limit: int) -> bytes | None:
        return self.opened().read_object(name, limit)

    def hash_object(self, name: str) -> str | None:
        return self.opened().hash_object(name)

    def delete_object(self, stored: StoredObject) -> bool:
        return self.opened().delete_object(stored)

    def create_object(self, name: str, data: bytes) -> bool:
        return self.opened().create_object(name, data)


def _refuse_placeholder(account_url: str) -> None:
    """Refuse an account URL whose host still holds a placeholder such as the README's
    ``<account>``: no account has that name, and finding out by asking for credentials
    takes half a minute of retries."""
    host = urlsplit(account_url).hostname or ""
    placeholder = re.search(r"<[^>]*>?|\{[^}]*\}?", host)
    if placeholder is None:
        return
    # Only the host is quoted: the rest of the URL may carry a SAS.
    raise StoreConfigError(
        f"cloud_cache_config.account_url: {host} still holds the placeholder "
        f"{placeholder.group()}; put your storage account's name there "
        "(https://NAME.blob.core.windows.net), or remove account_url and set "
        "AZURE_STORAGE_CONNECTION_STRING"
    )


def _transfer_settings(text: str) -> Any:
    """``TransferSettings`` with the overrides in ``text`` (``retries=0,read_timeout=5``)."""
    from modelcache.azure import TransferSettings

    defaults: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TransferSettings)}
    overrides: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in defaults:
            raise StoreConfigError(
                f"{TRANSFER_VARIABLE}: unknown transfer setting {name!r}; "
                f"known: {', '.join(defaults)}"
            )
        try:
            overrides[name] = type(defaults[name])(value.strip())
        except ValueError:
            overrides[name] = math.nan
        if not math.isfinite(overrides[name]):
            kind = "a whole number" if isinstance(defaults[name], int) else "a number"
            raise StoreConfigError(
                f"{TRANSFER_VARIABLE}: {name} must be {kind}, got {value.strip()!r}"
            )
    try:
        return TransferSettings(**overrides)
    except StoreConfigError as error:
        raise StoreConfigError(f"{TRANSFER_VARIABLE}: {error}") from None
