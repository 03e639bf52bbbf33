"""The check every pass output passes before it is published: it must load.

A pass can exit normally and still write a model nothing can use (onnxruntime's dynamic
quantization of a float16 graph writes ``DequantizeLinear`` nodes onnxruntime refuses); once
cached under its key, every later run would be served that broken model. So an output is
loaded as its consumers would load it before it is published:

``"onnx"``
    ``onnx.checker`` over the file (external data included), then an onnxruntime session on
    the CPU execution provider with the default options, as a user would open it.
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

from ..models import ONNX_MODEL_FILE, UnknownModelType, model_type
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
    (``"hf"`` or ``"onnx"``) that loads. ``pass_type`` names the pass that wrote it, for the
    message. Costs about one load of the model (memory included); needs the ``[ml]`` extra."""
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
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's pybind errors share no public base
        raise BrokenOutput(pass_type, f"onnxruntime cannot load it: {_one_line(error)}") from None


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
