"""PostgresStore and MemoryStore give identical answers to the five questions."""

from __future__ import annotations

from datetime import datetime

import psycopg
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ducto_olap import MemoryStore, PostgresStore
from tests.strategies import ZONES, LedgerRow, ledgers, windows, write


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=ledgers,
    window=windows(),
    limit=st.integers(0, 9),
    zone=st.sampled_from(ZONES),
)
def test_postgres_and_memory_agree(
    store: PostgresStore,
    database_dsn: str,
    rows: list[LedgerRow],
    window: tuple[datetime, datetime],
    limit: int,
    zone: str,
) -> None:
    with psycopg.connect(database_dsn, autocommit=True) as connection:
        connection.execute("TRUNCATE credit_transactions, credit_balances")
    memory = MemoryStore()
    write(store, rows)
    write(memory, rows)
    start, end = window

    answer = store.spend_by_user(start, end)
    event(f"users in window: {min(len(answer), 3)}")
    assert answer == memory.spend_by_user(start, end)
    assert store.spend_by_model(start, end) == memory.spend_by_model(start, end)
    assert store.top_users(limit, start, end) == memory.top_users(limit, start, end)
    assert store.daily_spend(start, end) == memory.daily_spend(start, end)
    assert store.daily_spend(start, end, tz=zone) == memory.daily_spend(start, end, tz=zone)
    assert store.aggregate_stats(start, end) == memory.aggregate_stats(start, end)
    assert store.aggregate_stats(start, end, tz=zone) == memory.aggregate_stats(start, end, tz=zone)
