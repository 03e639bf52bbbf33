"""Olive's pass library as data: which pass types exist, where each lives and what it needs,
read from the ``olive_config.json`` olive-ai ships, without importing Olive.

Importing ``olive`` costs seconds (its package imports its command line, which imports
torch), so listing and looking up types reads the installed package's data file instead;
only validating or running a pass imports Olive, and only the module of that pass.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from .._distributions import version as installed_version

__all__ = ["DISTRIBUTION", "INPUT_CHOSEN_BY", "OlivePassInfo", "olive_passes", "olive_version"]

#: The distribution Olive's pass library comes from.
DISTRIBUTION = "olive-ai"

#: Olive's passes that read a Hugging Face (or PyTorch) model and write an ONNX model; every
#: other pass of ``olive.passes.onnx`` reads and writes ONNX, and every pass of
#: ``olive.passes.pytorch`` reads and writes a Hugging Face model.
_TO_ONNX = frozenset({"OnnxConversion", "ModelBuilder", "MobiusBuilder", "OptimumConversion"})
#: Those of them that take other models too: ``OnnxConversion`` converts a PyTorch model
#: loaded by the user's code; ``ModelBuilder`` with ``metadata_only`` reads an ONNX model.
_FROM = {
    "OnnxConversion": frozenset({"hf", "pytorch"}),
    "ModelBuilder": frozenset({"hf", "onnx"}),
}
#: Passes whose parameter chooses the one model type they take: (pass) -> (the parameter,
#: the type taken when it is true, the type taken when it is false), as Olive's
#: ``_run_for_config`` checks it.
INPUT_CHOSEN_BY: Mapping[str, tuple[str, str, str]] = {
    "ModelBuilder": ("metadata_only", "onnx", "hf"),
}
#: Olive's OpenVINO passes: (pass) -> (the model type each input type becomes), as their
#: ``_run_for_config`` reads and returns handlers; OpenVINO IR (``"openvino"``) between them.
_OPENVINO: Mapping[str, Mapping[str, str]] = {
    "OpenVINOConversion": {"hf": "openvino", "pytorch": "openvino", "onnx": "openvino"},
    "OpenVINOOptimumConversion": {"hf": "openvino"},
    "OpenVINOIoUpdate": {"openvino": "openvino"},
    "OpenVINOQuantization": {"openvino": "openvino", "onnx": "onnx"},
    "OpenVINOQuantizationWithAccuracy": {"openvino": "openvino", "onnx": "onnx"},
    "OpenVINOWeightCompression": {"hf": "openvino", "openvino": "openvino", "onnx": "onnx"},
    "OpenVINOEncapsulation": {"openvino": "onnx"},
}


@frozen(kw_only=True)
class OlivePassInfo:
    """One pass type of Olive's library, as ``olive_config.json`` describes it.

    ``input_types``/``output_type`` are in this project's model types (``"hf"``,
    ``"onnx"``, ``"openvino"``, and ``"pytorch"`` for a ``PyTorchModel`` input); both are
    empty for passes on other formats (QNN and QAIRT artifacts, diffusers pipelines), which
    modelcache cannot carry between passes. ``outputs`` names the input types whose output
    is not ``output_type`` (OpenVINO's quantization writes ONNX for ONNX, IR for IR).
    """

    name: str
    module_path: str
    #: The pip extras of olive-ai the pass needs, as Olive names them (``"openvino"``).
    extras: tuple[str, ...]
    #: Distributions the pass imports beside Olive's own requirements.
    module_dependencies: tuple[str, ...]
    input_types: frozenset[str]
    output_type: str
    outputs: tuple[tuple[str, str], ...] = ()

    @property
    def class_name(self) -> str:
        return self.module_path.rpartition(".")[2]

    def output_of(self, input_type: str | None) -> str:
        """The type of model the pass writes from an ``input_type`` model (``None``: not
        known, the pass's usual output)."""
        return dict(self.outputs).get(input_type or "", self.output_type)


def olive_version() -> str | None:
    """The installed olive-ai's version, or ``None`` if it is not installed."""
    return installed_version(DISTRIBUTION)


@functools.cache
def olive_passes() -> Mapping[str, OlivePassInfo]:
    """Every pass type of the installed olive-ai, by its name; empty if Olive is not
    installed (or ships no readable pass list)."""
    document = _olive_config()
    passes = document.get("passes") if isinstance(document, dict) else None
    if not isinstance(passes, dict):
        return {}
    found = {}
    for name, entry in passes.items():
        if isinstance(entry, dict) and isinstance(entry.get("module_path"), str):
            found[name] = _info(name, entry)
    return found


def extra_requirements() -> Mapping[str, tuple[str, ...]]:
    """Olive's extras and the requirement strings each installs."""
    document = _olive_config()
    extras = document.get("extra_dependencies") if isinstance(document, dict) else None
    if not isinstance(extras, dict):
        return {}
    return {name: tuple(str(r) for r in reqs) for name, reqs in extras.items()}


def _info(name: str, entry: dict[str, Any]) -> OlivePassInfo:
    module = str(entry["module_path"])
    outputs: tuple[tuple[str, str], ...] = ()
    if name in _OPENVINO:
        by_input = _OPENVINO[name]
        input_types = frozenset(by_input)
        output_type = "openvino" if "openvino" in by_input.values() else "onnx"
        outputs = tuple(sorted((i, o) for i, o in by_input.items() if o != output_type))
    elif name in _TO_ONNX:
        input_types, output_type = _FROM.get(name, frozenset({"hf"})), "onnx"
    elif module.startswith("olive.passes.onnx."):
        input_types, output_type = frozenset({"onnx"}), "onnx"
    elif module.startswith("olive.passes.pytorch."):
        input_types, output_type = frozenset({"hf"}), "hf"
    else:
        input_types, output_type = frozenset(), ""
    return OlivePassInfo(
        name=name,
        module_path=module,
        extras=tuple(str(e) for e in entry.get("extra_dependencies") or ()),
        module_dependencies=tuple(str(d) for d in entry.get("module_dependencies") or ()),
        input_types=input_types,
        output_type=output_type,
        outputs=outputs,
    )


@functools.cache
def _olive_config() -> Any:
    try:
        spec = importlib.util.find_spec("olive")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        try:
            return json.loads((Path(location) / "olive_config.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
    return None
