"""The architecture, checked by reading the source.

The import-linter contracts in ``pyproject.toml`` *forbid* a list of modules. This test is
their complement: an *allowlist*. Every import in the planner must be from the standard
library, less the modules that reach the world (files, clock, randomness, environment,
network, processes, threads, logging), or from attrs, cattrs or the planner itself. A new
dependency, or a new way to do IO, fails here even if no one thought to forbid it.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANNER = ROOT / "packages/planner/src/modelcache/planner"
STORE = ROOT / "packages/store/src"
AZURE_ADAPTER = ROOT / "packages/azure_adapter/src"

# Standard-library modules that do IO or read the world, by top-level name.
WORLDLY = frozenset(
    {
        # files, processes, the environment
        "os", "pathlib", "shutil", "subprocess", "tempfile", "io", "glob", "fileinput",
        "mmap", "fcntl", "pty", "tty", "pwd", "grp", "getpass", "platform", "sysconfig",
        "site", "sys", "builtins", "importlib", "pkgutil", "runpy", "ctypes", "sqlite3",
        "dbm", "shelve", "zipfile", "tarfile", "gzip", "bz2", "lzma",
        # network
        "socket", "ssl", "select", "selectors", "urllib", "http", "ftplib", "smtplib",
        "imaplib", "poplib", "socketserver", "xmlrpc", "webbrowser", "mailbox",
        # clock and randomness
        "time", "datetime", "zoneinfo", "calendar", "random", "secrets", "uuid", "sched",
        # concurrency and signals
        "threading", "_thread", "asyncio", "multiprocessing", "concurrent", "signal",
        # observability: the planner explains itself through the data it returns
        "logging", "warnings", "traceback", "faulthandler", "tracemalloc",
    }
)  # fmt: skip
PLANNER_ALLOWED = (frozenset(sys.stdlib_module_names) - WORLDLY) | {"attrs", "cattrs"}

# Builtins that are IO, or that import or run code by name.
WORLDLY_BUILTINS = frozenset({"open", "print", "input", "breakpoint", "__import__", "exec", "eval"})


def python_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in ``path``; relative imports, which stay
    inside their package, are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            # ``from modelcache import runner`` imports the module modelcache.runner.
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def planner_violations(path: Path) -> list[str]:
    found = []
    lines_seen = set()
    for line, module in imports(path):
        top = module.partition(".")[0]
        if module.startswith("modelcache.planner") or module == "modelcache":
            continue
        # ``from typing import Any`` yields typing.Any too: judge it by its top-level name.
        if top in PLANNER_ALLOWED or line in lines_seen:
            continue
        lines_seen.add(line)
        found.append(f"{path.name}:{line}: imports {module}")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in WORLDLY_BUILTINS
        ):
            found.append(f"{path.name}:{node.lineno}: calls {node.func.id}()")
    return found


def test_the_planner_imports_only_the_standard_library_attrs_and_cattrs() -> None:
    files = python_files(PLANNER)
    assert files, f"no planner sources under {PLANNER}"
    violations = [problem for path in files for problem in planner_violations(path)]
    assert violations == []


@pytest.mark.parametrize(
    ("source", "culprit"),
    [
        ("import os\n", "imports os"),
        ("from pathlib import Path\n", "imports pathlib"),
        ("import urllib.request\n", "imports urllib.request"),
        ("from time import monotonic\n", "imports time"),
        ("import numpy as np\n", "imports numpy"),
        ("from modelcache.runner import cli\n", "imports modelcache.runner"),
        ("from modelcache import azure\n", "imports modelcache.azure"),
        ("from modelcache.store import Manifest\n", "imports modelcache.store"),
        ("def f():\n    print('hello')\n", "calls print()"),
        ("def f(p):\n    return open(p).read()\n", "calls open()"),
    ],
)
def test_the_allowlist_catches_what_it_must(tmp_path: Path, source: str, culprit: str) -> None:
    module = tmp_path / "_bad.py"
    module.write_text(f"import json\nfrom attrs import frozen\nfrom ._json import thaw\n{source}")
    (problem,) = planner_violations(module)
    assert culprit in problem


def test_the_allowlist_forbids_everything_import_linter_forbids() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (planner_contract,) = [
        contract
        for contract in config["tool"]["importlinter"]["contracts"]
        if contract["source_modules"] == ["modelcache.planner"]
    ]
    still_allowed = [
        module
        for module in planner_contract["forbidden_modules"]
        if module.partition(".")[0] in PLANNER_ALLOWED
    ]
    assert still_allowed == []


def test_the_planner_distribution_depends_on_attrs_and_cattrs_only() -> None:
    project = tomllib.loads((ROOT / "packages/planner/pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]
    names = sorted(
        requirement.split(">")[0].split("=")[0].split("<")[0].strip()
        for requirement in project["dependencies"]
    )
    assert names == ["attrs", "cattrs"]


def test_the_azure_adapter_never_imports_the_runner() -> None:
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in python_files(AZURE_ADAPTER)
        for line, module in imports(path)
        if module == "modelcache.runner" or module.startswith("modelcache.runner.")
    ]
    assert violations == []


def test_the_store_imports_neither_the_runner_nor_an_adapter() -> None:
    violations = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in python_files(STORE)
        for line, module in imports(path)
        if module.partition(".")[0] in {"azure", "torch", "onnx", "onnxruntime", "rich"}
        or module.startswith(("modelcache.runner", "modelcache.azure"))
    ]
    assert python_files(STORE), f"no store sources under {STORE}"
    assert violations == []


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_the_runner_errors_tree_names_every_error_the_runner_raises() -> None:
    """errors.py draws the family; an error added anywhere must be drawn there."""
    import importlib
    import pkgutil

    import modelcache.runner
    from modelcache.runner import errors

    runner = modelcache.runner.__path__
    for module in pkgutil.walk_packages(runner, "modelcache.runner."):
        if module.name.split(".")[2] not in ("olive", "tiny_model"):  # Olive's need olive-ai
            importlib.import_module(module.name)
    for name in ("modelcache.runner.olive._errors", "modelcache.ray"):
        importlib.import_module(name)
    drawn = errors.__doc__ or ""
    found = {cls.__name__ for cls in _subclasses(errors.RunnerError)}
    assert {"WorkerLost", "RayUnavailable", "OlivePassFailed", "CacheRequired"} <= found
    assert sorted(name for name in found if name not in drawn) == []
