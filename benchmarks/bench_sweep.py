"""Sweep benchmark (issue 14): eight variants sharing a conversion, run four ways, and
sweep planning at scale.

The variants are ``examples/minilm/workflow.json`` (convert, quantize, optimize on
all-MiniLM-L6-v2, the final output evaluated) under a 2 x 2 x 2 matrix of the quantize pass's
``per_channel``, ``reduce_range`` and ``weight_type``: eight chains that share their first
pass's key. Each scenario starts from empty local caches and an Azurite of its own, started
for it and stopped after it, with the cloud on (uploads included):

1. **naive**: each variant its own ``modelcache run --quiet`` process, with its own
   ``cache_dir`` and its own container, ``--jobs`` processes at a time: nothing is shared;
2. **shared**: the same processes over one ``cache_dir`` and one container: the first two
   both need ``convert``, and single flight makes one wait for the other's lease (the slot
   waits), then every later run finds it cached;
3. **sweep-local**: ``modelcache sweep SWEEP --jobs N --report R``: the planned sweep on the
   local engine;
4. **sweep-ray**: the same with ``--engine ray``, on a Ray cluster of this machine that the
   command starts and stops.

Every command runs under a meter: this script again (``--meter``), a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``) that spawns the command, waits for it, then waits for
whatever the command left behind (processes orphaned are re-parented to it), killing by pid
any still alive after ``STRAGGLER_SECONDS``. It counts the CPU time (user + system) of the
command's whole process tree in two ways, because neither alone is complete: *reaped*, its
``RUSAGE_CHILDREN``, exact for every process whose parent waited for it (the local engine's
workers, its forkserver, the Ray daemons the Ray driver stops), and *sampled*, each
descendant's own CPU time read from ``/proc/PID/stat`` every ``SAMPLE_SECONDS``, which also
sees processes whose parent does not wait for them (Ray's raylet does not: its workers' CPU
never reaches ``RUSAGE_CHILDREN``) but misses what a process spends after the last sample. A
command's CPU is the larger of the two; a scenario's, the sum over its commands. Azurite's
CPU (the cloud's side) is counted apart, and the meters' own is not counted.

For each scenario it prints the wall time (the first command's start to the last one's end),
for the sweeps the start-up (the command's start to its first segment's start, read from its
progress lines: for Ray it includes starting the cluster), the CPU time and its ratio to the
naive runs', the runs per key (every run step done, in every run report or, for the sweeps,
the report's segments and the variants' own runs), the slot-seconds spent waiting for another
runner's lease on an output (``waited N s`` in a run step's detail, or the step's own time when
its outcome is ``waited``), and the bytes moved (the upload and download steps' bytes). It
checks that the four scenarios delivered the same eight final keys.

**Planning**: ``modelcache.planner.make_sweep_plan`` on 1,000 synthetic variants of the
same three-pass chain (each its own ``nodes_to_exclude``), from an empty snapshot and from one
holding every output in the cloud (half the evaluation results cached, a bandwidth given so
that downloads are weighed against recomputation), best wall and CPU time of ``REPEATS``,
garbage collection on; 10,000 variants for information. Then, for information, the whole
``modelcache sweep FILE --plan --no-cloud`` command on a 1,000-variant matrix of the real
workflow: it also prepares each variant as ``run`` does.

The goals (issue 14): runs per key exactly 1 and no slot-second spent waiting in both planned
sweeps, each sweep's total CPU at most 0.4 of the naive runs', planning 1,000 workflows
under one second. Each is printed with its verdict; exits 1 if one fails (or if the scenarios
delivered different final keys), 2 if a command fails. modelcache's sources are compiled to
bytecode first, as ``bench_workflow.py`` does.

Run: ``.venv/bin/python benchmarks/bench_sweep.py`` (about 6 minutes on 2 cores);
``--quick`` runs four variants (``per_channel`` x ``reduce_range``) and skips the 1,000-variant
command and the 10,000-variant planning (about 5 minutes: with half the variants, the goal on
CPU is not expected to hold, the conversion being shared by fewer); ``--jobs N`` (default 2)
sets the processes at a time and the sweeps' ``--jobs``; ``--workdir DIR`` keeps every
command's caches, reports and output there (``*.log``, and ``*.meter.json`` for the meter's
figures). Linux only (``/proc``, ``prctl``). Ray writes its session's logs under
``/tmp/ray``, as it always does.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import itertools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

# Only the standard library at the top: ``--meter`` runs this module once per command, and
# its start-up should not be an import of the Azure SDK or the planner.

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "minilm" / "workflow.json"
MATRIX: dict[str, list[Any]] = {
    "passes.quantize.per_channel": [True, False],
    "passes.quantize.reduce_range": [False, True],
    "passes.quantize.weight_type": ["QInt8", "QUInt8"],
}
QUICK_AXES = 2  # --quick: the first two axes, four variants
CPU_GOAL = 0.4  # a planned sweep's CPU over the naive runs'
PLANNING_GOAL = 1.0  # seconds to plan 1,000 workflows
PLANNED, PLANNED_LARGE = 1_000, 10_000
REPEATS = 5
SAMPLE_SECONDS = 0.2  # the meter's /proc sampling period
STRAGGLER_SECONDS = 30.0  # how long the meter waits for what a command left running
PR_SET_CHILD_SUBREAPER = 36
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SEGMENT_LINE = re.compile(r"^segment \d+ \w+ in ([0-9.]+) s")
WAITED = re.compile(r"waited ([0-9.]+) s")


# -- the meter: one command, its whole process tree's CPU ------------------------------------


def _processes() -> dict[int, tuple[int, int, float]]:
    """Every process: pid -> (parent pid, start time in ticks, own CPU seconds)."""
    found: dict[int, tuple[int, int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        fields = text[text.rindex(b")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: the process's own threads
        found[int(entry.name)] = (int(fields[1]), int(fields[19]), ticks / CLOCK_TICKS)
    return found


def _descendants(root: int) -> dict[tuple[int, int], float]:
    """The descendants of ``root``: (pid, start time) -> own CPU seconds."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    found: dict[tuple[int, int], float] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        _, started, cpu = processes[pid]
        found[pid, started] = cpu
        stack.extend(children.get(pid, []))
    return found


