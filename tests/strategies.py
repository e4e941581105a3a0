"""Hypothesis strategies for random ledgers and windows, shared by the equivalence tests.

A ledger is a list of :class:`LedgerRow` written identically to every source. Times
cluster around a few instants (UTC midnight, a window boundary) so boundaries and ties
are hit often; amounts are small so equal totals (ties) happen.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

BASE = datetime(2026, 3, 7, tzinfo=UTC)
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Europe/London")

# PostgreSQL text holds neither NUL nor lone surrogates; everything else is fair.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=8,
)
user_ids = st.sampled_from(["alice", "Alice", "bob", "Émile", "ß", "o'hara", "a b/c=d"]) | text
models = (
    st.sampled_from(
        [None, "<missing>", "gpt-4o", "claude-sonnet-4", "claude-haiku-3.5", "Ünïcödé", "unknown"]
    )
    | text
)

instants = st.one_of(
    st.integers(-3, 3).map(lambda days: BASE + timedelta(days=days)),
    st.integers(-3, 3).map(lambda days: BASE + timedelta(days=days, microseconds=-1)),
    st.integers(0, 6 * 24 * 3600).map(lambda seconds: BASE - timedelta(days=3, seconds=-seconds)),
)

amounts = st.one_of(
    st.sampled_from([Decimal("1"), Decimal("2.5"), Decimal("0.0001"), Decimal("10")]),
    st.integers(1, 5_000_000).map(lambda cents: Decimal(cents) / 10000),
)


@dataclasses.dataclass(frozen=True)
class LedgerRow:
    user_id: str
    amount: Decimal
    type: str
    model: str | None
    created_at: datetime

    @property
    def metadata(self) -> dict[str, Any]:
        if self.model == "<missing>":
            return {"request": "r"}
        return {"model": self.model}


ledger_rows = st.builds(
    LedgerRow,
    user_id=user_ids,
    amount=st.tuples(amounts, st.sampled_from([-1, -1, -1, 1])).map(lambda pair: pair[0] * pair[1]),
    type=st.sampled_from(["usage", "usage", "usage", "refund", "purchase", "adjustment"]),
    model=models,
    created_at=instants,
)
ledgers = st.lists(ledger_rows, min_size=0, max_size=30) | st.lists(
    ledger_rows, min_size=8, max_size=30
)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    """A window ``[start, end)`` in a random zone, possibly empty (start == end)."""
    first = draw(instants | st.just(BASE - timedelta(days=4)))
    second = draw(instants | st.just(BASE + timedelta(days=4)))
    start, end = min(first, second), max(first, second)
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    return start.astimezone(zone), end.astimezone(zone)


def write(store: Any, rows: list[LedgerRow]) -> None:
    """Write ``rows`` to a store as-is, in order."""
    for row in rows:
        store.import_transaction(
            row.user_id, row.amount, row.type, metadata=row.metadata, created_at=row.created_at
        )
