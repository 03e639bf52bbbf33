import errno
import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import HubModel, PassSpec, canonical_json, key_document, pass_key
from modelcache.store import (
    CHUNK_SIZE,
    CorruptEntry,
    InvalidManifest,
    Manifest,
    ManifestFile,
    ModelDirectoryError,
    _transfer,
    build_manifest,
    describe_directory,
    evaluation_bytes,
    hash_file,
    manifest_bytes,
    parse_evaluation,
    source_chunks,
    write_entry,
)

KEY_INPUTS = {"schema": "modelcache-key/1", "input": "test", "pass": {"type": "Copy"}}
KEY = hashlib.sha256(canonical_json(KEY_INPUTS).encode()).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_model(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def manifest_of(directory: Path) -> Manifest:
    return build_manifest(
        key=KEY,
        key_inputs=KEY_INPUTS,
        model_type="onnx",
        directory=directory,
        run_seconds=2.5,
        created="2026-01-01T00:00:00Z",
        producer="modelcache-test",
    )


def test_hash_file_streams_a_multi_chunk_file_to_the_same_digest(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 17)
    (tmp_path / "big").write_bytes(data)
    assert hash_file(tmp_path / "big") == (len(data), sha(data))


@pytest.mark.parametrize("extra", [-1, 0, CHUNK_SIZE + 3])
def test_hash_file_reads_a_large_file_ahead_to_the_same_digest(tmp_path: Path, extra: int) -> None:
    data = os.urandom(_transfer.READ_AHEAD_FROM + extra)  # around where reading ahead starts
    (tmp_path / "large").write_bytes(data)
    assert hash_file(tmp_path / "large") == (len(data), sha(data))
    assert not _readers_left()


def _readers_left() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name == "modelcache-read-ahead"]


def test_a_read_failing_ahead_of_the_hashing_is_raised_and_its_thread_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "large").write_bytes(os.urandom(_transfer.READ_AHEAD_FROM))
    reads = itertools.count()
    real = _transfer._read_full

    def failing(stream: Any, size: int) -> bytes:
        if next(reads) == 5:
            raise OSError(errno.EIO, "Input/output error")
        return real(stream, size)

    monkeypatch.setattr(_transfer, "_read_full", failing)
    with pytest.raises(OSError, match="Input/output error"):
        hash_file(tmp_path / "large")
    assert not _readers_left()


def test_reading_ahead_stops_when_its_reader_stops_early(tmp_path: Path) -> None:
    data = os.urandom(_transfer.READ_AHEAD_FROM)
    (tmp_path / "large").write_bytes(data)
    chunks = _transfer.read_ahead(_transfer._file_chunks(tmp_path / "large"))
    assert next(chunks) == data[:CHUNK_SIZE]
    chunks.close()  # with chunks still to read and the queue full
    assert not _readers_left()


def test_hash_file_of_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty") == (0, sha(b""))


def test_hash_file_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ModelDirectoryError, match="symbolic link"):
        hash_file(tmp_path / "link")


def test_hash_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ModelDirectoryError, match="not a regular file"):
        hash_file(tmp_path / "pipe")


def test_describe_directory_lists_nested_files_by_relative_posix_path(tmp_path: Path) -> None:
    files = {"model.onnx": b"weights", "tokenizer/vocab.txt": b"a\nb\n", "z/y/x.bin": b""}
    make_model(tmp_path, files)
    (tmp_path / "empty-folder").mkdir()
    described = describe_directory(tmp_path)
    assert described == tuple(
        ManifestFile(path=name, size=len(data), sha256=sha(data))
        for name, data in sorted(files.items())
    )


def test_describe_directory_accepts_a_root_reached_through_a_symlink(tmp_path: Path) -> None:
    make_model(tmp_path / "real", {"a": b"1"})
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert [item.path for item in describe_directory(tmp_path / "alias")] == ["a"]


@pytest.mark.parametrize("target_is_dir", [False, True])
def test_describe_directory_refuses_a_symlink_inside(tmp_path: Path, target_is_dir: bool) -> None:
    make_model(tmp_path / "model", {"a": b"1"})
    outside = tmp_path / "outside"
    if target_is_dir:
        outside.mkdir()
    else:
        outside.write_bytes(b"secret")
    (tmp_path / "model" / "sub").mkdir()
    (tmp_path / "model" / "sub" / "link").symlink_to(outside)
    with pytest.raises(ModelDirectoryError, match="symbolic link") as caught:
        describe_directory(tmp_path / "model")
    assert caught.value.path == tmp_path / "model" / "sub" / "link"
    assert str(caught.value).startswith(str(tmp_path / "model" / "sub" / "link"))


