"""Running a workflow: from a config to a chain, a snapshot, a plan, and its execution.

Theory of operation
-------------------
:func:`prepare` turns the config into what the planner needs: the input model's identity,
each pass's validated configuration and package versions (so its key), the stores, the
evaluation targets and the cache policy. It reads files but writes nothing, so
``modelcache plan`` is :func:`prepare` + :func:`snapshot` + ``make_plan``.

:func:`execute` carries a plan out through the stores. Models are *materialized* in a
scratch folder beside the local tier (so renames stay on one file system): a run writes
there, a download lands there, and an output the local tier holds is fetched there only when
a later step reads it. Every output that is run or downloaded is published into the local
tier; uploads push it to the cloud. The final output is copied to ``output_dir``.

The cache is an optimization, so the run survives the cloud. If the cloud stops answering,
the runner re-plans without it (unless the user required it); if a downloaded entry turns
out corrupt or incomplete, it re-plans with that entry counted as a miss. A re-plan starts
from what the local tier holds by then, so no finished work is repeated.

Runners sharing a cache do not compute one output twice (*single flight*, :mod:`.locks`):
before running a pass, the executor claims its output in the tier it will publish it to (a
blob lease in the cloud, a file lock in the local tier) and holds the claim until the output
is published there. A runner that finds the output claimed waits; if the holder publishes
it, the runner re-plans, and so downloads it instead of computing it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from attrs import Factory, define, evolve, frozen

from modelcache.planner import (
    CachePolicy,
    Chain,
    Download,
    Evaluate,
    Evaluation,
    ModelIdentity,
    PassSpec,
    Plan,
    Run,
    Skip,
    Snapshot,
    SnapshotEntry,
    Upload,
    chain_keys,
    key_document,
    make_plan,
)
from modelcache.store import (
    AccessDenied,
    Claim,
    CorruptEntry,
    EntryNotFound,
    LocalStore,
    MaintainedStore,
    Store,
    StoreError,
    StoreUnavailable,
    build_manifest,
)

from .config import ConfigError, WorkflowConfig
from .reporting import Reporter, RunReport, StepRecord

__all__ = [
    "CloudRequired",
    "Prepared",
    "RunOptions",
    "execute",
    "plan_workflow",
    "prepare",
    "run_workflow",
    "snapshot",
]

PRODUCER = "modelcache-runner 0.1.0"
OUTPUT_MARKER = ".modelcache-output.json"


class CloudRequired(StoreError):
    """The user required the cloud and it failed; the message says how."""


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
    implementation: Any
    config: Mapping[str, Any]


@define(kw_only=True)
class Prepared:
    """Everything the planner and the executor need, derived from the config."""

    config: WorkflowConfig
    options: RunOptions
    model_path: Path
    chain: Chain
    passes: dict[str, PassInstance]
    local: LocalStore
    cloud: Store | None
    policy: CachePolicy
    evaluation: Evaluation
    evaluator: Any

    @property
    def keys(self) -> tuple[str, ...]:
        return chain_keys(self.chain)


def prepare(config: WorkflowConfig, options: RunOptions = RunOptions()) -> Prepared:
    """Resolve the model, validate the passes, open the stores. Writes nothing."""
    from .models import resolve_hf_model
    from .passes import PassConfigError, load_pass

    resolved = resolve_hf_model(config.input_model.model_path, config.input_model.revision,
                                base_dir=config.base_dir)  # fmt: skip
    instances: dict[str, PassInstance] = {}
    specs: list[PassSpec] = []
    for name, raw in config.passes:
        parameters = {k: v for k, v in raw.items() if k != "type"}
        try:
            implementation = load_pass(str(raw["type"]))
        except KeyError as error:
            raise ConfigError(path=f"$.passes.{name}.type", problem=str(error.args[0])) from None
        try:
            validated = implementation.validate(parameters)
        except PassConfigError as error:
            raise ConfigError(
                path=f"$.passes.{name}.{error.field}" if error.field else f"$.passes.{name}",
                problem=error.problem,
            ) from None
        spec = PassSpec(
            name=name,
            type=implementation.type,
            version=implementation.version,
            config=validated,
            packages=implementation.packages(),
        )
        specs.append(spec)
        instances[name] = PassInstance(spec=spec, implementation=implementation, config=validated)
    _check_types(config, instances, resolved.model_type)
    chain = Chain(model=resolved.identity, passes=specs)

    local = LocalStore(config.resolve(config.cache_dir))
    cloud_config = config.cloud_cache_config
    use_cloud = config.cloud_enabled and not options.no_cloud and not options.no_cache
    cloud = None
    if use_cloud:
        assert cloud_config is not None
        from .cloud import open_cloud_store

        cloud = open_cloud_store(cloud_config)
    policy = CachePolicy(
        enable_cloud_cache=cloud is not None,
        upload_to_cloud=bool(cloud_config and cloud_config.upload_to_cloud)
        and not options.no_upload,
        enable_local_cache=not options.no_cache,
    )
    evaluator = None
    evaluation = Evaluation.nothing()
    if config.evaluator is not None and config.evaluator.evaluate != "none":
        from .evaluation import Evaluator

        evaluator = Evaluator(config.evaluator, reference=resolved.path)
        target = config.evaluator.evaluate
        if isinstance(target, tuple):
            unknown = [name for name in target if name not in instances]
            if unknown:
                raise ConfigError(
                    path="$.evaluator.evaluate",
                    problem=f"no pass called {unknown[0]!r}; passes are {list(instances)}",
                )
            evaluation = Evaluation.of(target, evaluator.fingerprint)
        elif target == "all":
            evaluation = Evaluation.every_output(evaluator.fingerprint)
        else:
            evaluation = Evaluation.final(evaluator.fingerprint)
    return Prepared(
        config=config,
        options=options,
        model_path=resolved.path,
        chain=chain,
        passes=instances,
        local=local,
        cloud=cloud,
        policy=policy,
        evaluation=evaluation,
        evaluator=evaluator,
    )


def _check_types(
    config: WorkflowConfig, instances: Mapping[str, PassInstance], model_type: str
) -> None:
    current = model_type
    for name, instance in instances.items():
        accepted = instance.implementation.input_types
        if current not in accepted:
            raise ConfigError(
                path=f"$.passes.{name}",
                problem=f"{instance.spec.type} takes a {' or '.join(sorted(accepted))} model, "
                f"but its input is a {current} model; reorder the passes",
            )
        current = instance.implementation.output_type


def snapshot(prepared: Prepared, *, cloud: bool = True) -> Snapshot:
    """The cache's contents for the chain's keys: the local tier, and the cloud if used."""
    keys = prepared.keys
    listing: list[SnapshotEntry] = []
    if prepared.policy.enable_local_cache:
        listing.extend(prepared.local.snapshot(keys))
    if cloud and prepared.cloud is not None:
        listing.extend(prepared.cloud.snapshot(keys))
    return Snapshot.from_listing(listing)


def plan_workflow(prepared: Prepared) -> Plan:
    """The dry run: what :func:`run_workflow` would do now. Reads the cache, writes nothing."""
    return make_plan(prepared.chain, prepared.evaluation, snapshot(prepared), prepared.policy)


@define
class _Replan(Exception):
    """Raised inside :func:`execute` when the plan's assumptions broke."""

    reason: str
    drop_key: str | None = None
    lose_cloud: bool = False
    #: The outcome recorded for the step that raised it: ``waited`` when another runner
    #: published the output a run step was about to compute (single flight).
    outcome: str = "failed"


