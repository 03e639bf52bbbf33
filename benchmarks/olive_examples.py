"""How many of Olive's own example workflow configs ``modelcache plan`` accepts, offline.

Takes a folder of Olive example configs (JSON, or YAML: ``.yaml``/``.yml``; default
``/tmp/olive-examples``, collected from ``microsoft/Olive``'s ``examples/``; they are
reference data and are kept out of this repository). The folder is either flat (every
config file directly in it) or laid out as Olive's ``examples/`` is (``bert/bert_ptq_cpu.json``
beside ``bert/user_script.py``...), or both: a file directly in the folder is a config, as
before; a file in a subfolder is one when it holds a mapping with ``input_model`` and
``passes`` (data files, DeepSpeed or Quark settings beside it are not). For each config:

1. loads it and replaces its input model by a local one of the same kind, changing nothing
   else: an ``HfModel``'s ``model_path`` becomes a tiny BERT-like Hugging Face folder (its
   ``task``, ``io_config``, ``load_kwargs``... are kept); a ``PyTorchModel`` keeps everything
   but a hub ``model_path`` (``org/name``), which becomes the same folder; an ``OnnxModel``'s
   ``model_path`` becomes a tiny ONNX file (``build_tiny_onnx``: one MatMul, Add and Relu,
   weights beside it in an external-data file), which Olive reads whatever its
   ``onnx_file_name`` says, as it reads any ``model_path`` that is a file. ``cache_dir`` and
   ``output_dir`` (at the
   top, in ``engine`` or in ``cache_config``) move into the temporary folder when they are
   plain local paths; URLs and Azure references stay as written;
2. writes it to a temporary folder and runs ``modelcache plan CONFIG --no-cloud`` there, as
   its own process, for at most 120 seconds. A config from a subfolder gets its folder's
   other files (and subfolders) copied beside it first, so that its relative
   ``user_script``, ``model_script``, ``script_dir``, ``data_dir``... resolve as they do in
   Olive, which reads them from the working directory, the example's folder; a config
   directly in the folder is copied alone, as before;
3. classifies the outcome: *accepted* (exit 0), *rejected* (exit 2: the config's errors,
   one ``error:`` line each), *traceback* (any output containing ``Traceback``, whatever the
   exit status: a bug), or *other* (another exit status, a timeout, an unreadable file).

Prints how many configs were accepted, every traceback's last line, and the most common
error lines (the config's file name taken out) with, for each, one config (named by its path
in the folder) that shows it;
``--verbose`` adds one line per config and the last lines of each traceback. Always exits 0
once the folder exists (2 if it does not): the figure is the result, not a pass or a fail.

Run: ``.venv/bin/python benchmarks/olive_examples.py [FOLDER] [--verbose] [--jobs N]``.
Needs torch and transformers (the tiny model is built with them); touches no network.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

DEFAULT_FOLDER: Final = Path("/tmp/olive-examples")
TIMEOUT_SECONDS: Final = 120
#: The command line, run by this interpreter (the project's virtual environment).
MODELCACHE: Final = (sys.executable, "-m", "modelcache.runner.cli")
SUFFIXES: Final = frozenset({".json", ".yaml", ".yml"})
#: A Hugging Face hub id: ``org/name``, with no file suffix a local model file would have.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_MODEL_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".onnx", ".pb", ".zip", ".safetensors")

Kind = Literal["accepted", "rejected", "traceback", "other"]
KINDS: Final[tuple[Kind, ...]] = ("accepted", "rejected", "traceback", "other")


@dataclass(frozen=True, kw_only=True)
class LocalModels:
    """The local stand-ins for input models: a Hugging Face folder and an ONNX file."""

    hf: Path
    onnx: Path


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What ``modelcache plan`` made of one config. ``errors`` are its ``error:`` lines, as
    printed; ``detail`` is the last lines of a traceback, or why it is *other*;
    ``changes`` say what was replaced before the run."""

    name: str
    kind: Kind
    status: int | None = None
    errors: tuple[str, ...] = ()
    detail: tuple[str, ...] = ()
    changes: tuple[str, ...] = field(default=())


# -- the config: its input model and folders replaced, nothing else --------------------------


