"""ducto_olap: a PostgreSQL credit ledger exported to a Parquet lake, asked spend questions.

The public surface::

    from ducto_olap import PostgresStore, MemoryStore, CreditMetadata
    from ducto_olap import start_postgres_store, cleanup
    from ducto_olap import DuckDBAnalytics, PolarsAnalytics, open_analytics
"""

import importlib
from typing import TYPE_CHECKING, Any

from ducto_olap.errors import (
    ConfigError,
    DatabaseError,
    DeductionExceedsReservation,
    DuctoError,
    ExportError,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    InvalidMetadata,
    LakeError,
    QueryError,
    RefundNotAllowed,
    ReservationFinished,
    StoreError,
    UnknownReservation,
    UnknownTransaction,
    WindowError,
)
from ducto_olap.models import (
    AggregateStatsRow,
    Balance,
    CreditMetadata,
    DailySpendRow,
    Reservation,
    Rows,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
    Transaction,
)

if TYPE_CHECKING:
    from ducto_olap.engines import DuckDBAnalytics, PolarsAnalytics, open_analytics
    from ducto_olap.store.base import CreditStore
    from ducto_olap.store.embedded import cleanup, start_postgres_store
    from ducto_olap.store.memory import MemoryStore
    from ducto_olap.store.postgres import PostgresStore

# The engines load DuckDB and Polars, the stores psycopg: together a third of a
# second and 60 MB that an export, which uses none of them, would pay on every run.
_LAZY = {
    "DuckDBAnalytics": "ducto_olap.engines",
    "PolarsAnalytics": "ducto_olap.engines",
    "open_analytics": "ducto_olap.engines",
    "CreditStore": "ducto_olap.store.base",
    "cleanup": "ducto_olap.store.embedded",
    "start_postgres_store": "ducto_olap.store.embedded",
    "MemoryStore": "ducto_olap.store.memory",
    "PostgresStore": "ducto_olap.store.postgres",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ducto_olap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AggregateStatsRow",
    "Balance",
    "ConfigError",
    "CreditMetadata",
    "CreditStore",
    "DailySpendRow",
    "DatabaseError",
    "DeductionExceedsReservation",
    "DuckDBAnalytics",
    "DuctoError",
    "ExportError",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidInput",
    "InvalidMetadata",
    "LakeError",
    "MemoryStore",
    "PolarsAnalytics",
    "PostgresStore",
    "QueryError",
    "RefundNotAllowed",
    "Reservation",
    "ReservationFinished",
    "Rows",
    "SpendByModelRow",
    "SpendByUserRow",
    "StoreError",
    "TopUserRow",
    "Transaction",
    "UnknownReservation",
    "UnknownTransaction",
    "WindowError",
    "cleanup",
    "open_analytics",
    "start_postgres_store",
]
