"""The init script of a DuckDB shell over a lake: views and table macros in plain SQL.

A stock DuckDB CLI loads it with ``duckdb -init <lake>/_ducto/shell.sql``; the
``sql`` command runs the same text on an in-memory connection. It defines

- ``transactions``: the committed files of the lake, named one by one from the
  commit log (never a glob, so a leftover of a crashed export is invisible), with
  ``date`` read from the path as a ``DATE``;
- ``spend``: the spend rows (``usage``, ``amount < 0``) with a positive ``spend``;
- the five questions as table macros over a window ``[start, "end")``.

File paths are absolute, so the script works from any working directory. They
are frozen at the last commit: the exporter rewrites the script after every
commit, and ``ducto-olap sql``/``shell`` rewrite it before use. A lake that was
moved needs one of those commands run once to point the script at its new place.

Only plain SQL that DuckDB 1.2 and later understand is used, because the CLI from
PyPI (``duckdb-cli``) and the ``duckdb`` Python module are released separately
and are often different versions.
"""

from __future__ import annotations

import logging
import os
import tempfile
import textwrap
from pathlib import Path

import pyarrow as pa

from ducto_olap.errors import LakeError
from ducto_olap.lake import LAKE_SCHEMA, LakeLayout, LakeSnapshot, read_snapshot
from ducto_olap.lake.layout import PARTITION_KEY

logger = logging.getLogger("ducto_olap.shell")

#: The columns of the ``transactions`` view, in order: the file columns, then the partition.
COLUMNS = (*LAKE_SCHEMA.names, PARTITION_KEY)

# Spend rows of the window [start, "end"). The date bounds only prune partitions
# (the partition is the UTC date of created_at); the created_at bounds decide.
_WINDOW = """\
    FROM spend
    WHERE created_at >= CAST(start AS TIMESTAMPTZ) AND created_at < CAST("end" AS TIMESTAMPTZ)
      AND date >= CAST(timezone('UTC', CAST(start AS TIMESTAMPTZ)) AS DATE)
      AND date <= CAST(timezone('UTC', CAST("end" AS TIMESTAMPTZ)) AS DATE)"""

# SUM of DECIMAL(18,4) is DECIMAL(38,4), exact. DuckDB divides decimals in
# DOUBLE, so avg_daily_spend is computed on integer units of 0.0001 instead:
# floor((2u + d) / 2d) is u/d rounded half up, which is ties away from zero for
# the positive totals spend has.
_MACROS = f"""\
CREATE OR REPLACE VIEW spend AS
    SELECT *, -amount AS spend
    FROM transactions
    WHERE type = 'usage' AND amount < 0;

CREATE OR REPLACE MACRO spend_by_user(start, "end") AS TABLE
    SELECT user_id, CAST(sum(spend) AS DECIMAL(38, 4)) AS total_spend,
           count(*) AS transaction_count
{_WINDOW}
    GROUP BY user_id
    ORDER BY total_spend DESC, user_id;

CREATE OR REPLACE MACRO spend_by_model(start, "end") AS TABLE
    SELECT coalesce(model, 'unknown') AS model,
           CAST(sum(spend) AS DECIMAL(38, 4)) AS total_spend, count(*) AS transaction_count
{_WINDOW}
    GROUP BY coalesce(model, 'unknown')
    ORDER BY total_spend DESC, model;

CREATE OR REPLACE MACRO top_users(n, start, "end") AS TABLE
    SELECT user_id, total_spend
    FROM spend_by_user(start, "end")
    ORDER BY total_spend DESC, user_id
    LIMIT n;

CREATE OR REPLACE MACRO daily_spend(start, "end") AS TABLE
    SELECT date, CAST(sum(spend) AS DECIMAL(38, 4)) AS total_spend,
           count(*) AS transaction_count
{_WINDOW}
    GROUP BY date
    ORDER BY date;

CREATE OR REPLACE MACRO aggregate_stats(start, "end") AS TABLE
    WITH totals AS (
        SELECT CAST(coalesce(sum(spend), 0) AS DECIMAL(38, 4)) AS total,
               count(DISTINCT user_id) AS active_users,
               count(DISTINCT date) AS days
{textwrap.indent(_WINDOW, "    ")}
    )
    SELECT total AS total_credits_consumed,
           active_users,
           CASE WHEN days = 0 THEN CAST(0 AS DECIMAL(38, 4))
                ELSE CAST((CAST(total * 10000 AS HUGEINT) * 2 + days) // (days * 2)
                          AS DECIMAL(38, 0)) * CAST(0.0001 AS DECIMAL(5, 4))
           END AS avg_daily_spend,
           coalesce((SELECT model FROM spend_by_model(start, "end")
                     ORDER BY total_spend DESC, model LIMIT 1), '') AS top_model,
           coalesce((SELECT user_id FROM spend_by_user(start, "end")
                     ORDER BY total_spend DESC, user_id LIMIT 1), '') AS top_user
    FROM totals;
"""

