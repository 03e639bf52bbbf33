"""Input models that are not Hugging Face folders: Olive's ``PyTorchModel``, a model file
or folder loaded by the user's own code, and Olive's ``OnnxModel``, an ONNX file read where
it lies.

Olive loads a ``PyTorchModel`` by calling ``model_loader`` (a function of ``model_script``,
with ``script_dir`` on the import path) on ``model_path``, or on nothing when the loader
builds the model itself. Every one of those may change the model, so its identity is the
digest of all of them: the model's bytes and the script's and script folder's content
(:func:`resolve_pytorch_model`), and, without a ``model_path``, the loader's name. The
loading settings themselves (the loader's name, ``io_config``, ``dummy_inputs_func``) are
keyed by the passes that read the model, as every input model's settings are.

An ``OnnxModel`` is found as Olive's ``ONNXModelHandler`` finds it: ``model_path`` is the
``.onnx`` file, or a folder holding it (named by ``onnx_file_name``, else the folder's one
``.onnx`` file). Its identity (:func:`resolve_onnx_model`) is the digest of the file and of
every external-data file its graph names, or of the whole folder, as a local folder's is,
and of the handler settings a pass may read (``inference_settings``,
``use_ort_extensions``, ``model_attributes``): they ride with the model into every key
after it. The first pass reads the file itself (:func:`~.models.onnx_graph`).

An ``OpenVINOModel`` is a folder holding one OpenVINO IR pair (:func:`resolve_openvino_model`),
identified by its files' digest and its ``model_attributes``; the first pass reads it where
it lies (an OpenVINO pass that writes into its input's folder is given a copy).

A file the config names that is not there is :class:`~.models.ModelAbsent`: an example's
own script often makes it first, so a plan still shows the passes that would run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import LocalModel

from .digests import DigestCache
from .models import ModelAbsent, ModelNotFound, ResolvedModel, openvino_ir

__all__ = ["ONNX_KEYED", "PYTORCH_FILES", "path_digest", "resolve_onnx_model",
           "resolve_openvino_model", "resolve_pytorch_model"]  # fmt: skip

#: The settings of a ``PyTorchModel`` that name files whose content is part of the model.
PYTORCH_FILES = ("model_script", "script_dir")
#: The settings of an ``OnnxModel`` that Olive's passes may read from its handler: part of
#: its identity, so of every key after it.
ONNX_KEYED = ("inference_settings", "use_ort_extensions", "model_attributes")
_FORMAT = "modelcache-pytorch-input/1"
_ONNX_FORMAT = "modelcache-onnx-input/1"
_OPENVINO_FORMAT = "modelcache-openvino-input/1"
_CHUNK = 1 << 20


def path_digest(path: Path, digests: DigestCache | None = None) -> str | None:
    """``sha256:<hex>`` of a file's bytes, or ``sha256-tree:<hex>`` of a folder's files
    (:func:`~modelcache.runner.digests.model_digest`, remembered by ``digests``); ``None``
    if nothing is there (the caller says which path is missing)."""
    if path.is_dir():
        digests = DigestCache.default() if digests is None else digests
        return f"sha256-tree:{digests.digest(path)}"
    if not path.is_file():
        return None
    digests = DigestCache.default() if digests is None else digests
    return f"sha256:{digests.file_digest(path)}"


def resolve_pytorch_model(
    model_path: str | None,
    settings: Mapping[str, Any],
    *,
    base_dir: Path,
    digests: DigestCache | None = None,
) -> ResolvedModel:
    """The ``PyTorchModel`` input at ``model_path`` (a file or folder, relative to
    ``base_dir``) loaded with ``settings``; with no ``model_path``, the model
    ``model_loader`` builds from nothing, found at its ``model_script``.
    :class:`ModelAbsent` names the first path that is not there."""
    named = _named(settings, base_dir)
    parts: dict[str, str | None] = {}
    if model_path is None:
        # Olive calls the loader with no path: its name and that argument are the model.
        parts.update(model_loader=str(settings.get("model_loader")), model_path=None)
        local = dict(named)["model_script"]  # the config requires it (``_input``)
    else:
        local = _local(model_path, base_dir)
        named.insert(0, ("model_path", local))
    for name, path in named:
        found = path_digest(path, digests)
        if found is None:
            raise ModelAbsent(f"{name} {path} does not exist{_MAKE_IT}")
        parts[name] = found
    return ResolvedModel(path=local.resolve(), identity=_identity(_FORMAT, parts),
                         model_type="pytorch")  # fmt: skip


def resolve_onnx_model(
    model_path: str,
    settings: Mapping[str, Any],
    *,
    base_dir: Path,
    digests: DigestCache | None = None,
) -> ResolvedModel:
    """The ``OnnxModel`` input at ``model_path`` (relative to ``base_dir``), found as Olive
    finds it; its ``path`` is the graph file. :class:`ModelAbsent` if nothing is there,
    :class:`ModelNotFound` if no one ONNX file is, or its graph names external data that
    is not beside it."""
    local = _existing(model_path, base_dir)
    graph = _graph_file(local, settings.get("onnx_file_name"))
    parts: dict[str, Any] = {}
    if local.is_dir():
        parts["model_path"] = path_digest(local, digests)
        parts["onnx_file_name"] = graph.relative_to(local).as_posix()
    else:
        digests = DigestCache.default() if digests is None else digests
        found = path_digest(graph, digests)
        assert found is not None  # _graph_file found the file
        parts["model_path"] = found
        parts["external_data"] = {
            location: path_digest(graph.parent / location, digests)
            for location in _external_files(graph, found, digests)
        }
    parts["settings"] = {k: settings[k] for k in ONNX_KEYED if settings.get(k) is not None}
    return ResolvedModel(path=graph.resolve(), identity=_identity(_ONNX_FORMAT, parts),
                         model_type="onnx")  # fmt: skip


def resolve_openvino_model(
    model_path: str,
    settings: Mapping[str, Any],
    *,
    base_dir: Path,
    digests: DigestCache | None = None,
) -> ResolvedModel:
    """The ``OpenVINOModel`` input at ``model_path`` (relative to ``base_dir``): a folder
    holding one OpenVINO IR pair, as Olive's ``OpenVINOModelHandler`` takes it. Its identity
    is the digest of the folder's files and its ``model_attributes``. :class:`ModelAbsent`
    if nothing is there, :class:`ModelNotFound` if it is not such a folder."""
    local = _existing(model_path, base_dir)
    pairs = openvino_ir(local) if local.is_dir() else []
    if len(pairs) != 1:
        found = ", ".join(pair.name for pair in pairs) or "none"
        raise ModelNotFound(
            f"model_path {local} is not an OpenVINO model: a folder holding one <name>.xml "
            f"beside its <name>.bin (found: {found})"
        )
    parts = {
        "model_path": path_digest(local, digests),
        "settings": {k: v for k, v in settings.items() if v is not None},
    }
    return ResolvedModel(path=local.resolve(), identity=_identity(_OPENVINO_FORMAT, parts),
                         model_type="openvino")  # fmt: skip


_MAKE_IT = "; make it first (an example's own script may) or correct the path"


def _identity(format_: str, parts: Mapping[str, Any]) -> LocalModel:
    document = json.dumps({"format": format_, **parts}, sort_keys=True)
    return LocalModel(digest=hashlib.sha256(document.encode("utf-8")).hexdigest())


def _graph_file(local: Path, onnx_file_name: Any) -> Path:
    """Olive's ``get_onnx_file_path``: the file itself, the folder's ``onnx_file_name``, or
    the folder's one ``.onnx`` file."""
    if local.is_file():
        return local
    if isinstance(onnx_file_name, str):
        graph = local / onnx_file_name
        if not graph.is_file():
            raise ModelAbsent(f"onnx_file_name: {graph} does not exist{_MAKE_IT}")
        return graph
    found = sorted(local.glob("*.onnx"))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise ModelNotFound(
            f"model_path {local} is a folder holding {len(found)} .onnx files ({names}); "
            "name the graph with onnx_file_name, as Olive asks"
        )
    return found[0]


