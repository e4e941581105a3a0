"""The five questions on DuckDB, over the committed Parquet files of a lake.

Each question is one SQL statement over ``read_parquet($files)``, where
``$files`` is the list of committed files of the partitions the window can
touch. Every value (files, window ends, limit, time zone) is a bound
parameter. DuckDB pushes the ``created_at`` filter into the Parquet scan, so
row groups outside the window are skipped too, and reads only the columns a
question names. ``SUM`` of ``DECIMAL(18,4)`` is ``DECIMAL(38,4)``: exact.

Text ties sort in DuckDB's default binary collation: UTF-8 byte order, which is
code point order, as DESIGN.md asks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ducto_olap.engines.base import LakeAnalytics, logger
from ducto_olap.errors import QueryError, WindowError
from ducto_olap.lake import LakeLayout
from ducto_olap.models import (
    AggregateStatsRow,
    DailySpendRow,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
)
from ducto_olap.money import average_daily, scale4
from ducto_olap.questions import empty_stats
from ducto_olap.window import Window

# Spend rows of the window: the filter every question shares.
_SPEND = """
FROM read_parquet($files, hive_partitioning = false)
WHERE type = 'usage' AND amount < 0 AND created_at >= $start AND created_at < $end
"""

SPEND_BY_USER = f"""
SELECT user_id, sum(-amount) AS total, count(*) AS count
{_SPEND}
GROUP BY user_id
ORDER BY total DESC, user_id
"""

TOP_USERS = f"""
SELECT user_id, sum(-amount) AS total
{_SPEND}
GROUP BY user_id
ORDER BY total DESC, user_id
LIMIT $limit
"""

# The subquery keeps ORDER BY on the coalesced name, never the raw column.
SPEND_BY_MODEL = f"""
SELECT model, total, count
FROM (
    SELECT coalesce(model, 'unknown') AS model, sum(-amount) AS total, count(*) AS count
    {_SPEND}
    GROUP BY 1
) AS per_model
ORDER BY total DESC, model
"""

# The local day of created_at. In UTC it is plain integer arithmetic on the
# epoch (floor division, so instants before 1970 land on the right day), about
# three times cheaper than ICU; other zones go through ICU's timezone().
_US_PER_DAY = 86_400_000_000
_UTC_DAY = (
    f"(epoch_us(created_at) - (epoch_us(created_at) % {_US_PER_DAY} + {_US_PER_DAY}) "
    f"% {_US_PER_DAY}) // {_US_PER_DAY}"
)
_UTC_DATE = "DATE '1970-01-01' + CAST({key} AS INTEGER)"
_ZONE_DAY = "CAST(timezone($tz, created_at) AS DATE)"
_ZONE_DATE = "{key}"

_DAILY_SPEND = """
SELECT strftime({date}, '%Y-%m-%d') AS day, total, count
FROM (
    SELECT {day} AS day_key, sum(-amount) AS total, count(*) AS count
    {spend}
    GROUP BY 1
) AS per_day
ORDER BY day_key
"""

# One scan for the whole stats row: grouping sets give the per-user, per-model
# and per-day groups in a single pass; the outer query picks the answers with
# the same orders as the breakdowns, so it equals stats_from_breakdowns.
_AGGREGATE_STATS = """
WITH spend AS (
    SELECT user_id, coalesce(model, 'unknown') AS model, {day} AS day, -amount AS spend
    {spend}
),
groups AS (
    SELECT user_id, model, day, GROUPING(user_id) AS no_user, GROUPING(model) AS no_model,
           sum(spend) AS total
    FROM spend
    GROUP BY GROUPING SETS ((user_id), (model), (day))
),
users AS (SELECT user_id, total FROM groups WHERE no_user = 0),
models AS (SELECT model, total FROM groups WHERE no_user = 1 AND no_model = 0),
days AS (SELECT day FROM groups WHERE no_user = 1 AND no_model = 1)
SELECT (SELECT sum(total) FROM users) AS total,
       (SELECT count(*) FROM users) AS active_users,
       (SELECT count(*) FROM days) AS days,
       (SELECT model FROM models ORDER BY total DESC, model LIMIT 1) AS top_model,
       (SELECT user_id FROM users ORDER BY total DESC, user_id LIMIT 1) AS top_user
