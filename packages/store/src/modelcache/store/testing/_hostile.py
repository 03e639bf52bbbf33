"""Hostile manifests: unsafe paths, malformed documents, fuzzed ones, and planting one
straight into a store to fetch it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from .._layout import blob_name, manifest_name
from .._manifest import MAX_FILE_SIZE
from ._model import key_of, sha256_of
from ._subjects import Subject

__all__ = [
    "BLOB",
    "HOSTILE_DOCUMENTS",
    "HOSTILE_KEY",
    "HOSTILE_PATHS",
    "MALFORMED_MANIFESTS",
    "REFUSED_UNDER_ANY_KEY",
    "everything_under",
    "files_at",
    "fuzzed_paths",
    "hostile_manifests",
    "manifest_document",
    "plant_and_fetch",
]

HOSTILE_KEY, _KEY_INPUTS = key_of(7)
BLOB = b"payload"
_BLOB_SIZE, _BLOB_SHA = len(BLOB), sha256_of(BLOB)


def manifest_document(**changes: Any) -> dict[str, Any]:
    """A valid manifest of :data:`HOSTILE_KEY` (one file, :data:`BLOB`), with ``changes``."""
    document: dict[str, Any] = {
        "format": "modelcache-manifest/1",
        "key": HOSTILE_KEY,
        "model_type": "onnx",
        "files": [{"path": "model.onnx", "size": _BLOB_SIZE, "sha256": _BLOB_SHA}],
        "key_inputs": _KEY_INPUTS,
        "producer": "hostile",
        "run_seconds": 1.0,
        "created": "",
    }
    document.update(changes)
    return document


def files_at(path: str, size: Any = _BLOB_SIZE, digest: Any = _BLOB_SHA) -> list[Any]:
    """A manifest's ``files``: :data:`BLOB` at ``path``, unless told another size or digest."""
    return [{"path": path, "size": size, "sha256": digest}]


def everything_under(root: Path) -> set[str]:
    """Every file and folder under ``root``, as relative POSIX paths."""
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def plant_and_fetch(subject: Subject, scratch: Path, data: bytes) -> Path:
    """Plant ``data`` as the manifest of a key (beside the blob it names) and fetch that key
    into ``scratch/sandbox/work/dest``; the destination, if the fetch succeeded."""
    subject.put_object(blob_name(_BLOB_SHA), BLOB)
    subject.put_object(manifest_name(HOSTILE_KEY), data)
    sandbox = scratch / "sandbox"
    (sandbox / "work").mkdir(parents=True, exist_ok=True)
    destination = sandbox / "work" / "dest"
    subject.store.fetch(HOSTILE_KEY, destination)
    return destination


HOSTILE_PATHS = [
    "../x",
    "/etc/x",
    "a/../../b",
    "C:/x",
    "c:x",
    "\\\\server\\share\\x",
    "a\\..\\..\\b",
    "./a",
    "a//b",
    "a/",
    "",
    "..",
    ".",
    "a/./b",
    "a\0b",
    "a/" * 600,
]

HOSTILE_DOCUMENTS = {
    "size-beyond-limit": manifest_document(files=files_at("m", size=MAX_FILE_SIZE + 1)),
    "negative-size": manifest_document(files=files_at("m", size=-1)),
    "size-as-text": manifest_document(files=files_at("m", size="7")),
    "size-as-bool": manifest_document(files=files_at("m", size=True)),
    "size-as-float": manifest_document(files=files_at("m", size=7.0)),
    "short-digest": manifest_document(files=files_at("m", digest="ab")),
    "upper-case-digest": manifest_document(files=files_at("m", digest=sha256_of(BLOB).upper())),
    "file-and-folder": manifest_document(files=files_at("a") + files_at("a/b")),
    "listed-twice": manifest_document(files=files_at("a") + files_at("a")),
    "unknown-format": manifest_document(format="modelcache-manifest/2"),
    "no-format": {k: v for k, v in manifest_document().items() if k != "format"},
    "extra-field": manifest_document(password="hunter2"),
    "inputs-do-not-hash-to-key": manifest_document(key_inputs={"schema": "other"}),
    "other-entry's-manifest": manifest_document(key=key_of(8)[0], key_inputs=key_of(8)[1]),
    "negative-run-time": manifest_document(run_seconds=-1),
    "files-not-a-list": manifest_document(files={"path": "m"}),
}
MALFORMED_MANIFESTS = {
    **{name: json.dumps(document).encode() for name, document in HOSTILE_DOCUMENTS.items()},
    "not-json": b"not json",
    "not-utf8": b"\xff\xfe",
    "array": b"[]",
    "empty": b"",
    "nan-run-time": json.dumps(manifest_document()).replace("1.0", "NaN").encode(),
}
# Refused whatever key they are stored under: every document names HOSTILE_KEY, so under
# another key the key check refuses it too. "other-entry's-manifest" is valid under its own.
REFUSED_UNDER_ANY_KEY = {
    name: data for name, data in MALFORMED_MANIFESTS.items() if name != "other-entry's-manifest"
}

_PATH_PARTS = st.sampled_from(
    ["", ".", "..", "a", "b.onnx", "C:", "c:x", "~", "\\", "..\\..", "\0", "a\\b", " ", "x" * 300]
)
_HOSTILE_PATH = st.one_of(
    st.sampled_from(HOSTILE_PATHS),
    st.lists(_PATH_PARTS, min_size=1, max_size=5).map("/".join),
    st.lists(_PATH_PARTS, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    st.text(alphabet="ab./\\:\0~", max_size=20),
)
_JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_SIZE = st.one_of(st.just(len(BLOB)), st.integers(min_value=-5, max_value=2**64), _JSON_SCALAR)
_DIGEST = st.one_of(
    st.just(sha256_of(BLOB)), st.just(sha256_of(BLOB).upper()), st.text(max_size=70)
)
_FILE = st.fixed_dictionaries(
    {"path": st.one_of(st.just("model.onnx"), _HOSTILE_PATH), "size": _SIZE, "sha256": _DIGEST},
    optional={"mode": _JSON_SCALAR, "link": _HOSTILE_PATH},
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


@st.composite
def hostile_manifests(draw: st.DrawFn) -> bytes:
    """A manifest changed in a few places, or bytes that are no manifest at all."""
    kind = draw(st.sampled_from(["document", "document", "document", "json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        value = draw(st.recursive(_JSON_SCALAR, _containers))
        return json.dumps(value).encode()
    document = manifest_document()
    document["files"] = draw(st.lists(_FILE, max_size=4))
    for name in draw(st.sets(st.sampled_from(sorted(document)), max_size=2)):
        if name != "files":
            document[name] = draw(_JSON_SCALAR)
    if draw(st.booleans()):
        document[draw(st.text(min_size=1, max_size=8))] = draw(_JSON_SCALAR)
    return json.dumps(document).encode()


fuzzed_paths = st.text(alphabet="a./\\:C\0 ", max_size=12) | st.lists(
    st.sampled_from(["a", "..", ".", "", "C:", "b\\.."]), max_size=5
).map("/".join)
