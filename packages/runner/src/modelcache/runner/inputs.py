"""Input models that are not Hugging Face folders: Olive's ``PyTorchModel``, a model file
or folder loaded by the user's own code.

Olive loads such a model by calling ``model_loader`` (a function of ``model_script``, with
``script_dir`` on the import path) on ``model_path``. Every one of those may change the
model, so its identity is the digest of all of them: the model's bytes and the script's
and script folder's content (:func:`resolve_pytorch_model`). The loading settings
themselves (the loader's name, ``io_config``, ``dummy_inputs_func``) are keyed by the passes
that read the model, as every input model's settings are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import LocalModel

from .models import DigestCache, ModelNotFound, ResolvedModel

__all__ = ["PYTORCH_FILES", "path_digest", "resolve_pytorch_model"]

#: The settings of a ``PyTorchModel`` that name files whose content is part of the model.
PYTORCH_FILES = ("model_script", "script_dir")
_FORMAT = "modelcache-pytorch-input/1"
_CHUNK = 1 << 20


def path_digest(path: Path, digests: DigestCache | None = None) -> str | None:
    """``sha256:<hex>`` of a file's bytes, or ``sha256-tree:<hex>`` of a folder's files
    (:func:`~modelcache.runner.models.model_digest`, remembered by ``digests``); ``None``
    if nothing is there (the caller says which path is missing)."""
    if path.is_dir():
        digests = DigestCache.default() if digests is None else digests
        return f"sha256-tree:{digests.digest(path)}"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def resolve_pytorch_model(
    model_path: str,
    settings: Mapping[str, Any],
    *,
    base_dir: Path,
    digests: DigestCache | None = None,
) -> ResolvedModel:
    """The ``PyTorchModel`` input at ``model_path`` (a file or folder, relative to
    ``base_dir``) loaded with ``settings``; :class:`ModelNotFound` naming the first path
    that is not there."""
    parts: dict[str, str] = {}
    local = _local(model_path, base_dir)
    for name, path in (("model_path", local), *_named(settings, base_dir)):
        found = path_digest(path, digests)
        if found is None:
            raise ModelNotFound(f"{name} {path} does not exist")
        parts[name] = found
    document = json.dumps({"format": _FORMAT, **parts}, sort_keys=True)
    identity = LocalModel(digest=hashlib.sha256(document.encode("utf-8")).hexdigest())
    return ResolvedModel(path=local.resolve(), identity=identity, model_type="pytorch")


def _named(settings: Mapping[str, Any], base_dir: Path) -> list[tuple[str, Path]]:
    return [
        (name, _local(settings[name], base_dir))
        for name in PYTORCH_FILES
        if isinstance(settings.get(name), str)
    ]


def _local(written: str, base_dir: Path) -> Path:
    path = Path(written).expanduser()
    return path if path.is_absolute() else base_dir / path
