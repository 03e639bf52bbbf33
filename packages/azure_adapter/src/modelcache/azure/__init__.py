"""modelcache's cloud tier: cache entries in an Azure Blob Storage container.

:class:`AzureBlobStore` satisfies the runner's ``Store`` port structurally (this package never
imports the runner). :class:`BlobLeaseLocks`, its companion, keeps two runners from computing
the same entry at once (single flight). See ``docs/storage.md``.
"""

from ._auth import CONNECTION_STRING_VARIABLE, Credential
from ._lock import BlobLeaseLocks, ClaimOutcome, LeaseClaim
from ._settings import MiB, TransferSettings
from ._store import AzureBlobStore

__all__ = [
    "CONNECTION_STRING_VARIABLE",
    "AzureBlobStore",
    "BlobLeaseLocks",
    "ClaimOutcome",
    "Credential",
    "LeaseClaim",
    "MiB",
    "TransferSettings",
]
