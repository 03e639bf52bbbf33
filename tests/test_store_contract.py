"""Every store agrees with one simple model of what a store is.

The model is two dictionaries: entries (key -> files and run time) and evaluation results
((key, fingerprint) -> result), plus the set of blobs a test has damaged. A Hypothesis state
machine publishes, fetches, lists and damages entries at random against each store in
``STORE_FACTORIES`` and checks every answer against the model. Hostile manifests, planted
directly in the store, must be refused without a byte written outside the destination.

To check another store, add one line to ``STORE_FACTORIES``: a name and a factory that takes
a fresh scratch directory and returns a :class:`Subject`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from attrs import frozen
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    precondition,
    rule,
    run_state_machine_as_test,
)

from modelcache.planner import SnapshotEntry, canonical_json
from modelcache.store import (
    MAX_FILE_SIZE,
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    LocalStore,
    MemoryStore,
    Store,
    blob_name,
    build_manifest,
    check_relative_path,
    manifest_name,
)

# ---------------------------------------------------------------------------------------------
# The stores under test


@frozen(kw_only=True)
class Subject:
    """A store, and raw access to its objects by layout name (bypassing every check)."""

    store: Store
    get_object: Callable[[str], bytes | None]
    put_object: Callable[[str, bytes], None]
    close: Callable[[], None] = lambda: None


def memory_subject(_scratch: Path) -> Subject:
    store = MemoryStore(tier="cloud")
    return Subject(store=store, get_object=store.get_object, put_object=store.put_object)


def local_subject(scratch: Path) -> Subject:
    root = scratch / "store"

    def get_object(name: str) -> bytes | None:
        path = root / name
        return path.read_bytes() if path.is_file() else None

    def put_object(name: str, data: bytes) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(data)

    return Subject(store=LocalStore(root), get_object=get_object, put_object=put_object)


# Set by the test from the session's ``azurite`` fixture before an Azure subject is made.
_azurite: list[Any] = []


def azure_subject(_scratch: Path) -> Subject:
    import uuid

    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    from modelcache.azure import AzureBlobStore

    service = BlobServiceClient.from_connection_string(_azurite[0].connection_string)
    name = f"contract-{uuid.uuid4().hex[:20]}"
    container = service.create_container(name)
    store = AzureBlobStore.from_connection_string(_azurite[0].connection_string, name)

    def get_object(blob: str) -> bytes | None:
        try:
            return container.download_blob(blob).readall()
        except ResourceNotFoundError:
            return None

    def put_object(blob: str, data: bytes) -> None:
        container.upload_blob(blob, data, overwrite=True)

    def close() -> None:
        store.close()
        service.delete_container(name)
        service.close()

    return Subject(store=store, get_object=get_object, put_object=put_object, close=close)


STORE_FACTORIES: list[Any] = [
    ("memory", memory_subject),
    ("local", local_subject),
    ("azure", azure_subject),
]


@pytest.fixture(autouse=True)
def _azurite_for_azure_subjects(request: pytest.FixtureRequest) -> None:
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("name") == "azure":
        _azurite[:] = [request.getfixturevalue("azurite")]


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="modelcache-contract-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The model and the machine

FILE_NAMES = ("config.json", "model.onnx", "weights/part-0.bin", "weights/part-1.bin", "ü n/i.txt")
FINGERPRINTS = ("acc-v1", "latency.v2", "F1_3")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(number: int) -> tuple[str, dict[str, Any]]:
    inputs = {"schema": "contract", "n": number}
    return sha(canonical_json(inputs).encode()), inputs


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
results = st.dictionaries(st.text(max_size=6), json_scalars | st.lists(json_scalars, max_size=3))
# Content is fresh bytes, or an index into the contents already stored (shared blobs).
contents = st.binary(max_size=48) | st.integers(0, 1000)


@frozen
class ModelEntry:
    files: dict[str, bytes]
    run_seconds: float | None


class StoreMachine(RuleBasedStateMachine):
    """Random operations on one store, checked against dictionaries."""

    keys = Bundle("keys")

    def __init__(self, factory: Callable[[Path], Subject]) -> None:
        super().__init__()
        self.scratch = Path(tempfile.mkdtemp(prefix="modelcache-machine-"))
        self.subject = factory(self.scratch)
        self.store = self.subject.store
        self.entries: dict[str, ModelEntry] = {}
        self.evaluations: dict[tuple[str, str], dict[str, Any]] = {}
        self.damaged: set[str] = set()
        self.serial = 0

    def teardown(self) -> None:
        self.subject.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def fresh_path(self, name: str) -> Path:
        self.serial += 1
        return self.scratch / f"{name}-{self.serial}"

    def known_contents(self) -> list[bytes]:
        return sorted({data for entry in self.entries.values() for data in entry.files.values()})

    def is_damaged(self, key: str) -> bool:
        return any(sha(data) in self.damaged for data in self.entries[key].files.values())

    @rule(
        target=keys,
        number=st.integers(0, 30),
        layout=st.dictionaries(st.sampled_from(FILE_NAMES), contents, max_size=4),
        run_seconds=st.none() | st.floats(0, 1e6),
    )
    def publish(
        self, number: int, layout: dict[str, bytes | int], run_seconds: float | None
    ) -> str:
        known = self.known_contents()
        files = {
            path: content
            if isinstance(content, bytes)
            else known[content % len(known)]
            if known
            else bytes([content % 256])
            for path, content in layout.items()
        }
        source = self.fresh_path("source")
        for path, data in files.items():
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            (source / path).write_bytes(data)
        source.mkdir(exist_ok=True)
        key, inputs = key_of(number)
        manifest = build_manifest(
            key=key,
            key_inputs=inputs,
            model_type="onnx",
            directory=source,
            run_seconds=run_seconds,
            created="2026-01-01T00:00:00Z",
            producer="contract",
        )
        published = self.store.publish(source, manifest)
        assert published is (key not in self.entries)
        if published:
            self.entries[key] = ModelEntry(files, run_seconds)
            # Every store rewrites a blob of the wrong size (damage that changed the size:
            # only an empty blob's, here); damage of the same size goes unseen until read.
            if any(data == b"" for data in files.values()):
                self.damaged.discard(sha(b""))
        shutil.rmtree(source)
        return key

    @rule(key=keys)
    def fetch(self, key: str) -> None:
        destination = self.fresh_path("fetched")
        if self.is_damaged(key):
            with pytest.raises(CorruptEntry):
                self.store.fetch(key, destination)
            assert not [name for name in os.listdir(self.scratch) if "fetched" in name]
            return
        manifest = self.store.fetch(key, destination)
        assert manifest.key == key
        written = {
            path.relative_to(destination).as_posix(): path.read_bytes()
            for path in destination.rglob("*")
            if path.is_file()
        }
        assert written == self.entries[key].files
        shutil.rmtree(destination)

    @rule(number=st.integers(31, 60))
    def fetch_unknown(self, number: int) -> None:
        key, _ = key_of(number)
        destination = self.fresh_path("fetched")
        with pytest.raises(EntryNotFound):
            self.store.fetch(key, destination)
        assert not destination.exists()

    @rule(key=keys)
    def read_manifest(self, key: str) -> None:
        manifest = self.store.read_manifest(key)
        entry = self.entries[key]
        assert {item.path: item.sha256 for item in manifest.files} == {
            path: sha(data) for path, data in entry.files.items()
        }
        assert manifest.run_seconds == entry.run_seconds

    @rule(keys=st.lists(keys, max_size=5), others=st.lists(st.integers(31, 60), max_size=3))
    def snapshot(self, keys: list[str], others: list[int]) -> None:
        wanted = keys + [key_of(number)[0] for number in others]
        listing = self.store.snapshot(wanted)
        assert len({item.key for item in listing}) == len(listing)
        expected = {}
        for key in dict.fromkeys(wanted):
            entry = self.entries.get(key)
            fingerprints = {fp for (k, fp) in self.evaluations if k == key}
            if entry is None and not fingerprints:
                continue
            present = entry is not None
            expected[key] = SnapshotEntry(
                key=key,
                in_local=present and self.store.tier == "local",
                in_cloud=present and self.store.tier == "cloud",
                size=None if entry is None else sum(map(len, entry.files.values())),
                run_seconds=None if entry is None else entry.run_seconds,
                evaluations=fingerprints,
            )
        assert {item.key: item for item in listing} == expected

    @rule(
        key=keys | st.integers(31, 60).map(lambda number: key_of(number)[0]),
        fingerprint=st.sampled_from(FINGERPRINTS),
        result=results,
    )
    def write_evaluation(self, key: str, fingerprint: str, result: dict[str, Any]) -> None:
        self.store.write_evaluation(key, fingerprint, result)
        self.evaluations.setdefault((key, fingerprint), json.loads(canonical_json(result)))

    @rule(
        key=keys | st.integers(31, 60).map(lambda number: key_of(number)[0]),
        fingerprint=st.sampled_from(FINGERPRINTS),
    )
    def read_evaluation(self, key: str, fingerprint: str) -> None:
        expected = self.evaluations.get((key, fingerprint))
        if expected is None:
            with pytest.raises(EntryNotFound):
                self.store.read_evaluation(key, fingerprint)
        else:
            assert dict(self.store.read_evaluation(key, fingerprint)) == expected

    @precondition(lambda self: any(entry.files for entry in self.entries.values()))
    @rule(data=st.data())
    def damage_a_blob(self, data: st.DataObject) -> None:
        content = data.draw(st.sampled_from(self.known_contents()))
        name = blob_name(sha(content))
        assert self.subject.get_object(name) is not None
        # Derived from the true content, so damaging a blob twice leaves it damaged.
        damaged = bytes([content[0] ^ 1]) + content[1:] if content else b"\0"
        self.subject.put_object(name, damaged)
        self.damaged.add(sha(content))

    @rule(key=consumes(keys))
    def forget_a_key(self, key: str) -> None:
        """Keep the bundle small, so that rules often meet the same keys again."""


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
def test_store_agrees_with_the_model(name: str, factory: Callable[[Path], Subject]) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(factory), settings=settings(stateful_step_count=30)
    )


# ---------------------------------------------------------------------------------------------
# Hostile manifests

KEY, KEY_INPUTS = key_of(7)
BLOB = b"payload"


def manifest_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "modelcache-manifest/1",
        "key": KEY,
        "model_type": "onnx",
        "files": [{"path": "model.onnx", "size": len(BLOB), "sha256": sha(BLOB)}],
        "key_inputs": KEY_INPUTS,
        "producer": "hostile",
        "run_seconds": 1.0,
        "created": "",
    }
    document.update(changes)
    return document


def files_at(path: str, size: int = len(BLOB), digest: str = sha(BLOB)) -> list[dict[str, Any]]:
    return [{"path": path, "size": size, "sha256": digest}]


def everything_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*")}


def plant_and_fetch(subject: Subject, scratch: Path, data: bytes) -> Path:
    """Plant ``data`` as the manifest of KEY and fetch it into scratch/sandbox/work/dest."""
    subject.put_object(blob_name(sha(BLOB)), BLOB)
    subject.put_object(manifest_name(KEY), data)
    sandbox = scratch / "sandbox"
    (sandbox / "work").mkdir(parents=True, exist_ok=True)
    destination = sandbox / "work" / "dest"
    subject.store.fetch(KEY, destination)
    return destination


def assert_refused_cleanly(subject: Subject, scratch: Path, data: bytes) -> None:
    with pytest.raises(CorruptEntry):  # InvalidManifest is a CorruptEntry
        plant_and_fetch(subject, scratch, data)
    assert everything_under(scratch / "sandbox") == {"work"}


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


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
@pytest.mark.parametrize("path", HOSTILE_PATHS, ids=repr)
def test_a_manifest_with_an_unsafe_path_is_refused(
    name: str, factory: Callable[[Path], Subject], path: str, scratch: Path
) -> None:
    data = json.dumps(manifest_document(files=files_at(path))).encode()
    with pytest.raises(InvalidManifest):
        plant_and_fetch(factory(scratch), scratch, data)
    assert everything_under(scratch / "sandbox") == {"work"}


HOSTILE_DOCUMENTS = {
    "size-beyond-limit": manifest_document(files=files_at("m", size=MAX_FILE_SIZE + 1)),
    "negative-size": manifest_document(files=files_at("m", size=-1)),
    "size-as-text": manifest_document(files=files_at("m", size="7")),
    "size-as-bool": manifest_document(files=files_at("m", size=True)),
    "size-as-float": manifest_document(files=files_at("m", size=7.0)),
    "short-digest": manifest_document(files=files_at("m", digest="ab")),
    "upper-case-digest": manifest_document(files=files_at("m", digest=sha(BLOB).upper())),
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


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
@pytest.mark.parametrize(
    "data",
    [
        *(json.dumps(document).encode() for document in HOSTILE_DOCUMENTS.values()),
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"",
        json.dumps(manifest_document()).replace("1.0", "NaN").encode(),
    ],
    ids=[*HOSTILE_DOCUMENTS, "not-json", "not-utf8", "array", "empty", "nan-run-time"],
)
def test_a_malformed_manifest_is_refused(
    name: str, factory: Callable[[Path], Subject], data: bytes, scratch: Path
) -> None:
    subject = factory(scratch)
    with pytest.raises(InvalidManifest):
        plant_and_fetch(subject, scratch, data)
    assert everything_under(scratch / "sandbox") == {"work"}
    assert subject.store.snapshot([KEY]) == []


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
@pytest.mark.parametrize(
    "size", [len(BLOB) - 1, len(BLOB) + 1, 10**12, MAX_FILE_SIZE], ids=lambda size: f"size={size}"
)
def test_a_manifest_whose_size_disagrees_with_the_blob_is_corrupt(
    name: str, factory: Callable[[Path], Subject], size: int, scratch: Path
) -> None:
    data = json.dumps(manifest_document(files=files_at("m", size=size))).encode()
    assert_refused_cleanly(factory(scratch), scratch, data)


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
@given(
    path=st.text(alphabet="a./\\:C\0 ", max_size=12)
    | st.lists(st.sampled_from(["a", "..", ".", "", "C:", "b\\.."]), max_size=5).map("/".join)
)
def test_any_path_is_either_refused_or_written_inside_the_destination(
    name: str, factory: Callable[[Path], Subject], path: str
) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="modelcache-fuzz-"))
    try:
        subject = factory(scratch)
        data = json.dumps(manifest_document(files=files_at(path))).encode()
        try:
            check_relative_path(path)
        except InvalidManifest:
            safe = False
        else:
            safe = True
        if not safe:
            with pytest.raises(InvalidManifest):
                plant_and_fetch(subject, scratch, data)
            assert everything_under(scratch / "sandbox") == {"work"}
            return
        destination = plant_and_fetch(subject, scratch, data)
        written = destination.joinpath(*path.split("/"))
        assert written.read_bytes() == BLOB
        assert written.resolve().is_relative_to(destination.resolve())
        assert {item for item in everything_under(scratch / "sandbox") if "dest" not in item} == {
            "work"
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Fuzzed manifests: whatever a manifest says, a fetch writes only inside its destination.

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
_DIGEST = st.one_of(st.just(sha(BLOB)), st.just(sha(BLOB).upper()), st.text(max_size=70))
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


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
def test_a_fuzzed_manifest_never_writes_outside_the_destination(
    name: str, factory: Callable[[Path], Subject], scratch: Path
) -> None:
    subject = factory(scratch)

    def outside() -> set[str]:
        """What is in scratch beside the sandbox and the local store's directory."""
        return {p for p in everything_under(scratch) if p.split("/")[0] not in ("sandbox", "store")}

    outside_before = outside()
    tried = {"refused": 0, "fetched": 0}

    @settings(max_examples=25 if name == "azure" else 150, deadline=None)
    @given(data=hostile_manifests())
    def check(data: bytes) -> None:
        shutil.rmtree(scratch / "sandbox", ignore_errors=True)
        try:
            destination = plant_and_fetch(subject, scratch, data)
        except CorruptEntry:  # InvalidManifest is a CorruptEntry
            tried["refused"] += 1
            assert everything_under(scratch / "sandbox") == {"work"}
        else:
            tried["fetched"] += 1
            written = everything_under(scratch / "sandbox") - {"work", "work/dest"}
            assert all(path.startswith("work/dest/") for path in written)
            for path in destination.rglob("*"):
                assert not path.is_symlink()
                assert path.resolve().is_relative_to(destination.resolve())
        assert outside() == outside_before

    try:
        check()
    finally:
        subject.close()
    assert tried["refused"] > 0


