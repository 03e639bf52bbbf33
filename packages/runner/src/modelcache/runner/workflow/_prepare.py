"""From a config to what the planner and the executor need; reads files, writes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define, evolve, frozen

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluate,
    Evaluation,
    PassSpec,
    Plan,
    Skip,
    Snapshot,
    SnapshotEntry,
    UploadPolicy,
    chain_keys,
)
from modelcache.store import LocalStore, Store, Tier

from ..config import (
    ConfigError,
    Problem,
    WorkflowConfig,
    check_passes,
    unsupported_input_model,
)

if TYPE_CHECKING:
    from ..evaluation import Evaluator
    from ..models import ResolvedModel
    from ..passes import Pass

_T = TypeVar("_T")

__all__ = [
    "PassInstance",
    "Prepared",
    "RunOptions",
    "UnknownPass",
    "listings",
    "needs_nothing_of_the_cloud",
    "prepare",
    "prepare_known",
    "remembered_listings",
    "snapshot",
]


@frozen(kw_only=True)
class RunOptions:
    """Per-run switches from the command line, over the config."""

    no_cloud: bool = False
    no_upload: bool = False
    require_cloud: bool = False
    no_cache: bool = False
    #: The longest a run waits for another runner computing an output it needs (single
    #: flight) before computing it too: long enough for any real pass, since a holder that
    #: dies loses its lock within 30 s; the bound is for a holder that hangs.
    single_flight_wait: float = 30 * 60.0


@frozen(kw_only=True)
class PassInstance:
    """A pass of the chain, ready to run: its implementation and validated configuration."""

    spec: PassSpec
    implementation: Pass
    #: JSON values, as :meth:`Pass.validate` returned them.
    config: Mapping[str, Any]


@define(kw_only=True)
class Prepared:
    """Everything the planner and the executor need, derived from the config.

    Mutable so that tests and embedders can swap a store or the policy before
    :func:`~modelcache.runner.workflow.execute`.
    """

    config: WorkflowConfig
    options: RunOptions
    model_path: Path
    chain: Chain
    passes: dict[str, PassInstance]
    local: LocalStore
    cloud: Store | None
    policy: CachePolicy
    evaluation: Evaluation
    evaluator: Evaluator | None

    @property
    def keys(self) -> tuple[str, ...]:
        return chain_keys(self.chain)


def prepare(config: WorkflowConfig, options: RunOptions = RunOptions()) -> Prepared:
    """Resolve the model, validate the passes, open the stores. Writes nothing.

    :raises ConfigError: the model cannot be found, or a pass, its parameters, their order
        or the evaluation targets are wrong; the error names every such problem, each with
        its path in the config.
    :raises StoreError: the cloud store cannot be opened (credentials, account).
    """
    problems: list[Problem] = []
    resolved = _collecting(problems, _resolve_model, config)
    instances, pass_problems = _checked_passes(config)
    problems.extend(pass_problems)
    reference = resolved.path if resolved else Path(".")
    found = _collecting(problems, _evaluation, config, reference=reference)
    if problems:
        raise ConfigError.of(problems)
    assert resolved is not None  # each is None only if it added a problem
    assert found is not None
    return _assemble(config, options, resolved, instances, found)


@frozen(kw_only=True)
class UnknownPass:
    """A pass whose key cannot be known on this machine: ``why`` says what is missing (its
    input model's files, a package it needs), or that its input's key is unknown."""

    name: str
    type: str
    why: str


def prepare_known(
    config: WorkflowConfig, options: RunOptions = RunOptions()
) -> tuple[Prepared | None, tuple[UnknownPass, ...]]:
    """:func:`prepare` for a plan: what is absent from this machine (a hub model not
    downloaded, a package a pass needs) ends the chain there instead of the command. The
    passes before it are prepared as a chain of their own (``None`` if there are none: the
    model is missing); the others are returned as unknown, since their keys would be
    guessed. Nothing is evaluated in such a plan. A mistake in the config still raises
    :class:`ConfigError`, naming every problem, the missing ones too."""
    problems: list[Problem] = []
    resolved = _collecting(problems, _resolve_model, config)
    instances, pass_problems = _checked_passes(config)
    problems.extend(pass_problems)
    _collecting(problems, _evaluation, config, reference=Path("."))  # its mistakes only
    if any(not problem.missing for problem in problems):
        raise ConfigError.of(problems)
    if not problems:  # as prepare() would, without resolving and checking all again
        assert resolved is not None
        found = _evaluation(config, reference=resolved.path)
        return _assemble(config, options, resolved, instances, found), ()
    names = [name for name, _ in config.passes]
    known = [] if resolved is None else names[: _first_not_in(names, instances)]
    unknown = tuple(
        UnknownPass(name=name, type=str(raw.get("type")), why=_why(name, problems, first=i == 0))
        for i, (name, raw) in enumerate(config.passes[len(known) :])
    )
    if not known:
        return None, unknown
    assert resolved is not None  # known is empty without it
    prefix = {name: instances[name] for name in known}
    return _assemble(config, options, resolved, prefix, (None, Evaluation.nothing())), unknown


def _first_not_in(names: list[str], instances: Mapping[str, PassInstance]) -> int:
    return next((i for i, name in enumerate(names) if name not in instances), len(names))


def _why(name: str, problems: list[Problem], *, first: bool) -> str:
    """Why the key of pass ``name`` is unknown: what it misses itself, else, for the first
    such pass, what its input misses, else that its input's key is unknown."""
    at = f"$.passes.{name}"
    own = [p.problem for p in problems if p.path == at or p.path.startswith((f"{at}.", f"{at}["))]
    model = [p.problem for p in problems if p.path.startswith("$.input_model")]
    found = own or (model if first else [])
    return "; ".join(found) or "its input's key is unknown"


def _assemble(
    config: WorkflowConfig,
    options: RunOptions,
    resolved: ResolvedModel,
    instances: dict[str, PassInstance],
    found: tuple[Evaluator | None, Evaluation],
) -> Prepared:
    """The :class:`Prepared` of a resolved model and its checked passes: stores opened."""
    evaluator, evaluation = found
    local = LocalStore(config.resolve(config.cache_dir))
    cloud = _open_cloud(config, options)
    return Prepared(
        config=config,
        options=options,
        model_path=resolved.path,
        chain=Chain(model=resolved.identity, passes=[i.spec for i in instances.values()]),
        passes=instances,
        local=local,
        cloud=cloud,
        policy=_policy(config, options, local, cloud),
        evaluation=evaluation,
        evaluator=evaluator,
    )


def _collecting(
    problems: list[Problem], step: Callable[..., _T], *args: Any, **kwargs: Any
) -> _T | None:
    """``step``'s result; ``None`` with its problems added to ``problems`` if it raised a
    :class:`ConfigError`, so the steps after it still run and report theirs."""
    try:
        return step(*args, **kwargs)
    except ConfigError as error:
        problems.extend(error.problems)
        return None


def _resolve_model(config: WorkflowConfig) -> ResolvedModel:
    """The input model; a problem at ``$.input_model.model_path`` if it cannot be used, a
    missing one if it is only absent from this machine (:class:`~..models.ModelAbsent`)."""
    from ..inputs import resolve_onnx_model, resolve_openvino_model, resolve_pytorch_model
    from ..models import ModelAbsent, ModelError, resolve_hf_model

    unsupported = unsupported_input_model(config)
    if unsupported is not None:
        raise ConfigError.of([unsupported])
    model = config.input_model
    try:
        if model.type == "PyTorchModel":
            return resolve_pytorch_model(
                model.model_path, model.handler_settings, base_dir=config.base_dir
            )
        assert model.model_path is not None  # only a PyTorchModel may build itself
        if model.type == "OnnxModel":
            return resolve_onnx_model(
                model.model_path, model.handler_settings, base_dir=config.base_dir
            )
        if model.type == "OpenVINOModel":
            return resolve_openvino_model(
                model.model_path, model.handler_settings, base_dir=config.base_dir
            )
        return resolve_hf_model(model.model_path, model.revision, base_dir=config.base_dir)
    except ModelError as error:
        problem = Problem(path="$.input_model.model_path", problem=str(error),
                          missing=isinstance(error, ModelAbsent))  # fmt: skip
        raise ConfigError.of([problem]) from None


#: The model type a pass receives from each kind of input model a run can start from.
_INPUT_TYPES = {
    "HfModel": "hf", "PyTorchModel": "pytorch", "OnnxModel": "onnx", "OpenVINOModel": "openvino",
}  # fmt: skip


def _checked_passes(config: WorkflowConfig) -> tuple[dict[str, PassInstance], list[Problem]]:
    """Each pass of the config loaded and its parameters validated, in chain order: the
    sound ones, ready to run, and every problem of the others (type, parameters, place in
    the chain, a package missing)."""
    from ..passes import PassConfigError, PassContext, PassUnavailable, key_packages

    settings = dict(config.input_model.handler_settings)
    if config.input_model.model_path is None:
        settings["model_path"] = None  # Olive's loader is called with none: keyed so
    problems: list[Problem] = []
    device, provider = "cpu", "CPUExecutionProvider"
    if config.target_accelerators:  # the one Olive picks (the Olive adapter only then)
        from ..olive import target_accelerator

        try:
            device, provider = target_accelerator(config.target_accelerators)
        except PassConfigError as error:
            problems.append(Problem(path="$.target", problem=error.problem))
    context = PassContext(base_dir=config.base_dir, input_model=settings, device=device,
                          execution_provider=provider)  # fmt: skip
    # A model a run cannot start from is a problem of its own, not of the first pass.
    supported = unsupported_input_model(config) is None
    input_type = _INPUT_TYPES[config.input_model.type] if supported else None
    loaded, found = check_passes(config.passes, input_type=input_type, context=context)
    problems.extend(found)
    instances: dict[str, PassInstance] = {}
    for name, (implementation, validated) in loaded.items():
        try:
            # The packages' versions, and the machine facts and environment variables the
            # pass declares its output depends on.
            packages = key_packages(implementation, validated)
        except PassUnavailable as error:
            problems.append(Problem(path=f"$.passes.{name}", problem=str(error), missing=True))
            continue
        spec = PassSpec(name=name, type=implementation.type, version=implementation.version,
                        config=validated, packages=packages)  # fmt: skip
        instances[name] = PassInstance(spec=spec, implementation=implementation, config=validated)
    return instances, problems


def _open_cloud(config: WorkflowConfig, options: RunOptions) -> Store | None:
    """The cloud store, if the config enables it and no option turns it off."""
    if not config.cloud_enabled or options.no_cloud or options.no_cache:
        return None
    from ..cloud import defer_cloud_store

    assert config.cloud_cache_config is not None  # cloud_enabled says so
    return defer_cloud_store(config.cloud_cache_config)


def _policy(
    config: WorkflowConfig, options: RunOptions, local: LocalStore, cloud: Store | None
) -> CachePolicy:
    cloud_config = config.cloud_cache_config
    upload_policy: UploadPolicy = "all" if cloud_config is None else cloud_config.upload_policy
    bandwidth: float | None = None if cloud_config is None else cloud_config.bandwidth
    if bandwidth is None and upload_policy == "worthwhile" and cloud is not None:
        from ._link import cloud_name, measured_speed

        bandwidth = measured_speed(local.root, cloud_name(cloud))
    return CachePolicy(
        enable_cloud_cache=cloud is not None,
        upload_to_cloud=bool(cloud_config and cloud_config.upload_to_cloud)
        and not options.no_upload,
        enable_local_cache=not options.no_cache,
        bandwidth=bandwidth,
        upload_policy=upload_policy,
    )


def _evaluation(config: WorkflowConfig, *, reference: Path) -> tuple[Evaluator | None, Evaluation]:
    """The evaluator the config asks for (None: none), and which outputs it measures."""
    if config.evaluator is None or config.evaluator.evaluate == "none":
        return None, Evaluation.nothing()
    from ..evaluation import Evaluator

    tokenized = [m for m in config.evaluator.metrics if m in ("latency", "throughput", "fidelity")]
    if tokenized and config.input_model.type != "HfModel":
        raise ConfigError(path="$.evaluator.metrics", problem=(
            f"{' and '.join(tokenized)} {'is' if len(tokenized) == 1 else 'are'} measured on "
            "sentences, through the tokenizer of a Hugging Face input model, which this "
            f'{config.input_model.type} input has not; measure "size" only'
        ))  # fmt: skip

    evaluator = Evaluator(
        config.evaluator,
        reference=reference,
        base_dir=config.base_dir,
        settings=config.input_model.handler_settings,
    )
    if evaluator.olive_inputs is not None:
        from ..olive._evaluate import metrics_problem

        olive_metrics = config.evaluator.olive_metrics
        problem = metrics_problem(olive_metrics, config.base_dir, evaluator.olive_inputs)
        if problem is not None:
            raise ConfigError(path="$.evaluator", problem=problem)
    target = config.evaluator.evaluate
    if isinstance(target, tuple):
        names = [name for name, _ in config.passes]
        unknown = [name for name in target if name not in names]
        if unknown:
            raise ConfigError(
                path="$.evaluator.evaluate",
                problem=f"no pass called {unknown[0]!r}; passes are {names}",
            )
        return evaluator, Evaluation.of(target, evaluator.fingerprint)
    if target == "all":
        return evaluator, Evaluation.every_output(evaluator.fingerprint)
    return evaluator, Evaluation.final(evaluator.fingerprint)


def listings(
    prepared: Prepared, *, cloud: bool = True, keys: Sequence[str] | None = None
) -> dict[Tier, list[SnapshotEntry]]:
    """Each tier's listing of the chain's keys (or ``keys``: a sweep's, whose variants share
    ``prepared``'s stores): the local tier's if it counts, the cloud's if used."""
    keys = prepared.keys if keys is None else keys
    found: dict[Tier, list[SnapshotEntry]] = {}
    if prepared.policy.enable_local_cache:
        found["local"] = prepared.local.snapshot(keys)
    if cloud and prepared.cloud is not None:
        found["cloud"] = prepared.cloud.snapshot(keys)
    return found


def remembered_listings(
    prepared: Prepared, policy: CachePolicy
) -> dict[Tier, list[SnapshotEntry]] | None:
    """The listings of a warm run without the cloud's: the local tier's, and what the cloud
    held of the chain's keys when this machine last listed them, less than a day ago
    (:func:`~modelcache.runner.maintenance.cloud_records.held_in_cloud`). None, to list the
    cloud, without such a note, without the cloud, or with ``--require-cloud``. A plan made
    from them is kept only if it needs nothing of the cloud (:func:`needs_nothing_of_the_cloud`).
    """
    from ..maintenance.cloud_records import held_in_cloud
    from ._link import cloud_name

    if prepared.cloud is None or prepared.options.require_cloud or not policy.enable_local_cache:
        return None
    held = held_in_cloud(prepared.local.root, cloud_name(prepared.cloud), prepared.keys,
                         now=time.time())  # fmt: skip
    if held is None:
        return None
    local = {entry.key: entry for entry in prepared.local.snapshot(prepared.keys)}
    cloud = [
        evolve(local[key], in_local=False, in_cloud=True)
        if key in local
        else SnapshotEntry(key=key, in_cloud=True)
        for key in sorted(held)
    ]
    return {"local": list(local.values()), "cloud": cloud}


def needs_nothing_of_the_cloud(plan: Plan) -> bool:
    """Whether ``plan`` only skips and reads cached results: a plan made from
    :func:`remembered_listings` is kept only then. A download, a run or an evaluation
    (which another machine may have made since), an upload (which the cloud may no longer
    need) are planned from the cloud's listing, the truth."""
    return all(isinstance(step, Skip) or (isinstance(step, Evaluate) and step.cached)
               for step in plan.steps)  # fmt: skip


def snapshot(
    prepared: Prepared, *, cloud: bool = True, keys: Sequence[str] | None = None
) -> Snapshot:
    """The cache's contents for the chain's keys (or ``keys``), both tiers' listings in one."""
    found = listings(prepared, cloud=cloud, keys=keys)
    return Snapshot.from_listing(entry for tier in found.values() for entry in tier)
