"""OrtGraphOptimization: onnxruntime's graph optimizations, saved as a model.

onnxruntime optimizes a graph when it opens a session; with ``optimized_model_filepath``
set, it also writes the optimized graph out. ``"basic"`` folds constants and removes
redundant nodes (the result runs anywhere); ``"extended"`` (the default) also fuses
operators into onnxruntime's contrib ops (``SkipLayerNormalization``, ``FusedMatMul``...),
so the result needs onnxruntime; ``"all"`` adds layout changes tuned to this machine's CPU,
so the result may be slower, or fail, elsewhere: at that level the CPU's features
(:func:`cpu_features`) go into the cache key, and another CPU makes its own output. Only the
CPU execution provider is used: the output is specific to it.

Deterministic: the same input gives the same bytes with the same onnxruntime.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..models import ONNX_DATA_FILE, ONNX_MODEL_FILE, onnx_graph
from ._builtin import BuiltinPass
from ._environment import cpu_features
from ._model_files import copy_along
from ._onnx_files import load_onnx, save_onnx, uses_external_data
from ._parameters import Parameter, one_of

__all__ = ["OrtGraphOptimization"]

_LEVELS = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class OrtGraphOptimization(BuiltinPass):
    """onnxruntime graph optimizations for the CPU, saved as a model.

    Parameter: ``level``, ``"basic"``, ``"extended"`` (the default) or ``"all"``.
    """

    type = "OrtGraphOptimization"
    version = "1"
    input_types = frozenset({"onnx"})
    output_type = "onnx"
    parameters = (
        Parameter(
            name="level",
            default="extended",
            description='the optimization level, "basic", "extended" or "all"',
            check=one_of(*_LEVELS),
        ),
    )
    package_names = ("onnxruntime", "onnx-ir")

    def machine_facts(self, config: Mapping[str, Any]) -> dict[str, str]:
        """The CPU's features at level ``"all"``, whose layouts are tuned to them; nothing at
        the levels whose output runs the same anywhere."""
        return {"cpu": cpu_features()} if config["level"] == "all" else {}

    def _run(self, input_dir: Path, output_dir: Path, config: dict[str, Any]) -> None:
        import onnxruntime as ort

        external = uses_external_data(load_onnx(input_dir))
        with tempfile.TemporaryDirectory(prefix=".optimize-", dir=output_dir.parent) as scratch:
            optimized = Path(scratch) / ONNX_MODEL_FILE
            options = ort.SessionOptions()
            options.graph_optimization_level = getattr(
                ort.GraphOptimizationLevel, _LEVELS[config["level"]]
            )
            options.optimized_model_filepath = str(optimized)
            options.log_severity_level = 3
            options.intra_op_num_threads = 1
            if external:
                options.add_session_config_entry(
                    "session.optimized_model_external_initializers_file_name", ONNX_DATA_FILE
                )
            ort.InferenceSession(
                str(onnx_graph(input_dir)), options, providers=["CPUExecutionProvider"]
            )
            save_onnx(load_onnx(Path(scratch)), output_dir, external=external)
        copy_along(input_dir, output_dir)
