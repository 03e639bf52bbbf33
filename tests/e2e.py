"""The end-to-end tests' helpers, written once: the real ``modelcache`` command, in a
subprocess or in this process, workflow configs over the tiny BERT, containers on Azurite,
and what a run left.

The session fixtures built from them (the tiny model, the published container and its
copies) are in ``conftest.py``. Every command runs offline (``HF_HUB_OFFLINE``), without
progress bars, and with no cloud credential or transfer tuning but the ones a test gives:
the developer's own environment never leaks into a run.

A command in a subprocess (:func:`modelcache`) spends seconds starting Python and importing
torch before it does anything; the same command in this process (:func:`modelcache_here`),
once the worker has imported them, takes a tenth of a second for the tiny model's cheap
passes. So the tests run it here unless what they check is the process itself (signals,
concurrent runners, imports, what a shell sees); ``run``, ``plan`` and the ``cache`` commands
also keep a test or more in a subprocess (``test_cli_e2e.py``, ``test_cache_cli.py``).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from modelcache.store import Manifest, blob_name, parse_manifest_name

ENTRIES = "modelcache-v1/entries/"
BLOBS = "modelcache-v1/blobs/"
OUTPUT_MARKER = ".modelcache-output.json"
#: The connection string's environment variable, and the store's transfer tuning
#: (``modelcache.runner.cloud.TRANSFER_VARIABLE``; a literal, so this module imports no runner).
CONNECTION_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
TRANSFER_VARIABLE = "MODELCACHE_AZURE_TRANSFER"

# ---------------------------------------------------------------------------------------------
# Workflows

HALF = {"type": "TorchDtypeCast", "dtype": "float16"}
PRUNE = {"type": "MagnitudePruning", "sparsity": 0.5}
#: The standard tiny workflow: two cheap passes (a cast to float16, then magnitude pruning)
#: whose outputs share their tokenizer files. The session publishes it once (``published``).
TINY_PASSES: dict[str, dict[str, Any]] = {"half": HALF, "prune": PRUNE}
#: The ONNX chain: conversion (the slow step), dynamic quantization, graph optimization.
ONNX_PASSES: dict[str, dict[str, Any]] = {
    "convert": {"type": "OnnxConversion"},
    "quantize": {"type": "OnnxDynamicQuantization"},
    "optimize": {"type": "OrtGraphOptimization"},
}


def changed(
    passes: Mapping[str, Mapping[str, Any]], **parameters: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """``passes`` with the parameters of some passes changed: ``changed(p, prune={...})``."""
    result = {name: dict(config) for name, config in passes.items()}
    for name, values in parameters.items():
        result[name].update(values)
    return result


def write_config(
    folder: Path,
    model: Path,
    passes: Mapping[str, Mapping[str, Any]],
    *,
    container: str | None = None,
    cloud: Mapping[str, Any] | None = None,
    evaluator: Mapping[str, Any] | None = None,
    cache: str = "cache",
    output: str = "out",
    name: str | None = None,
) -> Path:
    """Write a workflow config into ``folder`` (created if needed); its path.

    The cloud cache is ``container`` (by name, the account from the connection string) with
    the settings in ``cloud`` added, or ``cloud`` alone; neither: no cloud cache. The file is
    ``name``, or a new ``workflow-<random>.json`` so that configs can share a folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": dict(passes),
        "cache_dir": cache,
        "output_dir": output,
    }
    if evaluator is not None:
        document["evaluator"] = dict(evaluator)
    if container is not None:
        document["cloud_cache_config"] = {"container_name": container, **(cloud or {})}
    elif cloud is not None:
        document["cloud_cache_config"] = dict(cloud)
    path = folder / (name or f"workflow-{uuid.uuid4().hex[:8]}.json")
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Running the command


