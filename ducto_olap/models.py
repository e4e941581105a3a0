"""Typed result rows shared by every source, and the store's value objects.

The five questions return :class:`Rows`, a ``list`` of small frozen rows that
also converts to Arrow, Polars and plain dicts. Every source (the Postgres
store, the memory store, the DuckDB and Polars engines) builds exactly these
rows, so results compare with ``==``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa


@dataclasses.dataclass(frozen=True, slots=True)
class SpendByUserRow:
    """One user's spend in a window."""

    user_id: str
    total_spend: Decimal
    transaction_count: int

    kind: ClassVar[str] = "spend_by_user"


@dataclasses.dataclass(frozen=True, slots=True)
class SpendByModelRow:
    """One model's spend in a window; a missing or null model is ``'unknown'``."""

    model: str
    total_spend: Decimal
    transaction_count: int

    kind: ClassVar[str] = "spend_by_model"


@dataclasses.dataclass(frozen=True, slots=True)
class TopUserRow:
    """One of the highest-spending users in a window."""

    user_id: str
    total_spend: Decimal

    kind: ClassVar[str] = "top_users"


@dataclasses.dataclass(frozen=True, slots=True)
class DailySpendRow:
    """Spend on one calendar day; ``date`` is ISO ``YYYY-MM-DD``."""

    date: str
    total_spend: Decimal
    transaction_count: int

    kind: ClassVar[str] = "daily_spend"


@dataclasses.dataclass(frozen=True, slots=True)
class AggregateStatsRow:
    """The one-row summary of a window.

    ``avg_daily_spend`` is the total divided by the number of distinct days with
    spend, rounded to 4 places with ties away from zero. ``top_model`` and
    ``top_user`` are ``''`` when the window has no spend.
    """

    total_credits_consumed: Decimal
    active_users: int
    avg_daily_spend: Decimal
    top_model: str
    top_user: str

    kind: ClassVar[str] = "aggregate_stats"


ResultRow = SpendByUserRow | SpendByModelRow | TopUserRow | DailySpendRow | AggregateStatsRow
RowT = TypeVar("RowT", bound=ResultRow)


class Rows(list[RowT]):
    """A list of result rows of one type that converts to Arrow, Polars and dicts.

    Example:
        >>> rows = store.spend_by_user(start, end)
        >>> rows.to_dicts()[0]["total_spend"]
        Decimal('1234.0000')
        >>> rows.to_polars().columns
        ['user_id', 'total_spend', 'transaction_count']
    """

    def __init__(self, row_type: type[RowT], rows: Iterable[RowT] = ()) -> None:
        super().__init__(rows)
        self.row_type: type[RowT] = row_type

    @property
    def columns(self) -> list[str]:
        """The field names of the row type, in order."""
        return [field.name for field in dataclasses.fields(self.row_type)]

    def to_dicts(self) -> list[dict[str, Any]]:
        """Plain dicts keyed by field name; amounts stay ``Decimal``."""
        return [dataclasses.asdict(row) for row in self]

    def to_arrow(self) -> pa.Table:
        """An Arrow table; amounts are ``decimal128(38, 4)``, counts ``int64``."""
        import pyarrow as pa

        schema = pa.schema([(name, _arrow_type(name)) for name in self.columns])
        columns = {name: [getattr(row, name) for row in self] for name in self.columns}
        return pa.table(columns, schema=schema)

    def to_polars(self) -> pl.DataFrame:
        """A Polars frame with exact decimal amounts."""
        import polars as pl

        frame = pl.from_arrow(self.to_arrow())
        assert isinstance(frame, pl.DataFrame)
        return frame


_DECIMAL_FIELDS = {"total_spend", "total_credits_consumed", "avg_daily_spend"}
_INT_FIELDS = {"transaction_count", "active_users"}


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    if name in _DECIMAL_FIELDS:
        return pa.decimal128(38, 4)
    if name in _INT_FIELDS:
        return pa.int64()
    return pa.string()


class CreditMetadata(Mapping[str, Any]):
    """Metadata attached to a transaction: the ``model`` plus any extra JSON keys.

    Example:
        >>> CreditMetadata(model="gpt-4o", request_id="r-1")["request_id"]
        'r-1'
    """

    def __init__(self, model: str | None = None, **extra: Any) -> None:
        self._data: dict[str, Any] = dict(extra)
        if model is not None:
            self._data["model"] = model

    @property
    def model(self) -> str | None:
        """The model the spend is attributed to, if any."""
        value = self._data.get("model")
        return value if isinstance(value, str) else None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"CreditMetadata({self._data!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class Balance:
    """A user's credits: ``available = balance - reserved``."""

    user_id: str
    balance: Decimal
    reserved: Decimal
    available: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class Reservation:
    """A hold on part of a balance, finalized by a deduction or released.

    ``status`` is ``'active'``, ``'deducted'`` or ``'released'``.
    """

    reservation_id: str
    user_id: str
    amount: Decimal
    operation_type: str
    metadata: dict[str, Any]
    status: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Transaction:
    """One row of the ledger. Spend is a ``usage`` row with a negative amount."""

    id: int
    user_id: str
    amount: Decimal
    type: str
    operation_type: str | None
    metadata: dict[str, Any]
    created_at: datetime
    reservation_id: str | None = None
    idempotency_key: str | None = None
    refund_of: int | None = None
