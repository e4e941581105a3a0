"""What both stores share: the public methods, their argument checks, the refund rule.

:class:`CreditStore` validates every argument once and hands the store a
checked request, so PostgresStore and MemoryStore refuse exactly the same
input and only differ in how they lock and write.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ducto_olap.errors import (
    DeductionExceedsReservation,
    InvalidAmount,
    RefundNotAllowed,
    UnknownTransaction,
)
from ducto_olap.models import Balance, Reservation, Transaction
from ducto_olap.money import MAX_AMOUNT, scale4, to_amount, to_signed_amount
from ducto_olap.questions import SpendQuestions
from ducto_olap.store.validate import (
    check_created_at,
    check_min_balance,
    check_text,
    metadata_dict,
)


@dataclasses.dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A checked ledger row about to be written; ``created_at`` None means now."""

    user_id: str
    amount: Decimal
    type: str
    metadata: dict[str, Any]
    created_at: datetime | None = None
    operation_type: str | None = None
    reservation_id: str | None = None
    idempotency_key: str | None = None
    refund_of: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Hold:
    """A checked reservation request."""

    user_id: str
    amount: Decimal
    operation_type: str
    metadata: dict[str, Any]
    min_balance: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class Deduction:
    """A checked request to finalize a reservation."""

    user_id: str
    reservation_id: str
    amount: Decimal
    idempotency_key: str | None
    metadata: dict[str, Any]
    created_at: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Refund:
    """A checked refund request; ``amount`` None means all that is left."""

    transaction_id: int
    amount: Decimal | None
    reason: str | None


