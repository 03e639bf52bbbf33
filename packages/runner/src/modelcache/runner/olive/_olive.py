"""The one module that imports Olive: its pass classes, accelerator specs and model
handlers, and its configuration errors in this project's words.

Olive is imported on the first call, never at module level (``import olive`` takes
seconds). Before that, its telemetry is switched off: Olive 0.13 sends a heartbeat before it
reads ``OLIVE_DISABLE_TELEMETRY`` and then waits at exit for it to be sent, and a cache that
runs offline sends nothing.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..models import ONNX_MODEL_FILE
from ..passes import PassConfigError, PassConfigProblems, did_you_mean
from ._keys import PATH_KEYS
from ._library import OlivePassInfo

__all__ = [
    "accelerator_spec",
    "handler_for",
    "olive_pass_class",
    "path_parameters",
    "resolve",
]

#: Parameters every Olive pass has beside its own, both naming user code.
_USER_CODE = frozenset({"user_script", "script_dir"})


@functools.cache
def _quiet() -> None:
    os.environ.setdefault("OLIVE_DISABLE_TELEMETRY", "1")
    from olive.telemetry.telemetry import Telemetry

    Telemetry._log_heartbeat = lambda *args, **kwargs: None
    # Olive logs each step at INFO; modelcache reports its own progress.
    logging.getLogger("olive").setLevel(logging.WARNING)


@functools.cache
def olive_pass_class(info: OlivePassInfo) -> Any:
    """The Olive class implementing ``info`` (imports its module, and so Olive)."""
    _quiet()
    module_name, _, class_name = info.module_path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def accelerator_spec(device: str, execution_provider: str) -> Any:
    from olive.hardware import AcceleratorSpec

    return AcceleratorSpec(accelerator_type=device, execution_provider=execution_provider)


def path_parameters(cls: Any, accelerator: Any) -> frozenset[str]:
    """The parameters of ``cls`` that name files or folders (Olive's ``PATH`` category, and
    the user code every pass may name)."""
    from olive.common.config_utils import ParamCategory

    defaults = cls.default_config(accelerator)
    paths = {name for name, param in defaults.items() if param.category == ParamCategory.PATH}
    return frozenset(paths | _USER_CODE | (PATH_KEYS & set(defaults)))


def resolve(
    cls: Any, accelerator: Any, parameters: Mapping[str, Any], *, pass_type: str
) -> dict[str, Any]:
    """Olive's configuration of ``cls`` for ``parameters``, every default filled in, as
    JSON values; :class:`PassConfigError` naming each parameter Olive refuses, and each
    parameter it does not know (which Olive itself would drop with a warning)."""
    from pydantic import ValidationError

    config_class, _ = cls.get_config_class(accelerator, disable_search=True)
    known = sorted(config_class.model_fields)
    errors = [_unknown(pass_type, str(name), known) for name in parameters if name not in known]
    if not errors:
        try:
            resolved = cls.generate_config(accelerator, dict(parameters), disable_search=True)
            return json.loads(resolved.model_dump_json())  # type: ignore[no-any-return]
        except ValidationError as error:
            errors = _problems(error, pass_type)
        except Exception as error:  # Olive's validators raise whatever bad input makes them
            problem = f"Olive refuses this configuration: {type(error).__name__}: {error}"
            errors = [PassConfigError(pass_type, None, " ".join(problem.split())[:500])]
    if len(errors) > 1:
        raise PassConfigProblems(errors)
    raise errors[0]


def _unknown(pass_type: str, name: str, known: list[str]) -> PassConfigError:
    problem = (
        f"{name!r} is not a parameter of {pass_type} (Olive would ignore it); "
        f"{did_you_mean(name, known)}remove it"
    )
    return PassConfigError(pass_type, name, problem)


def _problems(error: Any, pass_type: str) -> list[PassConfigError]:
    """One problem per parameter of a pydantic error: the first alternative's message (the
    others are Olive's search-space forms, which a plain value is not meant to be)."""
    seen: dict[str, str] = {}
    for item in error.errors():
        location = item.get("loc") or ("",)
        name = str(location[0])
        if name not in seen:
            seen[name] = f"{item.get('msg', 'invalid')}, got {item.get('input')!r}"
    return [PassConfigError(pass_type, name or None, problem) for name, problem in seen.items()]


def handler_for(model_dir: Path, model_type: str, settings: Mapping[str, Any]) -> Any:
    """The Olive handler of the model in ``model_dir``: ``HfModelHandler`` or
    ``PyTorchModelHandler`` with the input model's settings (a ``model_path`` among them
    replaces ``model_dir``: ``None`` for a model its loader builds), or ``ONNXModelHandler``
    of its ``model.onnx``, or of ``model_dir`` itself when it is a workflow's ONNX file."""
    _quiet()
    if model_type == "pytorch":
        from olive.model import PyTorchModelHandler

        return PyTorchModelHandler(**{"model_path": str(model_dir), **settings})
    if model_type == "onnx":
        from olive.model import ONNXModelHandler

        name = None if model_dir.is_file() else ONNX_MODEL_FILE
        return ONNXModelHandler(model_path=str(model_dir), onnx_file_name=name, **dict(settings))
    from olive.model import HfModelHandler

    return HfModelHandler(model_path=str(model_dir), **dict(settings))