def environment(connection_string: str | None, transfer: str | None = None) -> dict[str, str]:
    """This process's environment for a command: offline, no progress bars, and exactly the
    connection string and transfer settings given (``None``: the variable is unset)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    given = {CONNECTION_VARIABLE: connection_string, TRANSFER_VARIABLE: transfer}
    for variable, value in given.items():
        env.pop(variable, None)
        if value is not None:
            env[variable] = value
    env.pop("MODELCACHE_PROGRESS", None)
    return env


def _command(args: tuple[str | Path, ...]) -> list[str]:
    return [sys.executable, "-m", "modelcache.runner.cli", *map(str, args)]


def modelcache(
    *args: str | Path,
    connection_string: str | None,
    transfer: str | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``python -m modelcache.runner.cli ARGS`` in ``cwd``, with the environment of
    :func:`environment`; the finished process, whatever its exit code."""
    return subprocess.run(
        _command(args),
        capture_output=True,
        text=True,
        env=environment(connection_string, transfer),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def start_modelcache(
    *args: str | Path, connection_string: str | None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """:func:`modelcache` started and not waited for; stdout and stderr are pipes."""
    return subprocess.Popen(
        _command(args),
        env=environment(connection_string),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(
    process: subprocess.Popen[str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Wait for a process of :func:`start_modelcache`; what :func:`modelcache` returns."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def modelcache_here(
    *args: str | Path,
    connection_string: str | None,
    transfer: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """:func:`modelcache`, in this process: ``modelcache.runner.cli.main(ARGS)`` with the
    environment of :func:`environment`, in ``cwd``; what :func:`modelcache` returns.

    stdout and stderr are captured at their file descriptors, so what native code writes
    there is seen too, as a shell would. A usage error (argparse's ``SystemExit``) is its
    exit code. What a command changes in its process (environment variables, the working
    folder, warning filters, logger levels) is put back once it returns; a bug's exception
    propagates, with its traceback, as the test's failure.
    """
    from modelcache.runner.cli import main

    argv = [str(arg) for arg in args]
    with _process_state(environment(connection_string, transfer), cwd), _output() as output:
        try:
            code = main(argv)
        except SystemExit as done:  # argparse: a usage error, --help, --version
            if isinstance(done.code, str):
                print(done.code, file=sys.stderr)
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
    return subprocess.CompletedProcess(
        ["modelcache", *argv], code, output["stdout"], output["stderr"]
    )


@contextlib.contextmanager
def _process_state(env: Mapping[str, str], cwd: Path | None) -> Iterator[None]:
    """Run in ``env`` and ``cwd``, with no handler on the root logger (pytest's), as in a new
    process: a record nobody handles reaches stderr. Then put back the environment, the
    working folder, the warning filters, the root's handlers and every logger's level
    (NOTSET for a logger made meanwhile)."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    root = logging.getLogger()
    handlers = root.handlers[:]
    levels = {name: logger.level for name, logger in _loggers()}
    _replace_environment(env)
    try:
        with warnings.catch_warnings():
            if cwd is not None:
                os.chdir(cwd)
            root.handlers.clear()
            yield
    finally:
        root.handlers[:] = handlers
        os.chdir(saved_cwd)
        _replace_environment(saved_env)
        for name, logger in _loggers():
            logger.setLevel(levels.get(name, logging.NOTSET))


def _loggers() -> Iterator[tuple[str, logging.Logger]]:
    yield "", logging.getLogger()
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):  # not a PlaceHolder
            yield name, logger


def _replace_environment(env: Mapping[str, str]) -> None:
    for variable in set(os.environ) - set(env):
        del os.environ[variable]
    for variable, value in env.items():
        if os.environ.get(variable) != value:
            os.environ[variable] = value


@contextlib.contextmanager
def _output() -> Iterator[dict[str, str]]:
    """Python's stdout and stderr, and file descriptors 1 and 2, into files of their own, as
    a subprocess's pipes would take them; yields where ``stdout`` and ``stderr`` are put,
    once the block is over."""
    captured: dict[str, str] = {}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        streams = sys.stdout, sys.stderr
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            sys.stdout = _text(1, "strict")  # as Python sets them up for a pipe
            sys.stderr = _text(2, "backslashreplace")
            yield captured
        finally:
            sys.stdout, sys.stderr = streams
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            captured["stdout"], captured["stderr"] = _read(out), _read(err)


def _text(fd: int, errors: str) -> io.TextIOWrapper:
    # Unbuffered, and never closing the descriptor: the files hold every write at once.
    raw = open(fd, "wb", buffering=0, closefd=False)  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, write_through=True)


def _read(file: Any) -> str:
    file.seek(0)
    text: str = file.read().decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # text=True's newlines


def run_ok(
    config: Path, connection_string: str | None, *switches: str, here: bool = True
) -> dict[str, Any]:
    """``modelcache run CONFIG --quiet --report ...``, in this process (or, if not ``here``,
    in a subprocess); the parsed report. Fails unless it exits 0 without a traceback."""
    report = config.with_name(f"{config.stem}.{uuid.uuid4().hex[:6]}.report.json")
    command = modelcache_here if here else modelcache
    result = command(
        "run", config, "--quiet", "--report", report, *switches,
        connection_string=connection_string,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(report.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def steps(report: Mapping[str, Any], kind: str) -> list[str]:
    """The passes of the report's steps of ``kind`` that ended ``done``, in order."""
    return [s["pass"] for s in report["steps"] if s["kind"] == kind and s["outcome"] == "done"]


def unreachable_account() -> str:
    """A connection string of an account on a local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


# ---------------------------------------------------------------------------------------------
# Containers


def new_container(connection_string: str, prefix: str = "e2e") -> str:
    """Create a new, empty container; its name."""
    from azure.storage.blob import BlobServiceClient

    name = f"{prefix}-{uuid.uuid4().hex[:24]}"
    with BlobServiceClient.from_connection_string(connection_string) as service:
        service.create_container(name)
    return name


def copy_container(connection_string: str, source: str, target: str) -> None:
    """Every blob of ``source``, with its metadata and content settings, into ``target``."""
    from azure.storage.blob import ContainerClient

    with (
        ContainerClient.from_connection_string(connection_string, source) as src,
        ContainerClient.from_connection_string(connection_string, target) as dst,
    ):
        for blob in src.list_blobs(include=["metadata"]):
            data = src.download_blob(blob.name).readall()
            dst.upload_blob(
                blob.name, data, metadata=blob.metadata,
                content_settings=blob.content_settings,
            )  # fmt: skip


def blobs(connection_string: str, container: str, prefix: str = "") -> dict[str, str]:
    """Blob name -> etag, for every blob under ``prefix``."""
    from azure.storage.blob import ContainerClient

    with ContainerClient.from_connection_string(connection_string, container) as client:
        return {b.name: b.etag for b in client.list_blobs(name_starts_with=prefix or None)}


def container_sas_url(azurite: Any, container: str, *, write: bool) -> str:
    """A URL of ``container`` with a SAS signed by the account key: read and list, and with
    ``write`` also add, create and write (``racwl``)."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    from modelcache.azure.testing import ACCOUNT_KEY, ACCOUNT_NAME

    now = datetime.datetime.now(datetime.UTC)
    token = generate_container_sas(
        account_name=ACCOUNT_NAME,
        container_name=container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(
            read=True, list=True, add=write, create=write, write=write
        ),
        start=now - datetime.timedelta(minutes=5),
        expiry=now + datetime.timedelta(hours=2),
    )
    return f"{azurite.account_url}/{container}?{token}"


def intact_manifests(connection_string: str, container: str) -> dict[str, Manifest]:
    """The container's entries by key, having checked that every manifest parses and names
    only blobs that exist with the right size and SHA-256: that no partial entry is visible."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import ContainerClient

    manifests: dict[str, Manifest] = {}
    with ContainerClient.from_connection_string(connection_string, container) as client:
        for name in client.list_blob_names(name_starts_with=ENTRIES):
            key = parse_manifest_name(name)
            assert key is not None, f"{name} is not a manifest's name"
            manifest = Manifest.from_json(client.download_blob(name).readall(), key=key)
            for item in manifest.files:
                try:
                    data = client.download_blob(blob_name(item.sha256)).readall()
                except ResourceNotFoundError:
                    raise AssertionError(
                        f"entry {key[:12]} is visible, the blob of {item.path} is not"
                    ) from None
                assert len(data) == item.size, f"entry {key[:12]}: {item.path} is cut short"
                assert hashlib.sha256(data).hexdigest() == item.sha256, (key, item.path)
            manifests[key] = manifest
    return manifests


def stray_blobs(
    connection_string: str, container: str, manifests: Mapping[str, Manifest]
) -> set[str]:
    """The content blobs of the container that none of ``manifests`` names."""
    named = {blob_name(item.sha256) for m in manifests.values() for item in m.files}
    return set(blobs(connection_string, container, BLOBS)) - named


# ---------------------------------------------------------------------------------------------
# Folders


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, by relative POSIX path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def model_files(folder: Path) -> dict[str, bytes]:
    """:func:`files` of an output folder without its marker: the model alone."""
    return {path: data for path, data in files(folder).items() if path != OUTPUT_MARKER}


# ---------------------------------------------------------------------------------------------
# The published container


@frozen
class Published:
    """A cold ``modelcache run`` of ``passes`` over the tiny model, into an empty container of
    the session's Azurite and an empty local cache: its report, ``cache`` and ``output``.

    Shared by the whole session: tests never change it, they work on copies
    (:meth:`copy_container`, :meth:`copy_cache`).
    """

    passes: dict[str, dict[str, Any]]
    connection_string: str
    container: str
    folder: Path
    report: dict[str, Any]

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    @property
    def output(self) -> Path:
        return self.folder / "out"

    def copy_container(self, prefix: str = "warm") -> str:
        """A new container holding a copy of every blob the cold run left; its name."""
        container = new_container(self.connection_string, prefix)
        copy_container(self.connection_string, self.container, container)
        return container

    def copy_cache(self, target: Path) -> Path:
        """A copy of the cold run's local cache at ``target`` (which must not exist)."""
        shutil.copytree(self.cache, target)
        return target


#: The session fixture ``publish`` (``conftest.py``): ``publish(passes)`` is the
#: :class:`Published` cold run of ``passes``, made on the first call and shared after.
Publish = Callable[[dict[str, dict[str, Any]]], Published]


def config_file(folder: Path, document: Mapping[str, Any]) -> Path:
    """``document`` written as ``folder/workflow.json``, for commands run in-process."""
    path = folder / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def workflow(model: Path | str, **extra: Any) -> dict[str, Any]:
    """The smallest workflow over ``model`` (one conversion), with ``extra`` top-level fields."""
    return {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": {"convert": {"type": "OnnxConversion"}},
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# Sweeps

#: The end-to-end sweeps' matrix: ``prune`` shared by all, ``prune_more`` by two variants
#: each, ``cast`` one each.
SWEEP_SPARSITIES = (0.6, 0.7)
SWEEP_DTYPES = ("float16", "bfloat16")


def sweep_workflow(
    model: Path, sparsity: float, dtype: str, *, container: str | None = None
) -> dict[str, Any]:
    """The end-to-end sweeps' workflow at one point of their matrix (with the cloud on
    ``container``, if given), each variant's size measured."""
    document: dict[str, Any] = {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": {
            "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
            "prune_more": {"type": "MagnitudePruning", "sparsity": sparsity},
            "cast": {"type": "TorchDtypeCast", "dtype": dtype},
        },
        "evaluator": {"metrics": ["size"]},
        "cache_dir": "cache",
        "output_dir": "out",
    }
    if container is not None:
        document["cloud_cache_config"] = {"container_name": container}
    return document


def write_sweep(
    folder: Path, base: Mapping[str, Any], matrix: Mapping[str, list[Any]] | None = None
) -> Path:
    """``base.json`` (the workflow ``base``) and ``sweep.json`` (it under ``matrix``; by
    default every sparsity and dtype: four variants) in ``folder``; the sweep file's path."""
    if matrix is None:
        matrix = {"passes.prune_more.sparsity": list(SWEEP_SPARSITIES),
                  "passes.cast.dtype": list(SWEEP_DTYPES)}  # fmt: skip
    (folder / "base.json").write_text(json.dumps(base))
    sweep = folder / "sweep.json"
    sweep.write_text(json.dumps({"base": "base.json", "matrix": matrix}))
    return sweep


def sweep_here(arguments: list[str]) -> int:
    """``modelcache sweep ARGUMENTS`` in this process, through its own parser."""
    import argparse

    from modelcache.runner.cli.sweep import add_arguments, handle

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return handle(parser.parse_args(arguments))


def sweep_steps(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step record of a sweep report: its segments' and its variants' own runs'."""
    steps = [step for segment in document["segments"] for step in segment["steps"]]
    return steps + [step for v in document["variants"] for step in v["run"]["steps"]]


def sweep_runs(document: Mapping[str, Any]) -> list[str]:
    """The key of every pass a sweep report says was run, in its segments and its variants'
    own runs, once per run."""
    return [step["key"] for step in sweep_steps(document)
            if (step["kind"], step["outcome"]) == ("run", "done")]  # fmt: skip
