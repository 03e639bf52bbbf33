"""The specification's ways for one output, stated independently of the planner, and costs
compared as the brute-force tests compare them."""

from __future__ import annotations

from modelcache.planner import CachePolicy, Cost, SnapshotEntry

SECONDS_TOLERANCE = 1e-9

Way = str  # "skip", "local", "download" or "run"

WAYS: tuple[Way, ...] = ("skip", "local", "download", "run")


def in_local(entry: SnapshotEntry | None, policy: CachePolicy) -> bool:
    return entry is not None and entry.in_local and policy.enable_local_cache


def in_cloud(entry: SnapshotEntry | None, policy: CachePolicy) -> bool:
    return entry is not None and entry.in_cloud and policy.enable_cloud_cache


def priced(entry: SnapshotEntry | None, policy: CachePolicy) -> bool:
    return (
        policy.bandwidth is not None
        and entry is not None
        and entry.size is not None
        and entry.run_seconds is not None
    )


def allowed(way: Way, entry: SnapshotEntry | None, policy: CachePolicy) -> bool:
    """Whether an output may end up this way: local if in the local tier, downloaded if in the
    cloud, run unless it is in the cloud and unpriced; skipped always."""
    if way == "local":
        return in_local(entry, policy)
    if way == "download":
        return in_cloud(entry, policy)
    if way == "run":
        # A cached cloud output may be recomputed only when both choices have a price.
        return not in_cloud(entry, policy) or priced(entry, policy)
    return True


def cost_at_most(cost: Cost, bound: Cost) -> bool:
    """``cost <= bound`` lexicographically, with a tolerance on the seconds summed."""
    if cost.unknown != bound.unknown:
        return cost.unknown < bound.unknown
    tolerance = SECONDS_TOLERANCE * max(1.0, abs(bound.seconds))
    if abs(cost.seconds - bound.seconds) > tolerance:
        return cost.seconds < bound.seconds
    return cost.actions <= bound.actions
