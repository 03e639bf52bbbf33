"""The config's one cattrs converter: JSON values to the classes of ``_model``, each value
checked on the way in.

A hook raises ``ValueError`` or ``TypeError`` whose text is the problem as the user reads
it; cattrs notes the field's path, from which ``_parse`` builds each :class:`Problem`.
Hooks that check several fields (``passes``, ``evaluator``) raise a
``ClassValidationError`` carrying all their problems, so none hides another.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import cattrs
from attrs import evolve
from cattrs.errors import AttributeValidationNote, ClassValidationError
from cattrs.gen import make_dict_structure_fn, override

from modelcache.planner import UploadPolicy

from ._input import split_handler_settings
from ._model import (
    AccountUrl,
    Bandwidth,
    CloudCacheConfig,
    EvaluatorConfig,
    InputModelConfig,
    ModelPath,
    Passes,
    PassParameters,
    WorkflowConfig,
    check_metrics,
)
from ._reading import json_type as _json_type
from ._trust import register_trust_hooks

__all__ = ["check_container_name", "converter", "structure_passes"]

#: The longest file or folder name, and path, most file systems accept, in bytes.
_NAME_MAX = 255
_PATH_MAX = 4096

converter = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type, name: str) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {name}, got {_json_type(value)}")
        return value

    return structure


converter.register_structure_hook(str, _strict(str, "a string"))
converter.register_structure_hook(bool, _strict(bool, "true or false"))
converter.register_structure_hook(int, _strict(int, "a whole number"))


def _check_path(value: str) -> str:
    """``value`` if the operating system can use it as a path, else ``ValueError`` saying
    why: caught here, these would surface later as tracebacks from deep inside ``os``."""
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL character")
    try:
        encoded = os.fsencode(value)
    except UnicodeError:
        raise ValueError("a path cannot contain unpaired surrogates (\\ud800-\\udfff)") from None
    if any(len(name) > _NAME_MAX for name in encoded.split(b"/")):
        raise ValueError(f"a file or folder name in this path is longer than {_NAME_MAX} bytes")
    if len(encoded) >= _PATH_MAX:
        raise ValueError(f"a path must be shorter than {_PATH_MAX} bytes")
    return value


def _structure_path(value: Any, _type: Any) -> Path:
    return Path(_check_path(_strict(str, "a path")(value, _type)))


converter.register_structure_hook(Path, _structure_path)

_PACKAGE_SCHEME = "package:"


def _structure_model_path(value: Any, _type: Any) -> ModelPath:
    model_path = _check_path(_strict(str, "a string")(value, _type))
    if not model_path:
        raise ValueError("model_path is empty: give a model directory or a hub id")
    if model_path.startswith("~"):
        try:
            Path(model_path).expanduser()
        except RuntimeError:
            user = model_path[1:].partition("/")[0]
            raise ValueError(f"there is no user {user!r}, so no folder ~{user}") from None
    if model_path.startswith(_PACKAGE_SCHEME):
        _check_package(model_path.removeprefix(_PACKAGE_SCHEME).partition("/")[0])
    return ModelPath(model_path)


def _check_package(package: str) -> None:
    shape = "package:<package>/<folder>, where <package> is an importable package name"
    if not package or not all(part.isidentifier() for part in package.split(".")):
        raise ValueError(f"{package!r} is not a package name: use {shape}")
    # importlib.resources, which finds the folder, raises TypeError for a plain module. The
    # top-level name is looked up without importing it, so a config cannot make modelcache
    # import a module (and run its side effects) that is not even a package.
    names = [package.partition(".")[0]] + ([package] if "." in package else [])
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return  # resolving the model says what is missing
        if spec is None:
            return
        if spec.submodule_search_locations is None:
            raise ValueError(f"{name!r} is a module, not a package: use {shape}")


converter.register_structure_hook(ModelPath, _structure_model_path)


def _structure_account_url(value: Any, _type: Any) -> AccountUrl:
    url = _strict(str, "a string")(value, _type)
    # The URL may carry a SAS: no message here quotes it.
    problem = "account_url must be an http(s) URL such as https://<account>.blob.core.windows.net"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise ValueError(f"{problem} ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(problem)
    if any(not character.isprintable() for character in url):
        raise ValueError(f"{problem}, without control characters")
    return AccountUrl(url)


converter.register_structure_hook(AccountUrl, _structure_account_url)

#: A bandwidth's units, in bytes per second.
_RATES: Final = {
    "B/s": 1.0, "kB/s": 1e3, "KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9,
    "kbit/s": 125.0, "Mbit/s": 125e3, "Gbit/s": 125e6,
}  # fmt: skip
_BANDWIDTH = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+/s)\s*")


def _structure_bandwidth(value: Any, _type: Any) -> Bandwidth:
    shape = (
        'a speed such as "50 MB/s" or "400 Mbit/s" (B/s, kB/s, MB/s, GB/s, kbit/s, Mbit/s, '
        "Gbit/s), or a number of bytes per second"
    )
    rate: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    elif isinstance(value, str) and (found := _BANDWIDTH.fullmatch(value)):
        unit = _RATES.get(found[2])
        rate = None if unit is None else float(found[1]) * unit
    if rate is None or not 0 < rate < float("inf"):
        raise ValueError(f"bandwidth must be {shape}, above zero; got {value!r}")
    return Bandwidth(rate)


converter.register_structure_hook(Bandwidth, _structure_bandwidth)


def _structure_upload_policy(value: Any, _type: Any) -> UploadPolicy:
    if value == "all" or value == "worthwhile":
        return value  # type: ignore[no-any-return]
    raise ValueError(
        f'upload_policy must be "all" (every output, the default) or "worthwhile" (an '
        f"intermediate only when recomputing it costs more than moving it); got {value!r}"
    )


def _structure_evaluate(value: Any, _type: Any) -> str | tuple[str, ...]:
    if value in ("none", "final", "all"):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError('evaluate must be "none", "final", "all" or a list of pass names')


converter.register_structure_hook(str | tuple[str, ...], _structure_evaluate)


def structure_passes(value: Any, _type: Any) -> Passes:
    """The ``passes`` object as :data:`Passes`, in document order; ``ValueError`` if it is
    not a non-empty object, ``ClassValidationError`` naming every malformed pass."""
    if not isinstance(value, dict) or not value:
        raise ValueError('passes must be a non-empty object: {"name": {"type": ...}, ...}')
    passes: list[tuple[str, Mapping[str, Any]]] = []
    errors: list[Exception] = []
    for name, spec in value.items():
        if not name or not name.isprintable():  # never part of a path: a path is printed
            errors.append(ValueError(
                f"pass name {name!r} must be a non-empty name without control characters"
            ))  # fmt: skip
        elif not isinstance(spec, Mapping):
            errors.append(_at(name, ValueError(f"pass {name!r} must be an object with a 'type'")))
        elif not isinstance(spec.get("type"), str):
            problem = f'pass {name!r} needs a "type" naming the pass, e.g. OnnxConversion'
            errors.append(_at(f"{name}.type", ValueError(problem)))
        else:
            passes.append(
                (name, spec if isinstance(spec, PassParameters) else PassParameters(spec))
            )
    if errors:
        raise ClassValidationError("invalid passes", errors, dict)
    return tuple(passes)


def _at(name: str, error: Exception) -> Exception:
    """``error`` as the problem of the field ``name`` (a dotted path below its parent)."""
    error.__notes__ = [AttributeValidationNote(f"Structuring {name}", name, Any)]
    return error


converter.register_structure_hook_func(lambda cls: cls == Passes, structure_passes)

#: What ``"evaluator"`` must look like; Olive configs name one of their ``"evaluators"``.
_EVALUATOR_SHAPE = '{"metrics": ["size", "fidelity"], "evaluate": "final"}'
_CLOUD_SHAPE = (
    '{"account_url": "https://<account>.blob.core.windows.net", "container_name": "<container>"}'
)
#: Azure's rule for container names. The Azure adapter checks it too, for embedders that
#: bypass the config; here the problem comes with the config's others and names its field.
_CONTAINER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


def _structure_container_name(value: Any, _type: Any) -> str | None:
    if value is None:
        return None
    return check_container_name(_strict(str, "a string")(value, _type))


def check_container_name(name: str) -> str:
    """``name`` if it can be a blob container's name, else ``ValueError`` saying why."""
    if not _CONTAINER_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid container name: use 3-63 lowercase letters, digits and "
            "single hyphens, starting and ending with a letter or digit"
        )
    return str(name)


