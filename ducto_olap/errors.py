"""The exception tree of ducto_olap.

Every error the project raises derives from :class:`DuctoError`. There is one
class per stage of the flow (store, export, lake, query, config), and errors
that are about a caller's value also derive from :class:`ValueError`, so code
that already catches ``ValueError`` keeps working. Driver errors (psycopg,
DuckDB, Polars, ADBC) are wrapped at the boundary with ``raise ... from`` so a
user never sees one unwrapped.
"""

from __future__ import annotations

from decimal import Decimal


class DuctoError(Exception):
    """Base class of every error raised by ducto_olap."""


class ConfigError(DuctoError, ValueError):
    """A setting (DSN, lake path, time zone, option) is missing or malformed."""


class WindowError(DuctoError, ValueError):
    """A window or limit is malformed: a naive datetime, ``start > end``, ``limit < 0``."""


class StoreError(DuctoError):
    """The ledger store failed or refused an operation."""


class InvalidAmount(StoreError, ValueError):
    """An amount is zero, negative, not finite, a float, or beyond ``NUMERIC(18,4)``."""


class InvalidMetadata(StoreError, ValueError):
    """Metadata is not a JSON object of JSON-serializable values."""


class InvalidInput(StoreError, ValueError):
    """A user id, type, timestamp or other argument of a store call is malformed."""


class InsufficientCredits(StoreError):
    """A reservation asked for more than the user's available credits."""

    def __init__(
        self, user_id: str, requested: Decimal, available: Decimal, min_balance: Decimal
    ) -> None:
        self.user_id = user_id
        self.requested = requested
        self.available = available
        self.min_balance = min_balance
        super().__init__(
            f"user {user_id!r} asked to reserve {requested} credits but has {available} "
            f"available (minimum balance {min_balance})"
        )


class UnknownReservation(StoreError):
    """No active reservation has this id for this user."""


class ReservationFinished(UnknownReservation):
    """The reservation exists but was already deducted or released."""


class DeductionExceedsReservation(StoreError, ValueError):
    """A deduction asked for more than its reservation holds."""


class UnknownTransaction(StoreError):
    """No ledger transaction has this id."""


class RefundNotAllowed(StoreError, ValueError):
    """A refund targets a non-spend transaction or exceeds what is left to refund."""


class DatabaseError(StoreError):
    """PostgreSQL failed; the driver error is chained as ``__cause__``."""


class ExportError(DuctoError):
    """An export run failed; the lake is left as it was before the run."""


class LakeError(DuctoError):
    """The lake folder is missing, unreadable or its commit log is inconsistent."""


class QueryError(DuctoError):
    """An engine failed to answer a question or run a SQL statement."""
