"""Opening the cloud tier named by ``cloud_cache_config``."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from modelcache.store import Store, StoreConfigError

from .config import CloudCacheConfig

__all__ = ["TRANSFER_VARIABLE", "open_cloud_store"]

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
