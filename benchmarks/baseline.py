"""PostgreSQL as a fair baseline: the index the issue names, then a tuned one, fresh statistics.

The five questions filter spend (``type = 'usage' AND amount < 0``) on a
``created_at`` window and group by user, model or day. The baseline the speed
targets are measured against (issue 4) is a B-tree on ``created_at`` with
``VACUUM ANALYZE``. The suite then tunes Postgres further, as an operator with
this workload would, with a partial covering index on spend rows so the
per-user and per-day questions are answered by index-only scans, and times it
again: the lake engines are compared with both. Server settings are left at the
server's defaults (parallel workers included) and recorded as they are.
"""

from __future__ import annotations

from typing import Any

import psycopg

BASELINE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS bench_created_at ON credit_transactions (created_at)",
)
TUNED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS bench_spend_created_at ON credit_transactions (created_at) "
    "INCLUDE (user_id, amount) WHERE type = 'usage' AND amount < 0",
)

SETTINGS = (
    "server_version",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_worker_processes",
    "max_parallel_workers",
    "max_parallel_workers_per_gather",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "min_parallel_table_scan_size",
    "random_page_cost",
    "jit",
    "synchronous_commit",
)


def prepare(dsn: str) -> dict[str, Any]:
    """Add the baseline index, ``VACUUM ANALYZE``, and describe the result."""
    return _index(dsn, BASELINE_INDEXES)


def tune(dsn: str) -> dict[str, Any]:
    """Add the tuned index on top of the baseline, ``VACUUM ANALYZE``, and describe it."""
    return _index(dsn, TUNED_INDEXES)


def _index(dsn: str, statements: tuple[str, ...]) -> dict[str, Any]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)
        connection.execute("VACUUM ANALYZE credit_transactions")
    return describe(dsn)


def describe(dsn: str) -> dict[str, Any]:
    """The settings that matter for these queries, the indexes and the table size."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        settings = {
            name: value
            for name, value in connection.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) "
                "ORDER BY name",
                ([name for name in SETTINGS],),
            )
        }
        indexes = [
            row[0]
            for row in connection.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'credit_transactions' "
                "ORDER BY indexname"
            )
        ]
        size = connection.execute(
            "SELECT pg_total_relation_size('credit_transactions'), "
            "pg_relation_size('credit_transactions')"
        ).fetchone()
    assert size is not None
    return {
        "settings": settings,
        "indexes": indexes,
        "table_bytes": size[1],
        "total_bytes_with_indexes": size[0],
    }
