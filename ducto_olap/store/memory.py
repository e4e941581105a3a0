"""The ledger in memory: PostgresStore's semantics without a server, for tests and development.

One lock guards all state, playing the part of PostgreSQL's row locks: the
checks and the writes of each call happen as one step.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ducto_olap.errors import (
    DeductionExceedsReservation,
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
from ducto_olap.money import ZERO, scale4, to_amount, to_signed_amount
from ducto_olap.questions import UNKNOWN_MODEL, SpendQuestions
from ducto_olap.store.postgres import refundable
from ducto_olap.store.validate import (
    check_created_at,
    check_min_balance,
    check_text,
    metadata_dict,
    model_of,
)
from ducto_olap.window import Window


class MemoryStore(SpendQuestions):
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

    def setup(self) -> None:
        """Nothing to create; present so both stores are driven the same way."""

    def close(self) -> None:
        """Nothing to release."""

    @property
    def transactions(self) -> list[Transaction]:
        """A copy of the ledger in insertion order."""
        with self._lock:
            return list(self._transactions)

    def add_credits(
        self,
        user_id: str,
        amount: int | Decimal | str,
        type: str = "adjustment",
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> Transaction:
        """Add ``amount`` credits to a user's balance as one ledger row of ``type``."""
        user_id = check_text(user_id, "user_id")
        value = to_amount(amount)
        kind = check_text(type, "type")
        data = metadata_dict(metadata)
        when = check_created_at(created_at)

        with self._lock:
            return self._append(user_id, value, kind, None, data, when)

    def reserve_credits(
        self,
        user_id: str,
        amount: int | Decimal | str,
        operation_type: str,
        metadata: Mapping[str, Any] | None = None,
        min_balance: int | Decimal | str = 0,
    ) -> Reservation:
        """Hold ``amount`` of the available credits for an operation."""
        user_id = check_text(user_id, "user_id")
        value = to_amount(amount)
        operation = check_text(operation_type, "operation_type")
        data = metadata_dict(metadata)
        floor = check_min_balance(min_balance)

        with self._lock:
            available = self._balances[user_id] - self._reserved(user_id)
            if available - value < floor:
                raise InsufficientCredits(user_id, value, scale4(available), floor)

            reservation = Reservation(
                str(uuid.uuid4()), user_id, value, operation, data, "active", _now()
            )
            self._reservations[reservation.reservation_id] = reservation
            return reservation

    def deduct_credits(
        self,
        user_id: str,
        reservation_id: str,
        amount: int | Decimal | str,
        idempotency_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> Transaction:
        """Finalize a reservation by spending ``amount``; see ``PostgresStore.deduct_credits``."""
        user_id = check_text(user_id, "user_id")
        value = to_amount(amount)
        key = None if idempotency_key is None else check_text(idempotency_key, "idempotency_key")
        extra = metadata_dict(metadata)
        when = check_created_at(created_at)

        with self._lock:
            if key is not None:
                replay = self._find(
                    lambda row: row.user_id == user_id and row.idempotency_key == key
                )
                if replay is not None:
                    return replay

            reservation = self._active_reservation(user_id, reservation_id)
            if value > reservation.amount:
                raise DeductionExceedsReservation(
                    f"deduction of {value} exceeds reservation {reservation_id} "
                    f"of {reservation.amount} for user {user_id!r}"
                )

            data = {**reservation.metadata, **extra}
            transaction = self._append(
                user_id,
                -value,
                "usage",
                reservation.operation_type,
                data,
                when,
                reservation_id=reservation.reservation_id,
                idempotency_key=key,
            )
            self._finish(reservation, "deducted")
            return transaction

    def release_reservation(self, user_id: str, reservation_id: str) -> Reservation:
        """Give a reservation's credits back to the available balance."""
        user_id = check_text(user_id, "user_id")
        with self._lock:
            return self._finish(self._active_reservation(user_id, reservation_id), "released")

    def refund_credits(
        self,
        transaction_id: int,
        amount: int | Decimal | str | None = None,
        reason: str | None = None,
    ) -> Transaction:
        """Give back some or all of a spend transaction as a ``refund`` row."""
        if isinstance(transaction_id, bool) or not isinstance(transaction_id, int):
            raise UnknownTransaction(f"transaction id must be an int, got {transaction_id!r}")
        value = None if amount is None else to_amount(amount, what="refund amount")
        note = None if reason is None else check_text(reason, "reason")

        with self._lock:
            original = self._find(lambda row: row.id == transaction_id)
            if original is None:
                raise UnknownTransaction(f"no transaction with id {transaction_id}")
            refunded = sum(
                (row.amount for row in self._transactions if row.refund_of == transaction_id),
                ZERO,
            )
            value = refundable(original, refunded, value)

            data: dict[str, Any] = {"refund_of": transaction_id}
            if "model" in original.metadata:
                data["model"] = original.metadata["model"]
            if note is not None:
                data["reason"] = note
            return self._append(
                original.user_id,
                value,
                "refund",
                original.operation_type,
                data,
                None,
                refund_of=transaction_id,
            )

    def import_transaction(
        self,
        user_id: str,
        amount: int | Decimal | str,
        type: str,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        operation_type: str | None = None,
    ) -> Transaction:
        """Write one ledger row as-is; see ``PostgresStore.import_transaction``."""
        user_id = check_text(user_id, "user_id")
        value = to_signed_amount(amount)
        kind = check_text(type, "type")
        operation = None if operation_type is None else check_text(operation_type, "operation_type")
        data = metadata_dict(metadata)
        when = check_created_at(created_at)

        with self._lock:
            return self._append(user_id, value, kind, operation, data, when)

    def get_balance(self, user_id: str) -> Balance:
        """A user's balance, active reservations and what is available (zero if unknown)."""
        user_id = check_text(user_id, "user_id")
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
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
        groups = self._group(window, lambda row: row.created_at.astimezone(zone).date().isoformat())
        rows = [DailySpendRow(key, total, count) for key, (total, count) in groups.items()]
        return sorted(rows, key=lambda row: row.date)

    def _group(
        self, window: Window, key: Callable[[Transaction], str]
    ) -> dict[str, tuple[Decimal, int]]:
        groups: dict[str, tuple[Decimal, int]] = {}
        with self._lock:
            spend = [row for row in self._transactions if _is_spend_in(row, window)]
        for row in spend:
            total, count = groups.get(key(row), (ZERO, 0))
            groups[key(row)] = (total - row.amount, count + 1)
        return {name: (scale4(total), count) for name, (total, count) in groups.items()}

    def _append(
        self,
        user_id: str,
        amount: Decimal,
        kind: str,
        operation_type: str | None,
        metadata: dict[str, Any],
        created_at: datetime | None,
        *,
        reservation_id: str | None = None,
        idempotency_key: str | None = None,
        refund_of: int | None = None,
    ) -> Transaction:
        transaction = Transaction(
            id=next(self._ids),
            user_id=user_id,
            amount=scale4(amount),
            type=kind,
            operation_type=operation_type,
            metadata=metadata,
            created_at=created_at or _now(),
            reservation_id=reservation_id,
            idempotency_key=idempotency_key,
            refund_of=refund_of,
        )
        self._transactions.append(transaction)
        self._balances[user_id] += transaction.amount
        return transaction

    def _reserved(self, user_id: str) -> Decimal:
        return sum(
            (
                hold.amount
                for hold in self._reservations.values()
                if hold.user_id == user_id and hold.status == "active"
            ),
            ZERO,
        )

    def _active_reservation(self, user_id: str, reservation_id: str) -> Reservation:
        reservation = self._reservations.get(str(reservation_id))
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
        import dataclasses

        finished = dataclasses.replace(reservation, status=status)
        self._reservations[reservation.reservation_id] = finished
        return finished

    def _find(self, matches: Callable[[Transaction], bool]) -> Transaction | None:
        return next((row for row in self._transactions if matches(row)), None)


def _is_spend_in(row: Transaction, window: Window) -> bool:
    return row.type == "usage" and row.amount < 0 and window.start <= row.created_at < window.end


def _now() -> datetime:
    return datetime.now(UTC)
