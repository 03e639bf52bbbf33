"""Which files of a model directory a pass rewrites, and which ride along unchanged.

A pass rewrites the weights (and, for ONNX, the graph). Every other file of its input
(``config.json``, tokenizer files, sentence-transformers' pooling configuration, the model
card) is copied byte for byte, so a later evaluation can still tokenize and the
content-addressed store keeps one blob for all the copies. Other formats of the weights
(the ``onnx/`` and ``openvino/`` folders some hub repositories carry) are dropped: they
describe the input, not the output. An OpenVINO IR graph (``<name>.xml`` beside its
``<name>.bin``) is the model, as an ONNX graph is.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path

__all__ = ["copy_along", "rides_along"]

#: Weights and graphs, matched against a file's name.
_WEIGHT_PATTERNS = (
    "*.safetensors",
    "*.index.json",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.gguf",
    "*.tflite",
    "*.onnx",
    "*.onnx.data",
    "*.onnx_data",
)
#: Top-level folders that never ride along: other formats, version control, download state.
_DROPPED_DIRS = frozenset({"onnx", "openvino", ".git", ".cache"})


def rides_along(relative: Path) -> bool:
    """Whether the file at ``relative`` (to the model directory) is copied unchanged."""
    if len(relative.parts) > 1 and relative.parts[0] in _DROPPED_DIRS:
        return False
    return not any(fnmatch.fnmatch(relative.name, pattern) for pattern in _WEIGHT_PATTERNS)


def copy_along(input_dir: Path, output_dir: Path) -> list[Path]:
    """Copy every file of ``input_dir`` that rides along into ``output_dir``, keeping its
    relative path. Returns the relative paths copied, sorted. Nothing rides along with a
    workflow's ``OnnxModel`` input, a file read where it lies (``input_dir`` is that file)."""
    copied: list[Path] = []
    if not input_dir.is_dir():
        return copied
    for folder, dirs, files in os.walk(input_dir, followlinks=True):
        base = Path(folder).relative_to(input_dir)
        if base == Path("."):
            dirs[:] = [d for d in dirs if d not in _DROPPED_DIRS]
        for name in files:
            relative = base / name
            if not rides_along(relative) or not (Path(folder) / name).is_file():
                continue
            if _openvino_graph(Path(folder) / name):
                continue
            target = output_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder) / name, target)
            copied.append(relative)
    return sorted(copied)


def _openvino_graph(path: Path) -> bool:
    """Whether ``path`` is the graph of an OpenVINO IR pair (its ``.bin`` weights beside it):
    a pass rewrites it, as it does an ONNX graph."""
    return path.suffix == ".xml" and path.with_suffix(".bin").is_file()
