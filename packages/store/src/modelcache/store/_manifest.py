"""A cache entry as stored: its manifest, the one thing a reader trusts about an entry.

Theory of operation
-------------------
A manifest names every file of an output model by relative POSIX path, size and SHA-256,
and records the key's inputs. It is published last and only if absent, so a reader that
finds a manifest finds every blob it names. Manifests come from other machines and are
untrusted: parsing one checks every path (relative, no ``..``, no empty or dot components,
no backslashes, no drive letters, no file that is also a directory), every size and digest,
and that the key inputs hash to the key. Writers pass the same checks before they write
(:func:`manifest_bytes`), and the size limit is the same on both sides, so nothing is
published that a reader would refuse. This module does no IO.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import cattrs
from attrs import evolve, field, fields, frozen

from modelcache.planner import JsonMap, canonical_json

from ._errors import InvalidManifest
from ._layout import check_hex
from ._signature import MANIFEST_TAG, Signature
from ._untrusted import UntrustedJson, load_untrusted

__all__ = [
    "MANIFEST_FORMAT",
    "MAX_FILE_SIZE",
    "MAX_MANIFEST_SIZE",
    "Manifest",
    "ManifestFile",
    "check_relative_path",
    "manifest_bytes",
]

MANIFEST_FORMAT = "modelcache-manifest/1"
# Far beyond any model file, small enough that a hostile size cannot fill a disk unnoticed.
MAX_FILE_SIZE = 1 << 40
#: The largest manifest a store writes or reads; a model with 100 000 files needs ~15 MB.
MAX_MANIFEST_SIZE = 64 << 20
_MAX_PATH = 1024
# NAME_MAX of ext4, XFS, APFS and NTFS (in UTF-8 bytes, or fewer UTF-16 units): a longer
# component cannot be created anywhere, so a manifest naming one is refused on reading.
_MAX_NAME = 255
_DRIVE = re.compile(r"[A-Za-z]:")


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
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidManifest(f"file path {path!a} is not text (a lone surrogate)") from None
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise InvalidManifest(f"file path {path!r} has an empty, '.' or '..' component")
        if len(part.encode("utf-8")) > _MAX_NAME:
            raise InvalidManifest(
                f"file path {path[:60]!r}... has a component longer than {_MAX_NAME} bytes, "
                "more than a file system allows"
            )
    return path


def _size(_instance: object, _attribute: object, value: int) -> None:
    if type(value) is not int or not 0 <= value <= MAX_FILE_SIZE:
        raise InvalidManifest(f"file size {value!r} is not a whole number of bytes within limits")


def _sha(_instance: object, _attribute: object, value: str) -> None:
    check_hex(value, "sha256")


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
    #: Who vouches for the entry (``docs/security.md``); None: unsigned, and the field is
    #: left out of the stored form, which is then byte for byte what it was before signing.
    signature: Signature | None = None

    @property
    def size(self) -> int:
        """The model's size in bytes: the sum of its files."""
        return sum(item.size for item in self.files)

    def to_json(self) -> bytes:
        """The stored form: canonical JSON, UTF-8."""
        document = _converter.unstructure(self)
        if self.signature is None:
            del document["signature"]
        return canonical_json({"format": MANIFEST_FORMAT, **document}).encode("utf-8")

    def signed_message(self) -> bytes:
        """What the entry's signature covers: a domain tag and the canonical manifest
        without its signature, which binds the key, the key inputs and every file."""
        unsigned = self if self.signature is None else evolve(self, signature=None)
        return MANIFEST_TAG + unsigned.to_json()

    @classmethod
    def from_json(cls, data: bytes | str, *, key: str | None = None) -> Manifest:
        """Parse and validate a stored manifest; ``key``, if given, is the key expected.

        Raises :class:`InvalidManifest` saying what is wrong: not JSON, an unknown format,
        a missing, extra or mistyped field (named by its JSON path), an unsafe path, a bad
        size or digest, key inputs that do not hash to the key, or a key other than the one
        expected.
        """
        try:
            document = load_untrusted(data)
        except UntrustedJson as error:
            raise InvalidManifest(f"manifest refused: {error}") from None
        if not isinstance(document, dict):
            raise InvalidManifest("manifest is not a JSON object")
        found = document.pop("format", None)
        if found != MANIFEST_FORMAT:
            raise InvalidManifest(
                f"unknown manifest format {found!r}; this modelcache reads "
                f"{MANIFEST_FORMAT!r} (a newer modelcache may have written it: upgrade)"
            )
        missing = sorted(_FIELDS - document.keys())
        if missing:
            raise InvalidManifest(f"manifest fields {missing} are missing")
        try:
            manifest = _converter.structure(document, cls)
        except cattrs.BaseValidationError as error:
            problems = cattrs.transform_error(error, "manifest", _problem)
            raise InvalidManifest("; ".join(problems)) from None
        digest = hashlib.sha256(canonical_json(manifest.key_inputs).encode("utf-8")).hexdigest()
        if digest != manifest.key:
            raise InvalidManifest("manifest key does not match the SHA-256 of its key inputs")
        if key is not None and manifest.key != key:
            raise InvalidManifest(f"manifest is for key {manifest.key}, expected {key}")
        return manifest


