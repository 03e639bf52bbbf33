"""Drawing for people: a plan as a coloured table, a Mermaid flowchart or a Graphviz graph;
a sweep's plan as a flowchart or graph of its shared prefixes; a run's summary table;
sizes."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelcache.planner import (
    Chain,
    Download,
    Evaluate,
    Plan,
    Run,
    Skip,
    Step,
    SweepPlan,
    Upload,
)

if TYPE_CHECKING:
    from ..workflow import UnknownPass

__all__ = [
    "ACTION_STYLES",
    "format_metric",
    "format_size",
    "render_dot",
    "render_mermaid",
    "render_sweep_dot",
    "render_sweep_mermaid",
    "render_text",
    "summary_table",
]

# One style per action, shared by every drawing so the colours mean the same everywhere.
ACTION_STYLES: dict[str, tuple[str, str]] = {
    # action: (rich style, fill colour for diagrams)
    "run": ("bold yellow", "#ffe08a"),
    "download": ("bold cyan", "#9be7ff"),
    "skip": ("dim", "#e0e0e0"),
    "local": ("green", "#b9f6ca"),
    "upload": ("magenta", "#f8bbd0"),
    "evaluate": ("blue", "#bbdefb"),
}


def _primary(step: Step) -> str:
    match step:
        case Skip(location="local"):
            return "local"
        case Run() | Download() | Skip():
            return type(step).__name__.lower()
    raise AssertionError(step)


def format_size(count: int | None) -> str:
    """``count`` bytes for people (``48.4 KiB``); an unknown size is the empty string."""
    if count is None:
        return ""
    value, unit = float(count), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def format_metric(value: object) -> str:
    """A metric's value for people: a measurement to 4 significant digits (it is not
    precise to 17), anything else as JSON."""
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def render_text(
    plan: Plan | None,
    chain: Chain | None,
    console: Console,
    *,
    unknown: Sequence[UnknownPass] = (),
) -> None:
    """The plan as a table, one row per step, coloured by action, and its totals; then a
    row for each pass whose key is unknown here (``plan`` is ``None`` when none is known)."""
    types = {spec.name: spec.type for spec in chain.passes} if chain else {}
    table = Table(title="modelcache plan", title_justify="left")
    for column in ("pass", "type", "action", "key", "size", "reason"):
        table.add_column(column, no_wrap=column in ("pass", "action", "key"))
    for step in plan.steps if plan else ():
        action = type(step).__name__.lower()
        style_key = "local" if isinstance(step, Skip) and step.location == "local" else action
        label = f"{action} ({step.location})" if isinstance(step, Skip) else action
        if isinstance(step, Evaluate) and step.cached:
            label = "evaluate (cached)"
        table.add_row(  # config strings go in as Text: they are not rich markup
            Text(step.pass_name),
            Text(types.get(step.pass_name, "")),
            Text(label, style=ACTION_STYLES[style_key][0]),
            step.key[:12],
            format_size(getattr(step, "size", None)),
            Text(step.reason),
        )
    for missing in unknown:
        table.add_row(Text(missing.name), Text(missing.type), Text("unknown", style="yellow"),
                      "?", "", Text(missing.why))  # fmt: skip
    console.print(table)
    if plan is None:
        console.print(f"{len(unknown)} passes of unknown key; nothing else is known")
        return
    t = plan.totals
    unknown_sizes = f" (+{t.unknown_sizes} of unknown size)" if t.unknown_sizes else ""
    later = f"; then {len(unknown)} passes of unknown key" if unknown else ""
    console.print(
        f"{t.runs} to run, {t.skips} skipped, {t.downloads} to download, {t.uploads} to upload, "
        f"{t.evaluations} to evaluate ({t.cached_evaluations} cached); "
        f"{format_size(t.bytes_to_move) or '0 B'} to move{unknown_sizes}{later}"
    )


def _facts(plan: Plan, name: str, type_: str) -> tuple[tuple[str, str, str], str]:
    """What a drawing says of a pass, one fact a line (its name, its type, what the plan
    does with it), and its primary action, which colours it."""
    steps = plan.steps_for(name)
    primary = next(s for s in steps if isinstance(s, (Run, Skip, Download)))
    extras = [type(s).__name__.lower() for s in steps if isinstance(s, (Upload, Evaluate))]
    action = _primary(primary)
    return (name, type_, " + ".join([action, *extras])), action


#: Characters Mermaid shows as they are inside a quoted label; every other one is written
#: as an entity code (``#34;``), so that no name ends the label, reads as HTML, or as an
#: entity code of its own.
_MERMAID_PLAIN = frozenset(string.ascii_letters + string.digits + " _.,:+-/()")


def _mermaid_text(text: str) -> str:
    return "".join(c if c in _MERMAID_PLAIN else f"#{ord(c)};" for c in text)


def render_mermaid(plan: Plan, chain: Chain) -> str:
    """A Mermaid flowchart of the chain, each pass coloured by its action."""
    lines = ["flowchart LR", '    model(["input model"])']
    previous = "model"
    for i, spec in enumerate(chain.passes):
        facts, action = _facts(plan, spec.name, spec.type)
        node = f"p{i}"
        text = "<br/>".join(_mermaid_text(fact) for fact in facts)
        lines.append(f'    {node}["{text}"]:::{action}')
        lines.append(f"    {previous} --> {node}")
        previous = node
    for action, (_style, fill) in ACTION_STYLES.items():
        lines.append(f"    classDef {action} fill:{fill},stroke:#333")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    """``text`` inside a quoted Graphviz label: shown as written, its backslashes (escapes
    to Graphviz), quotes and ampersands (entities) escaped; a line break breaks the line."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def render_dot(plan: Plan, chain: Chain) -> str:
    """A Graphviz digraph of the chain, each pass coloured by its action."""
    lines = [
        "digraph modelcache_plan {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        '    model [label="input model", shape=ellipse, fillcolor="#ffffff"];',
    ]
    previous = "model"
    for i, spec in enumerate(chain.passes):
        facts, action = _facts(plan, spec.name, spec.type)
        label = "\\n".join(_dot_text(fact) for fact in facts)  # \n: Graphviz's line break
        fill = ACTION_STYLES[action][1]
        lines.append(f'    p{i} [label="{label}", fillcolor="{fill}"];')
        lines.append(f"    {previous} -> p{i};")
        previous = f"p{i}"
    lines.append("}")
    return "\n".join(lines) + "\n"


