"""The five spend questions, asked the same way of every source.

:class:`SpendQuestions` validates the window once, answers an empty window
without touching the source, and derives ``aggregate_stats`` from the
breakdowns, so every source (Postgres store, memory store, DuckDB, Polars)
only implements the four grouped queries and cannot drift on the rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from ducto_olap.models import (
    AggregateStatsRow,
    DailySpendRow,
    Rows,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
)
from ducto_olap.money import ZERO, average_daily, scale4
from ducto_olap.window import Window, check_limit, check_time_zone, make_window

UNKNOWN_MODEL = "unknown"

QUESTIONS = ("spend_by_user", "spend_by_model", "top_users", "daily_spend", "aggregate_stats")


class SpendQuestions(ABC):
    """The five questions of DESIGN.md over a window ``[start, end)``.

    Subclasses implement the ``_``-prefixed queries over a validated UTC window
    that is never empty; they return rows already in the documented order.
    """

    def spend_by_user(self, start: datetime, end: datetime) -> Rows[SpendByUserRow]:
        """Each user's spend: spend desc, then ``user_id`` asc (code point order)."""
        window = make_window(start, end)
        if window.is_empty:
            return Rows(SpendByUserRow)
        return Rows(SpendByUserRow, self._spend_by_user(window))

    def spend_by_model(self, start: datetime, end: datetime) -> Rows[SpendByModelRow]:
        """Each model's spend: spend desc, then model asc; no model is ``'unknown'``."""
        window = make_window(start, end)
        if window.is_empty:
            return Rows(SpendByModelRow)
        return Rows(SpendByModelRow, self._spend_by_model(window))

    def top_users(self, limit: int, start: datetime, end: datetime) -> Rows[TopUserRow]:
        """The first ``limit`` rows of :meth:`spend_by_user`."""
        limit = check_limit(limit)
        window = make_window(start, end)
        if window.is_empty or limit == 0:
            return Rows(TopUserRow)
        return Rows(TopUserRow, self._top_users(window, limit))

    def daily_spend(
        self, start: datetime, end: datetime, *, tz: str | None = None
    ) -> Rows[DailySpendRow]:
        """Spend per calendar day (UTC, or the IANA zone ``tz``), date asc; only days with spend."""
        zone = check_time_zone(tz)
        window = make_window(start, end)
        if window.is_empty:
            return Rows(DailySpendRow)
        return Rows(DailySpendRow, self._daily_spend(window, zone))

    def aggregate_stats(
        self, start: datetime, end: datetime, *, tz: str | None = None
    ) -> AggregateStatsRow:
        """One summary row; days for ``avg_daily_spend`` are counted in ``tz`` (default UTC)."""
        zone = check_time_zone(tz)
        window = make_window(start, end)
        if window.is_empty:
            return empty_stats()
        return self._aggregate_stats(window, zone)

    @abstractmethod
    def _spend_by_user(self, window: Window) -> list[SpendByUserRow]: ...

    @abstractmethod
    def _spend_by_model(self, window: Window) -> list[SpendByModelRow]: ...

    @abstractmethod
    def _daily_spend(self, window: Window, tz: str) -> list[DailySpendRow]: ...

    def _top_users(self, window: Window, limit: int) -> list[TopUserRow]:
        return [
            TopUserRow(row.user_id, row.total_spend) for row in self._spend_by_user(window)[:limit]
        ]

    def _aggregate_stats(self, window: Window, tz: str) -> AggregateStatsRow:
        users = self._spend_by_user(window)
        models = self._spend_by_model(window)
        days = self._daily_spend(window, tz)
        return stats_from_breakdowns(users, models, days)


def stats_from_breakdowns(
    users: list[SpendByUserRow], models: list[SpendByModelRow], days: list[DailySpendRow]
) -> AggregateStatsRow:
    """The stats row from the three breakdowns of one window."""
    if not users:
        return empty_stats()
    total = scale4(sum((row.total_spend for row in users), ZERO))
    return AggregateStatsRow(
        total_credits_consumed=total,
        active_users=len(users),
        avg_daily_spend=average_daily(total, len(days)),
        top_model=models[0].model if models else "",
        top_user=users[0].user_id,
    )


def empty_stats() -> AggregateStatsRow:
    """The stats row of a window with no spend."""
    return AggregateStatsRow(ZERO, 0, ZERO, "", "")
