"""Exact money: every amount is a ``Decimal`` with scale 4, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ducto_olap.errors import InvalidAmount

SCALE = Decimal("0.0001")
ZERO = Decimal("0.0000")
# NUMERIC(18,4): 14 integer digits and 4 fractional ones.
MAX_AMOUNT = Decimal("99999999999999.9999")


def to_amount(value: object, *, what: str = "amount") -> Decimal:
    """Parse a positive amount that fits ``NUMERIC(18,4)``, refusing anything inexact.

    Ints, ``Decimal`` and decimal strings are accepted. Floats are refused because
    they cannot hold most decimal amounts exactly.
    """
    if isinstance(value, bool | float):
        raise InvalidAmount(
            f"{what} {value!r} is a {type(value).__name__}; pass an int, a Decimal or a "
            f"string such as '12.5' so no cent is lost"
        )
    try:
        amount = Decimal(value) if isinstance(value, int | str | Decimal) else None
    except InvalidOperation:
        amount = None
    if amount is None:
        raise InvalidAmount(f"{what} {value!r} is not a number; pass an int, Decimal or string")

    if not amount.is_finite():
        raise InvalidAmount(f"{what} {value!r} is not finite; pass a real number of credits")
    if amount <= 0:
        raise InvalidAmount(f"{what} must be positive, got {amount}")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"{what} {amount} is beyond NUMERIC(18,4) (max {MAX_AMOUNT})")
    if amount != amount.quantize(SCALE, rounding=ROUND_HALF_UP):
        raise InvalidAmount(f"{what} {amount} has more than 4 decimal places; round it first")

    return amount.quantize(SCALE)


def to_signed_amount(value: object, *, what: str = "amount") -> Decimal:
    """Like :func:`to_amount` but either sign is allowed; only zero is refused."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -to_amount(value.strip()[1:], what=what)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        if value == 0:
            raise InvalidAmount(f"{what} must not be zero")
        if value < 0:
            return -to_amount(-value, what=what)
    return to_amount(value, what=what)


def scale4(value: Decimal | int) -> Decimal:
    """A sum or amount at scale 4 (exact: sums of scale-4 values need no rounding)."""
    return Decimal(value).quantize(SCALE)


def average_daily(total: Decimal, days: int) -> Decimal:
    """``total / days`` rounded to 4 places, ties away from zero; 0 when ``days`` is 0."""
    if days == 0:
        return ZERO
    return (Decimal(total) / days).quantize(SCALE, rounding=ROUND_HALF_UP)