def test_describe_directory_refuses_a_special_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ModelDirectoryError, match="not a regular file"):
        describe_directory(tmp_path)


def test_describe_directory_refuses_a_name_a_manifest_cannot_carry(tmp_path: Path) -> None:
    (tmp_path / "back\\slash").write_bytes(b"")
    with pytest.raises(ModelDirectoryError, match="backslash"):
        describe_directory(tmp_path)


def test_describe_directory_refuses_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"\xff.bin"), "wb"):
        pass
    with pytest.raises(ModelDirectoryError, match="UTF-8"):
        describe_directory(tmp_path)


def test_describe_directory_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(ModelDirectoryError, match="not a directory"):
        describe_directory(tmp_path / "f")


def test_build_manifest_round_trips_through_its_stored_form(tmp_path: Path) -> None:
    manifest = manifest_of(make_model(tmp_path, {"a/b": b"1", "c": b"22"}))
    assert manifest.size == 3
    assert Manifest.from_json(manifest_bytes(manifest), key=KEY) == manifest


def test_build_manifest_refuses_a_key_that_is_not_the_hash_of_its_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not the SHA-256"):
        build_manifest(
            key="0" * 64,
            key_inputs=KEY_INPUTS,
            model_type="onnx",
            directory=tmp_path,
            run_seconds=None,
            created="",
            producer="t",
        )


def test_build_manifest_refuses_what_a_reader_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(InvalidManifest, match="run_seconds"):
        build_manifest(
            key=KEY,
            key_inputs=KEY_INPUTS,
            model_type="onnx",
            directory=tmp_path,
            run_seconds=-1.0,
            created="",
            producer="t",
        )


def test_source_chunks_yields_bounded_chunks_of_the_file(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE * 2 + 1)
    make_model(tmp_path, {"w.bin": data})
    item = ManifestFile(path="w.bin", size=len(data), sha256=sha(data))
    chunks = list(source_chunks(tmp_path, item))
    assert max(len(chunk) for chunk in chunks) <= CHUNK_SIZE
    assert b"".join(chunks) == data


def test_source_chunks_fails_when_the_file_changed_after_the_manifest(tmp_path: Path) -> None:
    make_model(tmp_path, {"w.bin": b"before"})
    item = ManifestFile(path="w.bin", size=6, sha256=sha(b"before"))
    (tmp_path / "w.bin").write_bytes(b"after!")
    with pytest.raises(CorruptEntry, match="changed"):
        list(source_chunks(tmp_path, item))


def test_source_chunks_stops_reading_a_file_that_grew(tmp_path: Path) -> None:
    make_model(tmp_path, {"w.bin": b"abcd" * 100})
    item = ManifestFile(path="w.bin", size=4, sha256=sha(b"abcd"))
    chunks = source_chunks(tmp_path, item, chunk_size=4)
    assert next(chunks) == b"abcd"
    with pytest.raises(CorruptEntry):
        next(chunks)


def test_source_chunks_reports_a_missing_file_as_corrupt(tmp_path: Path) -> None:
    item = ManifestFile(path="gone", size=0, sha256=sha(b""))
    with pytest.raises(CorruptEntry, match="missing"):
        list(source_chunks(tmp_path, item))


def test_source_chunks_refuses_a_file_replaced_by_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"x")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "a").symlink_to(tmp_path / "outside")
    with pytest.raises(ModelDirectoryError, match="symbolic link"):
        list(source_chunks(tmp_path / "model", ManifestFile(path="a", size=1, sha256=sha(b"x"))))


def blobs_of(files: dict[str, bytes]):
    by_sha = {sha(data): data for data in files.values()}

    def chunks(digest: str) -> Iterator[bytes]:
        yield by_sha[digest]

    return chunks


def test_write_entry_writes_every_file_into_a_new_directory(tmp_path: Path) -> None:
    files = {"a": b"1", "deep/er/b": b"22", "same": b"1"}
    manifest = manifest_of(make_model(tmp_path / "src", files))
    write_entry(tmp_path / "out" / "dest", manifest, blobs_of(files))
    written = {
        path.relative_to(tmp_path / "out" / "dest").as_posix(): path.read_bytes()
        for path in (tmp_path / "out" / "dest").rglob("*")
        if path.is_file()
    }
    assert written == files
    assert os.listdir(tmp_path / "out") == ["dest"]


