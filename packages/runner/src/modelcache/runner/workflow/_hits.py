"""Hits and misses per tier, and what the cache saved, counted once from the first plan.

The rules of ``docs/operations.md`` ("Run statistics"): an output of the chain is a hit in
the first tier that has it; a local miss is then looked for in the cloud, so an output found
locally counts nothing in the cloud. Single flight can turn a miss into a hit later in the
run: :func:`recount_as_hit`.
"""

from __future__ import annotations

from modelcache.planner import CachePolicy, Download, Plan, Run, Skip, Snapshot

from ..reporting import RunReport

__all__ = ["count_hits", "recount_as_hit"]


def count_hits(plan: Plan, current: Snapshot, policy: CachePolicy, report: RunReport) -> None:
    """Add the first plan's hits, misses, bytes avoided and compute saved to ``report``."""
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


def recount_as_hit(report: RunReport, *, in_cloud: bool, cloud_enabled: bool) -> None:
    """An output counted as a miss that another runner published meanwhile is a hit after
    all: in the cloud (the local tier still missed), or in the local tier (and then the
    cloud, if ``cloud_enabled``, was never asked)."""
    hits, misses = report.hits, report.misses
    if in_cloud and misses["cloud"] > 0:
        misses["cloud"] -= 1
        hits["cloud"] += 1
    elif not in_cloud and misses["local"] > 0:
        misses["local"] -= 1
        hits["local"] += 1
        if cloud_enabled and misses["cloud"] > 0:
            misses["cloud"] -= 1
