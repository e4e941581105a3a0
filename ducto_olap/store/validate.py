"""Checks shared by both stores, so PostgresStore and MemoryStore refuse the same input."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ducto_olap.errors import InvalidInput, InvalidMetadata
from ducto_olap.money import to_amount

# Ids are indexed; a B-tree entry must stay well under PostgreSQL's ~2.7 kB limit.
MAX_TEXT_BYTES = 1000


def check_text(value: object, what: str, *, max_bytes: int | None = MAX_TEXT_BYTES) -> str:
    """A non-empty string PostgreSQL ``text`` can hold (no NUL, valid UTF-8), and not too long."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise InvalidInput(f"{what} {value!r} contains a NUL character, which text cannot hold")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise InvalidInput(f"{what} {value!r} is not valid unicode: {error.reason}") from error
    if max_bytes is not None and size > max_bytes:
        raise InvalidInput(f"{what} is {size} bytes long; the limit is {max_bytes} bytes (UTF-8)")
    return value


def check_created_at(value: datetime | None) -> datetime | None:
    """An optional backfill timestamp: must be timezone-aware."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"created_at {value!r} must be a timezone-aware datetime, "
            f"for example datetime(2026, 1, 1, tzinfo=timezone.utc)"
        )
    return value


def check_min_balance(value: object) -> Decimal:
    """A reservation's floor: 0 or more, exact."""
    if isinstance(value, int | str | Decimal) and not isinstance(value, bool):
        try:
            amount = Decimal(value)
        except ArithmeticError:
            amount = Decimal("NaN")
        if amount == 0:
            return Decimal("0.0000")
    return to_amount(value, what="min_balance")


# A NUL in JSON text is an escape \u0000 after an even run of backslashes; after
# an odd run it is a backslash and the letters "u0000", which jsonb holds.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def metadata_dict(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata as a plain JSON-ready dict (a round trip through JSON proves it)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidMetadata(f"metadata must be a mapping or CreditMetadata, got {metadata!r}")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidMetadata(
            f"metadata is not JSON: {error}; use strings for Decimals and datetimes"
        ) from error
    if _JSON_NUL.search(text):
        raise InvalidMetadata("metadata contains a NUL character, which jsonb cannot hold")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidMetadata(f"metadata is not valid unicode: {error.reason}") from error
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def model_of(metadata: Mapping[str, Any]) -> str | None:
    """The model as PostgreSQL's ``metadata->>'model'`` gives it: text, or None."""
    value = metadata.get("model")
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
