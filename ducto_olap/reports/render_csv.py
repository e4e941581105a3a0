"""The CSV report: one file per table, amounts as exact decimal text.

=============================  ================================================
file                           columns
=============================  ================================================
``<stem>-stats.csv``           window and freshness, then the aggregate stats row
``<stem>-by-model.csv``        model, total_spend, transaction_count
``<stem>-daily.csv``           date, total_spend, transaction_count (days with spend)
``<stem>-top-users.csv``       rank, user_id, total_spend
=============================  ================================================

Values are written as they are (no spreadsheet-formula quoting), so a file
reads back to the engine's answers exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from ducto_olap.reports import display
from ducto_olap.reports.content import ReportContent

STATS_COLUMNS = (
    "window_start",
    "window_end",
    "time_zone",
    "period",
    "last_commit_at",
    "total_credits_consumed",
    "active_users",
    "avg_daily_spend",
    "top_model",
    "top_user",
)


def render_csv(content: ReportContent, stem: str) -> dict[str, str]:
    """The four CSV files of a report, by file name."""
    stats = content.stats
    period = content.period
    last_commit = content.last_commit_at.isoformat() if content.last_commit_at else ""
    stats_row = [
        period.start.isoformat(),
        period.end.isoformat(),
        period.tz,
        period.label,
        last_commit,
        display.plain(stats.total_credits_consumed),
        str(stats.active_users),
        display.plain(stats.avg_daily_spend),
        stats.top_model,
        stats.top_user,
    ]

    return {
        f"{stem}-stats.csv": _csv(STATS_COLUMNS, [stats_row]),
        f"{stem}-by-model.csv": _csv(
            ("model", "total_spend", "transaction_count"),
            [
                [row.model, display.plain(row.total_spend), str(row.transaction_count)]
                for row in content.by_model
            ],
        ),
        f"{stem}-daily.csv": _csv(
            ("date", "total_spend", "transaction_count"),
            [
                [row.date, display.plain(row.total_spend), str(row.transaction_count)]
                for row in content.daily
            ],
        ),
        f"{stem}-top-users.csv": _csv(
            ("rank", "user_id", "total_spend"),
            [
                [str(rank), row.user_id, display.plain(row.total_spend)]
                for rank, row in enumerate(content.top_users, 1)
            ],
        ),
    }


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