def _object(cls: type, structure: Any) -> Any:
    """``structure`` for ``cls``, refusing any value that is not a JSON object first."""

    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {_json_type(value)}")
        return structure(value, cls)

    return hook


def _structure_cloud(value: Any, _type: Any) -> CloudCacheConfig:
    # Olive once accepted a bare boolean. false has an obvious meaning; true meant Olive's
    # public container, which holds Olive's cache format: true stays only when another
    # setting names a container (``_cloud`` has filled it in by then).
    if value is False:
        return CloudCacheConfig(enable_cloud_cache=False)
    if value is True:
        raise ValueError(
            "true names no container to cache in (in Olive it meant Microsoft's public "
            f"olivecachemodels container, which holds Olive's cache, not modelcache's): write "
            f"{_CLOUD_SHAPE} (the account may come from AZURE_STORAGE_CONNECTION_STRING "
            "instead), give --container_name, or false for the local cache only"
        )
    return _object(CloudCacheConfig, _cloud_fields)(value, _type)  # type: ignore[no-any-return]


def _structure_evaluator(value: Any, _type: Any) -> EvaluatorConfig:
    if isinstance(value, str):
        raise ValueError(
            f"an evaluator is an object such as {_EVALUATOR_SHAPE}, not a name: Olive configs "
            'name an evaluator defined under "evaluators", which modelcache does not read; '
            "write the evaluator here"
        )
    if not isinstance(value, dict):
        raise TypeError(f"expected an object such as {_EVALUATOR_SHAPE}, got {_json_type(value)}")
    # The converter and validator of metrics and latency_runs stop at the first problem;
    # these checks run all of them, and the fields after, so every problem is reported.
    errors: list[Exception] = []
    if "metrics" in value:
        try:
            check_metrics(value["metrics"])
        except ValueError as error:
            errors.append(error)
    runs = value.get("latency_runs")
    if type(runs) is int and runs < 1:
        errors.append(ValueError(f"latency_runs must be at least 1, got {runs}"))
    if not errors:
        return _evaluator_fields(value, EvaluatorConfig)
    try:
        _evaluator_fields({k: v for k, v in value.items() if k not in ("metrics", "latency_runs")},
                          EvaluatorConfig)  # fmt: skip
    except ClassValidationError as error:
        errors.extend(error.exceptions)
    except (ValueError, TypeError) as error:
        errors.append(error)
    raise ClassValidationError("invalid evaluator", errors, EvaluatorConfig)


