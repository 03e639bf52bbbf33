"""A workflow config file to a :class:`WorkflowConfig`: its bytes read and decoded, its
JSON parsed, and its directories checked against the file system."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ._errors import ConfigError, Problem
from ._model import WorkflowConfig
from ._parse import parse_config, with_pass_problems

__all__ = ["check_directories", "load_config"]


def load_config(path: Path) -> WorkflowConfig:
    """Read and validate a workflow config file; :class:`ConfigError` for any file that is
    not a valid workflow, whatever its bytes, naming every problem found."""
    document = _read_json(path, _read_text(path))
    config = parse_config(document, base_dir=path.parent.resolve(), source=str(path))
    problems = _directory_problems(config)
    if problems:
        raise ConfigError.of(with_pass_problems(problems, document), source=str(path))
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