def meter(out: Path, command: list[str]) -> int:
    """Run ``command``, then wait for what it left behind; write its figures to ``out``
    (JSON) and return its exit status. See the module's docstring."""
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    me = os.getpid()
    seen: dict[tuple[int, int], float] = {}
    stop = threading.Event()

    def sample() -> None:
        while True:
            for process, cpu in _descendants(me).items():
                seen[process] = max(seen.get(process, 0.0), cpu)
            if stop.wait(SAMPLE_SECONDS):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    child = subprocess.Popen(command)
    sampler.start()
    status = child.wait()
    ended = time.monotonic()
    killed = _reap_stragglers(me, ended + STRAGGLER_SECONDS)
    stop.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "status": status,
        "started": started,
        "ended": ended,
        "tail_seconds": time.monotonic() - ended,
        "cpu_reaped": usage.ru_utime + usage.ru_stime,
        "cpu_sampled": sum(seen.values()),
        "processes": len(seen),
        "killed": killed,
    }
    out.write_text(json.dumps(figures))
    return status


def _reap_stragglers(me: int, deadline: float) -> list[str]:
    """Wait for this process's children (the command's orphans, re-parented here) until
    none is left; kill, by pid, those alive at ``deadline``. Their names, if any."""
    killed: list[str] = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return killed
        if pid:
            continue
        if time.monotonic() > deadline and not killed:
            for process, _started in _descendants(me):
                name = Path(f"/proc/{process}/comm")
                killed.append(name.read_text().strip() if name.exists() else str(process))
                with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                    os.kill(process, signal.SIGKILL)
        time.sleep(0.05)


