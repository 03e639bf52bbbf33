"""Planning time against chain length and snapshot size.

Plans chains of 10, 100, 1,000 and 10,000 passes against snapshots of 10,000, 100,000 and
1,000,000 entries and prints the best time of ``make_plan`` alone (keys included, since
deriving them is part of planning), then two ratios: time per pass, which should be flat if
planning is linear in the chain, and time against the largest snapshot over time against the
smallest, which should be near 1 if planning does not depend on the snapshot's size.

The snapshot knows every third pass's output (in the cloud, with a size and a run time; every
ninth also locally) and is padded with entries for keys no chain has. The policy gives a
bandwidth, so every cached output is weighed for recomputation. The 1,000,000-entry listing is
built once; the smaller snapshots are its prefixes.

Run with ``./dev bench`` or ``.venv/bin/python benchmarks/bench_planner.py``; ``--quick`` stops
at 100,000 entries.
"""

from __future__ import annotations

import gc
import hashlib
import sys
import time

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluation,
    HubModel,
    PassSpec,
    Snapshot,
    SnapshotEntry,
    chain_keys,
    make_plan,
)

LENGTHS = (10, 100, 1_000, 10_000)
SIZES = (10_000, 100_000, 1_000_000)
BUDGET_SECONDS = 1.0  # per cell: repeats up to this much time (at least 5 runs, at most 200)
POLICY = CachePolicy(bandwidth=100e6)
EVALUATION = Evaluation.final("bench-evaluator")


def chain_of(length: int) -> Chain:
    passes = [
        PassSpec(name=f"p{i}", type="Pass", version="1", config={"index": i, "level": i % 4})
        for i in range(length)
    ]
    return Chain(model=HubModel(repo_id="org/model", revision="0" * 40), passes=passes)


def listing_for(keys: tuple[str, ...], size: int) -> list[SnapshotEntry]:
    """Entries for every third key of the chain, padded to ``size`` with strangers."""
    listing = [
        SnapshotEntry(
            key=key,
            in_cloud=True,
            in_local=i % 9 == 0,
            size=50_000_000 + i,
            run_seconds=0.2 + (i % 7),
        )
        for i, key in enumerate(keys)
        if i % 3 == 0
    ]
    for i in range(size - len(listing)):
        stranger = hashlib.sha256(f"stranger {i}".encode()).hexdigest()
        listing.append(SnapshotEntry(key=stranger, in_cloud=True, size=i))
    return listing


def best_ms(chain: Chain, snapshots: dict[int, Snapshot]) -> dict[int, tuple[float, int]]:
    """For each snapshot, the best wall time of make_plan in milliseconds and the number of
    timed runs. The snapshots take turns, so that a busy machine slows each of them alike; the
    best time is the one least disturbed by other processes (as timeit advises)."""
    for snapshot in snapshots.values():
        make_plan(chain, EVALUATION, snapshot, POLICY)  # warm up, untimed
    times: dict[int, list[float]] = {size: [] for size in snapshots}
    spent = 0.0
    gc.collect()
    rounds = 0
    while rounds < 5 or (spent < BUDGET_SECONDS * len(snapshots) and rounds < 200):
        rounds += 1
        for size, snapshot in snapshots.items():
            gc.disable()  # as timeit does: collecting the snapshot's objects is not planning
            start = time.perf_counter()
            make_plan(chain, EVALUATION, snapshot, POLICY)
            elapsed = time.perf_counter() - start
            gc.enable()
            times[size].append(elapsed)
            spent += elapsed
    return {size: (min(runs) * 1000, len(runs)) for size, runs in times.items()}


def main(argv: list[str]) -> None:
    sizes = SIZES[:2] if "--quick" in argv else SIZES
    longest = chain_of(max(LENGTHS))
    chains = {
        length: Chain(model=longest.model, passes=longest.passes[:length]) for length in LENGTHS
    }

    started = time.perf_counter()
    listing = listing_for(chain_keys(longest), max(sizes))
    snapshots = {size: Snapshot.from_listing(listing[:size]) for size in sizes}
    print(
        f"built snapshots of {', '.join(f'{s:,}' for s in sizes)} entries "
        f"in {time.perf_counter() - started:.1f} s"
    )

    results: dict[tuple[int, int], float] = {}
    runs: dict[tuple[int, int], int] = {}
    for length in LENGTHS:
        for size, (best, count) in best_ms(chains[length], snapshots).items():
            results[length, size], runs[length, size] = best, count

    width = 12
    header = "passes".ljust(8) + "".join(f"{size:>{width},}" for size in sizes)
    print("\nplanning time, ms (best of the timed runs; snapshot entries across)")
    print(header)
    for length in LENGTHS:
        cells = "".join(f"{results[length, size]:>{width}.3f}" for size in sizes)
        print(f"{length:<8,}{cells}")

    print("\ntime per pass, µs (flat if planning is linear in the chain)")
    print(header)
    for length in LENGTHS:
        cells = "".join(f"{results[length, size] * 1000 / length:>{width}.1f}" for size in sizes)
        print(f"{length:<8,}{cells}")

    smallest, largest = sizes[0], sizes[-1]
    print(f"\ntime at {largest:,} entries / time at {smallest:,} (near 1 if flat in snapshot size)")
    for length in LENGTHS:
        print(f"{length:<8,}{results[length, largest] / results[length, smallest]:>{width}.2f}")

    fewest = min(runs.values())
    print(
        f"\n{fewest} to {max(runs.values())} timed runs per cell; "
        f"total {time.perf_counter() - started:.0f} s; Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
