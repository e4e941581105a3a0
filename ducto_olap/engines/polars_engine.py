"""The five questions on Polars, over the committed Parquet files of a lake.

Each question is a lazy query over ``scan_parquet`` of the committed files of
the partitions the window can touch. Polars pushes the filter and the column
selection into the scan, so it reads only the columns a question names and
skips row groups outside the window. Window ends and the time zone are
expression literals, never text. Amounts stay ``Decimal(38, 4)`` through the
sum: exact.

Whole UTC days with rollups come from the rollup files instead: their
``key, total, count`` rows are concatenated with the transaction files' groups
of the other days and summed per key before the sort.

String sorts compare UTF-8 bytes, which is code point order, as DESIGN.md asks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from ducto_olap.engines.base import LakeAnalytics, ReadPlan, top_user_rows, user_rows
from ducto_olap.errors import QueryError, WindowError
from ducto_olap.lake import SPEND_BY_MODEL_DAY, SPEND_BY_USER_DAY, SPEND_BY_USER_WEEK, LakeLayout
from ducto_olap.models import (
    AggregateStatsRow,
    DailySpendRow,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
)
from ducto_olap.money import average_daily, scale4
from ducto_olap.questions import UNKNOWN_MODEL, empty_stats
from ducto_olap.window import Window

_SPEND = pl.col("spend")
_SUM = pl.Decimal(38, 4)
_USERS = (SPEND_BY_USER_DAY,)
_MODELS = (SPEND_BY_MODEL_DAY,)


class PolarsAnalytics(LakeAnalytics):
    """The five questions answered by Polars over a lake.

    Args:
        lake: the lake folder or its :class:`LakeLayout`.

    Raises:
        LakeError: the lake folder does not exist; run ``ducto-olap export`` first.

    Example:
        >>> engine = PolarsAnalytics("data/lake")
        >>> engine.daily_spend(start, end, tz="Europe/Paris")[0].date
        '2024-03-01'
    """

    engine = "polars"

    def __init__(self, lake: LakeLayout | str | Path) -> None:
        super().__init__(lake)
        self._time_zones: set[str] = {"UTC"}

    def explain(self, window: Window) -> str:
        """Polars' optimized plan of ``spend_by_user`` over ``window`` (names the files read)."""
        plan = self.plan(window, _USERS)
        if not plan.files:
            return ""
        return self._sorted(self._users(plan, window)).explain()

    def _spend_by_user(self, window: Window) -> list[SpendByUserRow]:
        columns = self._ask_columns(
            "spend_by_user", window, _USERS, lambda plan: self._sorted(self._users(plan, window))
        )
        return user_rows(*columns) if columns else []

    def _spend_by_model(self, window: Window) -> list[SpendByModelRow]:
        rows = self._ask(
            "spend_by_model", window, _MODELS, lambda plan: self._sorted(self._models(plan, window))
        )
        return [SpendByModelRow(model, scale4(total), count) for model, total, count in rows]

    def _top_users(self, window: Window, limit: int) -> list[TopUserRow]:
        columns = self._ask_columns(
            "top_users",
            window,
            _USERS,
            lambda plan: self._sorted(self._users(plan, window)).head(limit),
        )
        return top_user_rows(*columns[:2]) if columns else []

    def _daily_spend(self, window: Window, tz: str) -> list[DailySpendRow]:
        day = _day(self._check_zone(tz))
        # Rollups are UTC days; another zone's days cut across them.
        tables = _MODELS if tz == "UTC" else ()
        rows = self._ask(
            "daily_spend",
            window,
            tables,
            lambda plan: self._totals(plan, window, day, SPEND_BY_MODEL_DAY, "day").sort("key"),
        )
        return [DailySpendRow(key.isoformat(), scale4(total), count) for key, total, count in rows]

    def _aggregate_stats(self, window: Window, tz: str) -> AggregateStatsRow:
        day = _day(self._check_zone(tz))

        def run(plan: ReadPlan) -> list[pl.DataFrame]:
            if plan.uses_rollups:
                users = self._sorted(self._users(plan, window))
                models = self._sorted(self._models(plan, window))
                days = self._totals(plan, window, day, SPEND_BY_MODEL_DAY, "day")
                return self._collect_all(
                    [
                        users.select(
                            pl.col("total").sum(), pl.len().alias("users"), pl.first("key")
                        ),
                        models.head(1).select("key"),
                        days.select(pl.len()),
                    ]
                )

            # One scan feeds the three groupings: collect_all shares the common subplan.
            spend = self._spend(plan.transactions, window).with_columns(
                day.alias("day"), _model().alias("model")
            )
            by_user = self._by_key(spend, "user_id")
            return self._collect_all(
                [
                    by_user.select(pl.col("total").sum(), pl.len().alias("users"), pl.first("key")),
                    self._by_key(spend, "model").head(1).select("key"),
                    spend.select(pl.col("day").n_unique()),
                ]
            )

        tables = (*_USERS, *_MODELS) if tz == "UTC" else ()
        frames: list[pl.DataFrame] = self._read("aggregate_stats", window, run, [], tables)
        if not frames:
            return empty_stats()
        user_stats, top_model, days = frames
        total, active_users, top_user = user_stats.row(0)
        if not active_users:
            return empty_stats()
        total = scale4(total)
        return AggregateStatsRow(
            total_credits_consumed=total,
            active_users=active_users,
            avg_daily_spend=average_daily(total, days.item()),
            top_model=top_model.item(),
            top_user=top_user,
        )

    def _ask(
        self, question: str, window: Window, tables: tuple[str, ...], build: Any
    ) -> list[tuple[Any, ...]]:
        frames: list[pl.DataFrame] = self._read(
            question, window, lambda plan: self._collect_all([build(plan)]), [], tables
        )
        return frames[0].rows() if frames else []

    def _ask_columns(
        self, question: str, window: Window, tables: tuple[str, ...], build: Any
    ) -> list[list[Any]]:
        """``key, total, count`` as Python lists, totals as exact decimal text (see user_rows)."""
        frames: list[pl.DataFrame] = self._read(
            question,
            window,
            lambda plan: self._collect_all(
                [build(plan).with_columns(pl.col("total").cast(pl.String))]
            ),
            [],
            tables,
        )
        return [series.to_list() for series in frames[0].get_columns()] if frames else []

    def _users(self, plan: ReadPlan, window: Window) -> pl.LazyFrame:
        return self._totals(plan, window, pl.col("user_id"), SPEND_BY_USER_DAY, "user_id")

    def _models(self, plan: ReadPlan, window: Window) -> pl.LazyFrame:
        return self._totals(plan, window, _model(), SPEND_BY_MODEL_DAY, "model")

    def _totals(
        self, plan: ReadPlan, window: Window, key: pl.Expr, table: str, column: str
    ) -> pl.LazyFrame:
        """``key, total, count`` of the plan: transactions grouped by ``key``, plus the
        rollup ``table`` grouped by its ``column`` (and, for the per-user rollup, the
        weekly one), unsorted."""
        sources = [(table, plan.user_days if table == SPEND_BY_USER_DAY else plan.rollup_days)]
        if table == SPEND_BY_USER_DAY:
            sources.append((SPEND_BY_USER_WEEK, plan.weeks))
        parts = [
            _rollup_rows(plan.rollups[name], days, column)
            for name, days in sources
            if plan.rollups.get(name) and days
        ]
        grouped: pl.LazyFrame | None = None
        if plan.transactions:
            grouped = (
                self._spend(plan.transactions, window)
                .group_by(key.alias("key"))
                .agg(_SPEND.sum().alias("total"), pl.len().alias("count"))
            )
        if not parts:
            assert grouped is not None, "a plan without rollups has transaction files"
            return grouped

        if grouped is not None:
            parts.append(
                grouped.with_columns(pl.col("total").cast(_SUM), pl.col("count").cast(pl.Int64))
            )
        return pl.concat(parts).group_by("key").agg(pl.col("total").sum(), pl.col("count").sum())

    @staticmethod
    def _sorted(totals: pl.LazyFrame) -> pl.LazyFrame:
        """Spend desc, then key asc (code point order)."""
        return totals.sort(["total", "key"], descending=[True, False])

    def _spend(self, files: list[Path], window: Window) -> pl.LazyFrame:
        """The window's spend rows: ``user_id``, ``model``, ``created_at`` and ``spend``."""
        return (
            pl.scan_parquet(files, hive_partitioning=False)
            .filter(
                (pl.col("type") == "usage")
                & (pl.col("amount") < Decimal(0))
                & (pl.col("created_at") >= window.start)
                & (pl.col("created_at") < window.end)
            )
            .select("user_id", "model", "created_at", (-pl.col("amount")).alias("spend"))
        )

    @staticmethod
    def _by_key(spend: pl.LazyFrame, key: str | pl.Expr) -> pl.LazyFrame:
        """Spend grouped by ``key``: spend desc, then key asc (code point order)."""
        column = pl.col(key) if isinstance(key, str) else key
        return (
            spend.group_by(column.alias("key"))
            .agg(_SPEND.sum().alias("total"), pl.len().alias("count"))
            .sort(["total", "key"], descending=[True, False])
        )

    def _collect_all(self, queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
        try:
            return pl.collect_all(queries)
        except (pl.exceptions.PolarsError, OSError) as error:
            raise QueryError(f"Polars failed on the lake {self.layout.root}: {error}") from error

    def _check_zone(self, tz: str) -> str:
        # Polars' tz database may lack a name Python knows; refuse it with our error.
        if tz not in self._time_zones:
            probe = pl.Series([datetime(2000, 1, 1, tzinfo=UTC)])
            try:
                probe.dt.convert_time_zone(tz)
            except pl.exceptions.PolarsError as error:
                raise WindowError(
                    f"time zone {tz!r} is unknown to Polars; use an IANA name such as "
                    f"'UTC' or 'America/New_York', or the duckdb engine"
                ) from error
            self._time_zones.add(tz)
        return tz


def _rollup_rows(files: list[Path], days: tuple[date, ...], column: str) -> pl.LazyFrame:
    """``key, total, count`` of the rollup rows of ``days`` in ``files``: a rollup file
    spans its commit's days, so only these are kept."""
    return (
        pl.scan_parquet(files, hive_partitioning=False)
        .filter(
            pl.col("day").is_between(days[0], days[-1])
            & pl.col("day").is_in(pl.Series(days, dtype=pl.Date).implode())
        )
        .select(
            pl.col(column).alias("key"),
            pl.col("total_spend").cast(_SUM).alias("total"),
            pl.col("transaction_count").alias("count"),
        )
    )


def _model() -> pl.Expr:
    return pl.col("model").fill_null(UNKNOWN_MODEL)


def _day(tz: str) -> pl.Expr:
    return pl.col("created_at").dt.convert_time_zone(tz).dt.date()