#: Variants named on a final output's node before the rest are counted.
_NAMED = 4


def _sweep_nodes(plan: SweepPlan) -> list[tuple[str, str | None, tuple[str, ...], str]]:
    """A sweep's outputs, each once, in the order the variants reach them: its node's name,
    its input's node (None: the input model), the facts its label shows, its action."""
    steps: dict[str, list[Step]] = {}
    for segment in plan.segments:
        for item in segment.steps:
            steps.setdefault(item.step.key, []).append(item.step)
    parents: dict[str, str | None] = {}
    finals: dict[str, list[str]] = {}
    for path in plan.workflows:
        for before, key in zip((None, *path.keys), path.keys, strict=False):
            parents.setdefault(key, before)
        if path.keys:
            finals.setdefault(path.keys[-1], []).append(path.name)
    names = {key: f"k{i}" for i, key in enumerate(parents)}
    nodes = []
    for key, parent in parents.items():
        primary = next(s for s in steps[key] if isinstance(s, (Run, Skip, Download)))
        extras = dict.fromkeys(type(s).__name__.lower() for s in steps[key]
                               if isinstance(s, (Upload, Evaluate)))  # fmt: skip
        action = _primary(primary)
        facts = [primary.pass_name, " + ".join([action, *extras]), key[:12]]
        ending = finals.get(key, [])
        if ending:
            more = f" and {len(ending) - _NAMED} more" if len(ending) > _NAMED else ""
            facts.append(f"final: {', '.join(ending[:_NAMED])}{more}")
        nodes.append((names[key], None if parent is None else names[parent], tuple(facts), action))
    return nodes


