"""The Markdown report, for chat and wikis: tables only, every user string escaped.

Only strings a user controls (user ids, model names, the lake path, the zone)
go through :func:`escape`; the report's own fixed sentences are written as
Markdown, so their parentheses stay plain and their backticks mark code.

User ids and model names can hold anything. :func:`escape` makes them plain
text in any CommonMark/GFM renderer: the punctuation that means something inline
gets a backslash (a ``|`` can no longer end a table cell, a backtick no longer
opens code, ``*``/``_``/``~`` no longer emphasize, ``[``/``]``/``!`` no longer
link, ``&`` no longer starts an entity, ``$`` no longer starts math), ``<`` and
``>`` too (so no HTML tag gets through), and line breaks become spaces so a row
stays one line. Characters that only matter at the start of a line (``#``,
``-``, ``+``) are left alone: a user string never starts a line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ducto_olap.reports import display
from ducto_olap.reports.content import ReportContent
from ducto_olap.reports.describe import DAILY_NOTE, NO_SPEND, describe

_SPECIAL = re.compile(r"([\\`*_\[\]()<>!|~&$])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text, safe inside a table cell."""
    flat = _CONTROL.sub("\ufffd", _LINE_BREAKS.sub(" ", text))
    return _SPECIAL.sub(r"\\\1", flat)


def render_markdown(content: ReportContent) -> str:
    """The report as one Markdown document."""
    text = describe(content)
    stats = content.stats
    lines = [
        f"# {text.title}",
        "",
        f"- **Window:** {text.window_start} → {text.window_end} "
        f"({text.period}, {text.length}, days in {escape(text.zone)}, end exclusive)",
        f"- **Lake last commit:** {text.freshness}",
        f"- **Generated:** {text.generated} by {escape(text.source)}",
        "",
    ]
    # Our own sentence (times and a command, no user string): its backticks are meant as code.
    if text.stale:
        lines += [f"> **Note:** {text.stale}", ""]

    lines += ["## Summary", ""]
    lines += _table(
        ["", "value"],
        [
            ["Total consumed", display.amount(stats.total_credits_consumed)],
            ["Active users", display.count(stats.active_users)],
            ["Avg daily spend", f"{display.amount(stats.avg_daily_spend)} ({text.avg_days})"],
            ["Top model", escape(stats.top_model) or "—"],
            ["Top user", escape(stats.top_user) or "—"],
        ],
        right=[False, True],
    )

    if not content.has_spend:
        return "\n".join([*lines, "", f"**{NO_SPEND}**", ""])

    lines += ["", "## Spend by model", ""]
    lines += _table(
        ["#", "model", "spend", "transactions"],
        [
            [
                str(rank),
                escape(row.model),
                display.amount(row.total_spend),
                display.count(row.transaction_count),
            ]
            for rank, row in enumerate(content.by_model, 1)
        ],
        right=[True, False, True, True],
    )

    lines += ["", "## Daily spend", "", DAILY_NOTE, ""]
    lines += _table(
        ["date", "spend", "transactions"],
        [
            [row.date, display.amount(row.total_spend), display.count(row.transaction_count)]
            for row in content.daily
        ],
        right=[False, True, True],
    )

    lines += ["", f"## Top users (top {content.top})", ""]
    lines += _table(
        ["#", "user", "spend"],
        [
            [str(rank), escape(row.user_id), display.amount(row.total_spend)]
            for rank, row in enumerate(content.top_users, 1)
        ],
        right=[True, False, True],
    )
    return "\n".join([*lines, ""])


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: list[bool]) -> list[str]:
    rule = ["---:" if align else "---" for align in right]
    return [_row(header), _row(rule), *(_row(row) for row in rows)]


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
