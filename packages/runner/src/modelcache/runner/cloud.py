"""Opening the cloud tier named by ``cloud_cache_config``."""

from __future__ import annotations

from modelcache.planner import StoreConfigError

from .config import CloudCacheConfig
from .store import Store

__all__ = ["open_cloud_store"]


def open_cloud_store(config: CloudCacheConfig) -> Store:
    """The Azure Blob store for the config; ``StoreConfigError`` saying what to do if the
    adapter is missing or the configuration names no usable account and container."""
    try:
        from modelcache.azure import AzureBlobStore
    except ImportError:
        raise StoreConfigError(
            "cloud_cache_config needs the Azure adapter: pip install 'modelcache-runner[azure]'"
        ) from None
    return AzureBlobStore.from_config(
        account_url=config.account_url, container_name=config.container_name
    )
