"""The one module that imports Olive: its pass classes, accelerator specs and model
handlers, and its configuration errors in this project's words.

Olive is imported on the first call, never at module level (``import olive`` takes
seconds). Before that, its telemetry is switched off: Olive 0.13 sends a heartbeat before it
reads ``OLIVE_DISABLE_TELEMETRY`` and then waits at exit for it to be sent, and a cache that
runs offline sends nothing.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import functools
import importlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._telemetry import silence
from ..models import ONNX_MODEL_FILE
from ..passes import PassConfigError, PassConfigProblems, did_you_mean
from ._calibration import register_components
from ._keys import PATH_KEYS
from ._library import OlivePassInfo

__all__ = [
    "accelerator_spec",
    "fresh_user_code",
    "handler_for",
    "olive_pass_class",
    "path_parameters",
    "resolve",
    "search_samples",
    "search_space",
]

#: Parameters every Olive pass has beside its own, both naming user code.
_USER_CODE = frozenset({"user_script", "script_dir"})


def quiet() -> None:
    """Olive made silent before it is imported (:func:`_quiet_once`), and its log written
    to standard error as it is now: Olive logs to standard output, which holds what a
    command prints (``plan --format json``), and keeps the stream it was imported with,
    which an embedder (or a test's capture) may have replaced and closed since. Its warnings
    about what modelcache does itself (:data:`_UNASKED`) are dropped, and its records
    written without their tracebacks (:class:`_WithoutTraceback`)."""
    _quiet_once()
    for handler in logging.getLogger("olive").handlers:
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.stderr  # not setStream, which flushes the old stream
            if _unasked not in handler.filters:  # on the handler: it sees every module's
                handler.addFilter(_unasked)
            if not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback("olive: %(levelname)s: %(message)s"))


@functools.cache
def _quiet_once() -> None:
    """No telemetry (Olive's nor OpenVINO's), and Olive's log at warnings only."""
    os.environ.setdefault("OLIVE_DISABLE_TELEMETRY", "1")
    silence()  # OpenVINO's, for Olive's OpenVINO passes
    from olive.telemetry.telemetry import Telemetry

    Telemetry._log_heartbeat = lambda *args, **kwargs: None
    # Olive logs each step at INFO; modelcache reports its own progress.
    logging.getLogger("olive").setLevel(logging.WARNING)


#: Olive's warnings about what modelcache does itself, which a user cannot act on.
_UNASKED = (
    # A pass's ONNX output is a folder: modelcache takes its one graph as model.onnx.
    "model_path is a directory but onnx_file_name is not specified",
)


def _unasked(record: logging.LogRecord) -> bool:
    """Whether to keep ``record``: not one of :data:`_UNASKED`."""
    return not str(record.msg).startswith(_UNASKED)


class _WithoutTraceback(logging.Formatter):
    """One line per record, beside modelcache's own notes (``olive: WARNING: ...``, not
    Olive's time, file and line), without the traceback a record carries (Olive logs one
    with a warning it recovers from, such as quantization's preprocessing failing): the
    message says what went wrong, and a traceback in a run that goes on reads as a crash.
    Other handlers of the record still have it."""

    def format(self, record: logging.LogRecord) -> str:
        kept = record.exc_info, record.exc_text
        record.exc_info = record.exc_text = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text = kept


def fresh_user_code() -> None:
    """Olive imports each user script once per process and path (``functools.lru_cache``):
    one edited since would run as it was, under a key made of what it is now. Forgotten,
    Olive reads each as it is when it next needs it."""
    from olive.common import import_lib

    import_lib.import_user_module.cache_clear()
    import_lib.import_module_from_file.cache_clear()


@functools.cache
def olive_pass_class(info: OlivePassInfo) -> Any:
    """The Olive class implementing ``info`` (imports its module, and so Olive); Olive's
    data registry holds the components an older Olive's calibration data is read into."""
    quiet()
    register_components()
    module_name, _, class_name = info.module_path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def accelerator_spec(device: str, execution_provider: str) -> Any:
    """Olive's accelerator, its device an Olive ``Device`` as Olive's engine makes it (some
    passes' defaults read members of it)."""
    from olive.hardware import AcceleratorSpec, Device

    try:
        accelerator: Any = Device(device.lower())
    except ValueError:  # a device Olive does not name: Olive's own check says so
        accelerator = device
    return AcceleratorSpec(accelerator_type=accelerator, execution_provider=execution_provider)


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
            # A copy: Olive moves nested values (a data config's data_dir into its params).
            given = copy.deepcopy(dict(parameters))
            resolved = cls.generate_config(accelerator, given, disable_search=True)
            return json.loads(resolved.model_dump_json())  # type: ignore[no-any-return]
        except ValidationError as error:
            errors = _problems(error, pass_type)
        except Exception as error:  # Olive's validators raise whatever bad input makes them
            problem = f"Olive refuses this configuration: {type(error).__name__}: {error}"
            errors = [PassConfigError(pass_type, None, " ".join(problem.split())[:500])]
    raise PassConfigProblems.of(errors)


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


def search_space(
    cls: Any, accelerator: Any, parameters: Mapping[str, Any], *, pass_type: str
) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """The search space of ``cls`` for ``parameters`` as Olive's engine makes it with search
    on (``get_config_params(..., disable_search=False)``): its search parameters (Olive's
    objects) by name; the values Olive fixed for the parameters written as searches that
    are not searched (one value to try), as JSON values; the parameters ``parameters``
    writes as searches (``"SEARCHABLE_VALUES"``, a search parameter object, a list Olive
    reads as the values to try); and those of them written ``"SEARCHABLE_VALUES"`` that have
    no searchable values (Olive takes their default). Parameters Olive does not know are left
    out (the pass's own validation names them). :class:`PassConfigError` naming each
    parameter Olive refuses."""
    from pydantic import ValidationError

    quiet()
    config_class, defaults = cls.get_config_class(accelerator, disable_search=False)
    known = {name: value for name, value in parameters.items() if name in config_class.model_fields}
    written = _written_searches(cls, known, defaults)
    unsearchable = [
        name for name in written
        if known[name] == "SEARCHABLE_VALUES" and defaults[name].search_defaults is None
    ]  # fmt: skip
    try:
        with _olive_silent():
            _, fixed, space = cls.get_config_params(accelerator, dict(known), disable_search=False)
    except ValidationError as error:
        errors = _problems(error, pass_type)
        raise PassConfigProblems.of(errors) from None
    except Exception as error:  # Olive's resolution raises whatever bad input makes it
        problem = f"Olive cannot search this configuration: {type(error).__name__}: {error}"
        raise PassConfigError(pass_type, None, " ".join(problem.split())[:500]) from None
    one_value = {name: fixed[name] for name in written if name in fixed}
    return space, as_json(one_value), written, unsearchable


def _written_searches(cls: Any, known: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    from olive.search.search_parameter import SearchParameter

    identified = cls._identify_search_values(dict(known), defaults)  # lists become Categorical
    return [
        name for name, value in identified.items()
        if isinstance(value, SearchParameter) or value == "SEARCHABLE_VALUES"
        or (isinstance(value, dict) and value.get("olive_parameter_type") == "SearchParameter")
    ]  # fmt: skip


def search_samples(
    spaces: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    strategy: Mapping[str, Any],
    *,
    limit: int,
) -> tuple[int, list[dict[str, tuple[int, dict[str, Any]]] | None]]:
    """The points Olive's ``SearchStrategy`` (``strategy``: its config, joint) draws from
    ``spaces`` (each pass's name and its configs' search parameters, in order): the number
    of points of the space, and each sample as ``{pass: (config index, parameters)}`` in
    Olive's order, ``None`` for a sample Olive prunes (a value invalid for the others).
    Nothing is drawn (an empty list) when more than ``limit`` samples would be."""
    from olive.search.search_strategy import SearchStrategy

    quiet()
    search = SearchStrategy(dict(strategy))
    search.initialize(dict(spaces), "input", {})
    size = search.max_samples
    drawn = min(size, search.config.sampler_config.max_samples or size)
    if search.config.max_iter is not None:
        drawn = min(drawn, search.config.max_iter + 1)  # Olive stops after passing max_iter
    if drawn > limit:
        return size, []
    samples: list[dict[str, tuple[int, dict[str, Any]]] | None] = []
    for sample in search:
        configs = sample.passes_configs
        samples.append(None if configs is None else {
            name: (int(chosen["index"]), as_json(dict(chosen["params"])))
            for name, chosen in configs.items()
        })  # fmt: skip
    return size, samples


def as_json(value: Any) -> Any:
    """``value`` with Olive's enums as their values and tuples as lists: JSON values."""
    if isinstance(value, enum.Enum):
        return as_json(value.value)
    if isinstance(value, Mapping):
        return {str(key): as_json(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(item) for item in value]
    return value


@contextlib.contextmanager
def _olive_silent() -> Iterator[None]:
    """Olive's logs off: what goes wrong comes back as its exceptions, and what it warns of
    (a parameter without searchable values) the caller says in its notes."""
    logger = logging.getLogger("olive")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def handler_for(model_dir: Path, model_type: str, settings: Mapping[str, Any]) -> Any:
    """The Olive handler of the model in ``model_dir``: ``HfModelHandler`` or
    ``PyTorchModelHandler`` with the input model's settings (a ``model_path`` among them
    replaces ``model_dir``: ``None`` for a model its loader builds), ``ONNXModelHandler``
    of its ``model.onnx``, or of ``model_dir`` itself when it is a workflow's ONNX file, or
    ``OpenVINOModelHandler`` of its IR pair."""
    quiet()
    if model_type == "pytorch":
        from olive.model import PyTorchModelHandler

        return PyTorchModelHandler(**{"model_path": str(model_dir), **settings})
    if model_type == "onnx":
        from olive.model import ONNXModelHandler

        name = None if model_dir.is_file() else ONNX_MODEL_FILE
        return ONNXModelHandler(model_path=str(model_dir), onnx_file_name=name, **dict(settings))
    if model_type == "openvino":
        from olive.model import OpenVINOModelHandler

        return OpenVINOModelHandler(model_path=str(model_dir), **dict(settings))
    from olive.model import HfModelHandler

    return HfModelHandler(model_path=str(model_dir), **dict(settings))
