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

import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NewType
from urllib.parse import urlsplit

import cattrs
from attrs import evolve, field, frozen, validators
from cattrs.v import format_exception

from modelcache.store import Fault

from .errors import RunnerError

__all__ = [
    "CloudCacheConfig",
    "ConfigError",
    "EvaluatorConfig",
    "InputModelConfig",
    "WorkflowConfig",
    "check_directories",
    "load_config",
    "naming_config_file",
    "parse_config",
]

METRICS = ("size", "latency", "fidelity")

#: The passes in document order: (name, {"type": ..., parameters...}).
Passes = tuple[tuple[str, Mapping[str, Any]], ...]
#: ``input_model.model_path``: a directory, ``package:<package>/<folder>`` or a hub id.
ModelPath = NewType("ModelPath", str)
#: ``cloud_cache_config.account_url``: an http(s) URL, perhaps carrying a SAS.
AccountUrl = NewType("AccountUrl", str)

#: The longest file or folder name, and path, most file systems accept, in bytes.
_NAME_MAX = 255
_PATH_MAX = 4096


class ConfigError(RunnerError, ValueError):
    """The workflow configuration is wrong; ``str()`` names the file, the path and the fix.

    ``path`` is the JSON path of the offending value (``$.passes.convert``), ``problem``
    what is wrong with it and how to fix it, ``source`` the config file (empty when the
    raiser does not know it). Never changed once raised: :meth:`located` makes the copy
    that names the file.
    """

    fault: ClassVar[Fault] = "user"

    def __init__(self, *, path: str, problem: str, source: str = "") -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem
        self.source = source

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.path}: {self.problem}"

    def located(self, source: str) -> ConfigError:
        """This error naming the config file ``source``; itself if it names one already."""
        if self.source:
            return self
        return ConfigError(path=self.path, problem=self.problem, source=source)


@contextmanager
def naming_config_file(source: Path | str | None) -> Iterator[None]:
    """Run the block; a :class:`ConfigError` it raises that names no file is raised again,
    from it, naming ``source`` (the config the block works from). ``None``: left alone."""
    try:
        yield
    except ConfigError as error:
        if source is None or error.source:
            raise
        raise error.located(str(source)) from error


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
    model_path: ModelPath
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
    account_url: AccountUrl | None = None
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


_converter.register_structure_hook(Path, _structure_path)

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


_converter.register_structure_hook(ModelPath, _structure_model_path)


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


_converter.register_structure_hook(AccountUrl, _structure_account_url)


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
        if not name or not name.isprintable():
            raise ValueError(
                f"pass name {name!r} must be a non-empty name without control characters"
            )
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
    """Read and validate a workflow config file; :class:`ConfigError` for any file that is
    not a valid workflow, whatever its bytes."""
    document = _read_json(path, _read_text(path))
    config = parse_config(document, base_dir=path.parent.resolve(), source=str(path))
    check_directories(config, source=str(path))
    return config


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problem = "no such file"
    except OSError as error:
        problem = f"cannot read: {error.strerror}"
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            problem = (
                f"not UTF-8 text: byte {data[error.start]:#04x} at offset {error.start}; "
                "save the file as UTF-8"
            )
    raise ConfigError(path="$", problem=problem, source=str(path))


def _read_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"not JSON: {error.msg} at line {error.lineno} column {error.colno}"
    except RecursionError:
        problem = "not usable JSON: nested too deeply"
    except ValueError:  # Python's limit on the digits of an integer
        limit = sys.get_int_max_str_digits()
        problem = f"not usable JSON: a number has more than {limit} digits"
    raise ConfigError(path="$", problem=problem, source=str(path))


def check_directories(config: WorkflowConfig, *, source: str = "") -> None:
    """:class:`ConfigError` if ``cache_dir`` or ``output_dir`` cannot be a directory because
    it, or a folder above it, is a file. Reads the file system, writes nothing."""
    for name, path in (("cache_dir", config.cache_dir), ("output_dir", config.output_dir)):
        resolved = config.resolve(path)
        for candidate in (resolved, *resolved.parents):
            try:
                exists = candidate.exists()
            except OSError as error:  # too long a path, a folder we may not look into
                raise ConfigError(
                    path=f"$.{name}",
                    problem=f"cannot use {resolved}: {error.strerror}; choose another {name}",
                    source=source,
                ) from None
            if exists:
                if not candidate.is_dir():
                    below = "" if candidate == resolved else f", so {resolved} cannot be a folder"
                    raise ConfigError(
                        path=f"$.{name}",
                        problem=f"{candidate} is a file{below}; choose another {name}",
                        source=source,
                    )
                break