def _problem(error: BaseException, type_: Any) -> str:
    """A field's problem: the manifest's own checks say it best; else what was expected."""
    if isinstance(error, InvalidManifest):
        return str(error)
    if isinstance(error, KeyError):
        return "required field missing"
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return f"unknown fields {sorted(error.extra_fields)}"
    name = getattr(type_, "__name__", str(type_))
    return f"not {_TYPE_NAMES.get(name, name)}"


_TYPE_NAMES = {
    "str": "a string",
    "int": "a whole number",
    "JsonMap": "an object",
    "ManifestFile": "an object with a path, size and sha256",
    "tuple": "a list",
}


def _strictly(kind: type[Any], check: Callable[[Any], bool] = lambda _value: True) -> Any:
    """A structure hook that takes a JSON value of exactly ``kind`` (no ``True`` for 1, no
    ``"1"`` for 1), which ``check`` accepts, as it is."""

    def structure(value: Any, _type: Any) -> Any:
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise TypeError(f"{value!r} is not a {kind.__name__}")
        if not check(value):
            raise ValueError(f"{value!r} is out of range")
        return float(value) if kind is float else value

    return structure


def _duration(value: Any, _type: Any) -> float | None:
    if value is None:
        return None
    try:
        return cast(float, _strictly(float, lambda number: 0 <= number < math.inf)(value, float))
    except (TypeError, ValueError):
        raise InvalidManifest(f"run_seconds {value!r} is not a duration") from None


def _file_list(value: Any, _type: Any) -> tuple[ManifestFile, ...]:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return tuple(_converter.structure(item, ManifestFile) for item in value)


def _json_object(value: Any, _type: Any) -> JsonMap:
    if not isinstance(value, dict):
        raise TypeError(f"{value!r} is not an object")
    return JsonMap(value)


#: The manifest's wire format: the store's own converter, never cattrs' global one. Every
#: field is required when read, none may be added, and numbers and strings are taken only as
#: themselves; the validators of :class:`ManifestFile` and :class:`Manifest` do the rest.
_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(str, _strictly(str))
_converter.register_structure_hook(int, _strictly(int))
_converter.register_structure_hook(float | None, _duration)
_converter.register_structure_hook(JsonMap, _json_object)
_converter.register_structure_hook_func(lambda kind: kind == tuple[ManifestFile, ...], _file_list)
_converter.register_unstructure_hook(JsonMap, lambda value: value)
_converter.register_structure_hook(Signature | None, lambda value, _: Signature.from_json(value))
_converter.register_unstructure_hook(Signature, Signature.to_json)
# Defaults are for writers; a stored manifest names every field but the optional signature.
_FIELDS = frozenset(a.name for a in fields(Manifest)) - {"signature"}


def manifest_bytes(manifest: Manifest) -> bytes:
    """The stored form of ``manifest``, once it is certain that readers will accept it.

    Stores call this before they publish anything, so a manifest that would be refused on
    reading (a key that does not match its inputs, a negative or infinite run time, more
    than :data:`MAX_MANIFEST_SIZE` bytes) is refused on writing instead, with
    :class:`InvalidManifest`.
    """
    data = manifest.to_json()
    if len(data) > MAX_MANIFEST_SIZE:
        raise InvalidManifest(f"manifest is larger than {MAX_MANIFEST_SIZE} bytes")
    Manifest.from_json(data, key=manifest.key)
    return data