# -- running commands under the meter --------------------------------------------------------


@dataclass
class Metered:
    """One command's figures, from its meter; ``lines``: its stderr lines with the time each
    was read, when asked for."""

    started: float
    ended: float
    cpu_reaped: float
    cpu_sampled: float
    processes: int
    tail_seconds: float
    killed: list[str]
    lines: list[tuple[float, str]] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        """The larger of the two counts; each misses something the other sees."""
        return max(self.cpu_reaped, self.cpu_sampled)


def metered(command: list[str], env: dict[str, str], log: Path, *, lines: bool = False) -> Metered:
    """Run ``command`` under the meter, its output to ``log``; exits 2 if it fails. With
    ``lines``, its stderr is read here line by line, each line timed."""
    figures = log.with_suffix(".meter.json")
    wrapped = [sys.executable, __file__, "--meter", str(figures), "--", *command]
    timed: list[tuple[float, str]] = []
    with log.open("w") as out:
        if lines:
            process = subprocess.Popen(
                wrapped, env=env, stdout=out, stderr=subprocess.PIPE, text=True
            )
            assert process.stderr is not None
            for line in process.stderr:
                timed.append((time.monotonic(), line.rstrip("\n")))
                out.write(line)
                out.flush()
            status = process.wait()
        else:
            status = subprocess.run(
                wrapped, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
    if status != 0:
        print(f"`{' '.join(command)}` exited with {status}; its output:", file=sys.stderr)
        print(log.read_text()[-5000:], file=sys.stderr)
        raise SystemExit(2)
    data = json.loads(figures.read_text())
    return Metered(
        started=data["started"],
        ended=data["ended"],
        cpu_reaped=data["cpu_reaped"],
        cpu_sampled=data["cpu_sampled"],
        processes=data["processes"],
        tail_seconds=data["tail_seconds"],
        killed=data["killed"],
        lines=timed,
    )


# -- the scenarios ---------------------------------------------------------------------------


@dataclass
class Scenario:
    """What one scenario did: its commands' figures and the step records of every run."""

    name: str
    commands: list[Metered]
    records: list[dict[str, Any]]
    final_keys: set[str]
    azurite_cpu: float = 0.0
    startup: float | None = None  # a sweep's: its start to its first segment's start
    load: tuple[float, float] = (0.0, 0.0)  # the machine's load average before and after
    most_runs_reported: int | None = None  # a sweep report's totals.most_runs_of_one_key
    segments: list[float] = field(default_factory=list)  # a sweep's segments' seconds, by id

    @property
    def wall(self) -> float:
        return max(c.ended for c in self.commands) - min(c.started for c in self.commands)

    @property
    def cpu_reaped(self) -> float:
        return sum(c.cpu_reaped for c in self.commands)

    @property
    def cpu_sampled(self) -> float:
        return sum(c.cpu_sampled for c in self.commands)

    @property
    def cpu(self) -> float:
        return sum(c.cpu for c in self.commands)

    @property
    def runs(self) -> Counter[str]:
        """Runs done, per key."""
        return Counter(
            r["key"] for r in self.records if (r["kind"], r["outcome"]) == ("run", "done")
        )

    @property
    def lease_wait(self) -> float:
        """Slot-seconds spent waiting for another runner's lease on an output."""
        return sum(lease_wait(r) for r in self.records if r["kind"] == "run")

    def moved(self, kind: str) -> int:
        return sum(int(r["bytes"]) for r in self.records if r["kind"] == kind)


def lease_wait(record: dict[str, Any]) -> float:
    """How long a run step waited for another runner's claim on its output: the detail says
    when it then ran (or the wait timed out); a step whose outcome is ``waited`` was only that
    wait (the other runner published, and the run re-planned)."""
    said = WAITED.search(record.get("detail", ""))
    if said:
        return float(said.group(1))
    return float(record["seconds"]) if record["outcome"] == "waited" else 0.0


def variants(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The matrix's variants, in the sweep's order: the quantize pass's values of each."""
    names = [axis.rsplit(".", 1)[1] for axis in matrix]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*matrix.values())]


