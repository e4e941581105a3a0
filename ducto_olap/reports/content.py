"""What a report says, gathered once from a source and shared by every output format.

A source is anything with the five spend questions: the DuckDB or Polars
engine over a lake, the Postgres store or the memory store. The numbers are
the source's answers as they came (exact ``Decimal``); renderers only format
them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

from ducto_olap.models import AggregateStatsRow, DailySpendRow, SpendByModelRow, TopUserRow
from ducto_olap.money import ZERO
from ducto_olap.questions import empty_stats
from ducto_olap.reports.period import ReportPeriod


class SpendSource(Protocol):
    """The questions a report asks; every source of DESIGN.md has them."""

    def spend_by_model(self, start: datetime, end: datetime) -> list[SpendByModelRow]: ...

    def top_users(self, limit: int, start: datetime, end: datetime) -> list[TopUserRow]: ...

    def daily_spend(
        self, start: datetime, end: datetime, *, tz: str | None = None
    ) -> list[DailySpendRow]: ...

    def aggregate_stats(
        self, start: datetime, end: datetime, *, tz: str | None = None
    ) -> AggregateStatsRow: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ReportContent:
    """Everything a report shows.

    Attributes:
        period: the window and its zone.
        stats: the aggregate stats row of the window.
        by_model: spend by model, as the source ordered it.
        daily: spend per local day, only days with spend (the source's rows).
        top_users: the first ``top`` users by spend.
        top: how many top users were asked for.
        generated_at: when the report was made (the clock the period was resolved with).
        last_commit_at: when the lake's last commit landed; None for an empty lake or a
            source that is not a lake.
        source: a short description of where the numbers came from, e.g. ``duckdb``.
    """

    period: ReportPeriod
    stats: AggregateStatsRow
    by_model: tuple[SpendByModelRow, ...]
    daily: tuple[DailySpendRow, ...]
    top_users: tuple[TopUserRow, ...]
    top: int
    generated_at: datetime
    last_commit_at: datetime | None
    source: str

    @property
    def has_spend(self) -> bool:
        """Whether the window has any spend at all."""
        return self.stats.active_users > 0

    @property
    def days_with_spend(self) -> int:
        return len(self.daily)

    @property
    def is_stale(self) -> bool:
        """Whether the window reaches past the lake's last commit (newer spend is missing)."""
        if self.last_commit_at is None:
            return False
        # Compared in UTC: aware datetimes that share a tzinfo compare by wall clock.
        reach = min(self.period.end.astimezone(UTC), self.generated_at.astimezone(UTC))
        return self.last_commit_at.astimezone(UTC) < reach

    def every_day(self) -> list[tuple[date, Decimal]]:
        """Spend on every local day of the window, zero on days without spend (for charts)."""
        spent = {row.date: row.total_spend for row in self.daily}
        return [(day, spent.get(day.isoformat(), ZERO)) for day in self.period.days]


def gather(
    source: SpendSource,
    period: ReportPeriod,
    *,
    top: int = 10,
    generated_at: datetime,
    last_commit_at: datetime | None = None,
    source_name: str = "",
) -> ReportContent:
    """Ask ``source`` the report's questions over ``period``.

    Args:
        source: an engine or store with the spend questions.
        period: the window; its zone buckets the days and counts avg_daily_spend.
        top: how many top users to list.
        generated_at: the report's clock, shown on the report.
        last_commit_at: the lake's freshness, shown on the report.
        source_name: where the numbers came from, shown on the report.
    """
    start, end, tz = period.start, period.end, period.tz
    return ReportContent(
        period=period,
        stats=source.aggregate_stats(start, end, tz=tz),
        by_model=tuple(source.spend_by_model(start, end)),
        daily=tuple(source.daily_spend(start, end, tz=tz)),
        top_users=tuple(source.top_users(top, start, end)),
        top=top,
        generated_at=generated_at,
        last_commit_at=last_commit_at,
        source=source_name,
    )


def empty_content(
    period: ReportPeriod,
    *,
    top: int,
    generated_at: datetime,
    last_commit_at: datetime | None,
    source_name: str,
) -> ReportContent:
    """The content of a report over a lake with no committed files: no spend at all."""
    return ReportContent(
        period=period,
        stats=empty_stats(),
        by_model=(),
        daily=(),
        top_users=(),
        top=top,
        generated_at=generated_at,
        last_commit_at=last_commit_at,
        source=source_name,
    )
