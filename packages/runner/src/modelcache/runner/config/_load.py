"""A workflow config file to a :class:`WorkflowConfig`: its bytes read and decoded, its JSON
(or YAML, for a ``.yaml`` or ``.yml`` file, as Olive reads them) parsed, and its
directories checked against the file system."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ._cloud import NO_OVERRIDES, CloudOverrides
from ._errors import ConfigError, Problem
from ._model import WorkflowConfig
from ._parse import parse_config
from ._passes import check_passes

__all__ = ["YAML_SUFFIXES", "check_directories", "load_config", "read_document"]


#: The suffixes of a config read as YAML; any other is read as JSON.
YAML_SUFFIXES = (".yaml", ".yml")


def load_config(path: Path, *, overrides: CloudOverrides = NO_OVERRIDES) -> WorkflowConfig:
    """Read and validate a workflow config file (YAML if its name ends in ``.yaml`` or
    ``.yml``, else JSON); :class:`ConfigError` for any file that is not a valid workflow,
    whatever its bytes, naming every problem found.

    :param overrides: the command line's account and container, over the config's.
    """
    document = read_document(path)
    config = parse_config(
        document, base_dir=path.parent.resolve(), source=str(path), overrides=overrides
    )
    problems = _directory_problems(config)
    if problems:
        raise ConfigError.of([*problems, *check_passes(config.passes)[1]], source=str(path))
    return config


def read_document(path: Path) -> Any:
    """The JSON values of the file ``path``: YAML if its name ends in ``.yaml`` or ``.yml``,
    else JSON; :class:`ConfigError` naming the file for one that cannot be read or parsed."""
    text = _read_text(path)
    if path.suffix.lower() in YAML_SUFFIXES:
        return _read_yaml(path, text)
    return _read_json(path, text)


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


def _read_yaml(path: Path, text: str) -> Any:
    """The YAML document ``text``, read as JSON values only (see :func:`_json_loader`)."""
    import yaml  # type: ignore[import-untyped]

    try:
        document = yaml.load(text, Loader=_json_loader())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = f"not YAML: {error.problem or error.context}{where}"
    except yaml.YAMLError as error:
        problem = f"not YAML: {error}"
    except RecursionError:
        problem = "not usable YAML: nested too deeply"
    except ValueError as error:  # a key that is not a string, a timestamp, too many digits
        problem = f"not usable YAML: {error}"
    else:
        return document
    raise ConfigError(path="$", problem=problem, source=str(path))


#: Aliases one YAML config may use: each can stand for a whole tree, and a few nested ones
#: (the "billion laughs") for more values than any machine can walk.
_MAX_ALIASES = 100


def _json_loader() -> type[Any]:
    """A ``yaml.SafeLoader`` that makes JSON values only: a date is kept as the text written
    (Olive's configs hold none), mapping keys must be strings, and a set or binary value is
    a problem at its line, as are more than :data:`_MAX_ALIASES` aliases."""
    import yaml
    from yaml.constructor import ConstructorError, SafeConstructor  # type: ignore[import-untyped]

    class JsonLoader(yaml.SafeLoader):  # type: ignore[misc]
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > _MAX_ALIASES:
                    mark = self.peek_event().start_mark
                    raise ConstructorError(None, None, f"more than {_MAX_ALIASES} aliases", mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            for key, _value in node.value:
                if key.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"):
                    raise ConstructorError(None, None, "a key must be a string; quote it",
                                           key.start_mark)  # fmt: skip
            return super().construct_mapping(node, deep=deep)

    def refuse(loader: Any, node: Any) -> Any:
        kind = node.tag.rsplit(":", 1)[-1]
        raise ConstructorError(None, None, f"a {kind} is not a JSON value", node.start_mark)

    JsonLoader.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
    for kind in ("set", "binary", "omap", "pairs"):
        JsonLoader.add_constructor(f"tag:yaml.org,2002:{kind}", refuse)
    return JsonLoader


def check_directories(config: WorkflowConfig, *, source: str = "") -> None:
    """:class:`ConfigError` if ``cache_dir`` or ``output_dir`` cannot be a directory because
    it, or a folder above it, is a file. Reads the file system, writes nothing."""
    problems = _directory_problems(config)
    if problems:
        raise ConfigError.of(problems, source=source)


def _directory_problems(config: WorkflowConfig) -> list[Problem]:
    problems = []
    for name, path in (("cache_dir", config.cache_dir), ("output_dir", config.output_dir)):
        resolved = config.resolve(path)
        for candidate in (resolved, *resolved.parents):
            try:
                exists = candidate.exists()
            except OSError as error:  # too long a path, a folder we may not look into
                problem = f"cannot use {resolved}: {error.strerror}; choose another {name}"
                problems.append(Problem(path=f"$.{name}", problem=problem))
                break
            if exists:
                if not candidate.is_dir():
                    below = "" if candidate == resolved else f", so {resolved} cannot be a folder"
                    problem = f"{candidate} is a file{below}; choose another {name}"
                    problems.append(Problem(path=f"$.{name}", problem=problem))
                break
    return problems