_cloud_fields = make_dict_structure_fn(
    CloudCacheConfig, converter, _cattrs_forbid_extra_keys=True,
    container_name=override(struct_hook=_structure_container_name),
    upload_policy=override(struct_hook=_structure_upload_policy),
)  # fmt: skip
_evaluator_fields = make_dict_structure_fn(
    EvaluatorConfig, converter, _cattrs_forbid_extra_keys=True
)
converter.register_structure_hook(CloudCacheConfig, _structure_cloud)
converter.register_structure_hook(EvaluatorConfig, _structure_evaluator)
_input_model_fields = make_dict_structure_fn(
    InputModelConfig, converter, _cattrs_forbid_extra_keys=True,
    handler_settings=override(omit=True),
)  # fmt: skip


def _structure_input_model(value: dict[str, Any], _type: Any) -> InputModelConfig:
    own, settings, errors = split_handler_settings(value)
    try:
        model = _input_model_fields(own, InputModelConfig)
    except ClassValidationError as error:
        errors.extend(error.exceptions)
    except (ValueError, TypeError) as error:
        errors.append(error)
    if errors:
        raise ClassValidationError("invalid input_model", errors, InputModelConfig)
    return evolve(model, handler_settings=settings)


converter.register_structure_hook(
    InputModelConfig, _object(InputModelConfig, _structure_input_model)
)
register_trust_hooks(converter)
converter.register_structure_hook(
    WorkflowConfig,
    make_dict_structure_fn(
        WorkflowConfig, converter, _cattrs_forbid_extra_keys=True,
        notes=override(omit=True), data_configs=override(omit=True),
    ),
)  # fmt: skip