@define(kw_only=True)
class _Execution:
    prepared: Prepared
    plan: Plan
    work: Path
    report: RunReport
    reporter: Reporter
    uploads_allowed: bool
    materialized: dict[str, Path]
    #: Single-flight claims held, by key: each until its output is published where claimed.
    claims: dict[str, Claim] = Factory(dict)
    #: Keys whose cloud entry turned out unusable (damaged) in this run.
    dropped: set[str] = Factory(set)

    def input_path(self, key: str | None) -> Path:
        return self.prepared.model_path if key is None else self.materialize(key)

    def materialize(self, key: str) -> Path:
        path = self.materialized.get(key)
        if path is None:
            path = self.work / key
            self.prepared.local.fetch(key, path)
            self.materialized[key] = path
        return path


def execute(prepared: Prepared, reporter: Reporter | None = None) -> RunReport:
    """Plan and carry out the workflow, re-planning when the cache lets the plan down."""
    reporter = reporter or Reporter()
    _output_dir(prepared)
    report = RunReport()
    started = time.perf_counter()
    cloud_up = prepared.cloud is not None
    dropped: set[str] = set()
    policy = prepared.policy
    local_root = prepared.local.root
    local_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="run-", dir=local_root) as scratch:
        materialized: dict[str, Path] = {}
        # Each re-plan removes a cause: a cloud lost, an entry dropped, or an output another
        # runner published meanwhile (once per pass), so the attempts are bounded.
        for _attempt in range(2 * len(prepared.chain.passes) + 3):
            try:
                current = _snapshot_or_lose_cloud(prepared, cloud_up, dropped)
            except _Replan as replan:
                cloud_up, policy = _lose_cloud(prepared, replan, report, reporter)
                continue
            plan = make_plan(prepared.chain, prepared.evaluation, current, policy)
            reporter.planned(plan=plan)
            if not report.steps:
                _count_hits(plan, current, policy, report)
            run = _Execution(
                prepared=prepared,
                plan=plan,
                work=Path(scratch),
                report=report,
                reporter=reporter,
                uploads_allowed=policy.uploads,
                materialized=materialized,
                dropped=dropped,
            )
            try:
                _carry_out(run)
            except _Replan as replan:
                report.replans += 1
                if replan.lose_cloud:
                    cloud_up, policy = _lose_cloud(prepared, replan, report, reporter)
                if replan.drop_key is not None:
                    dropped.add(replan.drop_key)
                    message = f"re-planning: {replan.reason}"
                    report.notes.append(message)
                    reporter.note(message=message)
                continue
            break
        else:  # pragma: no cover - each re-plan removes a cause, so this is a bug
            raise RuntimeError("the plan kept failing; giving up")
        if plan.final_key is not None:
            _deliver(run, plan.final_key)
    report.wall_seconds = time.perf_counter() - started
    _record(prepared, report, cloud=cloud_up and run.uploads_allowed)
    return report


