"""Many connections spending one balance at once never overspend it."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import psycopg

from ducto_olap import InsufficientCredits, PostgresStore

THREADS = 8
ATTEMPTS = 40


def test_concurrent_reserve_and_deduct_never_overspend(database_dsn: str) -> None:
    PostgresStore(database_dsn).setup()
    stores = [PostgresStore(database_dsn, max_connections=1) for _ in range(THREADS)]
    stores[0].add_credits("shared", 5000)
    barrier = threading.Barrier(THREADS)
    deducted: list[Decimal] = []
    refused: list[int] = []
    lock = threading.Lock()

    def spend(store: PostgresStore, seed: int) -> None:
        chance = random.Random(seed)
        barrier.wait()
        for attempt in range(ATTEMPTS):
            amount = Decimal(chance.randint(10, 60))
            try:
                hold = store.reserve_credits("shared", amount, "inference")
            except InsufficientCredits:
                with lock:
                    refused.append(attempt)
                continue
            if chance.random() < 0.2:
                store.release_reservation("shared", hold.reservation_id)
                continue
            spent = amount - chance.randint(0, 9)
            store.deduct_credits(
                "shared", hold.reservation_id, spent, idempotency_key=f"{seed}-{attempt}"
            )
            with lock:
                deducted.append(spent)

    workers = [
        threading.Thread(target=spend, args=(store, seed)) for seed, store in enumerate(stores)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    balance = stores[0].get_balance("shared")
    with psycopg.connect(database_dsn) as connection:
        ledger_spend, usage_rows = connection.execute(
            "SELECT coalesce(-sum(amount), 0), count(*) FROM credit_transactions "
            "WHERE type = 'usage'"
        ).fetchone()  # type: ignore[misc]
        statuses = dict(
            connection.execute(
                "SELECT status, count(*) FROM credit_reservations GROUP BY status"
            ).fetchall()
        )
    for store in stores:
        store.close()

    assert refused, "the balance should have run out during the test"
    assert balance.balance >= 0 and balance.reserved == 0
    assert ledger_spend == sum(deducted) == Decimal(5000) - balance.balance
    assert usage_rows == len(deducted) == statuses.get("deducted", 0)
    assert "active" not in statuses
