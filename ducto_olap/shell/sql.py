"""One read-only SQL statement over a lake's views and macros.

The statement runs on a fresh in-memory DuckDB database that has loaded the
shell script, so nothing it does can land in the lake. Two guards keep it
read-only:

1. DuckDB's own parser must find exactly one statement, of a reading kind
   (``SELECT`` in all its forms: ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``,
   ``SUMMARIZE``, ``SHOW``; ``EXPLAIN`` of one; a reading ``PRAGMA``). Others
   are refused by the keyword they start with (``ATTACH statements are refused``).
2. After the views are defined, file access is switched off except for the
   committed files themselves, and the configuration is locked, so even a
   ``SELECT`` cannot call ``read_csv``, ``glob`` or an extension on other files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb

from ducto_olap.errors import LakeError, QueryError
from ducto_olap.lake import LakeLayout, LakeSnapshot, read_snapshot
from ducto_olap.shell.script import shell_script_text, sql_string, write_shell_script

logger = logging.getLogger("ducto_olap.shell")

_READING = {duckdb.StatementType.SELECT}

# PRAGMAs that only report; anything else (import_database, enable_profiling
# with an output file, ...) is refused.
_READING_PRAGMAS = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)

#: The statements ``check_read_only`` lets through, as the refusals and ``sql --help`` say.
ALLOWED = "SELECT, WITH, FROM, VALUES, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN or a reading PRAGMA"

_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_KEYWORD = re.compile(r"([A-Za-z_]+)")
_PRAGMA_NAME = re.compile(r"^\s*PRAGMA\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_EXPLAIN_PREFIX = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s*(\([^)]*\))?", re.IGNORECASE)
_LINE_MARK = re.compile(r"^LINE (\d+): (.*)$")
_CARET = re.compile(r"^\s*\^+\s*$")


@dataclasses.dataclass(frozen=True, slots=True)
class SqlResult:
    """The rows of one statement: column names and tuples of Python values."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    @property
    def unique_columns(self) -> list[str]:
        """The column names with a repeated one suffixed (``n``, ``n_1``), as dict keys."""
        return _unique(self.columns)

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, keyed by :attr:`unique_columns`."""
        names = self.unique_columns
        return [dict(zip(names, row, strict=True)) for row in self.rows]


def run_sql(lake: LakeLayout | str | Path, statement: str) -> SqlResult:
    """Run one read-only statement over the lake's views and macros.

    The shell script on disk is refreshed on the way (best effort: a lake the
    caller cannot write is still queried).

    Raises:
        LakeError: the lake folder is missing or its commit log is damaged.
        QueryError: the statement is not a single read-only one, or DuckDB refused
            it (the message is DuckDB's, on one line, with the line and column).

    Example:
        >>> run_sql("data/lake", "SELECT count(*) AS n FROM spend").rows
        [(1234,)]
    """
    check_read_only(statement)
    snapshot = read_snapshot(lake)
    _refresh_script(snapshot)

    connection = open_read_only(snapshot)
    try:
        logger.debug("sql: %s", " ".join(statement.split()))
        cursor = connection.execute(statement)
        columns = [column[0] for column in cursor.description or []]
        rows = cursor.fetchall() if columns else []
    except duckdb.Error as error:
        raise QueryError(duckdb_message(error)) from error
    finally:
        connection.close()

    logger.info("sql: %d rows over %d files", len(rows), len(snapshot.files))
    return SqlResult(columns, rows)


def open_read_only(snapshot: LakeSnapshot) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the shell script loaded and file access locked.

    Only the committed files of ``snapshot`` can be read; no file can be written,
    no database attached, no extension installed, and no setting changed.
    """
    connection = duckdb.connect(":memory:")
    try:
        for statement in duckdb.extract_statements(shell_script_text(snapshot)):
            connection.execute(statement)

        files = ", ".join(sql_string(str(path)) for path in snapshot.paths())
        connection.execute(f"SET allowed_paths = [{files}]")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except duckdb.Error as error:
        connection.close()
        raise QueryError(
            f"DuckDB {duckdb.__version__} could not load the shell script of "
            f"{snapshot.layout.root}: {duckdb_message(error)}"
        ) from error
    return connection


def check_read_only(statement: str) -> None:
    """Pass if DuckDB parses ``statement`` as exactly one read-only statement.

    Raises:
        QueryError: a syntax error (DuckDB's message), no statement, several
            statements, or one that writes, attaches, loads or sets something.
    """
    try:
        statements = duckdb.extract_statements(statement)
    except duckdb.Error as error:
        raise QueryError(duckdb_message(error)) from error

    if not statements:
        raise QueryError('no SQL statement given; pass one, for example "SELECT * FROM spend"')
    if len(statements) > 1:
        _refuse(f"{len(statements)} statements in one call are")

    parsed = statements[0]
    text = _LEADING_COMMENTS.sub("", parsed.query.strip(), count=1).rstrip().rstrip(";").strip()
    if parsed.type == duckdb.StatementType.EXPLAIN:
        inner = _EXPLAIN_PREFIX.sub("", text, count=1)
        if not inner or inner == text:
            _refuse("this EXPLAIN is")
        check_read_only(inner)
    elif parsed.type == duckdb.StatementType.PRAGMA:
        name = _PRAGMA_NAME.match(text)
        if name is None or name.group(1).lower() not in _READING_PRAGMAS:
            _refuse(f"PRAGMA {name.group(1) if name else ''}".strip() + " is")
    elif parsed.type not in _READING:
        # Named as typed: DuckDB's own type calls USE a SET and CHECKPOINT a CALL.
        keyword = _KEYWORD.match(text)
        _refuse(f"{keyword.group(1).upper() if keyword else 'such'} statements are")


def duckdb_message(error: duckdb.Error) -> str:
    """DuckDB's message on one line, with ``LINE n`` and its caret turned into a position.

    Example:
        ``Parser Error: syntax error at or near "FORM" (line 1, column 10: SELECT * FORM x)``
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__

    parts: list[str] = []
    where = ""
    index = 0
    while index < len(lines):
        mark = _LINE_MARK.match(lines[index])
        if mark is None:
            parts.append(lines[index].strip())
            index += 1
            continue

        number, excerpt = mark.groups()
        caret = lines[index + 1] if index + 1 < len(lines) else ""
        is_caret = _CARET.match(caret) is not None
        column = caret.find("^") - (len(lines[index]) - len(excerpt))
        if is_caret and column >= 0 and not excerpt.startswith("..."):
            where = f"line {number}, column {column + 1}: {excerpt.strip()}"
        else:
            where = f"line {number}: {excerpt.strip()}"
        index += 2 if is_caret else 1

    message = "; ".join(parts)
    return f"{message} ({where})" if where else message


def jsonable(value: Any) -> Any:
    """A value JSON can hold without losing a digit: decimals and times as strings.

    Lists, structs and maps are converted all the way down; BLOBs become hex and
    intervals ISO 8601 durations (see :func:`iso_duration`).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


def text_value(value: Any) -> Any:
    """A value for a CSV field or a table cell: scalars as they are, the rest as text.

    Lists, structs and maps become JSON text (decimals as strings, as in
    ``--format json``), BLOBs hex, intervals ISO 8601 durations, booleans
    ``true``/``false``; numbers, strings, dates and times are left to the renderer.

    Example:
        >>> text_value({"a": Decimal("1.50")}), text_value(b"\\xaa"), text_value(timedelta(3))
        ('{"a": "1.50"}', 'aa', 'P3D')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(jsonable(value), ensure_ascii=False)
    if isinstance(value, bytes | timedelta | time):
        return jsonable(value)
    return value


def iso_duration(value: timedelta) -> str:
    """An interval as an ISO 8601 duration: ``P3D``, ``PT1H30M``, ``-PT1.5S``.

    DuckDB hands intervals to Python as ``timedelta``, a month as 30 days.
    """
    if value < timedelta(0):
        return "-" + iso_duration(-value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}H" if hours else ""
    clock += f"{minutes}M" if minutes else ""
    if seconds or value.microseconds:
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        clock += f"{seconds}{fraction}S"
    days = f"{value.days}D" if value.days else ""
    if not days and not clock:
        return "PT0S"
    return f"P{days}" + (f"T{clock}" if clock else "")


def _refuse(what: str) -> None:
    raise QueryError(
        f"ducto-olap sql runs read-only queries; {what} refused. Use {ALLOWED}, "
        f"one statement per call"
    )


def _refresh_script(snapshot: LakeSnapshot) -> None:
    # The query itself never reads the file; refreshing it is a courtesy to shell
    # users, and a lake the caller may only read must still answer.
    try:
        write_shell_script(snapshot)
    except LakeError as error:
        logger.warning("could not refresh the shell script: %s", error)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count}")
    return unique
