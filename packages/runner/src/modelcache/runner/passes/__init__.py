"""The passes: model-optimization steps behind a registry.

:func:`load_pass` finds a pass by type; :func:`available_passes` lists them. The built-ins
run on the CPU and offline, and need the ``[ml]`` extra (torch, transformers, onnx,
onnxscript, onnxruntime):

=========================  =========  =======  =========================================
type                       input      output   what it does
=========================  =========  =======  =========================================
OnnxConversion             hf         onnx     ``torch.onnx.export`` (``dynamo=True``)
OnnxDynamicQuantization    onnx       onnx     onnxruntime dynamic int8 quantization
OrtGraphOptimization       onnx       onnx     onnxruntime graph optimizations, saved
TorchDtypeCast             hf         hf       fp16 / bf16 cast
MagnitudePruning           hf         hf       unstructured magnitude pruning of linears
=========================  =========  =======  =========================================

Other packages add passes through the ``modelcache.passes`` entry-point group (see
:class:`Pass` and :mod:`._registry`). Importing this package is cheap: the heavy libraries
are imported when a pass runs.
"""

from ._environment import cpu_features, key_packages
from ._errors import (
    PassConfigError,
    PassError,
    PassInputError,
    PassRegistryError,
    PassUnavailable,
    UnknownPassType,
)
from ._onnx_conversion import OnnxConversion
from ._onnx_quantization import OnnxDynamicQuantization
from ._ort_optimization import OrtGraphOptimization
from ._output_check import BrokenOutput, check_output
from ._parameters import Parameter, PassConfigProblems, did_you_mean
from ._protocol import (
    ContextDependentPass,
    EnvironmentDependentPass,
    MachineDependentPass,
    Pass,
    PassContext,
)
from ._pruning import MagnitudePruning, linear_layers
from ._registry import BUILTIN_PASSES, ENTRY_POINT_GROUP, available_passes, load_pass
from ._torch_cast import TorchDtypeCast

__all__ = [
    "BUILTIN_PASSES",
    "BrokenOutput",
    "ContextDependentPass",
    "ENTRY_POINT_GROUP",
    "EnvironmentDependentPass",
    "MachineDependentPass",
    "MagnitudePruning",
    "OnnxConversion",
    "OnnxDynamicQuantization",
    "OrtGraphOptimization",
    "Parameter",
    "Pass",
    "PassConfigError",
    "PassConfigProblems",
    "PassContext",
    "PassError",
    "PassInputError",
    "PassRegistryError",
    "PassUnavailable",
    "TorchDtypeCast",
    "UnknownPassType",
    "available_passes",
    "check_output",
    "did_you_mean",
    "cpu_features",
    "key_packages",
    "linear_layers",
    "load_pass",
]
