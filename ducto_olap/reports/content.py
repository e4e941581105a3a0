"""What a report says, gathered once from a source and shared by every output format.

A source is anything with the five spend questions: the DuckDB or Polars
engine over a lake, the Postgres store or the memory store. The numbers are
the source's answers as they came (exact ``Decimal``); renderers only format
them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from ducto_olap.errors import WindowError
from ducto_olap.models import AggregateStatsRow, DailySpendRow, SpendByModelRow, TopUserRow
from ducto_olap.money import ZERO
from ducto_olap.questions import empty_stats
from ducto_olap.reports.period import ReportPeriod

#: The most top users a report lists (``--top``): a report is read, not a dump.
MAX_TOP = 10_000

#: The most bars a spend-over-time chart draws; a longer window is charted by a coarser unit.
MAX_BARS = 1_000

#: The units a spend-over-time chart can use, finest first.
UNITS = ("day", "month", "year")


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

    @property
    def chart_unit(self) -> str | None:
        """The finest of :data:`UNITS` that charts the window in at most :data:`MAX_BARS`
        bars, or None when even years are too many (a window of more than 1,000 years)."""
        first, last = self.period.first_day, self.period.last_day
        counts = {
            "day": self.period.day_count,
            "month": (last.year - first.year) * 12 + last.month - first.month + 1,
            "year": last.year - first.year + 1,
        }
        return next((unit for unit in UNITS if counts[unit] <= MAX_BARS), None)

    def spend_over_time(self) -> list[tuple[date, Decimal]]:
        """Spend per :attr:`chart_unit` over the whole window, zero where none (for charts).

        Each bar is named by its first day and holds the exact sum of the days
        with spend in it. Empty when the window is too long to chart.
        """
        unit = self.chart_unit
        if unit is None:
            return []
        spent: dict[date, Decimal] = {}
        for row in self.daily:
            bucket = _bucket(date.fromisoformat(row.date), unit)
            spent[bucket] = spent.get(bucket, ZERO) + row.total_spend

        bars = []
        bucket, last = _bucket(self.period.first_day, unit), _bucket(self.period.last_day, unit)
        while True:
            bars.append((bucket, spent.get(bucket, ZERO)))
            if bucket == last:
                return bars
            bucket = _next_bucket(bucket, unit)


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

    Raises:
        WindowError: ``top`` is not 1 to :data:`MAX_TOP`.
    """
    check_top(top)
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
    check_top(top)
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


def check_top(top: int) -> int:
    """A ``--top`` count: an int from 1 to :data:`MAX_TOP`.

    Raises:
        WindowError: ``top`` is not such an int.
    """
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise WindowError(f"top {top!r} is not a count from 1 to {MAX_TOP:,}; choose one in range")
    return top


def _bucket(day: date, unit: str) -> date:
    if unit == "month":
        return day.replace(day=1)
    if unit == "year":
        return day.replace(month=1, day=1)
    return day


def _next_bucket(bucket: date, unit: str) -> date:
    # Never called on the last bucket of a window, so date.max is never passed.
    if unit == "month":
        year, month = divmod(bucket.month, 12)
        return bucket.replace(year=bucket.year + year, month=month + 1)
    if unit == "year":
        return bucket.replace(year=bucket.year + 1)
    return bucket + timedelta(days=1)
