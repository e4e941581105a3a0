"""The ledger in memory: PostgresStore's semantics without a server, for tests and development.

One lock guards all state, playing the part of PostgreSQL's row locks: the
checks and the writes of each call happen as one step.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from ducto_olap.errors import (
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
    Transaction,
)
from ducto_olap.money import MAX_AMOUNT, ZERO, scale4
from ducto_olap.questions import UNKNOWN_MODEL
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
from ducto_olap.store.validate import model_of
from ducto_olap.window import Window


class MemoryStore(CreditStore):
    """An in-memory credit ledger with the same methods and results as :class:`PostgresStore`.

    Example:
        >>> store = MemoryStore()
        >>> store.add_credits("alice", 100)
        >>> store.get_balance("alice").available
        Decimal('100.0000')
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._transactions: list[Transaction] = []
        self._reservations: dict[str, Reservation] = {}
        self._balances: dict[str, Decimal] = defaultdict(lambda: ZERO)

    @property
    def transactions(self) -> list[Transaction]:
        """A copy of the ledger in insertion order."""
        with self._lock:
            return list(self._transactions)

    def _append(self, entry: LedgerEntry) -> Transaction:
        with self._lock:
            return self._write(entry)

    def _reserve(self, hold: Hold) -> Reservation:
        with self._lock:
            available = self._balances[hold.user_id] - self._reserved(hold.user_id)
            if available - hold.amount < hold.min_balance:
                raise InsufficientCredits(
                    hold.user_id, hold.amount, scale4(available), hold.min_balance
                )

            reservation = Reservation(
                reservation_id=str(uuid.uuid4()),
                user_id=hold.user_id,
                amount=hold.amount,
                operation_type=hold.operation_type,
                metadata=hold.metadata,
                status="active",
                created_at=_now(),
            )
            self._reservations[reservation.reservation_id] = reservation
            return reservation

    def _deduct(self, deduction: Deduction) -> Transaction:
        with self._lock:
            key = deduction.idempotency_key
            if key is not None:
                replay = self._find(
                    lambda row: row.user_id == deduction.user_id and row.idempotency_key == key
                )
                if replay is not None:
                    return replay

            reservation = self._active(deduction.user_id, deduction.reservation_id)
            transaction = self._write(deduction_entry(deduction, reservation))
            self._finish(reservation, "deducted")
            return transaction

    def _release(self, user_id: str, reservation_id: str) -> Reservation:
        with self._lock:
            return self._finish(self._active(user_id, reservation_id), "released")

    def _refund(self, refund: Refund) -> Transaction:
        with self._lock:
            original = self._find(lambda row: row.id == refund.transaction_id)
            if original is None:
                raise UnknownTransaction(f"no transaction with id {refund.transaction_id}")
            refunded = sum(
                (row.amount for row in self._transactions if row.refund_of == original.id), ZERO
            )
            return self._write(refund_entry(original, refunded, refund))

    def _balance(self, user_id: str) -> Balance:
        with self._lock:
            balance = scale4(self._balances.get(user_id, ZERO))
            reserved = scale4(self._reserved(user_id))
        return Balance(user_id, balance, reserved, scale4(balance - reserved))

    def _spend_by_user(self, window: Window) -> list[SpendByUserRow]:
        groups = self._group(window, lambda row: row.user_id)
        rows = [SpendByUserRow(key, total, count) for key, (total, count) in groups.items()]
        return sorted(rows, key=lambda row: (-row.total_spend, row.user_id))

    def _spend_by_model(self, window: Window) -> list[SpendByModelRow]:
        groups = self._group(window, lambda row: model_of(row.metadata) or UNKNOWN_MODEL)
        rows = [SpendByModelRow(key, total, count) for key, (total, count) in groups.items()]
        return sorted(rows, key=lambda row: (-row.total_spend, row.model))

    def _daily_spend(self, window: Window, tz: str) -> list[DailySpendRow]:
        zone = ZoneInfo(tz)
        groups = self._group(window, lambda row: row.created_at.astimezone(zone).date().isoformat())
        rows = [DailySpendRow(key, total, count) for key, (total, count) in groups.items()]
        return sorted(rows, key=lambda row: row.date)

    def _group(
        self, window: Window, key: Callable[[Transaction], str]
    ) -> dict[str, tuple[Decimal, int]]:
        with self._lock:
            spend = [row for row in self._transactions if _is_spend_in(row, window)]

        groups: dict[str, tuple[Decimal, int]] = {}
        for row in spend:
            total, count = groups.get(key(row), (ZERO, 0))
            groups[key(row)] = (total - row.amount, count + 1)
        return {name: (scale4(total), count) for name, (total, count) in groups.items()}

    def _write(self, entry: LedgerEntry) -> Transaction:
        if abs(self._balances[entry.user_id] + entry.amount) > MAX_AMOUNT:
            raise balance_overflow(entry)

        transaction = Transaction(
            id=next(self._ids),
            user_id=entry.user_id,
            amount=scale4(entry.amount),
            type=entry.type,
            operation_type=entry.operation_type,
            metadata=entry.metadata,
            created_at=entry.created_at or _now(),
            reservation_id=entry.reservation_id,
            idempotency_key=entry.idempotency_key,
            refund_of=entry.refund_of,
        )
        self._transactions.append(transaction)
        self._balances[entry.user_id] += transaction.amount
        return transaction

    def _reserved(self, user_id: str) -> Decimal:
        holds = self._reservations.values()
        active = (
            hold.amount for hold in holds if hold.user_id == user_id and hold.status == "active"
        )
        return sum(active, ZERO)

    def _active(self, user_id: str, reservation_id: str) -> Reservation:
        reservation = self._reservations.get(reservation_id)
        if reservation is None or reservation.user_id != user_id:
            raise UnknownReservation(
                f"no reservation {reservation_id} for user {user_id!r}; "
                f"reserve credits first and pass the reservation_id it returned"
            )
        if reservation.status != "active":
            raise ReservationFinished(
                f"reservation {reservation_id} of user {user_id!r} is already "
                f"{reservation.status}; reserve again"
            )
        return reservation

    def _finish(self, reservation: Reservation, status: str) -> Reservation:
        finished = dataclasses.replace(reservation, status=status)
        self._reservations[reservation.reservation_id] = finished
        return finished

    def _find(self, matches: Callable[[Transaction], bool]) -> Transaction | None:
        return next((row for row in self._transactions if matches(row)), None)


def _is_spend_in(row: Transaction, window: Window) -> bool:
    in_window = window.start <= row.created_at < window.end
    return row.type == "usage" and row.amount < 0 and in_window


def _now() -> datetime:
    return datetime.now(UTC)
