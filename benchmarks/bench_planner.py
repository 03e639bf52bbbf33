"""Planning time against chain length and snapshot size.

Plans chains of 10, 100, 1,000 and 10,000 passes against snapshots of 10,000, 100,000 and
1,000,000 entries and prints, per cell, the best wall time and the best CPU time of
``make_plan`` (keys included, since deriving them is part of planning), then two ratios: time
per pass, which should be flat if planning is linear in the chain, and time against the
largest snapshot over time against the smallest, which should be near 1 if planning does not
depend on the snapshot's size.

Measuring on a machine that is busy with other work: every round times every cell once, in
a rotated order (chain lengths and snapshot sizes both take turns), so that load affects all
cells alike instead of whichever cell happened to run during it; short cells are batched
(one timing covers as many calls as take about 5 ms) so that timer resolution and scheduler
jitter do not dominate them; and CPU time is printed beside wall time, since it does not
grow when the process waits for a core. A step between cells that shows in wall time but
not in CPU time is the machine, not the planner.

The snapshot knows every third pass's output (in the cloud, with a size and a run time; every
ninth also locally) and is padded with entries for keys no chain has. The policy gives a
bandwidth, so every cached output is weighed for recomputation. The 1,000,000-entry listing is
built once; the smaller snapshots are its prefixes.

Run with ``./dev bench`` or ``.venv/bin/python benchmarks/bench_planner.py [--quick]
[--budget SECONDS]``; ``--help`` says more.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import sys
import time
from collections.abc import Callable

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
BUDGET_SECONDS = 1.0  # per cell: rounds go on until each cell had about this much time
MIN_ROUNDS, MAX_ROUNDS = 5, 200
BATCH_SECONDS = 0.005  # a timed sample covers at least this much work
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


Cell = tuple[int, int]  # (chain length, snapshot size)


def batch_sizes(chains: dict[int, Chain], snapshots: dict[int, Snapshot]) -> dict[Cell, int]:
    """How many calls one timed sample of each cell makes: enough for ``BATCH_SECONDS``."""
    batches = {}
    for length, chain in chains.items():
        for size, snapshot in snapshots.items():
            make_plan(chain, EVALUATION, snapshot, POLICY)  # warm-up, untimed
            start = time.perf_counter()
            make_plan(chain, EVALUATION, snapshot, POLICY)
            once = max(time.perf_counter() - start, 1e-6)
            batches[length, size] = max(1, round(BATCH_SECONDS / once))
    return batches


def measure(
    chains: dict[int, Chain], snapshots: dict[int, Snapshot], budget: float
) -> dict[Cell, tuple[float, float, int]]:
    """For each cell, the best wall and CPU milliseconds per ``make_plan`` call and the number
    of timed samples. Each round times every cell once, starting at a different cell."""
    batches = batch_sizes(chains, snapshots)
    cells = list(batches)
    wall: dict[Cell, list[float]] = {cell: [] for cell in cells}
    cpu: dict[Cell, list[float]] = {cell: [] for cell in cells}
    spent = 0.0
    rounds = 0
    gc.collect()
    while rounds < MIN_ROUNDS or (spent < budget * len(cells) and rounds < MAX_ROUNDS):
        shift = rounds % len(cells)
        for length, size in cells[shift:] + cells[:shift]:
            chain, snapshot, count = chains[length], snapshots[size], batches[length, size]
            gc.disable()  # as timeit does: collecting the snapshot's objects is not planning
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(count):
                make_plan(chain, EVALUATION, snapshot, POLICY)
            elapsed, used = time.perf_counter() - wall_start, time.process_time() - cpu_start
            gc.enable()
            wall[length, size].append(elapsed / count)
            cpu[length, size].append(used / count)
            spent += elapsed
        rounds += 1
    return {cell: (min(wall[cell]) * 1e3, min(cpu[cell]) * 1e3, len(wall[cell])) for cell in cells}


def table(title: str, sizes: tuple[int, ...], rows: dict[int, list[str]]) -> None:
    print(f"\n{title}")
    print("passes".ljust(8) + "".join(f"{size:>12,}" for size in sizes))
    for length, cells in rows.items():
        print(f"{length:<8,}" + "".join(f"{cell:>12}" for cell in cells))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description="Time make_plan against chain length and snapshot size (wall and CPU)."
    )
    parser.add_argument("--quick", action="store_true", help="stop at 100,000 entries")
    parser.add_argument(
        "--budget",
        type=float,
        default=BUDGET_SECONDS,
        help=f"seconds of timing per cell (default {BUDGET_SECONDS})",
    )
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
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
    results = measure(chains, snapshots, args.budget)

    def cells(value: Callable[[int, int], str]) -> dict[int, list[str]]:
        return {length: [value(length, size) for size in sizes] for length in LENGTHS}

    table(
        "planning time, ms: best wall time per call (snapshot entries across)",
        sizes,
        cells(lambda n, s: f"{results[n, s][0]:.3f}"),
    )
    table(
        "planning time, ms: best CPU time per call",
        sizes,
        cells(lambda n, s: f"{results[n, s][1]:.3f}"),
    )
    table(
        "CPU time per pass, µs (flat if planning is linear in the chain)",
        sizes,
        cells(lambda n, s: f"{results[n, s][1] * 1000 / n:.1f}"),
    )
    smallest, largest = sizes[0], sizes[-1]
    print(f"\nCPU time at {largest:,} entries / at {smallest:,} (near 1 if flat in size)")
    for length in LENGTHS:
        ratio = results[length, largest][1] / results[length, smallest][1]
        print(f"{length:<8,}{ratio:>12.2f}")
    samples = [count for _wall, _cpu, count in results.values()]
    print(
        f"\n{min(samples)} to {max(samples)} timed samples per cell; "
        f"total {time.perf_counter() - started:.0f} s; Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