_DUCKDB_TYPES = {
    pa.int64(): "BIGINT",
    pa.string(): "VARCHAR",
    pa.decimal128(18, 4): "DECIMAL(18, 4)",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal: single quotes doubled, nothing else escaped.

    Example:
        >>> sql_string("/data/o'brien/lake")
        "'/data/o''brien/lake'"
    """
    return "'" + text.replace("'", "''") + "'"


def shell_script_text(snapshot: LakeSnapshot) -> str:
    """The init script for the lake as of ``snapshot``: plain SQL, absolute paths."""
    commit = snapshot.last_commit
    state = (
        f"commit {commit.commit_id}: {len(snapshot.files)} files, {snapshot.rows} rows"
        if commit is not None
        else "no commit yet: the views are empty"
    )
    header = (
        "-- ducto-olap: views and macros over a lake for a DuckDB shell.\n"
        f"-- Lake: {_comment(str(snapshot.layout.root))}\n"
        f"-- As of {state}.\n"
        "-- Generated; rewritten by `ducto-olap export`, `sql` and `shell`. Paths are\n"
        "-- absolute: after moving the lake, run `ducto-olap shell --lake NEW` once.\n"
        '-- Windows are [start, "end"): SELECT * FROM spend_by_model(TIMESTAMPTZ\n'
        "-- '2026-11-01', TIMESTAMPTZ '2026-12-01'); days are UTC dates.\n"
    )
    paths = [str(path) for path in snapshot.paths()]
    return "\n".join([header, "SET TimeZone = 'UTC';\n", transactions_view(paths), _MACROS])


def transactions_view(paths: list[str]) -> str:
    """``CREATE VIEW transactions`` over exactly ``paths``; typed and empty when there are none."""
    if not paths:
        columns = ",\n".join(
            f"    CAST(NULL AS {_duckdb_type(field)}) AS {field.name}" for field in LAKE_SCHEMA
        )
        return (
            "CREATE OR REPLACE VIEW transactions AS\nSELECT\n"
            f"{columns},\n    CAST(NULL AS DATE) AS {PARTITION_KEY}\nWHERE false;\n"
        )

    files = ",\n".join(f"    {sql_string(path)}" for path in paths)
    return (
        "CREATE OR REPLACE VIEW transactions AS\n"
        f"SELECT {', '.join(COLUMNS)}\n"
        f"FROM read_parquet([\n{files}\n], hive_partitioning = true, "
        f"hive_types = {{'{PARTITION_KEY}': DATE}});\n"
    )


def write_shell_script(lake: LakeLayout | LakeSnapshot | str | Path) -> Path:
    """Write (or refresh) ``<lake>/_ducto/shell.sql`` from the lake's commit log.

    ``lake`` is the lake folder, its layout, or a snapshot just read from it.

    The file is replaced atomically, and left untouched when it is already up to
    date, so a shell that is reading it never sees half a script.

    Returns:
        The path of the script.

    Raises:
        LakeError: the lake folder is missing, its commit log is damaged, or the
            script cannot be written.

    Example:
        >>> write_shell_script("data/lake")
        PosixPath('/home/me/data/lake/_ducto/shell.sql')
    """
    snapshot = lake if isinstance(lake, LakeSnapshot) else read_snapshot(lake)
    target = snapshot.layout.shell_script
    text = shell_script_text(snapshot)
    if _read_or_none(target) == text:
        return target

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".shell-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise LakeError(
            f"cannot write the shell script {target}: {error.strerror or error}; "
            f"make the lake's _ducto folder writable"
        ) from error

    logger.info("shell script %s: %d files", target, len(snapshot.files))
    return target


def _read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _duckdb_type(field: pa.Field) -> str:
    try:
        return _DUCKDB_TYPES[field.type]
    except KeyError:
        raise LakeError(
            f"lake column {field.name} has type {field.type}, which the shell script "
            f"cannot declare; add it to ducto_olap.shell.script._DUCKDB_TYPES"
        ) from None


def _comment(text: str) -> str:
    # A newline in a folder name would end the comment and run the rest as SQL.
    return "".join(char if char.isprintable() else "?" for char in text)