# ---------------------------------------------------------------------------------------------
# Transfer progress: what the runner's progress bars are drawn from.


@pytest.mark.parametrize(("name", "factory"), STORE_FACTORIES, ids=[f[0] for f in STORE_FACTORIES])
def test_progress_counts_every_byte_moved_and_no_more(
    name: str, factory: Callable[[Path], Subject], scratch: Path
) -> None:
    subject = factory(scratch)
    try:
        big = os.urandom(9 << 20)  # several blocks for the Azure store
        files = {"weights.bin": big, "config.json": b"{}", "shared.txt": b"tokenizer"}
        source = scratch / "source"
        source.mkdir()
        for path, data in files.items():
            (source / path).write_bytes(data)
        key, inputs = key_of(900)
        manifest = build_manifest(
            key=key,
            key_inputs=inputs,
            model_type="hf",
            directory=source,
            run_seconds=None,
            created="",
            producer="contract",
        )
        sent: list[int] = []
        assert subject.store.publish(source, manifest, progress=sent.append)
        assert sum(sent) == sum(map(len, files.values()))
        assert len(sent) > 1  # reported as it goes, not once at the end

        received: list[int] = []
        subject.store.fetch(key, scratch / "fetched", progress=received.append)
        assert sum(received) == manifest.size

        other_key, other_inputs = key_of(901)
        (source / "weights.bin").write_bytes(b"changed")
        other = build_manifest(
            key=other_key,
            key_inputs=other_inputs,
            model_type="hf",
            directory=source,
            run_seconds=None,
            created="",
            producer="contract",
        )
        resent: list[int] = []
        assert subject.store.publish(source, other, progress=resent.append)
        assert sum(resent) == len(b"changed")  # stored blobs are not sent, nor counted
    finally:
        subject.close()