def write_config(
    path: Path,
    *,
    cache_dir: Path,
    output_dir: Path,
    container: str | None,
    quantize: dict[str, Any] | None = None,
) -> None:
    config = json.loads(EXAMPLE.read_text())
    config["passes"]["quantize"].update(quantize or {})
    config["cache_dir"] = str(cache_dir)
    config["output_dir"] = str(output_dir)
    if container is not None:
        config["cloud_cache_config"] = {"container_name": container}
    path.write_text(json.dumps(config, indent=2) + "\n")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelcache.runner.cli", *args]


class Cloud:
    """An Azurite of the scenario's own, with its containers; :meth:`stop` says its CPU."""

    def __init__(self, containers: Sequence[str]) -> None:
        from azure.storage.blob import BlobServiceClient

        from modelcache.azure.testing import Azurite

        self.azurite = Azurite.start()
        service = BlobServiceClient.from_connection_string(self.azurite.connection_string)
        for container in containers:
            service.create_container(container)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": self.azurite.connection_string}
        env.setdefault("HF_HUB_OFFLINE", "1")
        return env

    def stop(self) -> float:
        """Stop it; its CPU seconds (it is this process's child, counted once reaped)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.azurite.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def independent_runs(
    name: str, workdir: Path, matrix: dict[str, list[Any]], jobs: int, *, shared: bool
) -> Scenario:
    """One ``modelcache run`` process per variant, ``jobs`` at a time; over one cache and one
    container when ``shared``, else each over its own."""
    folder = workdir / name
    folder.mkdir()
    chosen = variants(matrix)
    containers = [f"{name}-{i}-{uuid.uuid4().hex[:8]}" for i in range(len(chosen))]
    if shared:
        containers = containers[:1]
    cloud = Cloud(containers)
    try:
        commands = []
        for i, values in enumerate(chosen):
            config = folder / f"variant-{i}.json"
            write_config(
                config,
                quantize=values,
                output_dir=folder / f"out-{i}",
                cache_dir=folder / ("cache" if shared else f"cache-{i}"),
                container=containers[0 if shared else i],
            )
            report = folder / f"report-{i}.json"
            commands.append(
                (
                    cli("run", str(config), "--report", str(report), "--quiet"),
                    folder / f"run-{i}.log",
                    report,
                )
            )
        env = cloud.env()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            figures = list(pool.map(lambda c: metered(c[0], env, c[1]), commands))
    finally:
        azurite_cpu = cloud.stop()
    reports = [json.loads(report.read_text()) for _, _, report in commands]
    return Scenario(
        name=name,
        commands=figures,
        records=[step for report in reports for step in report["steps"]],
        final_keys={report["final_key"] for report in reports},
        azurite_cpu=azurite_cpu,
    )


def planned_sweep(
    name: str, workdir: Path, matrix: dict[str, list[Any]], jobs: int, engine: str
) -> Scenario:
    """``modelcache sweep`` of the variants on ``engine``, ``--jobs jobs``."""
    folder = workdir / name
    folder.mkdir()
    container = f"{name}-{uuid.uuid4().hex[:8]}"
    base, sweep, report = folder / "base.json", folder / "sweep.json", folder / "report.json"
    write_config(base, cache_dir=folder / "cache", output_dir=folder / "out", container=container)
    sweep.write_text(json.dumps({"base": "base.json", "matrix": matrix, "output_dir": "out"}))
    command = cli(
        "sweep", str(sweep), "--engine", engine, "--jobs", str(jobs), "--report", str(report)
    )
    cloud = Cloud([container])
    try:
        figures = metered(command, cloud.env(), folder / "sweep.log", lines=True)
    finally:
        azurite_cpu = cloud.stop()
    document = json.loads(report.read_text())
    records = [step for segment in document["segments"] for step in segment["steps"]]
    records += [step for v in document["variants"] if "run" in v for step in v["run"]["steps"]]
    return Scenario(
        name=name,
        commands=[figures],
        records=records,
        final_keys={v["final_key"] for v in document["variants"]},
        azurite_cpu=azurite_cpu,
        startup=first_segment_start(figures),
        most_runs_reported=document["totals"]["most_runs_of_one_key"],
        segments=[segment["seconds"] for segment in document["segments"]],
    )


def first_segment_start(figures: Metered) -> float | None:
    """Seconds from the command's start to its first segment's start: each progress line
    ``segment N STATUS in S s`` is read as it is written, S seconds after its segment began."""
    starts = [
        at - float(found.group(1))
        for at, line in figures.lines
        if (found := SEGMENT_LINE.match(line))
    ]
    return min(starts) - figures.started if starts else None


# -- planning --------------------------------------------------------------------------------


def planning_sweep(count: int) -> Any:
    """``count`` variants of the benchmark's chain, each quantizing with its own
    ``nodes_to_exclude``, sharing the conversion; the final output evaluated."""
    from modelcache.planner import Chain, Evaluation, HubModel, PassSpec, Sweep, Workflow

    model = HubModel(repo_id="sentence-transformers/all-MiniLM-L6-v2", revision="0" * 40)
    convert = PassSpec(
        name="convert", type="OnnxConversion", version="2", config={"target_opset": 18}
    )
    optimize = PassSpec(name="optimize", type="OrtGraphOptimization", version="1")
    workflows = []
    for i in range(count):
        quantize = PassSpec(
            name="quantize",
            type="OnnxDynamicQuantization",
            version="2",
            config={"per_channel": True, "nodes_to_exclude": [f"node{i}"]},
        )
        chain = Chain(model=model, passes=[convert, quantize, optimize])
        workflows.append(Workflow(name=f"v{i}", chain=chain, evaluation=Evaluation.final("e")))
    return Sweep(workflows=workflows)


def warm_snapshot(sweep: Any) -> Any:
    """Every output of ``sweep`` in the cloud, with its size and run time; every other
    variant's evaluation result cached."""
    from modelcache.planner import Snapshot, SnapshotEntry, chain_keys

    entries: dict[str, Any] = {}
    for i, workflow in enumerate(sweep.workflows):
        for key, size, seconds in zip(
            chain_keys(workflow.chain), (92e6, 23e6, 23e6), (12.0, 4.0, 0.4), strict=True
        ):
            evaluated = ["e"] if i % 2 == 0 and size == 23e6 and seconds < 1 else []
            entries[key] = SnapshotEntry(
                key=key, in_cloud=True, size=int(size), run_seconds=seconds, evaluations=evaluated
            )
    return Snapshot.from_listing(entries.values())