"""


def daily_spend_sql(tz: str) -> str:
    """The ``daily_spend`` statement for day buckets in ``tz`` (bound as ``$tz`` if not UTC)."""
    day, date = (_UTC_DAY, _UTC_DATE) if tz == "UTC" else (_ZONE_DAY, _ZONE_DATE)
    return _DAILY_SPEND.format(date=date.format(key="day_key"), day=day, spend=_SPEND)


def aggregate_stats_sql(tz: str) -> str:
    """The ``aggregate_stats`` statement counting days in ``tz`` (bound as ``$tz`` if not UTC)."""
    return _AGGREGATE_STATS.format(day=_UTC_DAY if tz == "UTC" else _ZONE_DAY, spend=_SPEND)


class DuckDBAnalytics(LakeAnalytics):
    """The five questions answered by DuckDB over a lake.

    One in-memory DuckDB database per engine; each question runs on its own
    cursor of it, so threads may ask questions at the same time.

    Args:
        lake: the lake folder or its :class:`LakeLayout`.

    Raises:
        LakeError: the lake folder does not exist; run ``ducto-olap export`` first.

    Example:
        >>> engine = DuckDBAnalytics("data/lake")
        >>> engine.top_users(3, start, end)[0].user_id
        'alice'
    """

    engine = "duckdb"

    def __init__(self, lake: LakeLayout | str | Path) -> None:
        super().__init__(lake)
        self._database = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        self._time_zones: frozenset[str] | None = None

    def close(self) -> None:
        """Close the DuckDB database."""
        self._database.close()

    def explain(self, window: Window) -> str:
        """DuckDB's analyzed plan of ``spend_by_user`` over ``window`` (names the files read)."""
        files = self.files_for(window)
        if not files:
            return ""
        rows = self._run("EXPLAIN ANALYZE " + SPEND_BY_USER, files, window)
        return "\n".join(str(row[1]) for row in rows)

    def _spend_by_user(self, window: Window) -> list[SpendByUserRow]:
        rows = self._ask("spend_by_user", SPEND_BY_USER, window)
        return [SpendByUserRow(user, scale4(total), count) for user, total, count in rows]

    def _spend_by_model(self, window: Window) -> list[SpendByModelRow]:
        rows = self._ask("spend_by_model", SPEND_BY_MODEL, window)
        return [SpendByModelRow(model, scale4(total), count) for model, total, count in rows]

    def _top_users(self, window: Window, limit: int) -> list[TopUserRow]:
        rows = self._ask("top_users", TOP_USERS, window, limit=limit)
        return [TopUserRow(user, scale4(total)) for user, total in rows]

    def _daily_spend(self, window: Window, tz: str) -> list[DailySpendRow]:
        rows = self._ask("daily_spend", daily_spend_sql(tz), window, **self._zone(tz))
        return [DailySpendRow(day, scale4(total), count) for day, total, count in rows]

    def _aggregate_stats(self, window: Window, tz: str) -> AggregateStatsRow:
        rows = self._ask("aggregate_stats", aggregate_stats_sql(tz), window, **self._zone(tz))
        if not rows or not rows[0][1]:
            return empty_stats()

        total, users, days, top_model, top_user = rows[0]
        total = scale4(total)
        return AggregateStatsRow(total, users, average_daily(total, days), top_model, top_user)

    def _ask(self, question: str, statement: str, window: Window, **extra: object) -> list[Any]:
        return self._read(
            question, window, lambda files: self._run(statement, files, window, **extra), []
        )

    def _run(self, statement: str, files: list[Path], window: Window, **extra: object) -> list[Any]:
        params = {"files": [str(path) for path in files], "start": window.start, "end": window.end}
        params.update(extra)
        logger.debug("duckdb: %s params=%r", " ".join(statement.split()), params)
        with self._cursor() as cursor:
            try:
                return cursor.execute(statement, params).fetchall()
            except duckdb.Error as error:
                raise QueryError(
                    f"DuckDB failed on the lake {self.layout.root}: {error}"
                ) from error

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # A cursor is a connection of its own to the same database: threads never
        # share one, which DuckDB's Python API does not allow.
        with self._lock:
            try:
                cursor = self._database.cursor()
            except duckdb.Error as error:
                raise QueryError(
                    f"the DuckDB engine on {self.layout.root} is closed; open a new one"
                ) from error
        try:
            yield cursor
        finally:
            cursor.close()

    def _zone(self, tz: str) -> dict[str, str]:
        """The ``$tz`` parameter of a day-bucket statement (none in UTC)."""
        if tz == "UTC":
            return {}
        # Python's tz database and DuckDB's ICU may know different names; refuse a
        # name ICU lacks with our error instead of DuckDB's.
        if self._time_zones is None:
            with self._cursor() as cursor:
                names = cursor.execute("SELECT name FROM pg_timezone_names()").fetchall()
            self._time_zones = frozenset(name for (name,) in names)
        if tz not in self._time_zones:
            raise WindowError(
                f"time zone {tz!r} is unknown to DuckDB; use an IANA name such as "
                f"'UTC' or 'America/New_York', or the polars engine"
            )
        return {"tz": tz}
