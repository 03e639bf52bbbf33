"""The names of things in a store: one layout, shared by every store.

A store (a local directory, a blob container, a dictionary) holds five kinds of object under
one versioned prefix, ``modelcache-v1/``:

* ``blobs/sha256/<first two hex digits>/<sha256>``: file contents, stored once, named by
  their SHA-256, shared by every entry that has a file with those bytes;
* ``entries/<key>.json``: one manifest per cache entry (:mod:`._manifest`);
* ``evaluations/<key>/<evaluator fingerprint>.json``: evaluation results;
* ``runs/<UTC time>-<random>.json``: one record per run (hits, misses, bytes moved, the keys
  it used), which is how the cache knows when an entry was last used without a write per hit;
* ``locks/<key>``: an empty object per entry being computed, held (a blob lease, a file lock)
  by the one runner computing it so that the others wait for it instead (single flight).

Names are built and parsed here only; a name that does not parse is not one of ours.
"""

from __future__ import annotations

import re

from attrs import frozen

from ._errors import InvalidManifest

__all__ = [
    "BLOBS_PREFIX",
    "ENTRIES_PREFIX",
    "EVALUATIONS_PREFIX",
    "LAYOUT_PREFIX",
    "LOCKS_PREFIX",
    "RUNS_PREFIX",
    "StoredObject",
    "blob_name",
    "check_hex",
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
]

LAYOUT_PREFIX = "modelcache-v1/"
BLOBS_PREFIX = f"{LAYOUT_PREFIX}blobs/sha256/"
ENTRIES_PREFIX = f"{LAYOUT_PREFIX}entries/"
EVALUATIONS_PREFIX = f"{LAYOUT_PREFIX}evaluations/"
RUNS_PREFIX = f"{LAYOUT_PREFIX}runs/"
LOCKS_PREFIX = f"{LAYOUT_PREFIX}locks/"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[0-9A-Za-z._-]{1,128}")
_RUN_RECORD = re.compile(r"(\d{8}T\d{6}Z)-([0-9a-z]{1,64})")


@frozen(kw_only=True)
class StoredObject:
    """One object as a store lists it, for maintenance (``modelcache cache ...``).

    ``modified`` is when it was last written or refreshed, in seconds since the epoch (UTC);
    ``version`` is an opaque token that changes whenever that happens (an ETag, or a file's
    inode and modification time). Deleting an object is conditional on its version, so an
    object a publisher refreshed after it was listed is never deleted.
    """

    name: str
    size: int
    modified: float
    version: str


def parse_blob_name(name: str) -> str | None:
    """The SHA-256 a blob name stands for, or None if ``name`` is not a blob's."""
    if not name.startswith(BLOBS_PREFIX):
        return None
    folder, _, digest = name[len(BLOBS_PREFIX) :].partition("/")
    if _HEX64.fullmatch(digest) and folder == digest[:2]:
        return digest
    return None


def run_record_name(stamp: str, token: str) -> str:
    """Where the record of a run that ended at ``stamp`` (``YYYYMMDDTHHMMSSZ``) lives;
    ``token`` (lowercase letters and digits) keeps runs that end in the same second apart."""
    if not _RUN_RECORD.fullmatch(f"{stamp}-{token}"):
        raise InvalidManifest(f"run record stamp {stamp!r} or token {token!r} is malformed")
    return f"{RUNS_PREFIX}{stamp}-{token}.json"


def parse_run_record_name(name: str) -> str | None:
    """The stamp of a run record's name, or None if ``name`` is not a run record's."""
    if not (name.startswith(RUNS_PREFIX) and name.endswith(".json")):
        return None
    match = _RUN_RECORD.fullmatch(name[len(RUNS_PREFIX) : -len(".json")])
    return None if match is None else match.group(1)


def blob_name(sha256: str) -> str:
    """Where the content with this SHA-256 lives."""
    check_hex(sha256, "sha256")
    return f"{LAYOUT_PREFIX}blobs/sha256/{sha256[:2]}/{sha256}"


def manifest_name(key: str) -> str:
    """Where the manifest of the entry with this key lives."""
    check_hex(key, "key")
    return f"{LAYOUT_PREFIX}entries/{key}.json"


def is_key(value: object) -> bool:
    """Whether ``value`` is a key: 64 lowercase hex digits."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def lock_name(key: str) -> str:
    """Where the single-flight lock of the entry with this key lives: an empty object that
    a runner computing the entry holds (a blob lease, a file lock) until it is published."""
    check_hex(key, "key")
    return f"{LOCKS_PREFIX}{key}"


def parse_manifest_name(name: str) -> str | None:
    """The key a manifest name stands for, or None if ``name`` is not a manifest's."""
    prefix = ENTRIES_PREFIX
    if not (name.startswith(prefix) and name.endswith(".json")):
        return None
    key = name[len(prefix) : -len(".json")]
    return key if _HEX64.fullmatch(key) else None


def evaluations_prefix(key: str) -> str:
    """Where the evaluation results of entry ``key`` live."""
    check_hex(key, "key")
    return f"{LAYOUT_PREFIX}evaluations/{key}/"


def evaluation_name(key: str, fingerprint: str) -> str:
    """Where the result of the evaluator ``fingerprint`` on entry ``key`` lives."""
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise InvalidManifest(f"evaluator fingerprint {fingerprint!r} is not a plain name")
    return f"{evaluations_prefix(key)}{fingerprint}.json"


def parse_evaluation_name(name: str) -> tuple[str, str] | None:
    """``(key, fingerprint)`` for an evaluation result's name, else None."""
    prefix = f"{LAYOUT_PREFIX}evaluations/"
    if not (name.startswith(prefix) and name.endswith(".json")):
        return None
    key, _, fingerprint = name[len(prefix) : -len(".json")].partition("/")
    if _HEX64.fullmatch(key) and _FINGERPRINT.fullmatch(fingerprint):
        return key, fingerprint
    return None


def check_hex(value: str, what: str) -> None:
    """Refuse ``value`` unless it is 64 lowercase hex digits (a key or a SHA-256)."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidManifest(f"{what} {value!r} is not 64 lowercase hex digits")
