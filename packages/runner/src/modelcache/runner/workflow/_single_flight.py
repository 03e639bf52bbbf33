"""Single flight: claim a run step's output where it will be published, release it after.

The locks are the store's own (:meth:`modelcache.store.Store.locks`): the cloud's if this
plan uploads the output and the cloud store has locks, else the local tier's (processes on
this machine sharing the cache directory). A store without locks simply does not single
flight. See the "Single flight" section of :mod:`modelcache.store._port`.
"""

from __future__ import annotations

from modelcache.planner import Run, Upload
from modelcache.store import EntryLocks, StoreError, StoreUnavailable

from ._hits import recount_as_hit
from ._state import Execution, Replan

__all__ = ["claim_output", "release"]


def claim_output(run: Execution, step: Run) -> tuple[bool, str]:
    """Claim the output ``step`` computes, waiting while another runner computes it.

    A claim held is kept in ``run.claims`` until :func:`release`: the run step releases a
    local claim once it published the output locally, the upload step a cloud claim once it
    published the output there; :func:`~._execute.carry_out` releases what is left.

    :return: whether the claim is the cloud's, and what waiting there was, for the step's
        record.
    :raises Replan: another runner published the output meanwhile; the next plan downloads
        (or skips) it. The step is recorded with the outcome ``waited``.
    """
    locks, in_cloud = _locks(run, step)
    if locks is None:
        return False, ""
    try:
        claim = locks.claim(step.key, max_wait=run.prepared.options.single_flight_wait)
        if claim.outcome == "published" and not in_cloud and run.clear_damaged_local(step.key):
            # What "published" it is a damaged local entry, removed now: claim it afresh.
            claim = locks.claim(step.key, max_wait=run.prepared.options.single_flight_wait)
    except StoreUnavailable as error:
        raise Replan(str(error), lose_cloud=True) from error
    except StoreError as error:
        message = f"cannot lock outputs ({error}); computing without waiting for other runners"
        if message not in run.report.notes:  # once, not once per pass
            run.note(message)
        return False, ""
    other = f"another runner computing pass {step.pass_name!r}"
    match claim.outcome:
        case "held":
            run.claims[step.key] = claim
            return in_cloud, f"waited {claim.waited:.1f} s for {other}" if claim.waited else ""
        case "timed-out":
            run.note(f"waited {claim.waited:.0f} s for {other} ({step.key[:12]}); "
                     "computing it here too")  # fmt: skip
            return False, f"waited {claim.waited:.1f} s for {other}, then computed it too"
    return False, _published_meanwhile(run, step, other, waited=claim.waited, in_cloud=in_cloud)


def release(run: Execution, key: str) -> None:
    """Let other runners waiting for ``key`` go on; nothing if this run holds no claim on it."""
    claim = run.claims.pop(key, None)
    if claim is not None:
        claim.release()


def _locks(run: Execution, step: Run) -> tuple[EntryLocks | None, bool]:
    """The locks of the tier the output will be published to, and whether that is the cloud."""
    prepared = run.prepared
    cloud = prepared.cloud if _uploads(run, step.key) else None
    locks = None if cloud is None else cloud.locks()
    if locks is not None:
        return locks, True
    if prepared.policy.enable_local_cache:
        return prepared.local.locks(), False
    return None, False


def _uploads(run: Execution, key: str) -> bool:
    """Whether this plan publishes the output ``key`` to the cloud."""
    return run.uploads_allowed and any(
        isinstance(step, Upload) and step.key == key for step in run.plan.steps
    )


def _published_meanwhile(
    run: Execution, step: Run, other: str, *, waited: float, in_cloud: bool
) -> str:
    """The claim found the output published: re-plan to use it, unless it is not usable.

    :return: the step's detail, when the run step computes the output after all.
    :raises Replan: to use the output another runner published.
    """
    if step.key in run.dropped:
        # The entry found is the damaged one this run dropped, not another runner's work.
        return ""
    if any((r.kind, r.key, r.outcome) == ("run", step.key, "waited") for r in run.report.steps):
        # We deferred to it once already, and are back: its entry was unusable. Compute.
        return "another runner published it, but its entry was unusable"
    detail = f"waited {waited:.1f} s for {other} ({step.key[:12]}), which published it"
    if not waited:
        detail = f"{other} ({step.key[:12]}) published it since this run planned"
    run.note(f"{detail}: using its output instead of computing it")
    recount_as_hit(
        run.report, in_cloud=in_cloud, cloud_enabled=run.prepared.policy.enable_cloud_cache
    )
    raise Replan(f"{other} published it; re-planning to use it", outcome="waited")