def time_planning(count: int, repeats: int) -> list[tuple[str, float, float, int]]:
    """Best wall and CPU seconds of ``make_sweep_plan`` over ``count`` variants, cold and
    warm; and the segments planned."""
    from modelcache.planner import CachePolicy, Snapshot, make_sweep_plan

    sweep = planning_sweep(count)
    cases = (
        ("cold", Snapshot.empty(), CachePolicy()),
        ("warm", warm_snapshot(sweep), CachePolicy(bandwidth=50e6)),
    )
    found = []
    for case, snapshot, policy in cases:
        best_wall = best_cpu = float("inf")
        segments = 0
        for _ in range(repeats):
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            plan = make_sweep_plan(sweep, snapshot, policy)
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
            segments = len(plan.segments)
        found.append((f"{count:,} variants, {case}", best_wall, best_cpu, segments))
    return found


def command_planning(workdir: Path) -> Metered:
    """``modelcache sweep FILE --plan --no-cloud`` over a 1,000-variant matrix of the real
    workflow (each its own ``nodes_to_exclude``)."""
    folder = workdir / "plan-command"
    folder.mkdir()
    write_config(
        folder / "base.json", cache_dir=folder / "cache", output_dir=folder / "out", container=None
    )
    nodes = [[f"node{i}"] for i in range(PLANNED)]
    sweep = {"base": "base.json", "matrix": {"passes.quantize.nodes_to_exclude": nodes}}
    (folder / "sweep.json").write_text(json.dumps(sweep))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = cli("sweep", str(folder / "sweep.json"), "--plan", "--no-cloud")
    return metered(command, env, folder / "plan.log")


