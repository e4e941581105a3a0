"""``ducto-olap report``: write spend report files for a period, for cron and schedulers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ducto_olap.cli.common import dsn_option, fail, handle_errors, lake_option
from ducto_olap.cli.main import cli
from ducto_olap.cli.output import echo
from ducto_olap.errors import ConfigError
from ducto_olap.reports.content import MAX_TOP
from ducto_olap.reports.period import DEFAULT_PERIOD, PERIODS, resolve_period
from ducto_olap.reports.run import FORMATS, report_from_lake, write_report
from ducto_olap.settings import data_home, resolve_lake


@cli.command("report")
@click.option(
    "--period",
    type=click.Choice(PERIODS),
    default=None,
    help=f"Calendar period in --tz [default: {DEFAULT_PERIOD}, unless --start/--end].",
)
@click.option(
    "--start",
    metavar="ISO",
    default=None,
    help="Window start: a date (local midnight) or datetime; no offset means --tz.",
)
@click.option(
    "--end",
    metavar="ISO",
    default=None,
    help="Window end, exclusive: --start 2026-11-01 --end 2026-12-01 is November.",
)
@click.option(
    "--tz",
    default=None,
    metavar="ZONE",
    help="IANA zone of the calendar days, e.g. America/New_York [default: UTC].",
)
@click.option(
    "--format",
    "formats",
    default=",".join(FORMATS),
    show_default=True,
    metavar="LIST",
    help=f"Comma-separated formats to write: {', '.join(FORMATS)}.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Folder for the report files [default: data/reports, under DUCTO_OLAP_HOME if set].",
)
@click.option(
    "--top",
    type=click.IntRange(min=1, max=MAX_TOP),
    default=10,
    show_default=True,
    help="How many top users to list.",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "polars"]),
    default="duckdb",
    show_default=True,
    help="Engine that reads the lake.",
)
@lake_option
@dsn_option
@click.option(
    "--export-first",
    is_flag=True,
    help="Export new ledger rows to the lake (from --dsn) before reporting.",
)
@click.option("--now", metavar="ISO", default=None, hidden=True, help="Clock for tests.")
@handle_errors
def report_command(
    period: str | None,
    start: str | None,
    end: str | None,
    tz: str | None,
    formats: str,
    out: str | None,
    top: int,
    engine: str,
    lake: str | None,
    dsn: str | None,
    export_first: bool,
    now: str | None,
) -> None:
    """Write a spend report (HTML, Markdown, CSV, JSON) for a period; print the paths.

    Periods are calendar days in --tz: yesterday (the default) is local midnight
    to local midnight, so a DST day is 23 or 25 hours. Files are named from the
    period (spend-2026-12-02.html for a day, spend-2026-11-01_2026-11-30.md for
    a range) and replaced atomically, so a rerun is safe.

    \b
    Examples:
      ducto-olap report                                   yesterday, UTC, all formats
      ducto-olap report --period last-7d --tz Europe/Berlin --format html
      ducto-olap report --start 2026-11-01 --end 2026-12-01 --format csv,json
      ducto-olap report --export-first --out /var/reports  export, then report
    """
    chosen = _formats(formats)
    folder = _out(out)
    clock = _clock(now) or datetime.now(UTC)
    window = resolve_period(period, start=start, end=end, tz=tz, now=clock)
    lake_path = resolve_lake(lake)

    if export_first:
        from ducto_olap.export import Exporter
        from ducto_olap.store.embedded import resolve_store_dsn

        Exporter(resolve_store_dsn(dsn), lake_path).run()

    content = report_from_lake(lake_path, window, engine=engine, top=top, now=clock)
    try:
        written = write_report(content, folder, chosen)
    except OSError as error:
        # A folder problem is the operator's to fix, not a traceback's: name it and the reason.
        reason = (error.strerror or type(error).__name__).lower()
        fail(f"cannot write reports into {folder}: {reason}; choose another --out")
    echo("".join(f"{path}\n" for path in written))


def _formats(text: str) -> list[str]:
    chosen = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in FORMATS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown report format {', '.join(unknown) or repr(text)}; "
            f"choose a comma-separated list of {', '.join(FORMATS)}"
        )
    return list(dict.fromkeys(chosen))


def _out(text: str | None) -> Path:
    if text is None:
        return data_home() / "reports"
    # Path("") is ".": an empty value (an unset variable in a crontab) would write into the cwd.
    if not text.strip():
        raise ConfigError("--out is empty; give the reports folder, e.g. --out data/reports")
    return Path(text)


def _clock(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"--now {text!r} is not an ISO datetime with an offset") from error
    if moment.tzinfo is None:
        raise ConfigError(f"--now {text!r} has no offset; add one, e.g. {text}+00:00")
    return moment
