"""``ducto-olap sql`` and ``ducto-olap shell``: ad-hoc SQL over the lake in DuckDB."""

from __future__ import annotations

import sys

import click

from ducto_olap.cli.common import fail, format_option, handle_errors, lake_option
from ducto_olap.cli.main import cli
from ducto_olap.cli.output import echo, render
from ducto_olap.settings import resolve_lake
from ducto_olap.shell.launch import INSTALL_HINT, exec_shell, find_duckdb_cli, manual_command
from ducto_olap.shell.script import write_shell_script
from ducto_olap.shell.sql import jsonable, run_sql, text_value


@cli.command("sql")
@click.argument("statement", metavar="SQL")
@lake_option
@format_option
@handle_errors
def sql_command(statement: str, lake: str | None, fmt: str) -> None:
    """Run one read-only SQL statement over the lake's views and macros.

    The views are transactions (the committed rows, with a date column)
    and spend (spend rows with a positive spend); the macros are the five
    questions over a window [start, end). Only one reading statement runs
    (SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN or a
    reading PRAGMA); nothing is written and no other file can be read. Pass -
    to read the statement from stdin.

    JSON keeps amounts exact as strings. In CSV and tables, lists, structs and
    maps are JSON text, BLOBs hex and intervals ISO 8601 durations (P3DT4H).

    \b
    Examples:
      ducto-olap sql "SELECT * FROM spend_by_model('2026-11-01', '2026-12-01')"
      ducto-olap sql "SELECT operation_type, sum(spend) FROM spend GROUP BY ALL" --format csv
      ducto-olap sql - --format json < report.sql
    """
    if statement == "-":
        statement = sys.stdin.read()

    result = run_sql(resolve_lake(lake), statement)
    records = result.records()
    convert = jsonable if fmt == "json" else text_value
    records = [{key: convert(value) for key, value in record.items()} for record in records]
    echo(render(records, fmt, columns=list(records[0]) if records else result.unique_columns))


@cli.command("shell")
@lake_option
@handle_errors
def shell_command(lake: str | None) -> None:
    """Open an interactive DuckDB shell with the lake's views and macros loaded.

    Writes (or refreshes) the init script <lake>/_ducto/shell.sql, then starts
    the DuckDB CLI on it: `duckdb` on PATH or the one from the duckdb-cli package
    (pip install 'ducto-olap[shell]'). Without a CLI it prints the line to run.

    \b
    Examples:
      ducto-olap shell --lake data/lake
      D SELECT * FROM top_users(5, TIMESTAMPTZ '2026-11-01', TIMESTAMPTZ '2026-12-01');
    """
    script = write_shell_script(resolve_lake(lake))
    binary = find_duckdb_cli()
    if binary is None:
        fail(
            f"no DuckDB CLI found; install one with {INSTALL_HINT} (or put duckdb on "
            f"PATH), then run: {manual_command(script)}"
        )
        return

    exec_shell(binary, script)