def _record(prepared: Prepared, report: RunReport, *, cloud: bool) -> None:
    """Write the run's record (hits, misses, bytes, the keys it used) to each tier it used:
    one small write per tier per run, which is all that last-use tracking costs."""
    from .maintenance import RunTally, record_run

    totals = report.totals()
    tally = RunTally(
        runs=1,
        hits=dict(report.hits),
        misses=dict(report.misses),
        bytes_downloaded=totals["bytes_downloaded"],
        bytes_uploaded=totals["bytes_uploaded"],
        bytes_avoided=report.bytes_avoided,
        compute_seconds_saved=report.compute_seconds_saved,
    )
    stores: list[Any] = []
    if prepared.policy.enable_local_cache:
        stores.append(prepared.local)
    if cloud and prepared.cloud is not None:
        stores.append(prepared.cloud)
    for store in stores:
        if isinstance(store, MaintainedStore):
            # Statistics are not worth failing a finished run for.
            with contextlib.suppress(StoreError):
                record_run(store, tally, prepared.keys, finished=time.time())


def _lose_cloud(
    prepared: Prepared, replan: _Replan, report: RunReport, reporter: Reporter
) -> tuple[bool, CachePolicy]:
    if prepared.options.require_cloud:
        raise CloudRequired(
            f"the cloud cache failed and --require-cloud was given: {replan.reason}"
        )
    message = f"cloud cache unreachable ({replan.reason}); finishing locally"
    report.notes.append(message)
    reporter.note(message=message)
    return False, evolve(prepared.policy, enable_cloud_cache=False)


