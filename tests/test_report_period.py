"""The report period resolver: calendar days in a zone, DST days, month edges, file stems."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ducto_olap.errors import WindowError
from ducto_olap.reports.period import ReportPeriod, local_midnight, resolve_period

NY = "America/New_York"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def utc(period: ReportPeriod) -> tuple[datetime, datetime]:
    return period.start.astimezone(UTC), period.end.astimezone(UTC)


# (period, tz, now in UTC, expected start and end in UTC, stem, hours)
CASES = [
    (
        "yesterday",
        None,
        "2026-12-03T08:00",
        "2026-12-02T00:00",
        "2026-12-03T00:00",
        "spend-2026-12-02",
        24,
    ),
    # US DST ends 2026-11-01: that New York day is 25 hours long.
    (
        "yesterday",
        NY,
        "2026-11-02T12:00",
        "2026-11-01T04:00",
        "2026-11-02T05:00",
        "spend-2026-11-01",
        25,
    ),
    # US DST starts 2026-03-08: 23 hours.
    (
        "yesterday",
        NY,
        "2026-03-09T12:00",
        "2026-03-08T05:00",
        "2026-03-09T04:00",
        "spend-2026-03-08",
        23,
    ),
    # 02:00 UTC on Dec 3 is still Dec 2 in New York, so yesterday is Dec 1 there.
    (
        "yesterday",
        NY,
        "2026-12-03T02:00",
        "2026-12-01T05:00",
        "2026-12-02T05:00",
        "spend-2026-12-01",
        24,
    ),
    (
        "yesterday",
        None,
        "2027-01-01T00:00",
        "2026-12-31T00:00",
        "2027-01-01T00:00",
        "spend-2026-12-31",
        24,
    ),
    (
        "last-7d",
        None,
        "2026-12-03T08:00",
        "2026-11-26T00:00",
        "2026-12-03T00:00",
        "spend-2026-11-26_2026-12-02",
        168,
    ),
    (
        "last-7d",
        NY,
        "2026-11-05T12:00",
        "2026-10-29T04:00",
        "2026-11-05T05:00",
        "spend-2026-10-29_2026-11-04",
        169,
    ),
    (
        "last-30d",
        None,
        "2026-03-01T10:00",
        "2026-01-30T00:00",
        "2026-03-01T00:00",
        "spend-2026-01-30_2026-02-28",
        720,
    ),
    (
        "month-to-date",
        None,
        "2026-12-03T08:00",
        "2026-12-01T00:00",
        "2026-12-03T08:00",
        "spend-2026-12-01_2026-12-03",
        56,
    ),
    (
        "month-to-date",
        NY,
        "2026-11-02T12:00",
        "2026-11-01T04:00",
        "2026-11-02T12:00",
        "spend-2026-11-01_2026-11-02",
        32,
    ),
    (
        "previous-month",
        None,
        "2027-01-15T09:00",
        "2026-12-01T00:00",
        "2027-01-01T00:00",
        "spend-2026-12-01_2026-12-31",
        744,
    ),
    (
        "previous-month",
        None,
        "2028-03-01T00:00",
        "2028-02-01T00:00",
        "2028-03-01T00:00",
        "spend-2028-02-01_2028-02-29",
        696,
    ),
    # November in New York has the 25-hour day: 30 days and one hour.
    (
        "previous-month",
        NY,
        "2026-12-02T12:00",
        "2026-11-01T04:00",
        "2026-12-01T05:00",
        "spend-2026-11-01_2026-11-30",
        721,
    ),
]


@pytest.mark.parametrize(("name", "tz", "now", "start", "end", "stem", "hours"), CASES)
def test_named_periods(
    name: str, tz: str | None, now: str, start: str, end: str, stem: str, hours: int
) -> None:
    period = resolve_period(name, tz=tz, now=at(now))

    assert utc(period) == (at(start), at(end))
    assert period.stem == stem
    assert period.hours == hours
    assert period.tz == (tz or "UTC")
    assert period.start.utcoffset() == period.start.astimezone(period.zone).utcoffset()


def test_default_period_is_yesterday() -> None:
    now = at("2026-12-03T08:00")

    assert resolve_period(now=now) == resolve_period("yesterday", now=now)


def test_days_of_a_window_across_dst_are_calendar_days() -> None:
    period = resolve_period("previous-month", tz=NY, now=at("2026-12-02T12:00"))

    assert period.days == [date(2026, 11, 1) + timedelta(days=n) for n in range(30)]
    assert (period.first_day, period.last_day) == (date(2026, 11, 1), date(2026, 11, 30))


def test_month_to_date_on_the_first_at_midnight_is_an_empty_window_of_one_day() -> None:
    period = resolve_period("month-to-date", now=at("2026-12-01T00:00"))

    assert period.start == period.end
    assert period.days == [date(2026, 12, 1)]
    assert period.stem == "spend-2026-12-01"


@pytest.mark.parametrize(
    ("start", "end", "tz", "expected", "stem"),
    [
        # The end is exclusive, as for `ducto-olap query`.
        (
            "2026-11-01",
            "2026-12-01",
            NY,
            ("2026-11-01T04:00", "2026-12-01T05:00"),
            "spend-2026-11-01_2026-11-30",
        ),
        (
            "2026-12-02",
            "2026-12-03",
            None,
            ("2026-12-02T00:00", "2026-12-03T00:00"),
            "spend-2026-12-02",
        ),
        # A datetime without offset is in --tz; a datetime end is exclusive.
        (
            "2026-12-02T06:00",
            "2026-12-02T18:00",
            NY,
            ("2026-12-02T11:00", "2026-12-02T23:00"),
            "spend-2026-12-02T0600_2026-12-02T1800",
        ),
        (
            "2026-12-02T00:00",
            "2026-12-04T00:00",
            None,
            ("2026-12-02T00:00", "2026-12-04T00:00"),
            "spend-2026-12-02_2026-12-03",
        ),
        # An offset wins over --tz; the stem shows the window in --tz.
        (
            "2026-12-02T00:00+00:00",
            "2026-12-02T12:30:15Z",
            NY,
            ("2026-12-02T00:00", "2026-12-02T12:30:15"),
            "spend-2026-12-01T1900_2026-12-02T073015",
        ),
    ],
)
def test_start_and_end(
    start: str, end: str, tz: str | None, expected: tuple[str, str], stem: str
) -> None:
    period = resolve_period(start=start, end=end, tz=tz, now=at("2030-01-01T00:00"))

    assert period.label == "custom"
    assert utc(period) == (at(expected[0]), at(expected[1]))
    assert period.stem == stem


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": "yesterday", "start": "2026-11-01", "end": "2026-11-02"}, "choose one"),
        ({"start": "2026-11-01"}, "both --start and --end"),
        ({"period": "last-week"}, "unknown period 'last-week'; choose one of yesterday"),
        ({"start": "2026-13-01", "end": "2026-12-01"}, "--start '2026-13-01' is not an ISO"),
        ({"start": "2026-12-02", "end": "2026-12-01"}, "is after --end"),
        ({"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_refusals(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(WindowError, match=message.replace("(", r"\(")):
        resolve_period(now=at("2026-12-03T08:00"), **kwargs)


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(WindowError, match="naive"):
        resolve_period(now=datetime(2026, 12, 3))


def test_local_midnight_that_does_not_exist_is_the_first_real_instant() -> None:
    # America/Santiago skips from 00:00 to 01:00 on 2026-09-06.
    from zoneinfo import ZoneInfo

    midnight = local_midnight(date(2026, 9, 6), ZoneInfo("America/Santiago"))

    assert midnight.astimezone(UTC) == at("2026-09-06T04:00")
    assert (midnight.hour, midnight.minute) == (1, 0)