class CreditStore(SpendQuestions):
    """The ledger's operations and the five questions; subclasses do the locking and I/O."""

    def setup(self) -> None:
        """Create what the store needs; safe to call any number of times."""

    def close(self) -> None:
        """Release what the store holds."""

    def add_credits(
        self,
        user_id: str,
        amount: int | Decimal | str,
        type: str = "adjustment",
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> Transaction:
        """Add ``amount`` credits to a user's balance as one ledger row of ``type``.

        ``created_at`` (timezone-aware) backdates the row for backfills; default now.
        """
        entry = LedgerEntry(
            user_id=check_text(user_id, "user_id"),
            amount=to_amount(amount),
            type=check_text(type, "type"),
            metadata=metadata_dict(metadata),
            created_at=check_created_at(created_at),
        )
        return self._append(entry)

    def import_transaction(
        self,
        user_id: str,
        amount: int | Decimal | str,
        type: str,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        operation_type: str | None = None,
    ) -> Transaction:
        """Write one ledger row as-is, as another program's plain ``INSERT`` would.

        For imports and backfills: ``amount`` is signed (only zero is refused) and
        ``type`` is free, so no reservation is involved and no balance check is made.
        """
        operation = None if operation_type is None else check_text(operation_type, "operation_type")
        entry = LedgerEntry(
            user_id=check_text(user_id, "user_id"),
            amount=to_signed_amount(amount),
            type=check_text(type, "type"),
            metadata=metadata_dict(metadata),
            created_at=check_created_at(created_at),
            operation_type=operation,
        )
        return self._append(entry)

    def reserve_credits(
        self,
        user_id: str,
        amount: int | Decimal | str,
        operation_type: str,
        metadata: Mapping[str, Any] | None = None,
        min_balance: int | Decimal | str = 0,
    ) -> Reservation:
        """Hold ``amount`` of the available credits for an operation.

        Raises:
            InsufficientCredits: ``available - amount`` would fall below ``min_balance``.
        """
        hold = Hold(
            user_id=check_text(user_id, "user_id"),
            amount=to_amount(amount),
            operation_type=check_text(operation_type, "operation_type"),
            metadata=metadata_dict(metadata),
            min_balance=check_min_balance(min_balance),
        )
        return self._reserve(hold)

    def deduct_credits(
        self,
        user_id: str,
        reservation_id: str,
        amount: int | Decimal | str,
        idempotency_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
    ) -> Transaction:
        """Finalize a reservation by spending ``amount`` (at most what it holds).

        The rest of the reservation is released. A replayed ``idempotency_key``
        returns the first deduction and changes nothing. ``metadata`` is merged
        over the reservation's.

        Raises:
            UnknownReservation: no reservation with this id belongs to the user.
            ReservationFinished: it was already deducted or released.
            DeductionExceedsReservation: ``amount`` is more than it holds.
        """
        key = None if idempotency_key is None else check_text(idempotency_key, "idempotency_key")
        deduction = Deduction(
            user_id=check_text(user_id, "user_id"),
            reservation_id=str(reservation_id),
            amount=to_amount(amount),
            idempotency_key=key,
            metadata=metadata_dict(metadata),
            created_at=check_created_at(created_at),
        )
        return self._deduct(deduction)

    def release_reservation(self, user_id: str, reservation_id: str) -> Reservation:
        """Give a reservation's credits back to the available balance.

        Raises:
            UnknownReservation: no reservation with this id belongs to the user.
            ReservationFinished: it was already deducted or released.
        """
        return self._release(check_text(user_id, "user_id"), str(reservation_id))

    def refund_credits(
        self,
        transaction_id: int,
        amount: int | Decimal | str | None = None,
        reason: str | None = None,
    ) -> Transaction:
        """Give back some or all (the default) of a spend transaction as a ``refund`` row.

        Raises:
            UnknownTransaction: no transaction has this id.
            RefundNotAllowed: it is not spend, or the refund exceeds what is left of it.
        """
        if isinstance(transaction_id, bool) or not isinstance(transaction_id, int):
            raise UnknownTransaction(f"transaction id must be an int, got {transaction_id!r}")
        refund = Refund(
            transaction_id=transaction_id,
            amount=None if amount is None else to_amount(amount, what="refund amount"),
            reason=None if reason is None else check_text(reason, "reason", max_bytes=None),
        )
        return self._refund(refund)

    def get_balance(self, user_id: str) -> Balance:
        """A user's balance, active reservations and what is available (zero if unknown)."""
        return self._balance(check_text(user_id, "user_id"))

    @abstractmethod
    def _append(self, entry: LedgerEntry) -> Transaction: ...

    @abstractmethod
    def _reserve(self, hold: Hold) -> Reservation: ...

    @abstractmethod
    def _deduct(self, deduction: Deduction) -> Transaction: ...

    @abstractmethod
    def _release(self, user_id: str, reservation_id: str) -> Reservation: ...

    @abstractmethod
    def _refund(self, refund: Refund) -> Transaction: ...

    @abstractmethod
    def _balance(self, user_id: str) -> Balance: ...


def balance_overflow(entry: LedgerEntry) -> InvalidAmount:
    """The error for a row that would take its user's balance beyond ``NUMERIC(18,4)``."""
    return InvalidAmount(
        f"{entry.type} of {entry.amount} would take the balance of user {entry.user_id!r} "
        f"beyond NUMERIC(18,4) (at most {MAX_AMOUNT} either way); nothing was written"
    )


def refund_entry(original: Transaction, refunded: Decimal, refund: Refund) -> LedgerEntry:
    """The ``refund`` row giving back part of ``original``, or why it may not.

    ``refunded`` is what earlier refunds of ``original`` already gave back.
    """
    if original.type != "usage" or original.amount >= 0:
        raise RefundNotAllowed(
            f"transaction {original.id} is a {original.type!r} row of {original.amount}, "
            f"not spend; only usage rows with a negative amount can be refunded"
        )
    remaining = -original.amount - refunded
    if remaining <= 0:
        raise RefundNotAllowed(f"transaction {original.id} is already fully refunded")
    if refund.amount is not None and refund.amount > remaining:
        raise RefundNotAllowed(
            f"refund of {refund.amount} exceeds the {scale4(remaining)} left to refund "
            f"of transaction {original.id}"
        )

    metadata: dict[str, Any] = {"refund_of": original.id}
    if "model" in original.metadata:
        metadata["model"] = original.metadata["model"]
    if refund.reason is not None:
        metadata["reason"] = refund.reason
    return LedgerEntry(
        user_id=original.user_id,
        amount=scale4(remaining) if refund.amount is None else refund.amount,
        type="refund",
        metadata=metadata,
        operation_type=original.operation_type,
        refund_of=original.id,
    )


def deduction_entry(deduction: Deduction, reservation: Reservation) -> LedgerEntry:
    """The ``usage`` row that finalizes ``reservation``, or why it may not."""
    if deduction.amount > reservation.amount:
        raise DeductionExceedsReservation(
            f"deduction of {deduction.amount} exceeds reservation {reservation.reservation_id} "
            f"of {reservation.amount} for user {deduction.user_id!r}"
        )
    return LedgerEntry(
        user_id=deduction.user_id,
        amount=-deduction.amount,
        type="usage",
        metadata={**reservation.metadata, **deduction.metadata},
        created_at=deduction.created_at,
        operation_type=reservation.operation_type,
        reservation_id=reservation.reservation_id,
        idempotency_key=deduction.idempotency_key,
    )