def _snapshot_or_lose_cloud(prepared: Prepared, cloud_up: bool, dropped: set[str]) -> Snapshot:
    try:
        current = snapshot(prepared, cloud=cloud_up)
    except StoreUnavailable as error:
        raise _Replan(str(error), lose_cloud=True) from error
    if not dropped:
        return current
    return Snapshot.from_listing(
        evolve(entry, in_cloud=False) if entry.key in dropped else entry
        for entry in current.listing()
    )


def _count_hits(plan: Plan, current: Snapshot, policy: CachePolicy, report: RunReport) -> None:
    """Hits and misses per tier for the outputs of the first plan; see ``RunReport.hits``."""
    for step in plan.steps:
        if not isinstance(step, (Run, Download, Skip)):
            continue
        entry = current.get(step.key)
        if entry is not None and entry.in_local:
            report.hits["local"] += 1
        else:
            if policy.enable_local_cache:
                report.misses["local"] += 1
            if policy.enable_cloud_cache:
                if entry is not None and entry.in_cloud:
                    report.hits["cloud"] += 1
                else:
                    report.misses["cloud"] += 1
        skipped_in_cloud = isinstance(step, Skip) and step.location == "cloud"
        if skipped_in_cloud and entry is not None and entry.size is not None:
            report.bytes_avoided += entry.size
        if isinstance(step, (Download, Skip)) and entry is not None and entry.run_seconds:
            report.compute_seconds_saved += entry.run_seconds


def _carry_out(run: _Execution) -> None:
    try:
        for step in run.plan.steps:
            started = time.perf_counter()
            size = getattr(step, "size", None)
            run.reporter.step_started(kind=_kind(step), pass_name=step.pass_name,
                                      total_bytes=size)  # fmt: skip
            try:
                moved, outcome, detail = _do(run, step)
            except _Replan as replan:
                # Recorded, so that the report shows which step let the plan down, and why.
                _record_step(run, step, started, 0, replan.outcome, replan.reason)
                raise
            if isinstance(step, Upload):
                _release(run, step.key)  # in the cloud now (or never will be): waiters go on
            _record_step(run, step, started, moved, outcome, detail)
    finally:
        for key in list(run.claims):
            _release(run, key)


def _record_step(
    run: _Execution, step: Any, started: float, moved: int, outcome: str, detail: str
) -> None:
    record = StepRecord(
        kind=_kind(step),
        pass_name=step.pass_name,
        key=step.key,
        reason=step.reason,
        seconds=time.perf_counter() - started,
        bytes=moved,
        outcome=outcome,
        detail=detail,
    )
    run.report.steps.append(record)
    run.reporter.step_finished(record=record)


def _kind(step: Any) -> Any:
    return type(step).__name__.lower()


def _do(run: _Execution, step: Any) -> tuple[int, str, str]:
    prepared = run.prepared
    match step:
        case Skip():
            return 0, "done", ""
        case Run(pass_name=name, key=key, input_key=input_key):
            claim, in_cloud, waited = _claim(run, step)
            if claim is not None:
                run.claims[key] = claim  # released once published; by _carry_out on failure
            instance = prepared.passes[name]
            source = run.input_path(input_key)
            out = run.work / f"{key}.out"
            if out.exists():
                shutil.rmtree(out)
            out.mkdir()
            started = time.perf_counter()
            instance.implementation.run(source, out, dict(instance.config))
            seconds = time.perf_counter() - started
            manifest = build_manifest(
                key=key,
                key_inputs=key_document(_input_of(prepared.chain, input_key), instance.spec),
                model_type=instance.implementation.output_type,
                directory=out,
                run_seconds=seconds,
                created=_now(),
                producer=PRODUCER,
            )
            prepared.local.publish(out, manifest)
            run.materialized[key] = out
            if not in_cloud:
                _release(run, key)  # claimed in the local tier, published there now
            return 0, "done", waited
        case Download(key=key):
            assert prepared.cloud is not None
            target = run.work / key
            try:
                manifest = prepared.cloud.fetch(key, target, progress=_progress(run, step))
            except StoreUnavailable as error:
                raise _Replan(str(error), lose_cloud=True) from error
            except (CorruptEntry, EntryNotFound) as error:
                raise _Replan(f"cloud entry {key[:12]} unusable: {error}", drop_key=key) from error
            prepared.local.publish(target, manifest)
            run.materialized[key] = target
            return manifest.size, "done", ""
        case Upload(key=key):
            if prepared.cloud is None or not run.uploads_allowed:
                return 0, "skipped", "uploads are off"
            path = run.materialize(key)
            manifest = prepared.local.read_manifest(key)
            try:
                published = prepared.cloud.publish(path, manifest, progress=_progress(run, step))
            except AccessDenied as error:
                run.uploads_allowed = False
                _note(run, f"uploads refused by the cloud cache ({error}); continuing without")
                return 0, "refused", str(error)
            except StoreUnavailable as error:
                raise _Replan(str(error), lose_cloud=True) from error
            if not published:
                if key in run.dropped:
                    # Publishing never replaces an entry; only a repair removes a bad one.
                    message = (
                        f"the cloud's entry {key[:12]} for pass {step.pass_name!r} is damaged "
                        "and stays so: run `modelcache cache verify --repair` to remove it"
                    )
                    _note(run, message)
                    return 0, "damaged-in-cloud", message
                return 0, "already-there", "another runner published it first"
            return manifest.size, "done", ""
        case Evaluate(key=key, cached=cached):
            return _evaluate(run, step.pass_name, key, cached)
    raise AssertionError(f"unknown step {step!r}")


