"""Windows ``[start, end)``, limits and time zones, validated once for every source."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ducto_olap.errors import WindowError

_ONE_MICROSECOND = timedelta(microseconds=1)
# Far above any user count, and within every engine's integer types.
MAX_LIMIT = 2**31 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """A half-open time interval ``[start, end)`` with both ends in UTC."""

    start: datetime
    end: datetime

    @property
    def is_empty(self) -> bool:
        return self.start >= self.end

    def utc_dates(self) -> tuple[date, date] | None:
        """The first and last UTC date any instant of the window falls on, or None."""
        if self.is_empty:
            return None
        return self.start.date(), (self.end - _ONE_MICROSECOND).date()


def make_window(start: datetime, end: datetime) -> Window:
    """Validate a window and convert both ends to UTC.

    Raises:
        WindowError: an end is not a datetime, is naive, or ``start > end``.
    """
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            raise WindowError(f"{name} must be a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise WindowError(
                f"{name} {value.isoformat()} is naive; give it a time zone, "
                f"for example {name}.replace(tzinfo=timezone.utc)"
            )

    try:
        window = Window(start.astimezone(UTC), end.astimezone(UTC))
    except OverflowError:
        raise WindowError(
            f"window {start.isoformat()} to {end.isoformat()} reaches outside the years "
            f"1 to 9999 in UTC; choose dates inside them"
        ) from None
    if window.start > window.end:
        raise WindowError(f"start {start.isoformat()} is after end {end.isoformat()}; swap them")
    return window


def check_limit(limit: int) -> int:
    """A ``top_users`` limit: a non-negative int."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise WindowError(f"limit must be an int, got {limit!r}")
    if limit < 0:
        raise WindowError(f"limit must be 0 or more, got {limit}")
    if limit > MAX_LIMIT:
        raise WindowError(f"limit {limit} is too large; use at most {MAX_LIMIT}")
    return limit


def check_time_zone(tz: str | None) -> str:
    """An IANA time zone name for day buckets; None means UTC."""
    if tz is None:
        return "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise WindowError(
            f"unknown time zone {tz!r}; use an IANA name such as 'UTC' or 'America/New_York'"
        ) from error
    return tz


def parse_instant(text: str, *, tz: str | None = None, what: str = "time") -> datetime:
    """An aware datetime from an ISO date or datetime typed by a user.

    A bare date means its midnight; a value without an offset is read in ``tz``
    (default UTC).

    Raises:
        WindowError: the text is neither an ISO date nor an ISO datetime.
    """
    zone = ZoneInfo(check_time_zone(tz))
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or not value:
        raise WindowError(
            f"{what} {text!r} is not an ISO date or datetime; "
            f"use for example 2026-11-01 or 2026-11-01T08:00:00+01:00"
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed
