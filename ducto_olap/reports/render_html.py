"""The HTML report: one self-contained file, CSS and SVG charts inline, no scripts.

Rendered with Jinja2 and autoescape on, so every user id and model name is
escaped; the only markup passed through unescaped is the SVG text from
:mod:`ducto_olap.reports.charts`, whose own text matplotlib escapes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from ducto_olap.reports import charts, display
from ducto_olap.reports.content import ReportContent
from ducto_olap.reports.describe import describe


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ducto_olap.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["amount"] = display.amount
    environment.filters["count"] = display.count
    return environment


def render_html(content: ReportContent) -> str:
    """The report as one HTML document."""
    environment = _environment()
    context: dict[str, Any] = {
        "content": content,
        "text": describe(content),
        "stats": content.stats,
        "css": Markup(environment.loader.get_source(environment, "report.css")[0]),  # type: ignore[union-attr]
        "model_chart": None,
        "daily_chart": None,
    }
    if content.has_spend:
        # Trusted markup: matplotlib wrote it and escaped the labels inside it.
        context["model_chart"] = Markup(charts.model_bar_chart(content.by_model))
        # One bar for one day says nothing the stats card does not; draw from two days on.
        # Bars are built per day, month or year so a window of centuries stays a few bars.
        bars = content.spend_over_time()
        if content.period.day_count > 1 and bars:
            chart = charts.spend_bar_chart(bars, content.chart_unit or "day")
            context["daily_chart"] = Markup(chart)
    return environment.get_template("report.html").render(context)
