"""Cache entries as stored: the manifest, and the names of things in a store.

Theory of operation
-------------------
A store (a local directory or a blob container) holds five kinds of object under one
versioned prefix, ``modelcache-v1/``:

* ``blobs/sha256/<first two hex digits>/<sha256>``: file contents, stored once, named by
  their SHA-256, shared by every entry that has a file with those bytes;
* ``entries/<key>.json``: one manifest per cache entry, naming every file of the output model
  by relative path, size and SHA-256, and recording the key's inputs;
* ``evaluations/<key>/<evaluator fingerprint>.json``: evaluation results;
* ``runs/<UTC time>-<random>.json``: one record per run (hits, misses, bytes moved, the keys
  it used), which is how the cache knows when an entry was last used without a write per hit;
* ``locks/<key>``: an empty object per entry being computed, held (a blob lease, a file lock)
  by the one runner computing it so that the others wait for it instead (single flight).

A manifest is published last and only if absent, so a reader that finds a manifest finds
every blob it names. Manifests come from other machines and are untrusted: parsing one
checks every path (relative, no ``..``, no empty or dot components, no backslashes, no
drive letters, no file that is also a directory) and every size and digest, and checks that
the key inputs hash to the key. This module does no IO; the stores read and write the bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from ._errors import InvalidManifest
from ._json import JsonMap, canonical_json, thaw

__all__ = [
    "BLOBS_PREFIX",
    "ENTRIES_PREFIX",
    "EVALUATIONS_PREFIX",
    "LAYOUT_PREFIX",
    "RUNS_PREFIX",
    "LOCKS_PREFIX",
    "MANIFEST_FORMAT",
    "MAX_FILE_SIZE",
    "Manifest",
    "ManifestFile",
    "StoredObject",
    "blob_name",
    "check_relative_path",
    "evaluation_name",
    "evaluations_prefix",
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
MANIFEST_FORMAT = "modelcache-manifest/1"
# Far beyond any model file, small enough that a hostile size cannot fill a disk unnoticed.
MAX_FILE_SIZE = 1 << 40
_MAX_PATH = 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT = re.compile(r"[0-9A-Za-z._-]{1,128}")
_DRIVE = re.compile(r"[A-Za-z]:")
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
    _check_hex(sha256, "sha256")
    return f"{LAYOUT_PREFIX}blobs/sha256/{sha256[:2]}/{sha256}"


def manifest_name(key: str) -> str:
    """Where the manifest of the entry with this key lives."""
    _check_hex(key, "key")
    return f"{LAYOUT_PREFIX}entries/{key}.json"


def lock_name(key: str) -> str:
    """Where the single-flight lock of the entry with this key lives: an empty object that
    a runner computing the entry holds (a blob lease, a file lock) until it is published."""
    _check_hex(key, "key")
    return f"{LOCKS_PREFIX}{key}"


def parse_manifest_name(name: str) -> str | None:
    """The key a manifest name stands for, or None if ``name`` is not a manifest's."""
    prefix = ENTRIES_PREFIX
    if not (name.startswith(prefix) and name.endswith(".json")):
        return None
    key = name[len(prefix) : -len(".json")]
    return key if _HEX64.fullmatch(key) else None


def evaluations_prefix(key: str) -> str:
    _check_hex(key, "key")
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


def _check_hex(value: str, what: str) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidManifest(f"{what} {value!r} is not 64 lowercase hex digits")


def check_relative_path(path: str) -> str:
    """``path`` if it is a safe relative POSIX path inside a model directory, else an error."""
    if not isinstance(path, str) or not path:
        raise InvalidManifest(f"file path {path!r} is empty or not a string")
    if len(path) > _MAX_PATH:
        raise InvalidManifest(f"file path is longer than {_MAX_PATH} characters")
    if "\\" in path or "\0" in path:
        raise InvalidManifest(f"file path {path!r} contains a backslash or NUL")
    if path.startswith("/") or _DRIVE.match(path):
        raise InvalidManifest(f"file path {path!r} is absolute")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise InvalidManifest(f"file path {path!r} has an empty, '.' or '..' component")
    return path


