"""One handler per kind of plan step; each says what the step moved and how it ended.

Bytes moved are what crossed the wire, as the stores report them through the progress
callback (:class:`~._state.Transfer`): an upload that found most blobs present and only
refreshed them counts only what it sent. A pass's run time, which the manifest records and
later runs weigh against a download, is the pass's own: the packages it names are imported
before the clock starts, so the first pass of a process is not charged for importing them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import (
    Chain,
    Download,
    Evaluate,
    ModelIdentity,
    Run,
    Skip,
    Step,
    Upload,
    UploadVerdict,
    key_document,
    upload_verdict,
)
from modelcache.store import (
    AccessDenied,
    CorruptEntry,
    EntryNotFound,
    Manifest,
    Store,
    StoreError,
    StoreUnavailable,
    UntrustedEntry,
    build_manifest,
)

from .._telemetry import silence
from ..passes import check_output
from ..reporting import CACHED_RESULT, Outcome
from ._deliver import already_delivered
from ._single_flight import claim_output, release
from ._state import PRODUCER, Execution, Replan

__all__ = ["StepResult", "do", "publish", "upload_source"]

#: What a step came to: bytes moved, its outcome, and a detail for the report.
StepResult = tuple[int, Outcome, str]


def do(run: Execution, step: Step) -> StepResult:
    """Carry out ``step``. :raises Replan: the plan's assumptions broke."""
    match step:
        case Skip(location="local") if _read_later(run, step.key):
            if _only_delivered(run, step.key) and already_delivered(run, step.key):
                run.delivered = step.key  # output_dir holds it, checked: nothing to copy
                return 0, "done", ""
            run.materialize(step.key)  # read now, so that damage is this step's to report
            return 0, "done", ""
        case Skip():
            return 0, "done", ""
        case Run():
            return _run(run, step)
        case Download():
            return _download(run, step)
        case Upload():
            return _upload(run, step)
        case Evaluate():
            return _evaluate(run, step)
    raise AssertionError(f"unknown step {step!r}")


def _run(run: Execution, step: Run) -> StepResult:
    """Run the pass into the scratch folder, under single flight, and publish its output
    into the local tier."""
    prepared = run.prepared
    key = step.key
    in_cloud, waited = claim_output(run, step)
    instance = prepared.passes[step.pass_name]
    source = run.input_path(step.input_key)
    out = run.work / f"{key}.out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    _import_packages(instance.implementation.packages())
    started = time.perf_counter()
    instance.implementation.run(source, out, dict(instance.config))
    seconds = time.perf_counter() - started
    # Nothing broken is ever published: an output that does not load fails the pass here.
    check_output(instance.implementation.output_type, out, pass_type=instance.spec.type)
    manifest = build_manifest(
        key=key,
        key_inputs=key_document(_input_of(prepared.chain, step.input_key), instance.spec),
        model_type=instance.implementation.output_type,
        directory=out,
        run_seconds=seconds,
        created=_now(),
        producer=PRODUCER,
    )
    _keep_locally(run, out, manifest)
    run.materialized[key] = out
    if not in_cloud:
        release(run, key)  # claimed in the local tier, published there now
    return 0, "done", waited


def _download(run: Execution, step: Download) -> StepResult:
    """Fetch the output from the cloud into the scratch folder and publish it locally."""
    prepared = run.prepared
    assert prepared.cloud is not None  # the planner downloads only from a cloud it has
    target = run.work / step.key
    moved = run.progress(step)
    try:
        manifest = prepared.cloud.fetch(step.key, target, progress=moved)
    except StoreUnavailable as error:
        raise Replan(str(error), lose_cloud=True) from error
    except (CorruptEntry, EntryNotFound) as error:
        message = f"cloud entry {step.key[:12]} unusable: {error}"
        raise Replan(message, drop_key=step.key) from error
    # Not through LayeredStore.fetch: it reads the local tier first, and a local read error
    # would then pass for a lost cloud. A failure to keep the output locally fails the run.
    _keep_locally(run, target, manifest)
    run.materialized[step.key] = target
    return moved.total, "done", ""


def _upload(run: Execution, step: Upload) -> StepResult:
    """Publish the output into the cloud, unless uploads are off or refused."""
    ready = upload_source(run, step)
    if not isinstance(ready, Path):
        return ready
    return publish(run, step, ready)


def upload_source(run: Execution, step: Upload) -> Path | StepResult:
    """What :func:`publish` sends for ``step``: the output, materialized; or, when there is
    nothing to send (uploads are off or were refused), the step's result.

    :raises Replan: the local entry is damaged.
    """
    if run.prepared.cloud is None or not run.uploads_allowed:
        return 0, "skipped", "uploads are off"
    if step.if_worthwhile:
        verdict = _judge_upload(run, step)
        if not verdict.upload:
            return 0, "skipped", verdict.reason
    return run.materialize(step.key)


