"""The store's two-phase spending and its refusals, on PostgresStore and MemoryStore alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from ducto_olap import (
    CreditMetadata,
    DatabaseError,
    DeductionExceedsReservation,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    InvalidMetadata,
    MemoryStore,
    PostgresStore,
    RefundNotAllowed,
    ReservationFinished,
    UnknownReservation,
    UnknownTransaction,
    WindowError,
)

NOW = datetime.now(UTC)
WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=1))


@pytest.fixture(params=["postgres", "memory"])
def any_store(request: pytest.FixtureRequest) -> Iterator[PostgresStore | MemoryStore]:
    if request.param == "memory":
        yield MemoryStore()
    else:
        yield request.getfixturevalue("store")


def test_two_phase_spend_moves_the_balance(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("alice", 1000)
    hold = any_store.reserve_credits("alice", "300.5", operation_type="inference")

    assert any_store.get_balance("alice").available == Decimal("699.5000")
    spent = any_store.deduct_credits(
        "alice", hold.reservation_id, Decimal("250.25"), metadata=CreditMetadata(model="gpt-4o")
    )

    assert spent.amount == Decimal("-250.2500")
    assert spent.type == "usage" and spent.operation_type == "inference"
    assert spent.metadata == {"model": "gpt-4o"}
    balance = any_store.get_balance("alice")
    assert (balance.balance, balance.reserved, balance.available) == (
        Decimal("749.7500"),
        Decimal("0.0000"),
        Decimal("749.7500"),
    )


def test_release_gives_the_hold_back(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("bob", 100)
    hold = any_store.reserve_credits("bob", 100, "inference")
    with pytest.raises(InsufficientCredits, match="asked to reserve 1.0000 credits but has 0.0000"):
        any_store.reserve_credits("bob", 1, "inference")

    released = any_store.release_reservation("bob", hold.reservation_id)

    assert released.status == "released"
    assert any_store.get_balance("bob").available == Decimal("100.0000")
    with pytest.raises(ReservationFinished, match="already released"):
        any_store.deduct_credits("bob", hold.reservation_id, 1)


def test_min_balance_is_kept(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("carol", 100)
    with pytest.raises(InsufficientCredits, match="minimum balance 20.0000"):
        any_store.reserve_credits("carol", 81, "inference", min_balance=20)
    assert any_store.reserve_credits("carol", 80, "inference", min_balance=20).amount == 80


def test_replayed_idempotency_key_returns_the_first_deduction(
    any_store: PostgresStore | MemoryStore,
) -> None:
    any_store.add_credits("dave", 500)
    hold = any_store.reserve_credits("dave", 200, "inference")
    first = any_store.deduct_credits("dave", hold.reservation_id, 150, idempotency_key="req-1")

    replay = any_store.deduct_credits("dave", hold.reservation_id, 150, idempotency_key="req-1")

    assert replay == first
    assert any_store.get_balance("dave").balance == Decimal("350.0000")
    assert len(any_store.spend_by_user(*WINDOW)) == 1


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (0, "must be positive"),
        (-5, "must be positive"),
        (Decimal("NaN"), "not finite"),
        ("Infinity", "not finite"),
        (1.5, "is a float"),
        (True, "is a bool"),
        ("12,5", "not a number"),
        (Decimal("100000000000000"), "beyond NUMERIC"),
        (Decimal("0.00001"), "more than 4 decimal places"),
    ],
)
def test_bad_amounts_are_refused_and_write_nothing(
    any_store: PostgresStore | MemoryStore, amount: object, message: str
) -> None:
    any_store.add_credits("erin", 10)
    hold = any_store.reserve_credits("erin", 5, "inference")

    for call in (
        lambda: any_store.add_credits("erin", amount),  # type: ignore[arg-type]
        lambda: any_store.reserve_credits("erin", amount, "inference"),  # type: ignore[arg-type]
        lambda: any_store.deduct_credits("erin", hold.reservation_id, amount),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidAmount, match=message):
            call()

    balance = any_store.get_balance("erin")
    assert (balance.balance, balance.reserved) == (Decimal("10.0000"), Decimal("5.0000"))


def test_unknown_and_finished_reservations(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("fay", 100)
    hold = any_store.reserve_credits("fay", 50, "inference")

    with pytest.raises(UnknownReservation, match="no reservation"):
        any_store.deduct_credits("fay", "not-a-uuid", 10)
    with pytest.raises(UnknownReservation, match="no reservation"):
        any_store.deduct_credits("fay", "00000000-0000-0000-0000-000000000000", 10)
    with pytest.raises(UnknownReservation, match="for user 'gus'"):
        any_store.deduct_credits("gus", hold.reservation_id, 10)
    with pytest.raises(DeductionExceedsReservation, match="exceeds reservation"):
        any_store.deduct_credits("fay", hold.reservation_id, 51)

    any_store.deduct_credits("fay", hold.reservation_id, 50)
    with pytest.raises(ReservationFinished, match="already deducted"):
        any_store.deduct_credits("fay", hold.reservation_id, 1)
    with pytest.raises(ReservationFinished, match="already deducted"):
        any_store.release_reservation("fay", hold.reservation_id)


def test_refunds(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("hal", 100)
    hold = any_store.reserve_credits("hal", 60, "inference")
    spent = any_store.deduct_credits(
        "hal", hold.reservation_id, 60, metadata=CreditMetadata(model="m")
    )

    partial = any_store.refund_credits(spent.id, 20, reason="timeout")
    rest = any_store.refund_credits(spent.id)

    assert (partial.type, partial.amount, partial.refund_of) == ("refund", Decimal("20"), spent.id)
    assert partial.metadata == {"refund_of": spent.id, "model": "m", "reason": "timeout"}
    assert rest.amount == Decimal("40.0000")
    assert any_store.get_balance("hal").balance == Decimal("100.0000")
    with pytest.raises(RefundNotAllowed, match="already fully refunded"):
        any_store.refund_credits(spent.id, 1)
    with pytest.raises(RefundNotAllowed, match="not spend"):
        any_store.refund_credits(rest.id)
    with pytest.raises(UnknownTransaction, match="no transaction with id 999999"):
        any_store.refund_credits(999999)
    # Refunds are not spend: the spend questions still see the full deduction.
    assert any_store.spend_by_user(*WINDOW)[0].total_spend == Decimal("60.0000")


def test_refund_above_what_is_left(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("ida", 100)
    hold = any_store.reserve_credits("ida", 30, "inference")
    spent = any_store.deduct_credits("ida", hold.reservation_id, 30)
    with pytest.raises(RefundNotAllowed, match="exceeds the 30.0000 left"):
        any_store.refund_credits(spent.id, 31)


@pytest.mark.parametrize(
    "user_id",
    [
        "o'brien",
        'quote"double',
        "'; DROP TABLE credit_transactions; --",
        "Zoë 🚀 用户",
        "a/b=c d",
        "x" * 500,
        "back\\u0000slash",  # a backslash and "u0000", not a NUL: JSON escapes it
    ],
)
def test_strange_user_ids_and_models_round_trip(
    any_store: PostgresStore | MemoryStore, user_id: str
) -> None:
    any_store.add_credits(user_id, 10)
    hold = any_store.reserve_credits(user_id, 5, "inference")
    any_store.deduct_credits(user_id, hold.reservation_id, 5, metadata={"model": user_id})

    assert any_store.spend_by_user(*WINDOW)[0].user_id == user_id
    assert any_store.spend_by_model(*WINDOW)[0].model == user_id
    assert any_store.get_balance(user_id).balance == Decimal("5.0000")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.add_credits("", 1), InvalidInput, "non-empty string"),
        (lambda s: s.add_credits("nul\x00", 1), InvalidInput, "NUL"),
        (lambda s: s.add_credits(42, 1), InvalidInput, "non-empty string"),
        (lambda s: s.add_credits("u", 1, type=""), InvalidInput, "type must be"),
        (lambda s: s.add_credits("u", 1, metadata={"x": Decimal(1)}), InvalidMetadata, "not JSON"),
        (lambda s: s.add_credits("u", 1, metadata=[1]), InvalidMetadata, "mapping"),
        (
            lambda s: s.add_credits("u", 1, created_at=datetime(2026, 1, 1)),
            InvalidInput,
            "timezone-aware",
        ),
        (lambda s: s.reserve_credits("u", 1, ""), InvalidInput, "operation_type"),
        (lambda s: s.reserve_credits("u", 1, "x", min_balance=-1), InvalidAmount, "min_balance"),
        (lambda s: s.refund_credits("1"), UnknownTransaction, "must be an int"),
    ],
)
def test_bad_arguments(
    any_store: PostgresStore | MemoryStore, call: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(any_store)  # type: ignore[operator]
    assert any_store.get_balance("u").balance == 0


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), "start .* is naive"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2), "end .* is naive"),
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), "after end"),
        ("2026-01-01", datetime(2026, 1, 2, tzinfo=UTC), "must be a datetime"),
    ],
)
def test_bad_windows(
    any_store: PostgresStore | MemoryStore, start: datetime, end: datetime, message: str
) -> None:
    with pytest.raises(WindowError, match=message):
        any_store.spend_by_user(start, end)
    with pytest.raises(ValueError, match=message):
        any_store.aggregate_stats(start, end)


def test_bad_limit_and_zone(any_store: PostgresStore | MemoryStore) -> None:
    with pytest.raises(WindowError, match="limit must be 0 or more"):
        any_store.top_users(-1, *WINDOW)
    with pytest.raises(WindowError, match="unknown time zone 'Mars/Olympus'"):
        any_store.daily_spend(*WINDOW, tz="Mars/Olympus")
    assert any_store.top_users(0, *WINDOW) == []


def test_created_at_backfill_counts_in_its_window(any_store: PostgresStore | MemoryStore) -> None:
    then = datetime(2025, 3, 1, 12, tzinfo=UTC)
    any_store.add_credits("jo", 10, created_at=then)
    hold = any_store.reserve_credits("jo", 4, "inference")
    any_store.deduct_credits("jo", hold.reservation_id, 4, created_at=then)

    rows = any_store.daily_spend(then - timedelta(hours=1), then + timedelta(hours=1))
    assert [(row.date, row.total_spend) for row in rows] == [("2025-03-01", Decimal("4.0000"))]


def test_setup_is_idempotent(store: PostgresStore) -> None:
    store.add_credits("kim", 7)
    store.setup()
    store.setup()
    assert store.get_balance("kim").balance == Decimal("7.0000")


def test_plain_sql_rows_are_ledger_rows(store: PostgresStore, database_dsn: str) -> None:
    with psycopg.connect(database_dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, metadata, created_at) "
            "VALUES (%s, %s, 'purchase', '{}', now()), "
            "(%s, %s, 'usage', '{\"model\": \"claude-haiku-3.5\"}', now())",
            ("lee", Decimal("50"), "lee", Decimal("-12.3456")),
        )

    assert store.get_balance("lee").balance == Decimal("37.6544")
    assert store.spend_by_model(*WINDOW)[0].model == "claude-haiku-3.5"


def test_ledger_is_append_only(store: PostgresStore, database_dsn: str) -> None:
    store.add_credits("max", 5)
    with psycopg.connect(database_dsn) as connection, pytest.raises(psycopg.Error):
        connection.execute("UPDATE credit_transactions SET amount = 1000")


def test_driver_errors_are_wrapped() -> None:
    with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL at .*\\*\\*\\*"):
        PostgresStore("postgresql://someone:secret@127.0.0.1:1/nowhere?connect_timeout=1")


def test_balance_beyond_numeric_18_4_is_refused(any_store: PostgresStore | MemoryStore) -> None:
    any_store.add_credits("rich", "99999999999999.9999")
    with pytest.raises(InvalidAmount, match="beyond NUMERIC"):
        any_store.add_credits("rich", 1)
    assert any_store.get_balance("rich").balance == Decimal("99999999999999.9999")


def test_overlong_ids_are_refused(any_store: PostgresStore | MemoryStore) -> None:
    with pytest.raises(InvalidInput, match="the limit is 1000 bytes"):
        any_store.add_credits("u" * 1001, 1)
    hold_user = "ok"
    any_store.add_credits(hold_user, 5)
    hold = any_store.reserve_credits(hold_user, 1, "inference")
    with pytest.raises(InvalidInput, match="idempotency_key is 4000 bytes"):
        any_store.deduct_credits(hold_user, hold.reservation_id, 1, idempotency_key="é" * 2000)


def test_a_database_without_a_ledger_says_how_to_make_one(database_dsn: str) -> None:
    bare = PostgresStore(database_dsn)
    with pytest.raises(
        DatabaseError, match="no ledger in .*setup\\(\\) or fill it with ducto-olap seed"
    ):
        bare.spend_by_user(*WINDOW)
    bare.close()


def test_imported_rows_may_be_negative_but_not_zero(any_store: PostgresStore | MemoryStore) -> None:
    with pytest.raises(InvalidAmount, match="must not be zero"):
        any_store.import_transaction("zed", 0, "usage")
    assert any_store.import_transaction("zed", "-1.5", "usage").amount == Decimal("-1.5000")
