"""The sentences a report shares across HTML and Markdown: title, window, freshness."""

from __future__ import annotations

import dataclasses

from ducto_olap.reports import display
from ducto_olap.reports.content import MAX_BARS, ReportContent

PERIOD_NAMES = {
    "yesterday": "yesterday",
    "last-7d": "the last 7 days",
    "last-30d": "the last 30 days",
    "month-to-date": "month to date",
    "previous-month": "the previous month",
    "custom": "custom window",
}

NO_SPEND = "No spend in this window."
DAILY_NOTE = "Only days with spend are listed."

_CHART_NOTES = {
    "day": "the chart shows every day of the window, zero where there was none",
    "month": (
        "the window is too long for a bar per day, so the chart shows every month "
        "(the sum of its days), zero where there was none"
    ),
    "year": (
        "the window is too long for a bar per day or month, so the chart shows every year "
        "(the sum of its days), zero where there was none"
    ),
    None: (
        f"the window is more than {MAX_BARS:,} years long, too long to chart, so there is no chart"
    ),
}


@dataclasses.dataclass(frozen=True, slots=True)
class ReportText:
    """Plain strings (not yet escaped for any format) that describe a report."""

    title: str
    period: str
    window_start: str
    window_end: str
    zone: str
    length: str
    freshness: str
    stale: str
    generated: str
    source: str
    avg_days: str
    chart_note: str


def describe(content: ReportContent) -> ReportText:
    """The describing text of a report."""
    period = content.period
    first, last = period.first_day.isoformat(), period.last_day.isoformat()
    days = first if first == last else f"{first} to {last}"

    freshness = "the lake has no commit yet"
    stale = ""
    if content.last_commit_at is not None:
        freshness = display.moment(content.last_commit_at, period.tz)
        if content.is_stale:
            stale = (
                f"The lake's last commit ({freshness}) is before the end of this window: "
                f"spend after it is not in this report. Run `ducto-olap export` "
                f"(or add --export-first) for newer data."
            )

    with_spend = content.days_with_spend
    return ReportText(
        title=f"Spend report: {days}",
        period=PERIOD_NAMES.get(period.label, period.label),
        window_start=display.moment(period.start, period.tz),
        window_end=display.moment(period.end, period.tz),
        zone=period.tz,
        length=_length(period.hours, period.day_count),
        freshness=freshness,
        stale=stale,
        generated=display.moment(content.generated_at, period.tz),
        source=content.source or "unknown source",
        avg_days=f"over {with_spend} day{'s' if with_spend != 1 else ''} with spend",
        chart_note=f"Only days with spend are listed; {_CHART_NOTES[content.chart_unit]}.",
    )


def _length(hours: float, days: int) -> str:
    return f"{hours:g} h" if hours < 48 else f"{days:,} days"