def _judge_upload(run: Execution, step: Upload) -> UploadVerdict:
    """The ``worthwhile`` policy's verdict on an output this run computed, from its recorded
    run time and size (:func:`~modelcache.planner.upload_verdict`). Recomputing it means
    running its pass, and the passes of its inputs this policy kept local before it."""
    manifest = run.prepared.local.read_manifest(step.key)
    made_from = next((s.input_key for s in run.plan.steps
                      if isinstance(s, Run) and s.key == step.key), None)  # fmt: skip
    carried = 0.0 if made_from is None else run.unshared.get(made_from, 0.0)
    own = manifest.run_seconds
    recompute = None if own is None else own + carried
    verdict = upload_verdict(recompute_seconds=recompute, size=manifest.size,
                             bandwidth=run.prepared.policy.bandwidth)  # fmt: skip
    if not verdict.upload and recompute is not None:
        run.unshared[step.key] = recompute
    return verdict


def publish(run: Execution, step: Upload, path: Path) -> StepResult:
    """Publish the materialized output ``path`` into the cloud. Safe to call from a worker
    thread while the next steps run (:mod:`._uploads`).

    :raises Replan: the cloud stopped answering.
    """
    cloud = run.prepared.cloud
    if cloud is None or not run.uploads_allowed:  # refused since (an earlier upload)
        return 0, "skipped", "uploads are off"
    manifest = run.prepared.local.read_manifest(step.key)
    sent = run.progress(step)
    try:
        published = cloud.publish(path, manifest, progress=sent)
    except AccessDenied as error:
        run.uploads_allowed = False
        run.note(f"uploads refused by the cloud cache ({error}); continuing without")
        return 0, "refused", str(error)
    except StoreUnavailable as error:
        raise Replan(str(error), lose_cloud=True) from error
    if published:
        return sent.total, "done", ""
    if step.key in run.dropped:
        # Publishing never replaces an entry; only a repair removes a bad one.
        message = (
            f"the cloud's entry {step.key[:12]} for pass {step.pass_name!r} is damaged "
            "and stays so: run `modelcache cache verify --repair` to remove it"
        )
        run.note(message)
        return sent.total, "damaged-in-cloud", message
    return sent.total, "already-there", "another runner published it first"


def _evaluate(run: Execution, step: Evaluate) -> StepResult:
    """Read the cached result of the evaluation, or measure the output and cache it."""
    prepared = run.prepared
    fingerprint = prepared.evaluation.fingerprint
    if step.cached:
        for store in (prepared.local, prepared.cloud):
            if store is None:
                continue
            # A result that cannot be read is recomputed: the cache is an optimization.
            with contextlib.suppress(StoreError):
                result = _cached_result(run, store, step.key, fingerprint)
                run.report.metrics[step.pass_name] = result
                if store is prepared.cloud and prepared.policy.enable_local_cache:
                    # Kept locally, as the model is: the next run asks the cloud nothing.
                    with contextlib.suppress(StoreError):
                        prepared.local.write_evaluation(step.key, fingerprint, result)
                return 0, "done", CACHED_RESULT
    evaluator = prepared.evaluator
    assert evaluator is not None  # the planner evaluates only when the config asks to
    model_type = prepared.passes[step.pass_name].implementation.output_type
    result = evaluator.evaluate(run.materialize(step.key), model_type, pass_name=step.pass_name)
    run.report.metrics[step.pass_name] = result
    prepared.local.write_evaluation(step.key, fingerprint, result)
    if prepared.cloud is not None and run.uploads_allowed:
        with contextlib.suppress(StoreError):
            prepared.cloud.write_evaluation(step.key, fingerprint, result)
    return 0, "done", ""


def _cached_result(run: Execution, store: Store, key: str, fingerprint: str) -> dict[str, Any]:
    """A stored result; one no trusted signer vouches for is noted, then raised."""
    try:
        return dict(store.read_evaluation(key, fingerprint))
    except UntrustedEntry as error:
        run.note(f"{error}; measuring again")
        raise


def _only_delivered(run: Execution, key: str) -> bool:
    """Whether ``key`` is the final output and no step reads it but the delivery."""
    if key != run.plan.final_key:
        return False
    for step in run.plan.steps:
        match step:
            case Run(input_key=read) if read == key:
                return False
            case Upload() | Evaluate(cached=False) if step.key == key:
                return False
    return True


def _read_later(run: Execution, key: str) -> bool:
    """Whether a later step of the plan reads the output ``key`` (or it is the final one)."""
    if key == run.plan.final_key:
        return True
    for step in run.plan.steps:
        match step:
            case Run(input_key=read) if read == key:
                return True
            case Upload() | Evaluate(cached=False) if step.key == key:
                return True
    return False


def _keep_locally(run: Execution, directory: Path, manifest: Manifest) -> None:
    """Publish ``directory`` into the local tier, replacing a damaged entry in its way; an
    entry another process published meanwhile is as good and stays."""
    local = run.prepared.local
    if not local.publish(directory, manifest) and run.clear_damaged_local(manifest.key):
        local.publish(directory, manifest)


def _import_packages(packages: Mapping[str, str]) -> None:
    """Import the pass's packages (distribution names; most are their module's name) so
    that its run time does not include importing them. One that does not import so is left
    to the pass, which meets the same error where it belongs."""
    silence()  # before OpenVINO, say
    for name in packages:
        with contextlib.suppress(Exception):
            importlib.import_module(name.replace("-", "_"))


def _input_of(chain: Chain, input_key: str | None) -> str | ModelIdentity:
    return chain.model if input_key is None else input_key


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
