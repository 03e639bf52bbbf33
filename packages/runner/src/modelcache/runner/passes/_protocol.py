"""The pass port: what the runner needs from a model-optimization pass, and what a pass may
declare besides (the machine facts and environment variables its output depends on)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from attrs import field, frozen

__all__ = [
    "ContextDependentPass",
    "EnvironmentDependentPass",
    "MachineDependentPass",
    "Pass",
    "PassContext",
]


@runtime_checkable
class Pass(Protocol):
    """One model-optimization step: reads a model directory, writes another.

    Built-in passes live in :mod:`modelcache.runner.passes`; other packages add passes by
    registering a ``Pass`` object (or a class whose no-argument constructor makes one) in the
    ``modelcache.passes`` entry-point group, under the pass's ``type``. Implementations
    satisfy this protocol structurally; none needs to import it.

    A pass's output is cached under a key made of its input's key, ``type``, ``version``,
    the configuration :meth:`validate` returns and the versions :meth:`packages` reports,
    and, for a pass that declares them, the facts about this machine its output depends on
    (:class:`MachineDependentPass`) and the environment variables it reads
    (:class:`EnvironmentDependentPass`). Everything that changes the output must therefore be
    in one of those; anything else (thread counts, temporary paths, the time, the global
    random seed) must not change it: the same key must always mean the same bytes.

    Models are directories. ``"hf"``: a Hugging Face model directory (``config.json``,
    weights, tokenizer files). ``"onnx"``: ``model.onnx`` (and its external-data file, if
    any) with the source model's ``config.json`` and tokenizer files beside it. See
    :mod:`modelcache.runner.models`. One exception: the first pass of a workflow whose
    input is Olive's ``OnnxModel`` receives that ``.onnx`` file itself, read where it lies
    (:func:`~modelcache.runner.models.onnx_graph` finds the graph either way).
    """

    @property
    def type(self) -> str:
        """The pass type, as written in a workflow's ``"type"`` (``"OnnxConversion"``)."""
        ...

    @property
    def version(self) -> str:
        """The implementation's version. Bump it whenever the same input, configuration
        and packages would give a different output: old cache entries then stop matching."""
        ...

    @property
    def input_types(self) -> frozenset[str]:
        """The model types (``"hf"``, ``"onnx"``) the pass accepts."""
        ...

    @property
    def output_type(self) -> str:
        """The model type the pass writes."""
        ...

    def packages(self) -> dict[str, str]:
        """The installed version of every package that affects the output, by distribution
        name (``{"torch": "2.13.0+cpu", ...}``). Cheap: reads package metadata, imports
        nothing heavy. Raises :class:`PassUnavailable` if one is not installed, since the
        pass could neither run nor have a trustworthy key."""
        ...

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The full configuration: ``config`` checked, normalized and with every default
        filled in, as JSON values. Two configurations that mean the same must come out
        equal (this is what the cache key hashes), and validating the result again must
        return it unchanged. Unknown parameters are errors.

        Raises :class:`PassConfigError` naming the bad parameter and how to fix it. Cheap:
        imports nothing heavy and touches no files.
        """
        ...

    def run(self, input_dir: Path, output_dir: Path, config: Mapping[str, Any]) -> None:
        """Read the model in ``input_dir`` and write the output model into ``output_dir``,
        which exists and is empty. ``config`` is a configuration :meth:`validate` returned.
        Must not modify ``input_dir``. May take minutes and gigabytes; runs on the CPU and
        offline. Raises :class:`PassInputError` when the input is not a model it can use.
        """
        ...


@runtime_checkable
class MachineDependentPass(Protocol):
    """Optional: a pass whose output depends on the machine it runs on (onnxruntime's
    ``"all"`` optimizations lay tensors out for this CPU's vector width). Its facts go into
    its key, so another machine computes its own output instead of reusing one tuned to
    another CPU. A pass without this member depends on no machine fact."""

    def machine_facts(self, config: Mapping[str, Any]) -> dict[str, str]:
        """The facts about this machine the output for ``config`` (validated) depends on,
        by name (``{"cpu": "x86_64 avx avx2 fma"}``); empty where none matters, so that a
        configuration that depends on none keeps one key on every machine. Cheap: no heavy
        imports, no model files."""
        ...


@runtime_checkable
class EnvironmentDependentPass(Protocol):
    """Optional: a pass whose output depends on environment variables (torch's exporter
    reads ``TORCH_ONNX_*`` flags). The values of those that are set go into its key; unset
    ones add nothing, so the key of a run without them is the key of a pass that reads none.
    A pass without this member must not depend on any."""

    @property
    def environment_variables(self) -> tuple[str, ...]:
        """The names of the variables read, as ``fnmatch`` patterns (``"TORCH_ONNX_*"``)."""
        ...


@frozen(kw_only=True)
class PassContext:
    """Where in a workflow a pass sits, for a pass whose configuration means something only
    there (:class:`ContextDependentPass`)."""

    #: The folder relative paths in the pass's configuration are relative to: the config
    #: file's.
    base_dir: Path = Path(".")
    #: The model type the pass receives (``"hf"`` or ``"onnx"``).
    input_type: str = "hf"
    #: False when :attr:`input_type` is a guess: what the pass before makes is unknown (its
    #: type is), so a pass must not refuse its parameters for the input they need.
    input_known: bool = True
    #: The workflow input model's loading settings (Olive's ``task``, ``io_config``,
    #: ``load_kwargs``, ...), as JSON values; a pass that reads a Hugging Face model with
    #: them must key them.
    input_model: Mapping[str, Any] = field(factory=dict)
    #: The device and execution provider the output is made for (Olive's accelerator).
    device: str = "cpu"
    execution_provider: str = "CPUExecutionProvider"


@runtime_checkable
class ContextDependentPass(Protocol):
    """Optional: a pass whose configuration names things relative to the workflow (files
    beside the config, the input model's loading settings, the target device). The runner
    calls :meth:`in_context` before validating and uses the pass it returns; that pass's
    :meth:`~Pass.validate` must fold into the configuration whatever of the context its
    output depends on, so the key covers it."""

    def in_context(self, context: PassContext) -> Pass:
        """This pass, bound to ``context``. Cheap, like :meth:`~Pass.validate`."""
        ...
