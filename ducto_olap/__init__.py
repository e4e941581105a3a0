"""ducto_olap: a PostgreSQL credit ledger exported to a Parquet lake, asked spend questions.

The public surface::

    from ducto_olap import PostgresStore, MemoryStore, CreditMetadata
    from ducto_olap import start_postgres_store, cleanup
    from ducto_olap import DuckDBAnalytics, PolarsAnalytics, open_analytics
"""

from ducto_olap.engines import DuckDBAnalytics, PolarsAnalytics, open_analytics
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
from ducto_olap.store.base import CreditStore
from ducto_olap.store.embedded import cleanup, start_postgres_store
from ducto_olap.store.memory import MemoryStore
from ducto_olap.store.postgres import PostgresStore

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
