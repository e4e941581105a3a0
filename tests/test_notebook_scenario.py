"""The scenario of the notebook this project grew from, through the store's API."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ducto_olap import CreditMetadata, MemoryStore, PostgresStore

MODELS = ["gpt-4o", "claude-sonnet-4", "claude-haiku-3.5"]


def test_notebook_scenario_agrees_between_stores(store: PostgresStore) -> None:
    memory = MemoryStore()
    chance = random.Random(7)
    users = [str(uuid.UUID(int=chance.getrandbits(128))) for _ in range(3)]
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

    for user in users:
        for source in (store, memory):
            source.add_credits(user, 100_000, type="adjustment")
        for day_offset in range(7):
            amount = chance.randint(100, 2_000)
            model = chance.choice(MODELS)
            when = today - timedelta(days=day_offset)
            for source in (store, memory):
                hold = source.reserve_credits(user, amount, operation_type="inference")
                source.deduct_credits(
                    user,
                    hold.reservation_id,
                    amount,
                    metadata=CreditMetadata(model=model),
                    created_at=when,
                )

    end = datetime.now(UTC) + timedelta(days=1)
    start = end - timedelta(days=30)
    assert store.spend_by_user(start, end) == memory.spend_by_user(start, end)
    assert store.spend_by_model(start, end) == memory.spend_by_model(start, end)
    assert store.top_users(5, start, end) == memory.top_users(5, start, end)
    assert store.daily_spend(start, end) == memory.daily_spend(start, end)
    assert store.aggregate_stats(start, end) == memory.aggregate_stats(start, end)

    stats = store.aggregate_stats(start, end)
    assert stats.active_users == 3
    assert len(store.daily_spend(start, end)) == 7
    assert sum(row.transaction_count for row in store.spend_by_user(start, end)) == 21
    for user in users:
        spent = next(row for row in store.spend_by_user(start, end) if row.user_id == user)
        assert store.get_balance(user).balance == Decimal(100_000) - spent.total_spend
