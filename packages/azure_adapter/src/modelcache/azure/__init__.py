"""modelcache's cloud tier: cache entries in an Azure Blob Storage container.

:class:`AzureBlobStore` satisfies the ``modelcache.store.Store`` port, on top of everything
:mod:`modelcache.store` shares between stores (layout, manifest, verified transfer); this
package never imports the runner. :class:`BlobLeaseLocks`, what :meth:`AzureBlobStore.locks`
returns, keeps two runners from computing the same entry at once (single flight). See
``docs/storage.md``.
"""

from ._auth import CONNECTION_STRING_VARIABLE, Credential
from ._lock import BlobLeaseLocks, LeaseClaim
from ._settings import MiB, TransferSettings
from ._store import AzureBlobStore

__all__ = [
    "CONNECTION_STRING_VARIABLE",
    "AzureBlobStore",
    "BlobLeaseLocks",
    "Credential",
    "LeaseClaim",
    "MiB",
    "TransferSettings",
]