def render_sweep_mermaid(plan: SweepPlan) -> str:
    """A Mermaid flowchart of a sweep: one node per output, shared prefixes drawn once, each
    coloured by its action, each final output naming its variants."""
    lines = ["flowchart LR", '    model(["input model"])']
    for node, parent, facts, action in _sweep_nodes(plan):
        text = "<br/>".join(_mermaid_text(fact) for fact in facts)
        lines.append(f'    {node}["{text}"]:::{action}')
        lines.append(f"    {parent or 'model'} --> {node}")
    for action, (_style, fill) in ACTION_STYLES.items():
        lines.append(f"    classDef {action} fill:{fill},stroke:#333")
    return "\n".join(lines) + "\n"


def render_sweep_dot(plan: SweepPlan) -> str:
    """A Graphviz digraph of a sweep, as :func:`render_sweep_mermaid` draws it."""
    lines = [
        "digraph modelcache_sweep {",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        '    model [label="input model", shape=ellipse, fillcolor="#ffffff"];',
    ]
    for node, parent, facts, action in _sweep_nodes(plan):
        label = "\\n".join(_dot_text(fact) for fact in facts)
        lines.append(f'    {node} [label="{label}", fillcolor="{ACTION_STYLES[action][1]}"];')
        lines.append(f"    {parent or 'model'} -> {node};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def summary_table(report: Mapping[str, Any], console: Console) -> None:
    """The end-of-run table of ``report`` (a run report's JSON document, as ``--report``
    writes it): pass, action, reason, seconds, bytes; then totals and notes."""
    table = Table(title="modelcache run", title_justify="left")
    for column in ("pass", "action", "reason", "seconds", "bytes"):
        table.add_column(column, justify="right" if column in ("seconds", "bytes") else "left")
    for step in report["steps"]:
        action = (
            step["kind"] if step["outcome"] == "done" else f"{step['kind']} ({step['outcome']})"
        )
        style = ACTION_STYLES.get(step["kind"], ("", ""))[0]
        table.add_row(
            Text(step["pass"]),
            Text(action, style=style),
            Text(step["reason"]),
            f"{step['seconds']:.2f}",
            format_size(step["bytes"]) if step["bytes"] else "",
        )
    console.print(table)
    totals = report["totals"]
    hits, misses = totals["hits"], totals["misses"]
    console.print(
        f"{totals['runs']} run, {totals['downloads']} downloaded "
        f"({format_size(totals['bytes_downloaded']) or '0 B'}), {totals['uploads']} uploaded "
        f"({format_size(totals['bytes_uploaded']) or '0 B'}); local cache {hits['local']} hit, "
        f"{misses['local']} missed; cloud cache {hits['cloud']} hit, {misses['cloud']} missed; "
        f"{format_size(totals['bytes_avoided']) or '0 B'} not downloaded, "
        f"~{totals['compute_seconds_saved']:.1f} s of compute saved; "
        f"{totals['wall_seconds']:.1f} s in all"
    )
    for name, metrics in report.get("metrics", {}).items():
        console.print(
            Text(
                f"metrics of {name}: "
                + ", ".join(f"{k}={format_metric(v)}" for k, v in metrics.items())
            )
        )
    for note in report.get("notes", []):
        # Plain text: a note can quote a config's strings, which are not markup.
        console.print(Text.assemble(("note:", "yellow"), " ", note), soft_wrap=True)
    if report.get("output_dir"):
        signed = report.get("model_signature")
        also = f" (signed: {signed})" if signed else ""
        console.print(Text(f"final model: {report['output_dir']}{also}"))