def _uploads(run: _Execution, key: str) -> bool:
    """Whether this plan publishes the output ``key`` to the cloud."""
    return run.uploads_allowed and any(
        isinstance(step, Upload) and step.key == key for step in run.plan.steps
    )


def _claim(run: _Execution, step: Run) -> tuple[Claim | None, bool, str]:
    """Single flight (:mod:`modelcache.store`): claim the output ``step`` computes in
    the tier it will be published to, waiting while another runner computes it. That is the
    cloud if this plan uploads the output and the cloud store has locks; else the local
    tier (processes on this machine sharing the cache directory).

    :return: the claim to hold until the output is published (None: no lock to hold),
        whether it is the cloud's (held until the upload) or the local tier's (until the
        run step published it there), and what waiting there was, for the step's record.
    :raises _Replan: another runner published the output meanwhile; the next plan
        downloads (or skips) it. The step is recorded with the outcome ``waited``.
    """
    prepared = run.prepared
    cloud = prepared.cloud if _uploads(run, step.key) else None
    locks = None if cloud is None else cloud.locks()
    in_cloud = locks is not None
    if locks is None and prepared.policy.enable_local_cache:
        locks = prepared.local.locks()
    if locks is None:
        return None, False, ""
    try:
        claim = locks.claim(step.key, max_wait=prepared.options.single_flight_wait)
    except StoreUnavailable as error:
        raise _Replan(str(error), lose_cloud=True) from error
    except StoreError as error:
        message = f"cannot lock outputs ({error}); computing without waiting for other runners"
        if message not in run.report.notes:  # once, not once per pass
            _note(run, message)
        return None, False, ""
    other = f"another runner computing pass {step.pass_name!r}"
    match claim.outcome:
        case "held":
            waited = f"waited {claim.waited:.1f} s for {other}" if claim.waited else ""
            return claim, in_cloud, waited
        case "timed-out":
            _note(run, f"waited {claim.waited:.0f} s for {other} ({step.key[:12]}); "
                       "computing it here too")  # fmt: skip
            return None, False, f"waited {claim.waited:.1f} s for {other}, then computed it too"
    if step.key in run.dropped:
        # The entry found is the damaged one this run dropped, not another runner's work.
        return None, False, ""
    if any((r.kind, r.key, r.outcome) == ("run", step.key, "waited") for r in run.report.steps):
        # We deferred to it once already, and are back: its entry was unusable. Compute.
        return None, False, "another runner published it, but its entry was unusable"
    waited = f"waited {claim.waited:.1f} s for {other} ({step.key[:12]}), which published it"
    if not claim.waited:
        waited = f"{other} ({step.key[:12]}) published it since this run planned"
    _note(run, f"{waited}: using its output instead of computing it")
    _recount_as_hit(run, in_cloud=in_cloud)
    raise _Replan(f"{other} published it; re-planning to use it", outcome="waited")


