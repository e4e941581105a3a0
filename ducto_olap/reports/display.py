"""How numbers and times read in the human formats (HTML, Markdown).

Amounts keep every digit the source returned (scale 4) and gain thousands
separators; nothing is rounded. CSV and JSON write the plain decimal string.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo


def amount(value: Decimal) -> str:
    """``Decimal('1234567.5000')`` → ``'1,234,567.5000'``: exact digits, grouped."""
    return f"{value:,f}"


def count(value: int) -> str:
    """``12345`` → ``'12,345'``."""
    return f"{value:,}"


def moment(value: datetime, tz: str) -> str:
    """An instant in the report's zone, e.g. ``2026-11-01 00:00 EDT (UTC-04:00)``.

    Seconds are shown only when they are not zero; the offset only when the zone's
    abbreviation is not already one.
    """
    local = value.astimezone(ZoneInfo(tz))
    shown = (
        f"{local:%Y-%m-%d %H:%M:%S}"
        if local.second or local.microsecond
        else f"{local:%Y-%m-%d %H:%M}"
    )
    name = local.tzname() or ""
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}"
    if name in ("UTC", "") or name[0] in "+-":
        return f"{shown} {offset if name != 'UTC' else 'UTC'}"
    return f"{shown} {name} ({offset})"


def plain(value: Decimal) -> str:
    """The exact decimal text for CSV and JSON, never in exponent notation."""
    return f"{value:f}"
