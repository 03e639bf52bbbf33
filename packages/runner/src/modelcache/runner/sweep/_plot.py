"""A plot of a sweep's variants and their Pareto front, as SVG text (``--plot``): pure, from
the standard library alone, and the same bytes for the same results.

Theory of operation. The plot draws the objectives the front compared
(:attr:`SweepResults.objectives`, in :data:`OBJECTIVES`' order) in pairs, one panel each:
size and latency, size and quality, latency and quality, the later one of a pair on the
vertical axis (so quality, higher better, is always up). Three objectives make three panels,
two make one; one objective makes a single horizontal strip. Each objective has one axis,
the same in every panel: its values in one unit (size in B, KB, MB or GB, as the table's;
latency in ms; quality as the metric it was read from, fidelity or accuracy), a range a
little wider than theirs (around the value when all are alike), and ticks at round numbers.

Every delivered variant with a finite measure of each objective compared is one point in
every panel, a ``<circle>`` of class ``variant`` (and ``front`` when it is on the Pareto
front: filled), named by ``data-variant`` and its tooltip. A point's label is its name when
every name is short, else its number, the legend giving the names and their measures.
With exactly two objectives the front is a staircase in its one panel, drawn as a step line
through its points; with three, a panel shows only a projection of the front, which is no
line, so its points are filled and no line is drawn. Variants that failed or measured none
of the objectives are listed in the legend, not plotted; when no variant is left to plot,
:class:`NothingToPlot` says why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Final
from xml.sax.saxutils import escape

from attrs import frozen

from ..errors import UserError
from ._report import SweepResults, VariantRow
from ._results import OBJECTIVES, measures_of

__all__ = ["NothingToPlot", "plot_front"]


class NothingToPlot(UserError):
    """No variant can be plotted; ``reason`` says why (every variant failed, or none
    measured the objectives) and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"nothing to plot: {reason}")
        self.reason = reason


#: A panel's drawing area, and the room around it for ticks and axis titles (pixels).
_WIDTH: Final = 320
_HEIGHT: Final = 240
_STRIP: Final = 40  # the drawing area's height with one objective
_LEFT: Final = 90
_RIGHT: Final = 28
_ABOVE: Final = 16
_BELOW: Final = 56
_MARGIN: Final = 20
_HEADING: Final = 60  # the title and the line under it
_LINE: Final = 18  # a legend line
#: Widths of a character, to size the legend's columns (12 px monospace is 7.2 px wide) and
#: the title: estimates that err wide.
_MONO: Final = 7.4
_TITLE_CHAR: Final = 9.0
_TEXT_CHAR: Final = 6.8
#: Labels no longer than this are drawn beside their points; longer ones are numbered.
_SHORT_NAME: Final = 16
#: A failed variant's error is cut in the legend beyond this many characters.
_LONGEST_ERROR: Final = 90
_FRONT: Final = "#c0392b"
_FRONT_EDGE: Final = "#7b241c"
_OTHER: Final = "#2c6fb7"
_MUTED: Final = "#777777"
_GRID: Final = "#e4e4e4"
#: Magnitudes beyond which a measure is no measure (its range would overflow a float), and
#: below which two values are one (their difference would underflow the ticks' steps).
_HUGE: Final = 1e300
_TINY: Final = 1e-250
#: The units of sizes, smallest first; a size axis takes the largest its values reach.
_SIZE_UNITS: Final = (("B", 1.0), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9))
#: How the legend shows a quality, by the metric it was read from.
_QUALITY_FORMATS: Final[Mapping[str, str]] = {"fidelity": "{:.6f}", "accuracy": "{:.4f}"}
#: What an attribute's value cannot hold as itself, besides what ``escape`` escapes (its
#: line breaks and tabs would be read as spaces).
_ENTITIES: Final = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
#: Characters XML 1.0 cannot hold, even escaped: replaced by U+FFFD.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@frozen(kw_only=True)
class _Point:
    name: str
    label: str
    values: Mapping[str, float]
    quality: str  # the metric quality was read from, or ""
    on_front: bool