def test_write_entry_refuses_an_existing_destination_even_a_dangling_link(tmp_path: Path) -> None:
    manifest = manifest_of(make_model(tmp_path / "src", {"a": b"1"}))
    (tmp_path / "dest").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        write_entry(tmp_path / "dest", manifest, blobs_of({"a": b"1"}))
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize(
    "served",
    [b"2", b"", b"11", b"1" * 10],
    ids=["other-bytes", "shorter", "longer", "much-longer"],
)
def test_write_entry_leaves_nothing_when_a_blob_does_not_match(
    tmp_path: Path, served: bytes
) -> None:
    manifest = manifest_of(make_model(tmp_path / "src", {"a": b"1", "b/c": b"ok"}))

    def chunks(digest: str) -> Iterator[bytes]:
        yield b"ok" if digest == sha(b"ok") else served

    (tmp_path / "out").mkdir()
    with pytest.raises(CorruptEntry):
        write_entry(tmp_path / "out" / "dest", manifest, chunks)
    assert os.listdir(tmp_path / "out") == []


def test_write_entry_stops_reading_an_endless_blob(tmp_path: Path) -> None:
    manifest = manifest_of(make_model(tmp_path / "src", {"a": b"x" * 10}))
    closed: list[bool] = []

    def endless(_digest: str) -> Iterator[bytes]:
        try:
            yield from itertools.repeat(b"x" * 4)
        finally:
            closed.append(True)

    with pytest.raises(CorruptEntry, match="longer"):
        write_entry(tmp_path / "dest", manifest, endless)
    assert closed == [True]
    assert not (tmp_path / "dest").exists()


def test_write_entry_reports_a_path_this_system_cannot_name_as_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Names too long for any file system are refused with the manifest already; this is a
    # file system that refuses a name others accept (EILSEQ: not in its character set).
    name = "n\u00e9"
    manifest = Manifest(
        key=KEY,
        model_type="onnx",
        files=[ManifestFile(path=name, size=1, sha256=sha(b"1"))],
        key_inputs=KEY_INPUTS,
        producer="t",
    )
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any, **options: Any) -> int:
        if Path(path).name == name:
            raise OSError(errno.EILSEQ, "Invalid or incomplete multibyte character", path)
        return real_open(path, flags, *args, **options)

    monkeypatch.setattr(_transfer.os, "open", refusing)
    (tmp_path / "out").mkdir()
    with pytest.raises(CorruptEntry, match="cannot be created"):
        write_entry(tmp_path / "out" / "dest", manifest, blobs_of({name: b"1"}))
    assert os.listdir(tmp_path / "out") == []


def test_evaluation_results_round_trip_as_canonical_json() -> None:
    data = evaluation_bytes({"b": 1, "a": [0.5, None, "x"]})
    assert data == b'{"a":[0.5,null,"x"],"b":1}'
    assert parse_evaluation(data) == {"a": [0.5, None, "x"], "b": 1}


@pytest.mark.parametrize("result", [{"x": float("nan")}, {1: 2}, [1, 2]])
def test_evaluation_bytes_refuses_what_is_not_a_json_object(result) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - InvalidConfig or ValueError, both ValueError
        evaluation_bytes(result)


@pytest.mark.parametrize("data", [b"[1]", b'{"x": NaN}', b"\xff", b"{"])
def test_parse_evaluation_refuses_what_is_not_a_json_object(data: bytes) -> None:
    with pytest.raises(CorruptEntry):
        parse_evaluation(data)


def test_the_manifest_documented_in_the_storage_layout_is_what_build_manifest_writes(
    tmp_path: Path,
) -> None:
    model = HubModel(
        repo_id="sentence-transformers/all-MiniLM-L6-v2",
        revision="c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
    )
    spec = PassSpec(
        name="convert",
        type="OnnxConversion",
        version="1",
        config={"opset": 17},
        packages={"torch": "2.13.0", "onnx": "1.17.0"},
    )
    source = make_model(
        tmp_path,
        {
            "model.onnx": b"\x08\x07" * 1000,
            "config.json": b'{"hidden_size": 384}\n',
            "tokenizer/vocab.txt": b"[PAD]\n[UNK]\n",
        },
    )
    manifest = build_manifest(
        key=pass_key(model, spec),
        key_inputs=key_document(model, spec),
        model_type="onnx",
        directory=source,
        run_seconds=12.5,
        created="2026-11-25T09:00:00Z",
        producer="modelcache-runner 0.1.0",
    )
    document = (Path(__file__).parents[3] / "docs" / "storage-layout.md").read_text()
    example = document.split("<!-- example-manifest -->\n```json\n", 1)[1].split("\n```", 1)[0]
    assert manifest.to_json().decode() == example
