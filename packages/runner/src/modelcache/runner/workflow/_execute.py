"""Executing a workflow: carrying plans out, and planning again when the cache lets one down.

Theory of operation
-------------------
:func:`execute` plans with a snapshot of the cache and carries the plan out step by step
(:mod:`._steps`). Models are *materialized* in a scratch folder beside the local tier (so
renames stay on one file system): a run writes there, a download lands there, and an output
the local tier holds is fetched there only when a later step reads it. Every output that is
run or downloaded is published into the local tier; uploads push it to the cloud, in the
background while the next steps run (:mod:`._uploads`). The final output is copied to
``output_dir`` (:mod:`._deliver`). The scratch folder is removed however the run ends, and a
killed run's is swept by the next (:mod:`._scratch`).

The cache is an optimization, so the run survives the cloud. A step whose assumption broke
raises :class:`~._state.Replan`, and the executor plans again, from a new snapshot, with the
cause removed:

==========================================  ===============================================
what happened                               the next plan
==========================================  ===============================================
the cloud stopped answering                 without the cloud (``CloudRequired`` instead
                                            with ``--require-cloud``)
a downloaded entry was corrupt or missing   with that entry counted as a miss
another runner published an output this     with that output, downloaded or skipped
run was about to compute (single flight)
==========================================  ===============================================

A re-plan starts from what the local tier holds by then, so no finished work is repeated;
outputs materialized by earlier plans stay materialized. Each re-plan removes a cause (the
cloud once, an entry once, another runner's output once per pass), so the attempts are
bounded. Hits and misses (:mod:`._hits`) are counted from the first plan carried out.

Runners sharing a cache do not compute one output twice (:mod:`._single_flight`): before
running a pass, the executor claims its output in the tier it will publish it to and holds
the claim until the output is published there.

When the run is over, its record (hits, misses, bytes, the keys it used) is written to each
tier it used, for ``modelcache cache stats`` and last-use tracking; to the cloud, when the
run used the cloud's entries, or once a day (``maintenance.cloud_records``).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from attrs import evolve

from modelcache.planner import (
    CachePolicy,
    Download,
    Plan,
    Snapshot,
    Step,
    Upload,
    make_plan,
)
from modelcache.store import MaintainedStore, Store, StoreError, StoreUnavailable

from ..config import WorkflowConfig
from ..reporting import Reporter, RunReport, step_kind
from ..trust import with_trust
from ._deliver import deliver, output_dir
from ._hits import count_hits
from ._prepare import (
    Prepared,
    RunOptions,
    needs_nothing_of_the_cloud,
    prepare,
    remembered_listings,
    snapshot,
)
from ._scratch import scratch_folder
from ._single_flight import release
from ._state import Execution, Replan
from ._steps import StepResult, do, upload_source
from ._uploads import Uploads

__all__ = ["CloudRequired", "execute", "run_workflow"]


class CloudRequired(StoreError):
    """The user required the cloud and it failed; the message says how."""


_NO_OPTIONS = RunOptions()


def run_workflow(
    config: WorkflowConfig, options: RunOptions = _NO_OPTIONS, reporter: Reporter | None = None
) -> RunReport:
    """Prepare and execute a workflow."""
    return execute(prepare(config, options), reporter)


def execute(prepared: Prepared, reporter: Reporter | None = None) -> RunReport:
    """Plan and carry out the workflow, re-planning when the cache lets the plan down.

    :param reporter: told of plans, steps, transfers and notes as they happen.
    :return: what the run did; the final model is in ``output_dir`` by then.
    :raises ConfigError: ``output_dir`` holds files modelcache did not write (checked before
        any work), or a signing or trusted key cannot be read.
    :raises CloudRequired: the cloud failed and ``options.require_cloud`` is set.
    """
    reporter = reporter or Reporter()
    output_dir(prepared)
    prepared, trust_note = with_trust(prepared)  # signs and checks as the config says
    report = RunReport()
    if trust_note is not None:
        report.notes.append(trust_note)
        reporter.note(message=trust_note)
    started = time.perf_counter()
    local_root = prepared.local.root
    local_root.mkdir(parents=True, exist_ok=True)
    with scratch_folder(local_root) as scratch:
        run, cloud_up, listed = _until_a_plan_succeeds(prepared, report, reporter, scratch)
        if run.plan.final_key is not None:
            deliver(run, run.plan.final_key)
    report.wall_seconds = time.perf_counter() - started
    if cloud_up and listed is not None:
        _note_listing(prepared, report, listed)
    _record(prepared, report, cloud=cloud_up and run.uploads_allowed)
    if prepared.cloud is not None and cloud_up:
        from ._link import cloud_name, note_speed

        note_speed(local_root, cloud_name(prepared.cloud), report.steps)
    return report


def _until_a_plan_succeeds(
    prepared: Prepared, report: RunReport, reporter: Reporter, work: Path
) -> tuple[Execution, bool, set[str] | None]:
    """Plan and carry out, again after each :class:`Replan`, until a plan goes through.
    The first plan is made from what the cloud held when this machine last listed it, if
    that was less than a day ago, and kept if it only skips and reads cached results
    (:func:`~._prepare.remembered_listings`); every other plan from the cloud's listing.

    :return: the execution of that plan, whether the cloud is still in use, and which of
        the keys the cloud listed (None if the plan was made without its listing).
    """
    cloud_up = prepared.cloud is not None
    policy = prepared.policy
    dropped: set[str] = set()
    unshared: dict[str, float] = {}
    materialized: dict[str, Path] = {}
    for attempt in range(2 * len(prepared.chain.passes) + 3):
        remembered = _remembered(prepared, policy) if attempt == 0 and cloud_up else None
        if remembered is not None:
            current, plan = remembered
            listed = None
        else:
            try:
                current = _snapshot_or_lose_cloud(prepared, cloud_up, dropped)
            except Replan as replan:
                cloud_up, policy = _lose_cloud(prepared, replan, report, reporter)
                continue
            listed = {entry.key for entry in current.listing() if entry.in_cloud}
            plan = make_plan(prepared.chain, prepared.evaluation, current, policy)
        reporter.planned(plan=plan)
        if not report.steps:
            count_hits(plan, current, policy, report)
        run = Execution(
            prepared=prepared,
            plan=plan,
            work=work,
            report=report,
            reporter=reporter,
            uploads_allowed=policy.uploads,
            materialized=materialized,
            dropped=dropped,
            unshared=unshared,
        )
        try:
            carry_out(run)
        except Replan as replan:
            report.replans += 1
            if replan.lose_cloud:
                cloud_up, policy = _lose_cloud(prepared, replan, report, reporter)
            if replan.drop_key is not None:
                dropped.add(replan.drop_key)
                run.note(f"re-planning: {replan.reason}")
            continue
        return run, cloud_up, listed
    raise RuntimeError("the plan kept failing; giving up")  # pragma: no cover - a bug


def _remembered(prepared: Prepared, policy: CachePolicy) -> tuple[Snapshot, Plan] | None:
    """The snapshot and plan of a warm-local run, made without the cloud's listing
    (:func:`~._prepare.remembered_listings`), if that plan needs nothing of the cloud."""
    found = remembered_listings(prepared, policy)
    if found is None:
        return None
    current = Snapshot.from_listing(entry for tier in found.values() for entry in tier)
    plan = make_plan(prepared.chain, prepared.evaluation, current, policy)
    return (current, plan) if needs_nothing_of_the_cloud(plan) else None


def _note_listing(prepared: Prepared, report: RunReport, listed: set[str]) -> None:
    """Note what the cloud holds of the keys after this run: what it listed, and what the
    run uploaded (or found already there)."""
    from ..maintenance.cloud_records import note_cloud_listing
    from ._link import cloud_name

    uploaded = {step.key for step in report.steps
                if step.kind == "upload" and step.outcome in ("done", "already-there")}  # fmt: skip
    note_cloud_listing(prepared.local.root, cloud_name(prepared.cloud), prepared.keys,
                       listed | uploaded, now=time.time())  # fmt: skip


def _snapshot_or_lose_cloud(prepared: Prepared, cloud_up: bool, dropped: set[str]) -> Snapshot:
    """The snapshot to plan with: the entries this run dropped are not in the cloud for it.

    :raises Replan: the cloud did not answer.
    """
    try:
        current = snapshot(prepared, cloud=cloud_up)
    except StoreUnavailable as error:
        raise Replan(str(error), lose_cloud=True) from error
    if not dropped:
        return current
    return Snapshot.from_listing(
        evolve(entry, in_cloud=False) if entry.key in dropped else entry
        for entry in current.listing()
    )


def _lose_cloud(
    prepared: Prepared, replan: Replan, report: RunReport, reporter: Reporter
) -> tuple[bool, CachePolicy]:
    """Go on without the cloud, unless the user required it.

    :return: the cloud is no longer up, and the policy to plan with from now on.
    :raises CloudRequired: with ``--require-cloud``.
    """
    if prepared.options.require_cloud:
        raise CloudRequired(
            f"the cloud cache failed and --require-cloud was given: {replan.reason}"
        )
    message = f"cloud cache unreachable ({replan.reason}); finishing locally"
    report.notes.append(message)
    reporter.note(message=message)
    return False, evolve(prepared.policy, enable_cloud_cache=False)


def carry_out(run: Execution) -> None:
    """Carry out the plan's steps in order, recording each, and release every single-flight
    claim still held when it ends, however it ends. Uploads go on in the background while
    the next steps run (:mod:`._uploads`); the plan is carried out when they have ended.

    :raises Replan: from the step that let the plan down, recorded first.
    """
    uploads = Uploads(run)
    interrupted = False
    try:
        for step in run.plan.steps:
            uploads.collect()
            _carry_out_step(run, step, uploads)
        uploads.collect(wait=True)
    except BaseException as error:
        interrupted = not isinstance(error, Exception)  # Ctrl-C, SIGTERM: do not wait
        raise
    finally:
        uploads.finish(interrupted=interrupted)
        for key in list(run.claims):
            release(run, key)


def _carry_out_step(run: Execution, step: Step, uploads: Uploads) -> None:
    """Carry out one step, or hand an upload to ``uploads``; record what it did.

    :raises Replan: the step let the plan down; recorded first, so that the report shows
        which step did, and why.
    """
    started = time.perf_counter()
    try:
        result: StepResult | None = None
        if isinstance(step, Upload):
            source = upload_source(run, step)
            if isinstance(source, Path):
                uploads.submit(step, source)  # its worker tells the reporter it started
                return
            result = source  # nothing to send
        size = step.size if isinstance(step, Download) else None
        run.reporter.step_started(kind=step_kind(step), pass_name=step.pass_name,
                                  total_bytes=size)  # fmt: skip
        moved, outcome, detail = do(run, step) if result is None else result
    except Replan as replan:
        run.record(step, time.perf_counter() - started, 0, replan.outcome, replan.reason)
        raise
    run.record(step, time.perf_counter() - started, moved, outcome, detail)


def _record(prepared: Prepared, report: RunReport, *, cloud: bool) -> None:
    """Write the run's record (hits, misses, bytes, the keys it used) to each tier it used:
    one small write per tier per run, which is all that last-use tracking costs; in the
    cloud, only when the run used the cloud's entries or a day has passed
    (:mod:`~modelcache.runner.maintenance.cloud_records` says why that is enough)."""
    from ..maintenance.usage import record_run

    tally = report.tally()
    finished = time.time()
    stores: list[Store] = []
    if prepared.policy.enable_local_cache:
        stores.append(prepared.local)
    if cloud and prepared.cloud is not None and _cloud_record_due(prepared, report, finished):
        stores.append(prepared.cloud)
    for store in stores:
        # Run records are a maintenance capability; a store without it keeps none.
        if isinstance(store, MaintainedStore):
            # Statistics are not worth failing a finished run for.
            with contextlib.suppress(StoreError):
                record_run(store, tally, prepared.keys, finished=finished)
                if store is prepared.cloud:
                    _note_cloud_record(prepared, finished)


def _cloud_record_due(prepared: Prepared, report: RunReport, now: float) -> bool:
    from ..maintenance.cloud_records import cloud_record_due

    # Skipping an output that only the cloud holds (an intermediate nothing needed) is not a
    # use of it: moving one is.
    moved = any(step.kind in ("download", "upload") for step in report.steps)
    return cloud_record_due(prepared.local.root, repr(prepared.cloud), prepared.keys,
                            used_cloud=moved, now=now)  # fmt: skip


def _note_cloud_record(prepared: Prepared, now: float) -> None:
    from ..maintenance.cloud_records import note_cloud_record

    note_cloud_record(prepared.local.root, repr(prepared.cloud), prepared.keys, now=now)
