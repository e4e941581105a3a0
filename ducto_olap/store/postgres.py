"""The ledger on PostgreSQL: two-phase spending under row locks, and the questions in SQL.

Every money-moving call runs in one transaction that first locks the user's
``credit_balances`` row. That lock serializes reservations, deductions and
refunds per user, so ``available = balance - active reservations`` can never
be spent twice, whatever the number of connections.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ducto_olap.errors import (
    DatabaseError,
    InsufficientCredits,
    ReservationFinished,
    UnknownReservation,
    UnknownTransaction,
)
from ducto_olap.models import (
    Balance,
    DailySpendRow,
    Reservation,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
    Transaction,
)
from ducto_olap.money import ZERO, scale4
from ducto_olap.settings import mask_dsn
from ducto_olap.store import sql_questions
from ducto_olap.store.base import (
    CreditStore,
    Deduction,
    Hold,
    LedgerEntry,
    Refund,
    balance_overflow,
    deduction_entry,
    refund_entry,
)
from ducto_olap.store.schema import SCHEMA_SQL, SETUP_LOCK_KEY
from ducto_olap.window import Window

logger = logging.getLogger("ducto_olap.store")

_TRANSACTION_COLUMNS = (
    "id, user_id, amount, type, operation_type, metadata, created_at, "
    "reservation_id::text AS reservation_id, idempotency_key, refund_of"
)
_RESERVATION_COLUMNS = (
    "reservation_id::text AS reservation_id, user_id, amount, operation_type, metadata, "
    "status, created_at"
)


class PostgresStore(CreditStore):
    """The credit ledger in PostgreSQL.

    Args:
        dsn: a libpq connection string or URI.
        max_connections: size of the connection pool shared by threads.

    Example:
        >>> store = PostgresStore("postgresql://localhost/credits")
        >>> store.setup()
        >>> store.add_credits("alice", 100_000)
        >>> hold = store.reserve_credits("alice", 250, operation_type="inference")
        >>> store.deduct_credits("alice", hold.reservation_id, 240,
        ...                      metadata=CreditMetadata(model="gpt-4o"))
    """

    def __init__(self, dsn: str, *, max_connections: int = 10) -> None:
        self.dsn = dsn
        try:
            # One direct connection first: a bad DSN fails now with libpq's reason,
            # instead of after the pool's timeout with a vaguer one.
            psycopg.connect(dsn, connect_timeout=10).close()
            self._pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=max_connections,
                kwargs={"autocommit": False},
                open=True,
                timeout=30,
            )
        except psycopg.Error as error:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {mask_dsn(one_line(error))}"
            ) from error

    def __repr__(self) -> str:
        return f"PostgresStore({mask_dsn(self.dsn)!r})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def setup(self) -> None:
        """Create the schema if it is missing; safe to call any number of times."""
        with self._transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK_KEY,))
            cursor.execute(SCHEMA_SQL)

    def _append(self, entry: LedgerEntry) -> Transaction:
        with self._transaction() as cursor:
            self._lock_balance(cursor, entry.user_id)
            return self._insert(cursor, entry)

    def _reserve(self, hold: Hold) -> Reservation:
        with self._transaction() as cursor:
            balance = self._lock_balance(cursor, hold.user_id)
            available = balance - self._reserved(cursor, hold.user_id)
            if available - hold.amount < hold.min_balance:
                raise InsufficientCredits(
                    hold.user_id, hold.amount, scale4(available), hold.min_balance
                )

            cursor.execute(
                f"INSERT INTO credit_reservations (user_id, amount, operation_type, metadata) "
                f"VALUES (%s, %s, %s, %s) RETURNING {_RESERVATION_COLUMNS}",
                (hold.user_id, hold.amount, hold.operation_type, Jsonb(hold.metadata)),
            )
            return _reservation(_fetch(cursor))

    def _deduct(self, deduction: Deduction) -> Transaction:
        reservation_id = _reservation_uuid(deduction.reservation_id, deduction.user_id)

        with self._transaction() as cursor:
            self._lock_balance(cursor, deduction.user_id)
            if deduction.idempotency_key is not None:
                replay = self._by_idempotency_key(
                    cursor, deduction.user_id, deduction.idempotency_key
                )
                if replay is not None:
                    return replay

            reservation = self._lock_reservation(cursor, deduction.user_id, reservation_id)
            transaction = self._insert(cursor, deduction_entry(deduction, reservation))
            self._finish_reservation(cursor, reservation_id, "deducted")
            return transaction

    def _release(self, user_id: str, reservation_id: str) -> Reservation:
        reservation_uuid = _reservation_uuid(reservation_id, user_id)

        with self._transaction() as cursor:
            self._lock_balance(cursor, user_id)
            self._lock_reservation(cursor, user_id, reservation_uuid)
            return self._finish_reservation(cursor, reservation_uuid, "released")

    def _refund(self, refund: Refund) -> Transaction:
        with self._transaction() as cursor:
            original = self._transaction_by_id(cursor, refund.transaction_id)
            self._lock_balance(cursor, original.user_id)
            cursor.execute(
                "SELECT coalesce(sum(amount), 0) AS refunded FROM credit_transactions "
                "WHERE refund_of = %s",
                (original.id,),
            )
            refunded = Decimal(_fetch(cursor)["refunded"])
            return self._insert(cursor, refund_entry(original, refunded, refund))

    def _balance(self, user_id: str) -> Balance:
        with self._transaction() as cursor:
            cursor.execute("SELECT balance FROM credit_balances WHERE user_id = %s", (user_id,))
            row = cursor.fetchone()
            balance = scale4(row["balance"]) if row else ZERO
            reserved = scale4(self._reserved(cursor, user_id))
        return Balance(user_id, balance, reserved, scale4(balance - reserved))

    def _spend_by_user(self, window: Window) -> list[SpendByUserRow]:
        rows = self._query(sql_questions.SPEND_BY_USER, window.start, window.end)
        return [SpendByUserRow(r["user_id"], scale4(r["total"]), r["count"]) for r in rows]

    def _spend_by_model(self, window: Window) -> list[SpendByModelRow]:
        rows = self._query(sql_questions.SPEND_BY_MODEL, window.start, window.end)
        return [SpendByModelRow(r["model"], scale4(r["total"]), r["count"]) for r in rows]

    def _top_users(self, window: Window, limit: int) -> list[TopUserRow]:
        rows = self._query(sql_questions.TOP_USERS, window.start, window.end, limit)
        return [TopUserRow(r["user_id"], scale4(r["total"])) for r in rows]

    def _daily_spend(self, window: Window, tz: str) -> list[DailySpendRow]:
        rows = self._query(sql_questions.DAILY_SPEND, tz, window.start, window.end)
        return [DailySpendRow(r["day"], scale4(r["total"]), r["count"]) for r in rows]

    def _query(self, statement: str, *params: object) -> list[dict[str, Any]]:
        logger.debug("sql: %s params=%r", " ".join(statement.split()), params)
        with self._transaction() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        try:
            with (
                self._pool.connection() as connection,
                connection.transaction(),
                connection.cursor(row_factory=dict_row) as cursor,
            ):
                yield cursor
        except psycopg.Error as error:
            if isinstance(error, psycopg.errors.UndefinedTable):
                raise DatabaseError(
                    f"no ledger in {mask_dsn(self.dsn)}: {one_line(error)}; create it with "
                    f"PostgresStore(dsn).setup() or fill it with ducto-olap seed"
                ) from error
            raise DatabaseError(f"PostgreSQL error: {error}".strip()) from error

    def _lock_balance(self, cursor: psycopg.Cursor[dict[str, Any]], user_id: str) -> Decimal:
        # Create the row first so there is always something to lock, even for a new user.
        cursor.execute(
            "INSERT INTO credit_balances (user_id) VALUES (%s) ON CONFLICT DO NOTHING", (user_id,)
        )
        cursor.execute(
            "SELECT balance FROM credit_balances WHERE user_id = %s FOR UPDATE", (user_id,)
        )
        return Decimal(_fetch(cursor)["balance"])

    def _reserved(self, cursor: psycopg.Cursor[dict[str, Any]], user_id: str) -> Decimal:
        cursor.execute(
            "SELECT coalesce(sum(amount), 0) AS reserved FROM credit_reservations "
            "WHERE user_id = %s AND status = 'active'",
            (user_id,),
        )
        return Decimal(_fetch(cursor)["reserved"])

    def _lock_reservation(
        self, cursor: psycopg.Cursor[dict[str, Any]], user_id: str, reservation_id: uuid.UUID
    ) -> Reservation:
        cursor.execute(
            f"SELECT {_RESERVATION_COLUMNS} FROM credit_reservations "
            f"WHERE reservation_id = %s AND user_id = %s FOR UPDATE",
            (reservation_id, user_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise UnknownReservation(
                f"no reservation {reservation_id} for user {user_id!r}; "
                f"reserve credits first and pass the reservation_id it returned"
            )
        reservation = _reservation(row)
        if reservation.status != "active":
            raise ReservationFinished(
                f"reservation {reservation_id} of user {user_id!r} is already "
                f"{reservation.status}; reserve again"
            )
        return reservation

    def _finish_reservation(
        self, cursor: psycopg.Cursor[dict[str, Any]], reservation_id: uuid.UUID, status: str
    ) -> Reservation:
        cursor.execute(
            f"UPDATE credit_reservations SET status = %s, finished_at = now() "
            f"WHERE reservation_id = %s RETURNING {_RESERVATION_COLUMNS}",
            (status, reservation_id),
        )
        return _reservation(_fetch(cursor))

    def _by_idempotency_key(
        self, cursor: psycopg.Cursor[dict[str, Any]], user_id: str, key: str
    ) -> Transaction | None:
        cursor.execute(
            f"SELECT {_TRANSACTION_COLUMNS} FROM credit_transactions "
            f"WHERE user_id = %s AND idempotency_key = %s",
            (user_id, key),
        )
        row = cursor.fetchone()
        return None if row is None else _transaction(row)

    def _transaction_by_id(
        self, cursor: psycopg.Cursor[dict[str, Any]], transaction_id: int
    ) -> Transaction:
        cursor.execute(
            f"SELECT {_TRANSACTION_COLUMNS} FROM credit_transactions WHERE id = %s",
            (transaction_id,),
        )
        row = cursor.fetchone()
        if row is None:
            raise UnknownTransaction(f"no transaction with id {transaction_id}")
        return _transaction(row)

    def _insert(self, cursor: psycopg.Cursor[dict[str, Any]], entry: LedgerEntry) -> Transaction:
        try:
            return self._insert_row(cursor, entry)
        except psycopg.errors.NumericValueOutOfRange as error:
            # The balance trigger overflowed NUMERIC(18,4); the transaction rolls back.
            raise balance_overflow(entry) from error

    def _insert_row(
        self, cursor: psycopg.Cursor[dict[str, Any]], entry: LedgerEntry
    ) -> Transaction:
        cursor.execute(
            f"INSERT INTO credit_transactions (user_id, amount, type, operation_type, metadata, "
            f"created_at, reservation_id, idempotency_key, refund_of) "
            f"VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()), %s, %s, %s) "
            f"RETURNING {_TRANSACTION_COLUMNS}",
            (
                entry.user_id,
                entry.amount,
                entry.type,
                entry.operation_type,
                Jsonb(entry.metadata),
                entry.created_at,
                entry.reservation_id,
                entry.idempotency_key,
                entry.refund_of,
            ),
        )
        return _transaction(_fetch(cursor))


def one_line(error: BaseException) -> str:
    """The first line of a driver error, for messages that must stay on one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reservation_uuid(reservation_id: object, user_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(reservation_id))
    except ValueError as error:
        raise UnknownReservation(
            f"no reservation {reservation_id!r} for user {user_id!r}: not a reservation id"
        ) from error


def _fetch(cursor: psycopg.Cursor[dict[str, Any]]) -> dict[str, Any]:
    row = cursor.fetchone()
    assert row is not None, "statement returned no row"
    return row


def _reservation(row: dict[str, Any]) -> Reservation:
    return Reservation(
        reservation_id=row["reservation_id"],
        user_id=row["user_id"],
        amount=scale4(row["amount"]),
        operation_type=row["operation_type"],
        metadata=dict(row["metadata"]),
        status=row["status"],
        created_at=row["created_at"],
    )


def _transaction(row: dict[str, Any]) -> Transaction:
    return Transaction(
        id=row["id"],
        user_id=row["user_id"],
        amount=scale4(row["amount"]),
        type=row["type"],
        operation_type=row["operation_type"],
        metadata=dict(row["metadata"]),
        created_at=row["created_at"],
        reservation_id=row["reservation_id"],
        idempotency_key=row["idempotency_key"],
        refund_of=row["refund_of"],
    )
