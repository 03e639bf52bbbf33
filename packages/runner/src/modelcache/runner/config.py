"""The workflow configuration: an Olive-shaped JSON document.

::

    {
      "input_model": {"type": "HfModel", "model_path": "sentence-transformers/all-MiniLM-L6-v2"},
      "passes": {
        "convert": {"type": "OnnxConversion", "target_opset": 17},
        "quantize": {"type": "OnnxDynamicQuantization"}
      },
      "evaluator": {"metrics": ["size", "latency", "fidelity"], "evaluate": "final"},
      "cloud_cache_config": {
        "account_url": "https://<account>.blob.core.windows.net",
        "container_name": "modelcache"
      },
      "cache_dir": ".modelcache/cache",
      "output_dir": "out"
    }

Unknown keys and wrong types are errors that name the offending path (``$.passes.convert``).
Relative paths are relative to the configuration file's folder. ``docs/config.md`` is the
reference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cattrs
from attrs import evolve, field, frozen, validators
from cattrs.v import format_exception

__all__ = [
    "CloudCacheConfig",
    "ConfigError",
    "EvaluatorConfig",
    "InputModelConfig",
    "WorkflowConfig",
    "load_config",
    "parse_config",
]

METRICS = ("size", "latency", "fidelity")

#: The passes in document order: (name, {"type": ..., parameters...}).
Passes = tuple[tuple[str, Mapping[str, Any]], ...]


class ConfigError(ValueError):
    """The workflow configuration is wrong; ``str()`` names the path and the fix."""

    def __init__(self, *, path: str, problem: str, source: str = "") -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem
        self.source = source

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.path}: {self.problem}"


def _metrics(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"metrics must be a list drawn from {list(METRICS)}")
    for metric in value:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {list(METRICS)}")
    return tuple(value)


@frozen(kw_only=True)
class InputModelConfig:
    """``type`` must be ``HfModel``: only Hugging Face models are supported as input."""

    type: str
    model_path: str
    revision: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.type != "HfModel":
            raise ValueError(
                f"model type {self.type!r} is not supported: only Hugging Face models "
                '("type": "HfModel") are supported as input'
            )


@frozen(kw_only=True)
class CloudCacheConfig:
    """The seed's ``cloud_cache_config``. Without ``account_url``, the connection string in
    ``AZURE_STORAGE_CONNECTION_STRING`` names the account."""

    enable_cloud_cache: bool = True
    account_url: str | None = None
    container_name: str | None = None
    upload_to_cloud: bool = True


@frozen(kw_only=True)
class EvaluatorConfig:
    """What to measure (``metrics``) and on which outputs (``evaluate``: ``"none"``,
    ``"final"``, ``"all"`` or a list of pass names). ``latency_runs`` timed runs give the
    median latency."""

    metrics: tuple[str, ...] = field(default=METRICS, converter=_metrics)
    evaluate: str | tuple[str, ...] = "final"
    latency_runs: int = field(default=20, validator=validators.ge(1))


@frozen(kw_only=True)
class WorkflowConfig:
    """A whole workflow. ``passes`` keeps the document's order: the chain runs in it."""

    input_model: InputModelConfig
    passes: Passes
    evaluator: EvaluatorConfig | None = None
    cloud_cache_config: CloudCacheConfig | None = None
    cache_dir: Path = Path(".modelcache/cache")
    output_dir: Path = Path("out")
    #: The folder relative paths are resolved against (the config file's).
    base_dir: Path = Path(".")

    def resolve(self, path: Path) -> Path:
        return Path(os.path.normpath(path if path.is_absolute() else self.base_dir / path))

    @property
    def cloud_enabled(self) -> bool:
        return self.cloud_cache_config is not None and self.cloud_cache_config.enable_cloud_cache


_converter = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {name}, got {_json_type(value)}")
        return value

    return structure


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


_converter.register_structure_hook(str, _strict(str, "a string"))
_converter.register_structure_hook(bool, _strict(bool, "true or false"))
_converter.register_structure_hook(int, _strict(int, "a whole number"))
_converter.register_structure_hook(
    Path, lambda value, _type: Path(_strict(str, "a path")(value, _type))
)


def _structure_evaluate(value: Any, _type: Any) -> str | tuple[str, ...]:
    if value in ("none", "final", "all"):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError('evaluate must be "none", "final", "all" or a list of pass names')


_converter.register_structure_hook(str | tuple[str, ...], _structure_evaluate)


def _structure_passes(value: Any, _type: Any) -> Passes:
    if not isinstance(value, dict) or not value:
        raise ValueError('passes must be a non-empty object: {"name": {"type": ...}, ...}')
    passes = []
    for name, spec in value.items():
        if not isinstance(spec, dict):
            raise ValueError(f"pass {name!r} must be an object with a 'type'")
        if not isinstance(spec.get("type"), str):
            raise ValueError(f'pass {name!r} needs a "type" naming the pass, e.g. OnnxConversion')
        passes.append((name, dict(spec)))
    return tuple(passes)


_converter.register_structure_hook_func(lambda cls: cls == Passes, _structure_passes)


def parse_config(document: Any, *, base_dir: Path = Path("."), source: str = "") -> WorkflowConfig:
    """A :class:`WorkflowConfig` from parsed JSON, or :class:`ConfigError` naming the path."""
    if not isinstance(document, dict):
        raise ConfigError(path="$", problem="a workflow config is a JSON object", source=source)
    if "base_dir" in document:
        raise ConfigError(path="$.base_dir", problem="unknown field", source=source)
    try:
        config = _converter.structure(document, WorkflowConfig)
    except cattrs.BaseValidationError as error:
        message = cattrs.transform_error(error, path="$", format_exception=_describe)[0]
        problem, _, path = message.rpartition(" @ ")
        raise ConfigError(path=path or "$", problem=problem, source=source) from None
    return evolve(config, base_dir=base_dir)


def _describe(error: BaseException, type_: Any) -> str:
    if isinstance(error, KeyError):
        return "required field missing"
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return f"unknown field(s) {sorted(error.extra_fields)}; remove or rename them"
    if isinstance(error, (ValueError, TypeError)) and str(error):
        return str(error)
    return format_exception(error, type_)


def load_config(path: Path) -> WorkflowConfig:
    """Read and validate a workflow config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path="$", problem="no such file", source=str(path)) from None
    except OSError as error:
        raise ConfigError(
            path="$", problem=f"cannot read: {error.strerror}", source=str(path)
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            path="$",
            problem=f"not JSON: {error.msg} at line {error.lineno} column {error.colno}",
            source=str(path),
        ) from None
    return parse_config(document, base_dir=path.parent.resolve(), source=str(path))
