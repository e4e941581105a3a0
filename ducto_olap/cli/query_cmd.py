"""``ducto-olap query NAME``: one of the five questions, from the lake or from Postgres."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from ducto_olap.cli.common import dsn_option, format_option, handle_errors, lake_option
from ducto_olap.cli.main import cli
from ducto_olap.cli.output import echo, render, row_dicts
from ducto_olap.cli.sources import SOURCES, open_source
from ducto_olap.models import (
    AggregateStatsRow,
    DailySpendRow,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
)
from ducto_olap.questions import SpendQuestions
from ducto_olap.window import MAX_LIMIT, check_time_zone, parse_instant

QUESTION_ROWS: dict[str, type[Any]] = {
    "spend-by-user": SpendByUserRow,
    "spend-by-model": SpendByModelRow,
    "top-users": TopUserRow,
    "daily-spend": DailySpendRow,
    "aggregate-stats": AggregateStatsRow,
}
DEFAULT_DAYS = 30


def ask(
    source: SpendQuestions,
    name: str,
    start: datetime,
    end: datetime,
    *,
    limit: int = 10,
    tz: str | None = None,
) -> Any:
    """The answer of question ``name`` (CLI spelling) over ``[start, end)``."""
    if name == "spend-by-user":
        return source.spend_by_user(start, end)
    if name == "spend-by-model":
        return source.spend_by_model(start, end)
    if name == "top-users":
        return source.top_users(limit, start, end)
    if name == "daily-spend":
        return source.daily_spend(start, end, tz=tz)
    return source.aggregate_stats(start, end, tz=tz)


def resolve_window(
    start: str | None, end: str | None, tz: str | None = None
) -> tuple[datetime, datetime]:
    """The window from ``--start``/``--end`` (read in ``tz``); by default the 30 days to now."""
    end_at = datetime.now(UTC) if end is None else parse_instant(end, tz=tz, what="--end")
    if start is None:
        return end_at - timedelta(days=DEFAULT_DAYS), end_at
    return parse_instant(start, tz=tz, what="--start"), end_at


@cli.command("query")
@click.argument("name", type=click.Choice(list(QUESTION_ROWS)), metavar="NAME")
@click.option(
    "--engine",
    type=click.Choice(SOURCES),
    default="duckdb",
    show_default=True,
    help="duckdb or polars read the lake; postgres asks the ledger itself.",
)
@click.option("--start", help="Window start, ISO date or datetime (no offset: in --tz, else UTC).")
@click.option("--end", help="Window end, exclusive [default: now].")
@click.option(
    "--limit",
    type=click.IntRange(min=0, max=MAX_LIMIT),
    default=10,
    show_default=True,
    help="Rows of top-users.",
)
@click.option(
    "--tz",
    help="IANA time zone of --start/--end without an offset and of the day buckets [default UTC].",
)
@lake_option
@dsn_option
@format_option
@handle_errors
def query_command(
    name: str,
    engine: str,
    start: str | None,
    end: str | None,
    limit: int,
    tz: str | None,
    lake: str | None,
    dsn: str | None,
    fmt: str,
) -> None:
    """Ask one of the five spend questions over the window [START, END).

    NAME is one of spend-by-user, spend-by-model, top-users, daily-spend,
    aggregate-stats. The window defaults to the 30 days ending now.

    \b
    Examples:
      ducto-olap query spend-by-model
      ducto-olap query top-users --limit 5 --start 2026-11-01 --end 2026-12-01
      ducto-olap query daily-spend --engine polars --format csv
      ducto-olap query aggregate-stats --engine postgres --format json
    """
    zone = check_time_zone(tz)
    window = resolve_window(start, end, zone)
    with open_source(engine, lake=lake, dsn=dsn) as source:
        answer = ask(source, name, *window, limit=limit, tz=zone)

    title = f"{name}  [{window[0].isoformat()}, {window[1].isoformat()})"
    echo(render_answer(name, answer, fmt, title=title))


def render_answer(name: str, answer: Any, fmt: str, *, title: str | None = None) -> str:
    """The text of one answer in ``fmt``; aggregate-stats is one JSON object, not a list."""
    columns = [field.name for field in dataclasses.fields(QUESTION_ROWS[name])]
    single = name == "aggregate-stats"
    return render(row_dicts(answer), fmt, columns=columns, single=single, title=title)
