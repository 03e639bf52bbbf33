"""The input model as Olive writes it: ``type`` whatever its case, and the fields of Olive's
model handler for that type (``olive/model/handler``) kept, as written, in
``handler_settings``. Which types a run can use is not decided here:
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

__all__ = ["HANDLER_FIELDS", "split_handler_settings", "unsupported_input_model"]

_OBJECT, _TEXT, _FLAG = (dict,), (str,), (bool,)
#: Per model type, the fields of Olive's handler besides ``model_path`` (Olive 0.13:
#: ``HfModelHandler``, ``PyTorchModelHandler``, ``ONNXModelHandler``) and the JSON types
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
}

_UNSUPPORTED = {
    "OnnxModel": "start from the Hugging Face model it was exported from (HfModel)",
}


def split_handler_settings(
    value: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[Exception]]:
    """``input_model``'s fields split into modelcache's own (``type`` spelt as
    :data:`~._model.MODEL_TYPES` spells it) and the handler's settings, and an error (noted
    with its field, as cattrs notes them) for each setting of the wrong JSON type."""
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
            error = TypeError(f"expected {expected}, got {json_type(setting)}")
            error.__notes__ = [AttributeValidationNote(f"Structuring {name}", name, Any)]
            errors.append(error)
    return own, settings, errors


def unsupported_input_model(config: WorkflowConfig) -> Problem | None:
    """The problem with the config's input model if a run cannot start from it (today:
    ``OnnxModel``), else ``None``. The config reads every Olive model type it
    knows, so that ``plan`` and ``run`` can say this at the same place as the config's
    other problems; ``prepare`` asks."""
    kind = config.input_model.type
    if kind not in _UNSUPPORTED:
        return None
    fix = _UNSUPPORTED.get(kind, "use a Hugging Face model (HfModel)")
    return Problem(path="$.input_model.type", problem=f"{kind} inputs are not supported yet; {fix}")