def _external_files(graph: Path, digest: str, digests: DigestCache) -> list[str]:
    """The external-data files ``graph`` (whose bytes hash to ``digest``) names, sorted, each
    checked to be beside it. Reading them needs ``onnx`` (over a second to import), so they
    are remembered by the graph's digest, which they follow from."""
    fact = f"onnx-external-{digest.removeprefix('sha256:')}"
    remembered = digests.recall(fact)
    if isinstance(remembered, list) and all(isinstance(item, str) for item in remembered):
        for location in remembered:
            if not (graph.parent / location).is_file():
                raise ModelNotFound(
                    f"model_path {graph}: its external data {location!r} is not beside it"
                )
        return remembered
    locations = sorted(set(_external_data(graph)))
    digests.remember(fact, locations)
    return locations


def _external_data(graph: Path) -> Iterator[str]:
    """The external-data files ``graph`` names, each checked to be beside it."""
    import onnx
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    try:
        model = onnx.load_model(str(graph), load_external_data=False)
    except (DecodeError, OSError, ValueError) as error:
        raise ModelNotFound(f"model_path {graph} is not an ONNX model ({error})") from None
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        path = Path(location)
        if not location or path.is_absolute() or ".." in path.parts:
            raise ModelNotFound(
                f"model_path {graph}: tensor {tensor.name!r} names external data "
                f"{location!r}, which is not a file beside the graph"
            )
        if not (graph.parent / path).is_file():
            raise ModelNotFound(
                f"model_path {graph}: its external data {location!r} is not beside it"
            )
        yield path.as_posix()


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of ``graph`` and its subgraphs: initializers and attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _named(settings: Mapping[str, Any], base_dir: Path) -> list[tuple[str, Path]]:
    return [
        (name, _local(settings[name], base_dir))
        for name in PYTORCH_FILES
        if isinstance(settings.get(name), str)
    ]


def _existing(model_path: str, base_dir: Path) -> Path:
    """``model_path`` made absolute against ``base_dir``; :class:`ModelAbsent` if nothing is
    there."""
    local = _local(model_path, base_dir)
    if not local.exists():
        raise ModelAbsent(f"model_path {local} does not exist{_MAKE_IT}")
    return local


def _local(written: str, base_dir: Path) -> Path:
    path = Path(written).expanduser()
    return path if path.is_absolute() else base_dir / path
