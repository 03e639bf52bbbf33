"""Where modelcache entries live: the store port, the layout, the manifest, verified transfer,
and the stores every installation has (a local directory, memory, and the two layered).

A :class:`Store` holds cache entries under the planner's keys. Every implementation (these,
and ``modelcache.azure.AzureBlobStore``) shares one layout (``modelcache-v1/...``), one
manifest format with one set of limits, one implementation of fetch staging, path checks and
publish hashing (:func:`write_entry`, :func:`source_chunks`), one evaluation codec and one
error family; ``modelcache.store.testing`` is the contract they must all pass. See
``docs/storage-layout.md`` and ``docs/storage.md``.
"""

from ._atomic import create_file
from ._errors import (
    AccessDenied,
    CorruptEntry,
    EntryNotFound,
    Fault,
    InvalidManifest,
    ModelDirectoryError,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    UntrustedEntry,
)
from ._evaluations import MAX_EVALUATION_SIZE, evaluation_bytes, parse_evaluation
from ._file_locks import FileClaim, FileLocks
from ._layered import LayeredStore
from ._layout import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    LAYOUT_PREFIX,
    LOCKS_PREFIX,
    RUNS_PREFIX,
    StoredObject,
    blob_name,
    evaluation_name,
    evaluations_prefix,
    is_key,
    lock_name,
    manifest_name,
    parse_blob_name,
    parse_evaluation_name,
    parse_manifest_name,
    parse_run_record_name,
    run_record_name,
)
from ._local import LocalStore
from ._manifest import (
    MANIFEST_FORMAT,
    MAX_FILE_SIZE,
    MAX_MANIFEST_SIZE,
    Manifest,
    ManifestFile,
    check_relative_path,
    manifest_bytes,
)
from ._memory import MemoryStore
from ._port import Claim, ClaimOutcome, EntryLocks, MaintainedStore, Progress, Store, Tier
from ._signature import (
    ECDSA_P256,
    HMAC_SHA256,
    HmacKey,
    Signature,
    SigningKey,
    VerifyingKey,
    check_key_id,
    evaluation_message,
)
from ._transfer import (
    CHUNK_SIZE,
    READ_AHEAD_FROM,
    build_manifest,
    counted,
    describe_directory,
    hash_file,
    read_ahead,
    source_chunks,
    write_entry,
)
from ._trust import (
    Trust,
    check_evaluation,
    check_manifest,
    manifest_problem,
    sign_evaluation,
    sign_manifest,
    signer_of,
)
from ._trusted import TrustedLocalStore, TrustedStore

__all__ = [
    # the port
    "Claim",
    "ClaimOutcome",
    "EntryLocks",
    "MaintainedStore",
    "Progress",
    "Store",
    "Tier",
    # errors
    "AccessDenied",
    "CorruptEntry",
    "EntryNotFound",
    "Fault",
    "InvalidManifest",
    "ModelDirectoryError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
    "UntrustedEntry",
    # layout
    "BLOBS_PREFIX",
    "ENTRIES_PREFIX",
    "EVALUATIONS_PREFIX",
    "LAYOUT_PREFIX",
    "LOCKS_PREFIX",
    "RUNS_PREFIX",
    "StoredObject",
    "blob_name",
    "evaluation_name",
    "evaluations_prefix",
    "is_key",
    "lock_name",
    "manifest_name",
    "parse_blob_name",
    "parse_evaluation_name",
    "parse_manifest_name",
    "parse_run_record_name",
    "run_record_name",
    # manifest and evaluation codec
    "MANIFEST_FORMAT",
    "MAX_EVALUATION_SIZE",
    "MAX_FILE_SIZE",
    "MAX_MANIFEST_SIZE",
    "Manifest",
    "ManifestFile",
    "check_relative_path",
    "evaluation_bytes",
    "manifest_bytes",
    "parse_evaluation",
    # signatures and trust
    "ECDSA_P256",
    "HMAC_SHA256",
    "HmacKey",
    "Signature",
    "SigningKey",
    "Trust",
    "VerifyingKey",
    "check_evaluation",
    "check_key_id",
    "check_manifest",
    "evaluation_message",
    "manifest_problem",
    "sign_evaluation",
    "sign_manifest",
    "signer_of",
    # verified transfer
    "CHUNK_SIZE",
    "READ_AHEAD_FROM",
    "build_manifest",
    "create_file",
    "counted",
    "describe_directory",
    "hash_file",
    "read_ahead",
    "source_chunks",
    "write_entry",
    # stores
    "FileClaim",
    "FileLocks",
    "LayeredStore",
    "LocalStore",
    "MemoryStore",
    "TrustedLocalStore",
    "TrustedStore",
]