def _recount_as_hit(run: _Execution, *, in_cloud: bool) -> None:
    """An output counted as a miss that another runner published meanwhile is a hit after
    all: in the cloud (the local tier still missed), or in the local tier (and then the
    cloud was never asked)."""
    hits, misses = run.report.hits, run.report.misses
    if in_cloud and misses["cloud"] > 0:
        misses["cloud"] -= 1
        hits["cloud"] += 1
    elif not in_cloud and misses["local"] > 0:
        misses["local"] -= 1
        hits["local"] += 1
        if run.prepared.policy.enable_cloud_cache and misses["cloud"] > 0:
            misses["cloud"] -= 1


def _release(run: _Execution, key: str) -> None:
    claim = run.claims.pop(key, None)
    if claim is not None:
        claim.release()


def _progress(run: _Execution, step: Any) -> Callable[[int], None]:
    """A transfer's progress callback: totals the bytes moved (the stores call it from
    their worker threads) and hands the running total to the reporter."""
    lock = threading.Lock()
    total = 0

    def moved(count: int) -> None:
        nonlocal total
        with lock:
            total += count
            done = total
        run.reporter.transferred(pass_name=step.pass_name, bytes_done=done)

    return moved


def _note(run: _Execution, message: str) -> None:
    run.report.notes.append(message)
    run.reporter.note(message=message)


def _evaluate(run: _Execution, pass_name: str, key: str, cached: bool) -> tuple[int, str, str]:
    prepared = run.prepared
    evaluator = prepared.evaluator
    fingerprint = prepared.evaluation.fingerprint
    if cached:
        for store in (prepared.local, prepared.cloud):
            if store is None:
                continue
            # A result that cannot be read is recomputed: the cache is an optimization.
            with contextlib.suppress(StoreError):
                run.report.metrics[pass_name] = dict(store.read_evaluation(key, fingerprint))
                return 0, "done", "cached result"
    model_type = prepared.passes[pass_name].implementation.output_type
    result = evaluator.evaluate(run.materialize(key), model_type)
    run.report.metrics[pass_name] = result
    prepared.local.write_evaluation(key, fingerprint, result)
    if prepared.cloud is not None and run.uploads_allowed:
        with contextlib.suppress(StoreError):
            prepared.cloud.write_evaluation(key, fingerprint, result)
    return 0, "done", ""


def _input_of(chain: Chain, input_key: str | None) -> str | ModelIdentity:
    return chain.model if input_key is None else input_key


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _output_dir(prepared: Prepared) -> Path:
    """Where the final model goes; refused up front if it holds files of someone else's."""
    output = prepared.config.resolve(prepared.config.output_dir)
    if output.exists() and any(output.iterdir()) and not (output / OUTPUT_MARKER).exists():
        raise ConfigError(
            path="$.output_dir",
            problem=f"{output} holds files modelcache did not write; "
            "choose an empty or new output_dir",
        )
    return output


def _deliver(run: _Execution, final_key: str) -> None:
    """Copy the final model to ``output_dir``, replacing an earlier modelcache output whole."""
    output = _output_dir(run.prepared)
    source = run.materialize(final_key)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.new-", dir=output.parent))
    aside = None
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        marker = {"key": final_key, "producer": PRODUCER}
        (staging / OUTPUT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if output.exists():
            # Renaming a folder onto an empty one replaces it; the old output waits there
            # until the new one is in place, so a failure leaves one or the other whole.
            aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            os.replace(output, aside)
        try:
            os.replace(staging, output)
        except BaseException:
            if aside is not None:
                os.replace(aside, output)
                aside = None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    run.report.final_key = final_key
    run.report.output_dir = str(output)


def run_workflow(
    config: WorkflowConfig, options: RunOptions = RunOptions(), reporter: Reporter | None = None
) -> RunReport:
    """Prepare and execute a workflow."""
    return execute(prepare(config, options), reporter)