def localize(
    config: dict[str, Any], models: LocalModels, workdir: Path
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A copy of ``config`` with its input model local and its local folders in ``workdir``,
    and one line per change made."""
    config = copy.deepcopy(config)
    changes = [*_replace_model(config.get("input_model"), models)]
    for holder, where in ((config, "$"), (config.get("engine"), "$.engine")):
        if isinstance(holder, dict):
            changes += _move_folders(holder, where, workdir)
    cache_config = config.get("cache_config")
    if isinstance(cache_config, dict):
        changes += _move_folders(cache_config, "$.cache_config", workdir)
    return config, tuple(changes)


def _replace_model(model: Any, models: LocalModels) -> Iterable[str]:
    if not isinstance(model, dict):
        return
    kind = str(model.get("type", "")).lower()
    # Configs before Olive 0.6 nest the handler's fields in "config".
    nested = isinstance(model.get("config"), dict) and "model_path" not in model
    holder, where = (model["config"], "config.") if nested else (model, "")
    old = holder.get("model_path")
    if kind == "hfmodel":
        holder["model_path"] = str(models.hf)
        yield f"input_model.{where}model_path {_shown(old)} -> tiny BERT"
    elif kind == "pytorchmodel":
        if _is_hub_id(old):
            holder["model_path"] = str(models.hf)
            yield f"input_model.{where}model_path {_shown(old)} -> tiny BERT"
        else:
            yield f"input_model.{where}model_path {_shown(old)} kept (PyTorchModel, not a hub id)"
    elif kind == "onnxmodel":
        holder["model_path"] = str(models.onnx)
        yield f"input_model.{where}model_path {_shown(old)} -> tiny ONNX"
    else:
        yield f"input_model of type {model.get('type')!r} kept: no local stand-in"


def _is_hub_id(value: Any) -> bool:
    return (
        isinstance(value, str)
        and _HUB_ID.fullmatch(value) is not None
        and not value.lower().endswith(_MODEL_FILE_SUFFIXES)
    )


def _move_folders(holder: dict[str, Any], where: str, workdir: Path) -> Iterable[str]:
    for name in ("cache_dir", "output_dir"):
        if name not in holder:
            continue
        value = holder[name]
        if isinstance(value, list):
            moved = [_local_folder(v, workdir / f"{name}-{i}") for i, v in enumerate(value)]
        else:
            moved = _local_folder(value, workdir / name)
        if moved != value:
            holder[name] = moved
            yield f"{where}.{name} {_shown(value)} -> temporary folder"


def _local_folder(value: Any, folder: Path) -> Any:
    """``folder`` in place of a plain local path; anything else (a URL, an Azure reference,
    an object) as it was."""
    if not isinstance(value, str) or "://" in value or value.lower().startswith("azureml"):
        return value
    return str(folder)


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- the outcome -----------------------------------------------------------------------------


def classify(name: str, status: int, output: str, changes: tuple[str, ...]) -> Outcome:
    """The outcome of a ``modelcache plan`` that exited with ``status`` and printed
    ``output`` (stdout and stderr). A traceback wins over any status: it is a bug."""
    lines = output.splitlines()
    errors = tuple(line for line in lines if line.startswith("error: "))
    if "Traceback" in output:
        start = next(i for i, line in enumerate(lines) if "Traceback" in line)
        tail = tuple(line for line in lines[start:] if line.strip())[-6:]
        return Outcome(name=name, kind="traceback", status=status, errors=errors, detail=tail,
                       changes=changes)  # fmt: skip
    kind: Kind = {0: "accepted", 2: "rejected"}.get(status, "other")  # type: ignore[assignment]
    detail = () if kind != "other" else tuple(lines[-3:])
    return Outcome(name=name, kind=kind, status=status, errors=errors, detail=detail,
                   changes=changes)  # fmt: skip


def normalized(line: str, config_name: str) -> str:
    """An error line without its ``error:`` label and the config's file name, and with the
    list of available pass types (the same long list on every unknown type) cut."""
    text = line.removeprefix("error: ")
    text = re.sub(rf"^\S*?{re.escape(config_name)}: ", "", text)
    text, cut, _ = text.replace(config_name, "<config>").partition(" available pass types:")
    return text + (" available pass types: ..." if cut else "")


def shape(line: str) -> str:
    """A coarser form of a normalized line, for grouping: pass names and quoted values
    replaced by placeholders."""
    text = re.sub(r"\$\.passes\.[^.:\s]+", "$.passes.<pass>", line)
    text = re.sub(r"'[^']*'", "'…'", text)
    return re.sub(r"\$\.data_configs\[\d+\]", "$.data_configs[i]", text)


# -- running ---------------------------------------------------------------------------------


def load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)


def dump(config: Any, path: Path) -> None:
    if path.suffix in {".yaml", ".yml"}:
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    else:
        path.write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")


def find_configs(root: Path) -> list[Path]:
    """The configs under ``root``: every config file directly in it, then, in its subfolders,
    the files that hold a workflow (a mapping with ``input_model`` and ``passes``)."""
    flat = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    nested = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in SUFFIXES and p.parent != root and _is_workflow(p)
    )
    return flat + nested


def _is_workflow(path: Path) -> bool:
    try:
        config = load(path)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return False
    return isinstance(config, dict) and "input_model" in config and "passes" in config


def run_plan(
    source: Path, root: Path, models: LocalModels, workdir: Path, env: Mapping[str, str]
) -> Outcome:
    """Localize ``source`` (a config under ``root``) into its own folder under ``workdir``,
    beside a copy of its folder's other files when it is in a subfolder, and plan it
    there."""
    relative = source.relative_to(root)
    name = relative.as_posix()
    folder = workdir / "configs" / "__".join((*relative.parent.parts, source.stem))
    if source.parent == root:
        folder.mkdir(parents=True)
    else:
        shutil.copytree(source.parent, folder, symlinks=True)
    try:
        config, changes = localize(load(source), models, folder)
    except (OSError, ValueError, yaml.YAMLError) as error:  # JSONDecodeError is a ValueError
        return Outcome(name=name, kind="other", detail=(f"unreadable: {error}",))
    target = folder / source.name
    dump(config, target)
    command = [*MODELCACHE, "plan", str(target), "--no-cloud"]
    try:
        done = subprocess.run(command, cwd=folder, env=dict(env), capture_output=True,
                              text=True, timeout=TIMEOUT_SECONDS, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        detail = (f"timed out after {TIMEOUT_SECONDS} s",)
        return Outcome(name=name, kind="other", detail=detail, changes=changes)
    return classify(name, done.returncode, done.stdout + done.stderr, changes)


def make_models(workdir: Path) -> LocalModels:
    """The tiny BERT folder and the tiny ONNX file."""
    from modelcache.runner.tiny_model import build_tiny_bert, build_tiny_onnx

    models = workdir / "models"
    hf = build_tiny_bert(models / "tiny-bert")
    return LocalModels(hf=hf, onnx=build_tiny_onnx(models / "tiny-onnx" / "model.onnx",
                                                   external=True))  # fmt: skip


# -- the report ------------------------------------------------------------------------------


def report(outcomes: list[Outcome], *, verbose: bool, top: int) -> None:
    """Print the summary; with ``verbose``, one line per config first."""
    counts = Counter(outcome.kind for outcome in outcomes)
    if verbose:
        for outcome in outcomes:
            first = outcome.errors[:1] or outcome.detail[-1:] or ("",)
            extra = f" (+{len(outcome.errors) - 1} more)" if len(outcome.errors) > 1 else ""
            line = normalized(first[0], _file_name(outcome.name))
            print(f"{outcome.kind:9} {outcome.name}: {line}{extra}".rstrip(": "))
        print()
    total = len(outcomes)
    accepted = counts["accepted"]
    share = 100 * accepted / total if total else 0.0
    print(f"{total} configs: {accepted} accepted ({share:.1f}%), "
          + ", ".join(f"{counts[k]} {k}" for k in KINDS[1:]))  # fmt: skip
    _print_details("traceback", outcomes, verbose=verbose)
    _print_details("other", outcomes, verbose=True)
    lines: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    example: dict[str, str] = {}
    for outcome in outcomes:
        seen = {normalized(line, _file_name(outcome.name)) for line in outcome.errors}
        lines.update(seen)
        shapes.update({shape(line) for line in seen})
        for line in seen:
            example.setdefault(line, outcome.name)
            example.setdefault(shape(line), outcome.name)
    _print_table("most common error lines (configs showing each)", lines, example, top)
    _print_table("the same, grouped (pass names and quoted values elided)", shapes, example, top)


def _file_name(name: str) -> str:
    """The file name in an outcome's name (its path in the folder): what the error lines
    show."""
    return name.rpartition("/")[2]


def _print_details(kind: Kind, outcomes: list[Outcome], *, verbose: bool) -> None:
    chosen = [outcome for outcome in outcomes if outcome.kind == kind]
    if not chosen:
        return
    print(f"\n{kind}s:")
    for outcome in chosen:
        tail = outcome.detail if verbose else outcome.detail[-1:]
        print(f"  {outcome.name} (exit {outcome.status}):")
        for line in tail:
            print(f"      {line}")


def _print_table(title: str, counts: Counter[str], example: dict[str, str], top: int) -> None:
    if not counts:
        return
    print(f"\n{title}:")
    for text, count in counts.most_common(top):
        print(f"  {count:4}  {text}\n        e.g. {example[text]}")
    if len(counts) > top:
        print(f"  ... and {len(counts) - top} other lines")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--verbose", action="store_true", help="one line per config")
    jobs = min(8, os.cpu_count() or 1)
    parser.add_argument("--jobs", type=int, default=jobs, help=f"plans at once ({jobs})")
    parser.add_argument("--top", type=int, default=25, help="error lines listed (default 25)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"no folder {args.folder}: collect Olive's example configs there first",
              file=sys.stderr)  # fmt: skip
        return 2
    sources = find_configs(args.folder)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200",
           "NO_COLOR": "1"}  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="olive-examples-"))
    try:
        models = make_models(workdir)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(lambda p: run_plan(p, args.folder, models, workdir, env), sources)
            )
        report(outcomes, verbose=args.verbose, top=args.top)
    finally:
        if args.keep:
            print(f"\nconfigs as planned are in {workdir / 'configs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
