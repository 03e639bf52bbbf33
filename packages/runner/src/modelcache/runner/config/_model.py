"""The config document as value classes: :class:`WorkflowConfig` and its sections. What
JSON may spell them is the converter's business (``_structure``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NewType

from attrs import field, frozen, validators

from modelcache.planner import UploadPolicy

from ._trust import SigningConfig, TrustConfig

__all__ = [
    "METRICS",
    "MODEL_TYPES",
    "AccountUrl",
    "Bandwidth",
    "CloudCacheConfig",
    "EvaluatorConfig",
    "InputModelConfig",
    "ModelPath",
    "PassParameters",
    "Passes",
    "WorkflowConfig",
    "check_metrics",
    "check_objects",
]

METRICS = ("size", "latency", "throughput", "fidelity")
#: What an evaluator without ``metrics`` measures (as before ``throughput`` existed, so that
#: its fingerprint, and the results cached under it, stay).
DEFAULT_METRICS = ("size", "latency", "fidelity")

#: The input model types a config may name, by their lowercase spelling (Olive matches
#: them whatever their case); ``prepare`` decides which it can use.
MODEL_TYPES: Mapping[str, str] = {
    "hfmodel": "HfModel",
    "pytorchmodel": "PyTorchModel",
    "onnxmodel": "OnnxModel",
    "openvinomodel": "OpenVINOModel",
}


class PassParameters(Mapping[str, Any]):
    """A pass's ``type`` and parameters, remembering where the file wrote each parameter
    (``origins``: name -> JSON path) when that is not ``$.passes.<name>.<parameter>``, as
    Olive's nested ``{"type": ..., "config": {...}}`` form writes them one level down: a
    problem must name the place the user can find."""

    def __init__(self, values: Mapping[str, Any], origins: Mapping[str, str] | None = None) -> None:
        self._values = dict(values)
        self.origins: Mapping[str, str] = dict(origins or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"PassParameters({self._values!r})"


#: The passes in document order: (name, {"type": ..., parameters...}).
Passes = tuple[tuple[str, Mapping[str, Any]], ...]
#: ``input_model.model_path``: a directory, ``package:<package>/<folder>``, a hub id, or a
#: model file (``PyTorchModel``, ``OnnxModel``).
ModelPath = NewType("ModelPath", str)
#: ``cloud_cache_config.account_url``: an http(s) URL, perhaps carrying a SAS.
AccountUrl = NewType("AccountUrl", str)
#: ``cloud_cache_config.bandwidth``: the link's bytes per second (given as ``"50 MB/s"``...).
Bandwidth = NewType("Bandwidth", float)


def check_metrics(value: Any) -> tuple[str, ...]:
    """``value``, a list drawn from :data:`METRICS`, as a tuple; else ``ValueError``."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"metrics must be a list drawn from {list(METRICS)}")
    for metric in value:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose from {list(METRICS)}")
    return tuple(value)


def check_objects(value: Any) -> tuple[Mapping[str, Any], ...]:
    """``value``, a list of JSON objects, as a tuple; else ``ValueError``."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError("expected a list of Olive metric objects")
    return tuple(value)


@frozen(kw_only=True)
class InputModelConfig:
    """The input model. ``type`` is one of :data:`MODEL_TYPES`' values; whether a run can use
    it is for ``prepare`` to decide (see :func:`~._input.unsupported_input_model`), so that
    a config is read the same whatever runs it.

    ``handler_settings`` are the other fields of Olive's model handler the config gives
    (``task``, ``io_config``, ``load_kwargs``...; for ``PyTorchModel``, ``model_loader``,
    ``model_script``...), as written: JSON values. ``model_path`` is ``None`` only for a
    ``PyTorchModel`` its loader builds from nothing (:func:`~._input.builds_itself`).
    """

    type: str
    model_path: ModelPath | None = None
    revision: str | None = None
    handler_settings: Mapping[str, Any] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.type not in MODEL_TYPES.values():
            raise ValueError(
                f"model type {self.type!r} is not supported: the input is a Hugging Face "
                '("type": "HfModel"), PyTorch ("PyTorchModel"), ONNX ("OnnxModel") or OpenVINO '
                'IR ("OpenVINOModel") model'
            )


@frozen(kw_only=True)
class CloudCacheConfig:
    """The seed's ``cloud_cache_config``. Without ``account_url``, the connection string in
    ``AZURE_STORAGE_CONNECTION_STRING`` names the account."""

    enable_cloud_cache: bool = True
    account_url: AccountUrl | None = None
    container_name: str | None = None
    upload_to_cloud: bool = True
    #: ``all`` (the seed's) uploads every output; ``worthwhile`` an intermediate one only
    #: when recomputing it costs more than moving it (``docs/performance.md``).
    upload_policy: UploadPolicy = "all"
    #: The link's speed, for the upload policy and for recomputing rather than downloading;
    #: None: measured from this machine's transfers (``worthwhile`` only), else not used.
    bandwidth: Bandwidth | None = None


@frozen(kw_only=True)
class EvaluatorConfig:
    """What to measure (``metrics``) and on which outputs (``evaluate``: ``"none"``,
    ``"final"``, ``"all"`` or a list of pass names). ``latency_runs`` timed runs give the
    median latency."""

    metrics: tuple[str, ...] = field(default=DEFAULT_METRICS, converter=check_metrics)
    evaluate: str | tuple[str, ...] = "final"
    latency_runs: int = field(default=20, validator=validators.ge(1))
    #: Olive's metric objects modelcache does not measure itself (``accuracy``, ``custom``),
    #: measured by Olive's own evaluator, as JSON values (each ``data_config`` an object).
    olive_metrics: tuple[Mapping[str, Any], ...] = field(default=(), converter=check_objects)


@frozen(kw_only=True)
class WorkflowConfig:
    """A whole workflow. ``passes`` keeps the document's order: the chain runs in it."""

    input_model: InputModelConfig
    passes: Passes
    evaluator: EvaluatorConfig | None = None
    cloud_cache_config: CloudCacheConfig | None = None
    #: Who this runner signs the entries it publishes as, and whose signatures it believes
    #: (``_trust``, ``docs/security.md``); None: it signs nothing, checks nothing.
    signing: SigningConfig | None = None
    trust: TrustConfig | None = None
    cache_dir: Path = Path(".modelcache/cache")
    output_dir: Path = Path("out")
    #: The folder relative paths are resolved against (the config file's).
    base_dir: Path = Path(".")
    #: Olive's ``data_configs`` by name, as written (JSON values). Pass parameters that name
    #: one (``"data_config": "calib"``) already hold a copy of it.
    data_configs: Mapping[str, Mapping[str, Any]] = field(factory=dict)
    #: The ``accelerators`` of Olive's target system, as written (JSON values; ``None``: the
    #: CPU). Olive's passes are configured and keyed for the one Olive picks from them.
    target_accelerators: Any = None
    #: What the config asks for that modelcache ignores or does differently (Olive fields
    #: that mean nothing here), one sentence each, naming the field's path.
    notes: tuple[str, ...] = ()

    def resolve(self, path: Path) -> Path:
        return Path(os.path.normpath(path if path.is_absolute() else self.base_dir / path))

    @property
    def cloud_enabled(self) -> bool:
        return self.cloud_cache_config is not None and self.cloud_cache_config.enable_cloud_cache