def _size(_instance: object, _attribute: object, value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_FILE_SIZE:
        raise InvalidManifest(f"file size {value!r} is not a whole number of bytes within limits")


def _sha(_instance: object, _attribute: object, value: str) -> None:
    _check_hex(value, "sha256")


def _path(_instance: object, _attribute: object, value: str) -> None:
    check_relative_path(value)


@frozen(kw_only=True)
class ManifestFile:
    """One file of a stored model: where it goes, how big it is, what its bytes hash to."""

    path: str = field(validator=_path)
    size: int = field(validator=_size)
    sha256: str = field(validator=_sha)


def _files(value: Iterable[ManifestFile]) -> tuple[ManifestFile, ...]:
    files = tuple(sorted(value, key=lambda item: item.path))
    seen: set[str] = set()
    for item in files:
        if item.path in seen:
            raise InvalidManifest(f"file path {item.path!r} is listed twice")
        seen.add(item.path)
    for item in files:
        parts = item.path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in seen:
                raise InvalidManifest(f"{'/'.join(parts[:depth])!r} is both a file and a folder")
    return files


def _key_inputs(value: Mapping[str, Any]) -> JsonMap:
    return value if isinstance(value, JsonMap) else JsonMap(value)


@frozen(kw_only=True)
class Manifest:
    """A cache entry: the output model's files and what the key was derived from.

    ``key_inputs`` is the key document (see ``key_document``); the key is its SHA-256, which
    :meth:`from_json` checks. ``producer`` is the modelcache version that wrote the entry,
    ``run_seconds`` how long the pass took and ``created`` an ISO 8601 UTC timestamp. No
    absolute path or credential belongs here, and none is accepted by construction: paths
    are relative and the key inputs are the pass's configuration.
    """

    key: str = field(validator=_sha)
    model_type: str
    files: tuple[ManifestFile, ...] = field(converter=_files)
    key_inputs: JsonMap = field(converter=_key_inputs)
    producer: str
    run_seconds: float | None = None
    created: str = ""

    @property
    def size(self) -> int:
        """The model's size in bytes: the sum of its files."""
        return sum(item.size for item in self.files)

    def to_json(self) -> bytes:
        """The stored form: canonical JSON, UTF-8."""
        return canonical_json(
            {
                "format": MANIFEST_FORMAT,
                "key": self.key,
                "model_type": self.model_type,
                "files": [
                    {"path": item.path, "size": item.size, "sha256": item.sha256}
                    for item in self.files
                ],
                "key_inputs": thaw(self.key_inputs),
                "producer": self.producer,
                "run_seconds": self.run_seconds,
                "created": self.created,
            }
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str, *, key: str | None = None) -> Manifest:
        """Parse and validate a stored manifest; ``key``, if given, is the key expected.

        Raises :class:`InvalidManifest` saying what is wrong: not JSON, an unknown format,
        a missing or mistyped field, an unsafe path, a bad size or digest, key inputs that do
        not hash to the key, or a key other than the one expected.
        """
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidManifest(f"manifest is not JSON: {error}") from None
        if not isinstance(document, dict):
            raise InvalidManifest("manifest is not a JSON object")
        if document.get("format") != MANIFEST_FORMAT:
            raise InvalidManifest(
                f"unknown manifest format {document.get('format')!r}; this modelcache reads "
                f"{MANIFEST_FORMAT!r} (a newer modelcache may have written it: upgrade)"
            )
        expected = {"format", "key", "model_type", "files", "key_inputs", "producer",
                    "run_seconds", "created"}  # fmt: skip
        if set(document) != expected:
            raise InvalidManifest(
                f"manifest fields {sorted(document)} differ from {sorted(expected)}"
            )
        files = document["files"]
        if not isinstance(files, list) or not all(isinstance(item, dict) for item in files):
            raise InvalidManifest("manifest 'files' is not a list of objects")
        run_seconds = document["run_seconds"]
        if run_seconds is not None and (
            isinstance(run_seconds, bool)
            or not isinstance(run_seconds, (int, float))
            or not 0 <= run_seconds < float("inf")
        ):
            raise InvalidManifest(f"run_seconds {run_seconds!r} is not a duration")
        for name in ("model_type", "producer", "created"):
            if not isinstance(document[name], str):
                raise InvalidManifest(f"manifest field {name!r} is not a string")
        if not isinstance(document["key_inputs"], dict):
            raise InvalidManifest("manifest 'key_inputs' is not an object")
        try:
            manifest = cls(
                key=document["key"],
                model_type=document["model_type"],
                files=[
                    ManifestFile(
                        path=item.get("path"), size=item.get("size"), sha256=item.get("sha256")
                    )
                    for item in files
                ],
                key_inputs=document["key_inputs"],
                producer=document["producer"],
                run_seconds=None if run_seconds is None else float(run_seconds),
                created=document["created"],
            )
        except InvalidManifest:
            raise
        except (TypeError, ValueError) as error:
            raise InvalidManifest(f"manifest is malformed: {error}") from None
        digest = hashlib.sha256(canonical_json(manifest.key_inputs).encode("utf-8")).hexdigest()
        if digest != manifest.key:
            raise InvalidManifest("manifest key does not match the SHA-256 of its key inputs")
        if key is not None and manifest.key != key:
            raise InvalidManifest(f"manifest is for key {manifest.key}, expected {key}")
        return manifest
