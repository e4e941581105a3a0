"""The window of a report: a named period or ``--start/--end``, in calendar days of a zone.

Periods are calendar-based in the report's time zone (default UTC). Day
boundaries are built from local dates with :mod:`zoneinfo`, never by adding
24 hours, so a day across a DST change is 23 or 25 hours long.

======================  =============================================
period                  window ``[start, end)``
======================  =============================================
``yesterday``           local midnight yesterday to local midnight today (the default)
``last-7d``             the 7 full days before today
``last-30d``            the 30 full days before today
``month-to-date``       the first of this month to now
``previous-month``      the first of last month to the first of this month
======================  =============================================

File stems name the local days a window covers: ``spend-2026-12-02`` for one
day, ``spend-2026-11-01_2026-11-30`` for a range (both days included). A
``--start/--end`` window whose ends are not local midnights is named by its
ends to the minute instead, ``spend-2026-12-02T0600_2026-12-02T1800`` (the
second time is exclusive), so two part-day windows never share a file. The
zone is not part of the name: reports of the same days in two zones belong
in two ``--out`` folders.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ducto_olap.errors import WindowError
from ducto_olap.window import check_time_zone

PERIODS = ("yesterday", "last-7d", "last-30d", "month-to-date", "previous-month")
DEFAULT_PERIOD = "yesterday"
STEM_PREFIX = "spend"

_FULL_DAYS = {"yesterday": 1, "last-7d": 7, "last-30d": 30}


@dataclasses.dataclass(frozen=True, slots=True)
class ReportPeriod:
    """The window a report covers, with both ends aware datetimes in ``tz``.

    Attributes:
        label: the period name (``yesterday``, ...) or ``custom`` for ``--start/--end``.
        start: the first instant of the window, in ``tz``.
        end: the first instant after the window, in ``tz``.
        tz: the IANA zone whose calendar days bucket the spend.
    """

    label: str
    start: datetime
    end: datetime
    tz: str

    @property
    def first_day(self) -> date:
        """The local date of the window's first instant."""
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The local date of the window's last instant (the start's date when empty)."""
        if self.end.astimezone(UTC) <= self.start.astimezone(UTC):
            return self.first_day
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def day_count(self) -> int:
        """How many local calendar dates the window touches (1 for an empty window)."""
        return (self.last_day - self.first_day).days + 1

    @property
    def days(self) -> list[date]:
        """Every local calendar date the window touches, in order.

        One item per day: a window of centuries makes a long list. Reports use
        :attr:`day_count` and chart long windows by month or year instead.
        """
        return [self.first_day + timedelta(days=offset) for offset in range(self.day_count)]

    @property
    def hours(self) -> float:
        """The length of the window in hours (23 or 25 for a one-day DST window)."""
        # Aware datetimes sharing a tzinfo subtract by wall clock; elapsed time needs UTC.
        return (self.end.astimezone(UTC) - self.start.astimezone(UTC)).total_seconds() / 3600

    @property
    def stem(self) -> str:
        """The file name without extension, from the days (or times) the window covers."""
        if self.label == "custom" and not (_is_midnight(self.start) and _is_midnight(self.end)):
            return f"{STEM_PREFIX}-{_minute(self.start)}_{_minute(self.end)}"
        if self.first_day == self.last_day:
            return f"{STEM_PREFIX}-{self.first_day.isoformat()}"
        return f"{STEM_PREFIX}-{self.first_day.isoformat()}_{self.last_day.isoformat()}"


def resolve_period(
    period: str | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
    now: datetime | None = None,
) -> ReportPeriod:
    """The window of a report from a period name or from ISO ``start``/``end``.

    Args:
        period: one of :data:`PERIODS`; default ``yesterday`` when no ``start``/``end``.
        start: an ISO date (local midnight) or datetime; without an offset it is in ``tz``.
        end: like ``start``, exclusive (``[start, end)``, as ``ducto-olap query`` reads it):
            ``--start 2026-11-01 --end 2026-12-01`` is November.
        tz: the IANA zone of the calendar days; default UTC.
        now: the clock, aware; default the current time (tests pass a fixed one).

    Raises:
        WindowError: both a period and ``start/end`` given, only one of ``start/end``,
            an unknown period, zone or ISO value, a naive ``now``, ``start >= end``, or
            an end whose conversion to UTC falls outside the years 1 to 9999.
    """
    zone_name = check_time_zone(tz)
    zone = ZoneInfo(zone_name)
    clock = _check_now(now).astimezone(zone)

    if start is not None or end is not None:
        if period is not None:
            raise WindowError(f"--period {period} and --start/--end both given; choose one of them")
        if start is None or end is None:
            raise WindowError("give both --start and --end, or a --period such as yesterday")
        return _custom(start, end, zone_name)

    name = period or DEFAULT_PERIOD
    if name not in PERIODS:
        raise WindowError(f"unknown period {name!r}; choose one of {', '.join(PERIODS)}")

    today = clock.date()
    if name in _FULL_DAYS:
        first, after = today - timedelta(days=_FULL_DAYS[name]), today
        return ReportPeriod(
            name, local_midnight(first, zone), local_midnight(after, zone), zone_name
        )
    if name == "month-to-date":
        return ReportPeriod(name, local_midnight(today.replace(day=1), zone), clock, zone_name)

    this_month = today.replace(day=1)
    previous = (this_month - timedelta(days=1)).replace(day=1)
    return ReportPeriod(
        name, local_midnight(previous, zone), local_midnight(this_month, zone), zone_name
    )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, as an aware datetime in that zone.

    Where midnight does not exist (a DST jump at 00:00) this is the first time
    that does; where it occurs twice, the first of the two.
    """
    naive = datetime.combine(day, time(0))
    # Round-tripping through UTC normalizes a nonexistent local time to a real instant.
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _custom(start: str, end: str, zone_name: str) -> ReportPeriod:
    zone = ZoneInfo(zone_name)
    first = _parse_instant(start, zone, "--start")
    after = _parse_instant(end, zone, "--end")
    if first.astimezone(UTC) > after.astimezone(UTC):
        raise WindowError(f"--start {start} is after --end {end}; swap them")
    # An empty window would be named like the day it starts on and replace that day's report.
    if first.astimezone(UTC) == after.astimezone(UTC):
        raise WindowError(
            f"--start {start} and --end {end} make an empty window (the end is exclusive); "
            f"give an --end after the --start, e.g. the next day"
        )
    return ReportPeriod("custom", first, after, zone_name)


