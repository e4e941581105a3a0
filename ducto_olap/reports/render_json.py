"""The JSON report: one object, amounts as exact decimal strings.

Shape::

    {"report": "spend", "period": {...}, "lake": {"last_commit_at": ...},
     "generated_at": ..., "source": ..., "stats": {...},
     "spend_by_model": [...], "daily_spend": [...], "top_users": [...]}

``daily_spend`` holds only days with spend, as the engines return it.
"""

from __future__ import annotations

import json
from typing import Any

from ducto_olap.reports import display
from ducto_olap.reports.content import ReportContent


def report_dict(content: ReportContent) -> dict[str, Any]:
    """The report as plain JSON-ready data (Decimals as strings)."""
    period = content.period
    stats = content.stats
    return {
        "report": "spend",
        "period": {
            "label": period.label,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "time_zone": period.tz,
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(),
        },
        "lake": {
            "last_commit_at": content.last_commit_at.isoformat()
            if content.last_commit_at
            else None,
            "stale": content.is_stale,
        },
        "generated_at": content.generated_at.isoformat(),
        "source": content.source,
        "stats": {
            "total_credits_consumed": display.plain(stats.total_credits_consumed),
            "active_users": stats.active_users,
            "avg_daily_spend": display.plain(stats.avg_daily_spend),
            "days_with_spend": content.days_with_spend,
            "top_model": stats.top_model,
            "top_user": stats.top_user,
        },
        "spend_by_model": [
            {
                "model": row.model,
                "total_spend": display.plain(row.total_spend),
                "transaction_count": row.transaction_count,
            }
            for row in content.by_model
        ],
        "daily_spend": [
            {
                "date": row.date,
                "total_spend": display.plain(row.total_spend),
                "transaction_count": row.transaction_count,
            }
            for row in content.daily
        ],
        "top": content.top,
        "top_users": [
            {"user_id": row.user_id, "total_spend": display.plain(row.total_spend)}
            for row in content.top_users
        ],
    }


def render_json(content: ReportContent) -> str:
    """The report as one JSON document."""
    return json.dumps(report_dict(content), indent=2, ensure_ascii=False) + "\n"
