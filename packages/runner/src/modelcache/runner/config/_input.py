"""The input model as Olive writes it: ``type`` whatever its case, and the fields of Olive's
model handler for that type (``olive/model/handler``) kept, as written, in
``handler_settings``. What a run cannot honour is not decided here:
:func:`unsupported_input_model` says, for ``prepare`` to ask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cattrs.errors import AttributeValidationNote

from ._errors import Problem
from ._model import MODEL_TYPES
from ._reading import json_type

if TYPE_CHECKING:
    from ._model import WorkflowConfig

__all__ = ["HANDLER_FIELDS", "builds_itself", "split_handler_settings", "unsupported_input_model"]

_OBJECT, _TEXT, _FLAG = (dict,), (str,), (bool,)
#: Per model type, the fields of Olive's handler besides ``model_path`` (Olive 0.13:
#: ``HfModelHandler``, ``PyTorchModelHandler``, ``ONNXModelHandler``,
#: ``OpenVINOModelHandler``) and the JSON types
#: each may have; ``null`` is always allowed (Olive's default).
HANDLER_FIELDS: Mapping[str, Mapping[str, tuple[type, ...]]] = {
    "HfModel": {
        "task": _TEXT,
        "load_kwargs": _OBJECT,
        "io_config": (dict, str),
        "adapter_path": _TEXT,
        "test_model_path": _TEXT,
        "test_model_config": _OBJECT,
        "model_attributes": _OBJECT,
    },
    "PyTorchModel": {
        "model_file_format": _TEXT,
        "model_loader": _TEXT,
        "model_script": _TEXT,
        "script_dir": _TEXT,
        "io_config": (dict, str),
        "dummy_inputs_func": _TEXT,
        "model_attributes": _OBJECT,
    },
    "OnnxModel": {
        "onnx_file_name": _TEXT,
        "inference_settings": _OBJECT,
        "use_ort_extensions": _FLAG,
        "model_attributes": _OBJECT,
        "external_initializers_file_name": _TEXT,
        "constant_inputs_file_name": _TEXT,
    },
    "OpenVINOModel": {"model_attributes": _OBJECT},
}

#: Settings of a model type that no run here can honour yet, and why.
_UNSUPPORTED = {
    ("OnnxModel", "external_initializers_file_name"): "initializers fed to the session",
    ("OnnxModel", "constant_inputs_file_name"): "constant inputs fed to the session",
}


def split_handler_settings(
    value: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[Exception]]:
    """``input_model``'s fields split into modelcache's own (``type`` spelt as
    :data:`~._model.MODEL_TYPES` spells it) and the handler's settings, and an error (noted
    with its field, as cattrs notes them) for each setting of the wrong JSON type, and for a
    ``model_path`` missing where Olive needs one."""
    own = dict(value)
    kind = own.get("type")
    if isinstance(kind, str) and kind.lower() in MODEL_TYPES:
        own["type"] = kind = MODEL_TYPES[kind.lower()]
    fields = HANDLER_FIELDS.get(kind, {}) if isinstance(kind, str) else {}
    settings = {name: own.pop(name) for name in list(own) if name in fields}
    errors: list[Exception] = []
    for name, setting in settings.items():
        if setting is not None and type(setting) not in fields[name]:
            expected = " or ".join(json_type(t()) for t in fields[name])
            errors.append(_noted(TypeError(f"expected {expected}, got {json_type(setting)}"), name))
    if own.get("model_path") is None and not builds_itself(kind, settings):
        errors.append(_noted(KeyError("model_path"), "model_path"))  # "required field missing"
    return own, settings, errors


def builds_itself(kind: Any, settings: Mapping[str, Any]) -> bool:
    """Whether an input model of type ``kind`` needs no ``model_path``: a ``PyTorchModel``
    whose ``model_loader``, a function of ``model_script``, builds it from nothing (Olive's
    ``PyTorchModelHandler`` takes it so)."""
    return (
        kind == "PyTorchModel"
        and isinstance(settings.get("model_loader"), str)
        and isinstance(settings.get("model_script"), str)
    )


def _noted(error: Exception, name: str) -> Exception:
    error.__notes__ = [AttributeValidationNote(f"Structuring {name}", name, Any)]
    return error


def unsupported_input_model(config: WorkflowConfig) -> Problem | None:
    """The problem with the config's input model if a run cannot start from it (today: an
    ``OnnxModel`` whose handler feeds the session initializers or inputs from other files),
    else ``None``. The config reads every setting Olive's handlers know, so that ``plan``
    and ``run`` can say this at the same place as the config's other problems; ``prepare``
    asks."""
    model = config.input_model
    for (kind, name), what in _UNSUPPORTED.items():
        if model.type == kind and model.handler_settings.get(name) is not None:
            return Problem(path=f"$.input_model.{name}", problem=(
                f"an {kind} with {what} is not supported yet (the passes here read the graph "
                f"file alone); remove {name}, or run this workflow with Olive itself"
            ))  # fmt: skip
    return None
