"""The five questions on Polars, over the committed Parquet files of a lake.

Each question is a lazy query over ``scan_parquet`` of the committed files of
the partitions the window can touch. Polars pushes the filter and the column
selection into the scan, so it reads only the columns a question names and
skips row groups outside the window. Window ends and the time zone are
expression literals, never text. Amounts stay ``Decimal(38, 4)`` through the
sum: exact.

String sorts compare UTF-8 bytes, which is code point order, as DESIGN.md asks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from ducto_olap.engines.base import LakeAnalytics
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
from ducto_olap.questions import UNKNOWN_MODEL, empty_stats
from ducto_olap.window import Window

_SPEND = pl.col("spend")


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
        files = self.files_for(window)
        if not files:
            return ""
        return self._by_key(self._spend(files, window), pl.col("user_id")).explain()

    def _spend_by_user(self, window: Window) -> list[SpendByUserRow]:
        rows = self._ask("spend_by_user", window, lambda spend: self._by_key(spend, "user_id"))
        return [SpendByUserRow(user, scale4(total), count) for user, total, count in rows]

    def _spend_by_model(self, window: Window) -> list[SpendByModelRow]:
        rows = self._ask("spend_by_model", window, lambda spend: self._by_key(spend, _model()))
        return [SpendByModelRow(model, scale4(total), count) for model, total, count in rows]

    def _top_users(self, window: Window, limit: int) -> list[TopUserRow]:
        rows = self._ask(
            "top_users", window, lambda spend: self._by_key(spend, "user_id").head(limit)
        )
        return [TopUserRow(user, scale4(total)) for user, total, _ in rows]

    def _daily_spend(self, window: Window, tz: str) -> list[DailySpendRow]:
        day = _day(self._check_zone(tz))
        rows = self._ask(
            "daily_spend",
            window,
            lambda spend: (
                spend.group_by(day.alias("key"))
                .agg(_SPEND.sum().alias("total"), pl.len().alias("count"))
                .sort("key")
            ),
        )
        return [DailySpendRow(key.isoformat(), scale4(total), count) for key, total, count in rows]

    def _aggregate_stats(self, window: Window, tz: str) -> AggregateStatsRow:
        day = _day(self._check_zone(tz))

        def run(files: list[Path]) -> list[pl.DataFrame]:
            # One scan feeds the three groupings: collect_all shares the common subplan.
            spend = self._spend(files, window).with_columns(
                day.alias("day"), _model().alias("model")
            )
            users = self._by_key(spend, "user_id")
            return self._collect_all(
                [
                    users.select(pl.col("total").sum(), pl.len().alias("users"), pl.first("key")),
                    self._by_key(spend, "model").head(1).select("key"),
                    spend.select(pl.col("day").n_unique()),
                ]
            )

        frames: list[pl.DataFrame] = self._read("aggregate_stats", window, run, [])
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

    def _ask(self, question: str, window: Window, build: Any) -> list[tuple[Any, ...]]:
        frames: list[pl.DataFrame] = self._read(
            question,
            window,
            lambda files: self._collect_all([build(self._spend(files, window))]),
            [],
        )
        return frames[0].rows() if frames else []

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


def _model() -> pl.Expr:
    return pl.col("model").fill_null(UNKNOWN_MODEL)


def _day(tz: str) -> pl.Expr:
    return pl.col("created_at").dt.convert_time_zone(tz).dt.date()