def _parse_instant(value: str, zone: ZoneInfo, what: str) -> datetime:
    try:
        return _instant(value, zone, what)
    except OverflowError as error:
        # 0001-01-01 east of UTC or 9999-12-31 west of it has no UTC instant a datetime holds.
        raise WindowError(
            f"{what} {value!r} in {zone.key} is outside the years 1 to 9999 in UTC; "
            f"give a later start or an earlier end"
        ) from error


def _instant(value: str, zone: ZoneInfo, what: str) -> datetime:
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError as error:
            raise WindowError(_bad_iso(what, value)) from error
        return local_midnight(day, zone)

    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise WindowError(_bad_iso(what, value)) from error
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return moment.astimezone(zone)


def _bad_iso(what: str, value: str) -> str:
    return (
        f"{what} {value!r} is not an ISO date or datetime; "
        f"use e.g. 2026-11-01 or 2026-11-01T06:00 or 2026-11-01T06:00+00:00"
    )


def _check_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise WindowError(f"now {now.isoformat()} is naive; give it a time zone offset")
    return now


def _is_midnight(moment: datetime) -> bool:
    return moment.timetz().replace(tzinfo=None) == time(0)


def _minute(moment: datetime) -> str:
    # isoformat, not strftime("%Y"): the C library writes the year 1 as "1", not "0001".
    text = f"{moment.date().isoformat()}T{moment:%H%M}"
    return text + f"{moment:%S}" if moment.second or moment.microsecond else text
