"""``ducto-olap export`` and ``ducto-olap compact``: feed the lake and tidy it."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import click

from ducto_olap.cli.common import dsn_option, format_option, handle_errors, lake_option
from ducto_olap.cli.main import cli
from ducto_olap.cli.output import echo, render
from ducto_olap.errors import ConfigError
from ducto_olap.settings import resolve_lake


@cli.command("export")
@dsn_option
@lake_option
@format_option
@handle_errors
def export_command(dsn: str | None, lake: str | None, fmt: str) -> None:
    """Export the committed ledger rows the lake does not have yet, as one new commit.

    Safe to run at any time and as often as you like: each committed row lands
    exactly once, a crashed run is cleaned up by the next one, and a run with
    nothing new writes nothing. A large backlog is read over two connections
    in one snapshot.

    \b
    Example:
      ducto-olap export --dsn postgresql://localhost/credits --lake data/lake
    """
    from ducto_olap.export import Exporter
    from ducto_olap.store.embedded import resolve_store_dsn

    result = Exporter(resolve_store_dsn(dsn), resolve_lake(lake)).run()
    echo(summary(result.to_dict(), fmt, "export"))


@cli.command("compact")
@lake_option
@click.option(
    "--date",
    "day",
    default=None,
    metavar="YYYY-MM-DD",
    help="Compact only this UTC date's partition [default: every partition].",
)
@format_option
@handle_errors
def compact_command(lake: str | None, day: str | None, fmt: str) -> None:
    """Merge each partition's small files into one, in a new commit; answers do not change.

    \b
    Example:
      ducto-olap compact --lake data/lake --date 2025-01-31
    """
    from ducto_olap.export import compact

    result = compact(resolve_lake(lake), _parse_day(day))
    echo(summary(result.to_dict(), fmt, "compact"))


def summary(record: dict[str, Any], fmt: str, title: str) -> str:
    """One run's summary: a field/value table (readable at any width), or JSON/CSV as is."""
    if fmt != "table":
        return render([record], fmt, single=True, title=title)
    rows = [
        {"field": name, "value": "none" if value is None else str(value)}
        for name, value in record.items()
    ]
    return render(rows, fmt, title=title)


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_day(text: str | None) -> date | None:
    if text is None:
        return None
    # fromisoformat also takes 20261102 and 2026-W45-1; the help promises one form.
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"--date {text!r} is not a date; write it as YYYY-MM-DD") from error