@frozen(kw_only=True)
class _Axis:
    objective: str
    title: str
    scale: float  # the unit, in the objective's own (bytes, ms)
    low: float  # the range, in the unit
    high: float
    ticks: tuple[tuple[float, str], ...]

    def fraction(self, value: float) -> float:
        """Where ``value`` (bytes, ms) falls along the axis: 0 at its low end, 1 at its high."""
        return self.tick_fraction(value / self.scale)

    def tick_fraction(self, value: float) -> float:
        """Where ``value``, in the axis' unit, falls along it."""
        return (value - self.low) / (self.high - self.low)


def plot_front(results: SweepResults, *, title: str = "modelcache sweep") -> str:
    """The variants and the Pareto front of ``results`` (what :func:`results_of` returns) as
    an SVG document: one panel per pair of the objectives compared (a strip for one), the
    front's points filled, a legend of every variant with its measures.

    :param title: the plot's heading, above the line that counts the variants.
    :raises NothingToPlot: no variant was delivered with a measure of each objective.
    """
    objectives = results.objectives
    points, left_out = _points(results)
    axes = {o: _axis(o, points) for o in objectives}
    pairs: list[tuple[str, str | None]] = (
        [(objectives[0], None)] if len(objectives) == 1 else list(combinations(objectives, 2))
    )
    on_front = sum(p.on_front for p in points)
    counts = f"{len(points)} variant{'s' * (len(points) != 1)} plotted, {on_front} on the "
    counts += f"Pareto front over {', '.join(objectives)}"
    if left_out:
        counts += f"; {len(left_out)} not plotted (listed below)"
    legend, legend_width = _legend(results.rows, points, objectives)

    panel_width = _LEFT + _WIDTH + _RIGHT
    panel_height = _ABOVE + (_STRIP if len(objectives) == 1 else _HEIGHT) + _BELOW
    width = 2 * _MARGIN + max(
        len(pairs) * panel_width,
        legend_width,
        len(title) * _TITLE_CHAR,
        len(counts) * _TEXT_CHAR,
    )
    top = _HEADING + panel_height + 8
    height = top + _LINE * (len(legend) + 1) + _MARGIN
    staircase = len(objectives) == 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="sans-serif" font-size="12">',
        f"<title>{_text(title)}</title>",
        f"<desc>{_text(counts)}</desc>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{_MARGIN}" y="28" font-size="16" font-weight="bold">{_text(title)}</text>',
        f'<text x="{_MARGIN}" y="48" fill="#444444">{_text(counts)}</text>',
    ]
    for i, (x, y) in enumerate(pairs):
        left = _MARGIN + i * panel_width + _LEFT
        y_axis = axes[y] if y else None
        parts += _panel(left, _HEADING + _ABOVE, axes[x], y_axis, points, staircase=staircase)
    parts += _key(_MARGIN, top, staircase=staircase)
    parts += [
        f'<g class="legend" font-family="monospace" transform="translate({_MARGIN} {top})">',
        *legend,
        "</g>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _points(results: SweepResults) -> tuple[list[_Point], list[str]]:
    """The variants to plot, in the sweep's order, and the names of those left out."""
    objectives = results.objectives
    plotted: list[tuple[VariantRow, Mapping[str, float]]] = []
    left_out: list[str] = []
    for row in results.rows:
        values = measures_of(row.name, row.metrics).values if row.ok else {}
        if objectives and all(_measurable(values.get(o)) for o in objectives):
            plotted.append((row, values))
        else:
            left_out.append(row.name)
    if not plotted:
        raise NothingToPlot(_why_nothing(results))
    numbered = any(len(_clean(row.name)) > _SHORT_NAME for row, _ in plotted)
    return [
        _Point(name=row.name, label=str(i) if numbered else _clean(row.name),
               values={o: values[o] for o in objectives}, quality=_quality(row.metrics),
               on_front=row.on_front)
        for i, (row, values) in enumerate(plotted, start=1)
    ], left_out  # fmt: skip


def _why_nothing(results: SweepResults) -> str:
    delivered = [row for row in results.rows if row.ok]
    if not delivered:
        return "no variant was delivered"
    if not any(measures_of(row.name, row.metrics).values for row in delivered):
        return (
            f"no variant measured {', '.join(OBJECTIVES)}: give the workflow's evaluator "
            'one of the metrics "size", "latency" or "fidelity" (or an Olive accuracy)'
        )
    if not results.objectives:
        return "the variants measured no objective in common: give them the same metrics"
    return "no variant's measures are finite numbers"


def _measurable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and abs(value) < _HUGE


def _quality(metrics: Mapping[str, object]) -> str:
    """The metric quality was read from, as :func:`measures_of` reads it; or ""."""
    numbers = (m for m in OBJECTIVES["quality"][0] if _is_number(metrics.get(m)))
    return next(numbers, "")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _size_unit(size: float) -> tuple[str, float]:
    """The largest unit ``size`` (bytes) reaches; bytes below a kilobyte."""
    reached = [unit for unit in _SIZE_UNITS if unit[1] <= abs(size)]
    return reached[-1] if reached else _SIZE_UNITS[0]


def _axis(objective: str, points: Sequence[_Point]) -> _Axis:
    """The objective's axis over the points' values: its title, unit, range and ticks."""
    values = [p.values[objective] for p in points]
    unit, scale = _size_unit(max(abs(v) for v in values)) if objective == "size" else ("ms", 1.0)
    if objective == "quality":
        read = sorted({p.quality for p in points}, key=OBJECTIVES[objective][0].index)
        named = read[0] if len(read) == 1 else f"quality ({' or '.join(read)})"
    else:
        named = f"{objective} ({unit})"
    scaled = [v / scale for v in values]
    low, high = min(scaled), max(scaled)
    if high - low <= max(1e-9 * max(abs(low), abs(high)), _TINY):
        # Every value alike: a range around them, the points in its middle.
        middle = (low + high) / 2
        half = abs(middle) * 0.05 if abs(middle) > _TINY else 1.0
        low, high = middle - half, middle + half
    else:
        pad = (high - low) * 0.06
        low, high = low - pad, high + pad
    return _Axis(objective=objective, title=f"{named}, {OBJECTIVES[objective][1]} is better",
                 scale=scale, low=low, high=high, ticks=_ticks(low, high))  # fmt: skip


def _ticks(low: float, high: float) -> tuple[tuple[float, str], ...]:
    """Round numbers between ``low`` and ``high``, 1, 2 or 5 times a power of ten apart, and
    their labels: 2 to 6 of them."""
    rough = (high - low) / 5
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    places = max(0, -math.floor(math.log10(step)))
    return tuple(
        (k * step, _number(k * step, places))
        for k in range(math.ceil(low / step), math.floor(high / step) + 1)
    )


def _number(value: float, places: int) -> str:
    if places > 9 or abs(value) >= 1e12:
        return f"{value:.6g}"
    return f"{value:.{places}f}"


def _panel(
    left: float, top: float, x: _Axis, y: _Axis | None, points: Sequence[_Point], *,
    staircase: bool,
) -> list[str]:  # fmt: skip
    """One panel: ``x`` along, ``y`` up (none: a strip); its frame, ticks, titles, points."""
    height = _HEIGHT if y else _STRIP
    y_data = f' data-y="{y.objective}"' if y else ""
    return [
        f'<g class="panel" data-x="{x.objective}"{y_data}>',
        *_axes(left, top, height, x, y),
        *_marks(left, top, height, x, y, points, staircase=staircase),
        "</g>",
    ]


def _axes(left: float, top: float, height: float, x: _Axis, y: _Axis | None) -> list[str]:
    """A panel's frame, and each axis' ticks, grid lines and title."""
    bottom = top + height
    parts = [
        f'<rect x="{_n(left)}" y="{_n(top)}" width="{_WIDTH}" height="{height}" fill="none" '
        'stroke="#999999"/>',
    ]
    for value, label in x.ticks:
        at = left + x.tick_fraction(value) * _WIDTH
        parts += [
            f'<line x1="{_n(at)}" y1="{_n(top)}" x2="{_n(at)}" y2="{_n(bottom + 4)}" '
            f'stroke="{_GRID}"/>',
            f'<text x="{_n(at)}" y="{_n(bottom + 18)}" text-anchor="middle">{label}</text>',
        ]
    parts.append(
        f'<text class="axis" x="{_n(left + _WIDTH / 2)}" y="{_n(bottom + 42)}" '
        f'text-anchor="middle">{_text(x.title)}</text>'
    )
    if y is None:
        return parts
    for value, label in y.ticks:
        at = bottom - y.tick_fraction(value) * height
        parts += [
            f'<line x1="{_n(left - 4)}" y1="{_n(at)}" x2="{_n(left + _WIDTH)}" y2="{_n(at)}" '
            f'stroke="{_GRID}"/>',
            f'<text x="{_n(left - 8)}" y="{_n(at)}" dy="0.35em" text-anchor="end">{label}</text>',
        ]
    title_x, middle = _n(left - 74), _n(top + height / 2)
    parts.append(
        f'<text class="axis" x="{title_x}" y="{middle}" text-anchor="middle" '
        f'transform="rotate(-90 {title_x} {middle})">{_text(y.title)}</text>'
    )
    return parts


def _marks(
    left: float, top: float, height: float, x: _Axis, y: _Axis | None,
    points: Sequence[_Point], *, staircase: bool,
) -> list[str]:  # fmt: skip
    """A panel's points (the front's on top, filled), their labels, and the front's
    staircase when asked for."""
    bottom = top + height

    def place(point: _Point) -> tuple[str, str]:
        across = left + x.fraction(point.values[x.objective]) * _WIDTH
        up = bottom - y.fraction(point.values[y.objective]) * height if y else top + height / 2
        return _n(across), _n(up)

    parts: list[str] = []
    front = sorted(
        (p for p in points if p.on_front),
        key=lambda p: (p.values[x.objective], p.values[y.objective] if y else 0.0),
    )
    if staircase and y and len(front) > 1:
        # Along x, each point of a two-objective front is worse in y than the one before:
        # the line goes across to the next point's x, then up or down to it.
        steps = [f"M {' '.join(place(front[0]))}"]
        steps += [f"H {place(p)[0]} V {place(p)[1]}" for p in front[1:]]
        parts.append(f'<path class="front-line" d="{" ".join(steps)}" fill="none" '
                     f'stroke="{_FRONT}" stroke-width="1.5" stroke-dasharray="5 3"/>')  # fmt: skip
    labels: dict[tuple[str, str], list[str]] = {}  # points that fall together share one
    for point in [*(p for p in points if not p.on_front), *front]:  # the front on top
        cx, cy = place(point)
        look = (f'class="variant front" fill="{_FRONT}" stroke="{_FRONT_EDGE}"' if point.on_front
                else f'class="variant" fill="white" stroke="{_OTHER}"')  # fmt: skip
        parts.append(
            f'<circle {look} stroke-width="1.5" data-variant="{_text(point.name)}" cx="{cx}" '
            f'cy="{cy}" r="5"><title>{_text(_tooltip(point))}</title></circle>'
        )
        labels.setdefault((cx, cy), []).append(point.label)
    for (cx, cy), names in labels.items():
        text = ", ".join(names)
        anchor, dx = "start", 7
        if float(cx) + 7 + len(text) * _TEXT_CHAR > left + _WIDTH + _RIGHT:
            anchor, dx = "end", -7  # its left, where the right of the panel would cut it
        parts.append(
            f'<text class="label" x="{_n(float(cx) + dx)}" y="{_n(float(cy) - 7)}" '
            f'text-anchor="{anchor}" font-size="11">{_text(text)}</text>'
        )
    return parts


def _key(left: float, top: float, *, staircase: bool) -> list[str]:
    """What the marks mean, above the legend."""
    middle = _n(top + _LINE - 8)
    parts = [
        f'<g class="key"><circle cx="{_n(left + 5)}" cy="{middle}" r="5" fill="{_FRONT}" '
        f'stroke="{_FRONT_EDGE}" stroke-width="1.5"/>',
        f'<text x="{_n(left + 16)}" y="{middle}" dy="0.35em">on the Pareto front</text>',
        f'<circle cx="{_n(left + 165)}" cy="{middle}" r="5" fill="white" stroke="{_OTHER}" '
        'stroke-width="1.5"/>',
        f'<text x="{_n(left + 176)}" y="{middle}" dy="0.35em">dominated</text>',
    ]
    if staircase:
        parts += [
            f'<line x1="{_n(left + 265)}" y1="{middle}" x2="{_n(left + 295)}" y2="{middle}" '
            f'stroke="{_FRONT}" stroke-width="1.5" stroke-dasharray="5 3"/>',
            f'<text x="{_n(left + 302)}" y="{middle}" dy="0.35em">the front</text>',
        ]
    return [*parts, "</g>"]


def _legend(
    rows: Sequence[VariantRow], points: Sequence[_Point], objectives: Sequence[str]
) -> tuple[list[str], float]:
    """One ``<text>`` per variant, in the sweep's order, in columns (label, name, measures,
    front; or label, name, why it is not plotted), below the key; and the legend's width."""
    plotted = {p.name: p for p in points}
    numbered = any(p.label != _clean(p.name) for p in points)
    lines: list[tuple[list[str], bool]] = []  # a line's cells; whether it is plotted
    for row in rows:
        point = plotted.get(row.name)
        label = point.label if point is not None and numbered else ""
        if point is None:
            why = "failed: " + " ".join(row.error.split()) if not row.ok else "not measured"
            if len(why) > _LONGEST_ERROR:
                why = why[: _LONGEST_ERROR - 1] + "…"
            lines.append(([label, _clean(row.name), f"not plotted, {why}"], False))
        else:
            front = "front" if point.on_front else ""
            measures = [_shown(o, point) for o in objectives]
            lines.append(([label, _clean(row.name), *measures, front], True))
    # Columns are as wide as their widest cell; a line not plotted spans the measures' with
    # its last cell, so it widens none of them.
    widths = [max(len(cells[i]) for cells, _ in lines) for i in range(2)]
    widths += [
        max((len(cells[i]) for cells, shown in lines if shown), default=0)
        for i in range(2, 2 + len(objectives))
    ]
    columns = [0.0]
    for w in widths:
        columns.append(columns[-1] + (w + 2) * _MONO if w else columns[-1])
    texts = []
    for line, (cells, shown) in enumerate(lines):
        fill = "" if shown else f' fill="{_MUTED}"'
        spans = "".join(
            f'<tspan x="{_n(columns[i])}">{_text(cell)}</tspan>'
            for i, cell in enumerate(cells)
            if cell
        )
        texts.append(f'<text class="row" y="{_n(_LINE * (line + 2) - 4)}"{fill}>{spans}</text>')
    width = max(columns[len(cells) - 1] + len(cells[-1]) * _MONO for cells, _ in lines)
    return texts, width


def _shown(objective: str, point: _Point) -> str:
    """A measure as the table shows it, with its unit."""
    value = point.values[objective]
    if objective == "size":
        unit, scale = _size_unit(value)
        return f"{value:.0f} B" if unit == "B" else f"{value / scale:.1f} {unit}"
    if objective == "latency":
        return f"{value:.3f} ms"
    shape = _QUALITY_FORMATS.get(point.quality, "{:.6g}")
    return f"{point.quality or objective} {shape.format(value)}"


def _tooltip(point: _Point) -> str:
    """The point's name, its measures (a size to the byte, too), whether it is on the front."""
    exactly = {"size": f" ({point.values['size']:,.0f} bytes)"} if "size" in point.values else {}
    measures = ", ".join(_shown(o, point) + exactly.get(o, "") for o in point.values)
    return f"{point.name}\n{measures}\n{'on the Pareto front' if point.on_front else 'dominated'}"


def _clean(text: str) -> str:
    """``text`` with what XML cannot hold replaced."""
    return _NOT_XML.sub("\ufffd", text)


def _text(text: str) -> str:
    """``text`` as XML character data or a double-quoted attribute's value: escaped, its
    line breaks and tabs as references, so that they survive in an attribute."""
    return escape(_clean(text), _ENTITIES)


def _n(value: float) -> str:
    """A coordinate: always two decimals, so the same plot is the same bytes."""
    return f"{value:.2f}"
