"""What a sweep did, for people and programs: the table of variants with their metrics and
the Pareto front marked, and the ``modelcache-sweep-report/1`` document ``--report`` writes
(``docs/sweeps.md`` describes its fields)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from attrs import evolve, frozen

from modelcache.planner import SweepPlan

from ..reporting import RunReport
from ._engine import SweepRun
from ._results import Measures, measures_of, pareto_front

__all__ = ["SWEEP_REPORT_FORMAT", "SweepResults", "VariantRow", "report_document",
           "results_of", "results_table"]  # fmt: skip

SWEEP_REPORT_FORMAT: Final = "modelcache-sweep-report/1"


@frozen(kw_only=True)
class VariantRow:
    """One variant's line of the results: where its model went and what it measured (its
    final output's metrics), whether it is on the front, or why it failed."""

    name: str
    ok: bool
    output_dir: str | None
    final_key: str | None
    metrics: Mapping[str, Any]
    on_front: bool = False
    error: str = ""


@frozen(kw_only=True)
class SweepResults:
    """Every variant's row, in the sweep's order, the front and the objectives it compares."""

    rows: tuple[VariantRow, ...]
    front: tuple[str, ...]
    objectives: tuple[str, ...]


def results_of(run: SweepRun, final_passes: Mapping[str, str]) -> SweepResults:
    """The rows and the front of a sweep's run.

    :param final_passes: each variant's last pass's name, under which its report holds the
        final output's metrics.
    """
    rows: list[VariantRow] = []
    measured: list[Measures] = []
    for outcome in run.variants:
        report = outcome.report
        if report is None:
            rows.append(VariantRow(name=outcome.name, ok=False, output_dir=None, final_key=None,
                                   metrics={}, error=outcome.error))  # fmt: skip
            continue
        metrics = report.metrics.get(final_passes.get(outcome.name, ""), {})
        rows.append(VariantRow(name=outcome.name, ok=True, output_dir=report.output_dir,
                               final_key=report.final_key, metrics=metrics))  # fmt: skip
        measured.append(measures_of(outcome.name, metrics))
    front, objectives = pareto_front(measured)
    rows = [evolve(row, on_front=row.name in front) for row in rows]
    return SweepResults(rows=tuple(rows), front=front, objectives=objectives)


def _size(value: Any) -> str:
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return str(value)  # pragma: no cover - the loop returns


#: The table's measure columns: (heading, metric, how a value is shown).
_COLUMNS: Final = (
    ("size", "size_bytes", _size),
    ("latency ms", "latency_ms", lambda v: f"{v:.3f}"),
    ("sentences/s", "throughput_sps", lambda v: f"{v:.1f}"),
    ("fidelity", "fidelity", lambda v: f"{v:.6f}"),
    ("accuracy", "accuracy", lambda v: f"{v:.4f}"),
)


def results_table(results: SweepResults) -> str:
    """The variants as a plain-text table: their measures, ``*`` on the Pareto front."""
    shown = [c for c in _COLUMNS if any(c[1] in row.metrics for row in results.rows)]
    head = ["variant", *(c[0] for c in shown), "front"]
    lines = [head]
    for row in results.rows:
        if not row.ok:
            lines.append([row.name, *("-" for _ in shown), f"failed: {row.error}"])
            continue
        cells = [f(row.metrics[m]) if m in row.metrics else "-" for _, m, f in shown]
        lines.append([row.name, *cells, "*" if row.on_front else ""])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    text = [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]]
        ).rstrip()
        for line in lines
    ]
    if results.objectives:
        text.append(f"* Pareto front over {', '.join(results.objectives)}")
    return "\n".join(text) + "\n"


def report_document(run: SweepRun, results: SweepResults) -> dict[str, Any]:
    """The ``modelcache-sweep-report/1`` document: plain JSON data."""
    reports = {o.name: o.report for o in run.variants if o.report is not None}
    return {
        "format": SWEEP_REPORT_FORMAT,
        "variants": [_variant(row, reports.get(row.name)) for row in results.rows],
        "front": {"objectives": list(results.objectives), "variants": list(results.front)},
        "segments": [_segment(run.plan, outcome) for outcome in run.segments],
        "totals": _totals(run),
        "notes": list(run.notes),
        "wall_seconds": round(run.wall_seconds, 3),
    }


def _variant(row: VariantRow, report: RunReport | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": row.name,
        "status": "done" if row.ok else "failed",
        "output_dir": row.output_dir,
        "final_key": row.final_key,
        "metrics": dict(row.metrics),
        "on_front": row.on_front,
    }
    if row.error:
        document["error"] = row.error
    if report is not None:
        document["run"] = report.to_json()  # its own run: mostly skips after the segments
    return document


def _segment(plan: SweepPlan, outcome: Any) -> dict[str, Any]:
    # The steps in the run report's own step format, through its own converter.
    steps = RunReport(steps=[r.record for r in outcome.records]).to_json()["steps"]
    document: dict[str, Any] = {
        "id": outcome.segment,
        "after": list(plan.segments[outcome.segment].after),
        "status": outcome.status,
        "seconds": round(outcome.seconds, 3),
        "steps": [
            {"workflow": r.workflow, **step} for r, step in zip(outcome.records, steps, strict=True)
        ],
    }
    if outcome.error:
        document["error"] = outcome.error
    return document


def _totals(run: SweepRun) -> dict[str, Any]:
    """Runs done in the whole sweep (segments and variants' own runs), and the most times
    any one key ran: 1 when the sweep shared all it could."""
    keys: list[str] = [
        r.record.key
        for outcome in run.segments
        for r in outcome.records
        if r.record.kind == "run" and r.record.outcome == "done"
    ]
    keys += [
        step.key
        for outcome in run.variants
        if outcome.report is not None
        for step in outcome.report.steps
        if step.kind == "run" and step.outcome == "done"
    ]
    counts = {key: keys.count(key) for key in keys}
    return {
        "variants": len(run.variants),
        "failed": sum(outcome.report is None for outcome in run.variants),
        "segments": len(run.plan.segments),
        "runs": len(keys),
        "most_runs_of_one_key": max(counts.values(), default=0),
    }