# -- the report ------------------------------------------------------------------------------


def print_scenarios(scenarios: list[Scenario]) -> None:
    naive = scenarios[0]
    head = (
        "scenario",
        "wall s",
        "start-up s",
        "cpu s",
        "cpu/naive",
        "wall/naive",
        "runs",
        "most runs/key",
        "lease-wait slot-s",
        "bytes up",
        "bytes down",
    )
    rows = [head]
    for s in scenarios:
        rows.append(
            (
                s.name,
                f"{s.wall:.1f}",
                "-" if s.startup is None else f"{s.startup:.1f}",
                f"{s.cpu:.1f}",
                f"{s.cpu / naive.cpu:.3f}",
                f"{s.wall / naive.wall:.3f}",
                str(sum(s.runs.values())),
                str(max(s.runs.values(), default=0)),
                f"{s.lease_wait:.1f}",
                f"{s.moved('upload'):,}",
                f"{s.moved('download'):,}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        print(
            "  ".join(
                [
                    row[0].ljust(widths[0]),
                    *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
                ]
            )
        )

    print(
        "\nCPU seconds: reaped (RUSAGE_CHILDREN) and sampled (/proc) per scenario; of each "
        "command, the larger counts. Processes seen; Azurite's own CPU, not counted"
    )
    for s in scenarios:
        killed = [name for c in s.commands for name in c.killed]
        tail = max(c.tail_seconds for c in s.commands)
        print(
            f"  {s.name:<12} reaped {s.cpu_reaped:7.1f}  sampled {s.cpu_sampled:7.1f}  "
            f"processes {sum(c.processes for c in s.commands):4}  azurite {s.azurite_cpu:5.1f}"
            f"  left behind for {tail:.1f} s" + (f", killed {killed}" if killed else "")
        )
    print("\neach command's wall seconds, in order; the load average before and after")
    for s in scenarios:
        walls = " ".join(f"{c.ended - c.started:.1f}" for c in s.commands)
        print(f"  {s.name:<12} {walls}  (load {s.load[0]:.1f} -> {s.load[1]:.1f})")
        if s.segments:
            each = " ".join(f"{seconds:.1f}" for seconds in s.segments)
            print(f"  {'':<12} its segments' seconds, by id: {each}")

    print("\nruns per pass: keys run, runs (every run step done, in every report)")
    for s in scenarios:
        per_pass: dict[str, Counter[str]] = {}
        for r in s.records:
            if (r["kind"], r["outcome"]) == ("run", "done"):
                per_pass.setdefault(r["pass"], Counter())[r["key"]] += 1
        said = "; ".join(f"{p} {len(c)} keys, {sum(c.values())} runs" for p, c in per_pass.items())
        waits = [
            f"{r['pass']} {lease_wait(r):.1f} s ({r['outcome']})"
            for r in s.records
            if r["kind"] == "run" and lease_wait(r)
        ]
        reported = (
            ""
            if s.most_runs_reported is None
            else f"; report's most_runs_of_one_key {s.most_runs_reported}"
        )
        print(f"  {s.name:<12} {said}{reported}")
        if waits:
            print(f"  {'':<12} lease waits: {', '.join(waits)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="four variants; less planning")
    parser.add_argument("--jobs", type=int, default=2, help="processes or workers at a time")
    parser.add_argument(
        "--workdir", type=Path, help="keep the caches, reports and logs here (a new folder)"
    )
    parser.add_argument("--meter", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.meter is not None:
        return meter(args.meter, args.command)

    compile_sources()
    matrix = dict(list(MATRIX.items())[: QUICK_AXES if args.quick else len(MATRIX)])
    count = len(variants(matrix))
    if args.workdir is not None:
        args.workdir.mkdir(parents=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="modelcache-bench-sweep-"))
    try:
        runs: dict[str, Callable[[], Scenario]] = {
            "naive": partial(independent_runs, "naive", workdir, matrix, args.jobs, shared=False),
            "shared": partial(independent_runs, "shared", workdir, matrix, args.jobs, shared=True),
            "sweep-local": partial(
                planned_sweep, "sweep-local", workdir, matrix, args.jobs, "local"
            ),
            "sweep-ray": partial(planned_sweep, "sweep-ray", workdir, matrix, args.jobs, "ray"),
        }
        scenarios = []
        for name, run in runs.items():
            print(f"running {name} ({count} variants) ...", flush=True)
            before = os.getloadavg()[0]
            scenarios.append(run())
            scenarios[-1].load = (before, os.getloadavg()[0])
        print("planning ...", flush=True)
        planning = time_planning(PLANNED, REPEATS)
        if not args.quick:
            planning += time_planning(PLANNED_LARGE, 2)
            command = command_planning(workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\n{count} variants, {args.jobs} at a time; each scenario from empty caches, "
        "its own Azurite\n"
    )
    print_scenarios(scenarios)
    print("\nplanning: make_sweep_plan, best of its repeats")
    for case, wall, cpu, segments in planning:
        print(f"  {case:<26} wall {wall:.3f} s  cpu {cpu:.3f} s  ({segments:,} segments)")
    if not args.quick:
        print(
            f"  `modelcache sweep --plan --no-cloud` of {PLANNED:,} variants (information): "
            f"wall {command.ended - command.started:.2f} s, "
            f"cpu {command.cpu:.2f} s"
        )
    return check(scenarios, planning, count)


def check(
    scenarios: list[Scenario], planning: list[tuple[str, float, float, int]], count: int
) -> int:
    """The issue's goals and the scenarios' agreement, each with its verdict; 1 if one fails."""
    naive = scenarios[0]
    keys = 1 + 2 * count  # convert once, then quantize and optimize per variant
    checks = [
        (
            f"every scenario delivered the same {count} final keys",
            all(s.final_keys == naive.final_keys for s in scenarios)
            and len(naive.final_keys) == count,
        )
    ]
    for s in scenarios[2:]:
        runs = s.runs
        checks += [
            (
                f"{s.name}: runs per key exactly 1 ({len(runs)} keys of {keys} run, the most "
                f"runs of one key {max(runs.values(), default=0)})",
                len(runs) == keys and set(runs.values()) == {1},
            ),
            (
                f"{s.name}: slot-seconds waiting for a lease {s.lease_wait:.1f} (goal 0)",
                s.lease_wait == 0,
            ),
            (
                f"{s.name}: CPU {s.cpu:.1f} s / naive {naive.cpu:.1f} s = "
                f"{s.cpu / naive.cpu:.3f} (goal at most {CPU_GOAL})",
                s.cpu <= CPU_GOAL * naive.cpu,
            ),
        ]
    for case, wall, _cpu, _ in planning:
        if case.startswith(f"{PLANNED:,} "):
            checks.append(
                (
                    f"planning {case}: {wall:.3f} s (goal under {PLANNING_GOAL:.0f} s)",
                    wall < PLANNING_GOAL,
                )
            )
    print("\nagainst the goals")
    for text, passed in checks:
        print(f"[{'ok' if passed else 'FAIL'}] {text}")
    failed = [text for text, passed in checks if not passed]
    print("every check passed" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0


def compile_sources() -> None:
    """Compile modelcache's packages to bytecode beside their sources, as installing them
    would (``bench_workflow.py`` says why)."""
    sources = [str(path) for path in sorted(ROOT.glob("packages/*/src"))]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True)


if __name__ == "__main__":
    sys.exit(main())
