"""The report's charts, drawn by matplotlib and returned as SVG text to inline in HTML.

This is the only module where an amount becomes a float: a bar's height in
pixels needs one, and no number a reader sees is taken from a chart. Text in
the SVG (model names on the axis) is written by matplotlib's SVG backend,
which escapes ``&``, ``<`` and ``>``.

Figures are built without pyplot (no global state, no GUI backend), and the
SVG is made deterministic (fixed id salt, no date) so a rerun writes the same
bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ducto_olap.models import SpendByModelRow

#: The most models drawn; the rest are summed into one "(N more)" bar.
MAX_MODEL_BARS = 12
MAX_LABEL = 28

_ACCENT = "#2f6db5"
_INK = "#333333"
_GRID = "#dddddd"

_STYLE: Any = {
    "svg.fonttype": "none",
    "font.size": 10,
    "axes.edgecolor": _GRID,
    "axes.labelcolor": _INK,
    "xtick.color": _INK,
    "ytick.color": _INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def model_bar_chart(rows: Sequence[SpendByModelRow]) -> str:
    """A horizontal bar chart of spend by model, highest at the top; SVG text."""
    labels = [_short(row.model) for row in rows[:MAX_MODEL_BARS]]
    values = [_pixels(row.total_spend) for row in rows[:MAX_MODEL_BARS]]
    if len(rows) > MAX_MODEL_BARS:
        labels.append(f"({len(rows) - MAX_MODEL_BARS} more)")
        values.append(sum(_pixels(row.total_spend) for row in rows[MAX_MODEL_BARS:]))

    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(7.5, 0.9 + 0.32 * len(labels)), layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        axes.barh(positions, values, color=_ACCENT, height=0.62)
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()
        axes.set_xlabel("credits")
        axes.xaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.grid(axis="x", color=_GRID, linewidth=0.8)
        axes.set_axisbelow(True)
        return _svg(figure, "model")


#: How many days one bar of each chart unit spans, for bar widths on matplotlib's day axis.
_UNIT_DAYS = {"day": 1.0, "month": 30.44, "year": 365.25}


def spend_bar_chart(bars: Sequence[tuple[date, Decimal]], unit: str = "day") -> str:
    """Spend per ``unit`` (day, month or year; each bar at its first day), zero bars included;
    SVG text."""
    # Bars sit at matplotlib's day numbers (its stubs leave the date helpers untyped).
    positions = [float(mdates.date2num(day)) for day, _ in bars]  # type: ignore[no-untyped-call]
    values = [_pixels(amount) for _, amount in bars]
    span = _UNIT_DAYS[unit]
    # A month or year bar starts at its first day; centre it on the period it stands for.
    positions = [position + (span - 1) / 2 for position in positions]

    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(7.5, 2.8), layout="constrained")
        axes = figure.add_subplot()
        width = (0.8 if len(positions) < 120 else 1.0) * span
        axes.bar(positions, values, color=_ACCENT, width=width)
        axes.xaxis_date()
        locator = mdates.AutoDateLocator(minticks=3, maxticks=10)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        # The title already names the window; an offset label ("2026-Dec") only confuses.
        formatter = mdates.ConciseDateFormatter(locator, show_offset=False)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(formatter)
        if positions:
            axes.set_xlim(positions[0] - 0.6 * span, positions[-1] + 0.6 * span)
        axes.set_ylabel("credits")
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_formatter(FuncFormatter(_thousands))
        axes.grid(axis="y", color=_GRID, linewidth=0.8)
        axes.set_axisbelow(True)
        return _svg(figure, "daily")


def _pixels(amount: Decimal) -> float:
    # Drawing only: a bar's length in pixels. Never used for a number a reader sees.
    return float(amount)


def _thousands(value: float, _position: int) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')


def _svg(figure: Figure, prefix: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"ducto-{prefix}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    text = buffer.getvalue()

    # Inline SVG lives in the HTML document: drop the XML prolog and the RDF metadata, give the ids
    # of each chart a prefix so two charts on one page never share an id.
    text = text[text.index("<svg") :]
    text = _METADATA.sub("", text)
    text = _ID.sub(lambda match: f'id="{prefix}-{match.group(1)}"', text)
    return _REFERENCE.sub(lambda match: f"{match.group(1)}{prefix}-{match.group(2)}", text)
