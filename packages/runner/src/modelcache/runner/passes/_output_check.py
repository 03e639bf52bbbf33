"""The check every pass output passes before it is published: it must load.

A pass can exit normally and still write a model nothing can use (onnxruntime's dynamic
quantization of a float16 graph writes ``DequantizeLinear`` nodes onnxruntime refuses); once
cached under its key, every later run would be served that broken model. So an output is
loaded as its consumers would load it before it is published:

``"onnx"``
    ``onnx.checker`` over the file (external data included), then an onnxruntime session on
    the CPU execution provider with the default options, as a user would open it. A graph
    of ``EPContext`` nodes (a model compiled for one execution provider, such as Olive's
    OpenVINO encapsulation) opens only on that provider: the checker, and each context file
    it names must be there.
``"openvino"``
    the IR read and compiled for the CPU by OpenVINO (the pass that wrote it needed it).
``"hf"``
    the configuration and every weight loaded with transformers as the class
    ``config.json`` names (:func:`load_hf_model`), which also refuses weights that lack
    tensors the architecture needs.

The output must also be of the type the pass declares. A failure is :class:`BrokenOutput`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from modelcache.store import Fault

from .._telemetry import silence
from ..models import ONNX_MODEL_FILE, UnknownModelType, model_type, openvino_ir
from ._errors import PassError, PassInputError
from ._hf_models import load_hf_model

__all__ = ["BrokenOutput", "check_output"]

#: The most of a library's message a one-line error keeps.
_DETAIL_LIMIT = 400


class BrokenOutput(PassError):
    """A pass wrote an output that does not load as the model type it declares. Nothing was
    cached. ``pass_type`` is the pass, ``problem`` what loading it said. Environment fault:
    the pass cannot handle this input (or has a bug); the user's way out is another chain."""

    fault: ClassVar[Fault] = "environment"

    def __init__(self, pass_type: str, problem: str) -> None:
        super().__init__(pass_type, problem)
        self.pass_type = pass_type
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"pass {self.pass_type} wrote a model that does not load, so nothing was cached: "
            f"{self.problem}; change the workflow's passes (this one cannot handle its input) "
            "or report it to the pass's authors"
        )


def check_output(model_type_: str, directory: Path, *, pass_type: str) -> None:
    """Raise :class:`BrokenOutput` unless ``directory`` holds a model of type ``model_type_``
    (``"hf"``, ``"onnx"`` or ``"openvino"``) that loads. ``pass_type`` names the pass that
    wrote it, for the message. Costs about one load of the model (memory included); needs
    the ``[ml]`` extra (and OpenVINO for ``"openvino"``)."""
    directory = Path(directory)
    try:
        found = model_type(directory)
    except UnknownModelType as error:
        raise BrokenOutput(pass_type, str(error)) from None
    if found != model_type_:
        raise BrokenOutput(
            pass_type, f"it declares {model_type_} models but wrote an {found} model"
        )
    if found == "onnx":
        _check_onnx(directory / ONNX_MODEL_FILE, pass_type)
    elif found == "openvino":
        _check_openvino(directory, pass_type)
    else:
        _check_hf(directory, pass_type)


def _check_onnx(path: Path, pass_type: str) -> None:
    import onnx
    import onnxruntime

    try:
        # By path, not a loaded proto: the checker then reads external data and has no 2 GiB
        # limit.
        onnx.checker.check_model(str(path))
    except Exception as error:  # the checker's errors have no common base worth naming
        raise BrokenOutput(pass_type, f"the ONNX checker refuses it: {_one_line(error)}") from None
    contexts = _context_files(path)
    if contexts is not None:
        absent = [name for name in contexts if not (path.parent / name).is_file()]
        if absent:
            raise BrokenOutput(pass_type, (
                f"its EPContext nodes name {', '.join(absent)}, which it did not write"
            ))  # fmt: skip
        return
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's pybind errors share no public base
        raise BrokenOutput(pass_type, f"onnxruntime cannot load it: {_one_line(error)}") from None


def _context_files(path: Path) -> list[str] | None:
    """The files the ``EPContext`` nodes of the graph at ``path`` name (none when they embed
    their context), or ``None`` when it has no such node."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = [node for node in graph.node if node.op_type == "EPContext"]
    if not nodes:
        return None
    files = []
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        context = attributes.get("ep_cache_context", b"")
        if attributes.get("embed_mode", 1) == 0 and isinstance(context, bytes):
            files.append(context.decode("utf-8", "replace"))
    return files


def _check_openvino(directory: Path, pass_type: str) -> None:
    graphs = openvino_ir(directory)
    if len(graphs) != 1:
        names = ", ".join(graph.name for graph in graphs)
        raise BrokenOutput(pass_type, f"an OpenVINO model is one IR pair, it wrote {names}")
    silence()
    try:
        import openvino
    except ImportError:
        raise BrokenOutput(pass_type, "OpenVINO, needed to load it, is not installed") from None
    try:
        core = openvino.Core()
        core.compile_model(core.read_model(str(graphs[0])), "CPU")
    except Exception as error:  # OpenVINO's runtime errors share no public base
        raise BrokenOutput(pass_type, f"OpenVINO cannot load it: {_one_line(error)}") from None


def _check_hf(directory: Path, pass_type: str) -> None:
    try:
        load_hf_model(pass_type, directory, base_model=False)
    except PassInputError as error:
        raise BrokenOutput(pass_type, error.problem) from None
    except Exception as error:  # safetensors' and torch's errors share no public base
        raise BrokenOutput(pass_type, f"transformers cannot load it: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= _DETAIL_LIMIT else f"{text[:_DETAIL_LIMIT]}..."
