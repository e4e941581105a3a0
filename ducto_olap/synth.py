"""A synthetic credit ledger, generated inside PostgreSQL and deterministic from a seed.

:func:`seed_ledger` writes ``rows`` ledger rows with ``INSERT ... SELECT ... FROM
generate_series`` in bounded chunks, so nothing crosses the wire but the
statement and memory stays flat whatever the size. Every value of row ``i``
comes from two 64-bit hashes of ``(seed, i)`` (``hashtextextended``), never from
``random()``: the same seed gives the same ledger in any plan, parallel or not.

The shape follows a real inference-credits ledger:

- users spend with a Zipf-like skew (user ``k`` is about ``1/k`` as likely as
  user 1), models with a milder skew;
- about 90% of rows are spend (``usage`` with a negative amount); the rest are
  refunds, purchases, adjustments and a few positive ``usage`` corrections;
- amounts have 4 decimals and are built from integers, never from floats;
- ``created_at`` rises with ``id`` over ``days`` days ending at ``end`` (as an
  append-only ledger does), with jitter inside each row's slot;
- metadata carries the model, a request id and token counts; some spend rows
  have no ``model`` key and some an explicit JSON ``null``.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from ducto_olap.errors import DatabaseError, InvalidInput
from ducto_olap.settings import mask_dsn
from ducto_olap.store.postgres import PostgresStore

logger = logging.getLogger("ducto_olap.synth")

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "claude-sonnet-4",
    "gpt-4o-mini",
    "claude-haiku-3.5",
    "gemini-2.0-flash",
    "llama-3.1-70b",
    "mistral-large",
    "text-embedding-3-small",
)

# One statement per chunk keeps the WAL, the trigger's transition table and
# the balance fold bounded; larger chunks barely speed it up.
CHUNK_ROWS = 500_000

# Below this many rows, rebuilding the indexes costs more than it saves.
_DEFER_INDEXES_FROM = 200_000
_DEADLOCK_RETRIES = 5

_MICROSECONDS_PER_DAY = 86_400_000_000

# The row generator. %(name)s are bound parameters. Bit slices of h1 pick the
# categorical values, h2 gives the amount and the jitter; both are masked to
# be non-negative.
_INSERT_SQL = """
INSERT INTO credit_transactions
    (user_id, amount, type, operation_type, metadata, created_at)
SELECT
    md5(%(seed)s::text || ':user:' || g.user_index)::uuid::text,
    CASE g.kind
        WHEN 'spend'      THEN -((g.h2 %% 2000000) + 1) * 0.0001
        WHEN 'correction' THEN ((g.h2 %% 50000) + 1) * 0.0001
        WHEN 'refund'     THEN ((g.h2 %% 500000) + 1) * 0.0001
        WHEN 'purchase'   THEN ((g.h2 %% 1000) + 1) * 10.0000
        ELSE                   ((g.h2 %% 1000000) + 1) * 0.0001
    END::numeric(18, 4),
    CASE WHEN g.kind IN ('spend', 'correction') THEN 'usage' ELSE g.kind END,
    CASE WHEN g.kind IN ('purchase', 'adjustment') THEN NULL
         ELSE (ARRAY['inference', 'inference', 'inference', 'embedding', 'batch'])
              [1 + (g.h1 >> 50) %% 5]
    END,
    CASE
        WHEN g.kind IN ('purchase', 'adjustment') THEN
            jsonb_build_object('source', 'synthetic', 'invoice', 'inv_' || to_hex(g.h2))
        WHEN g.model_roll < 20 THEN
            jsonb_build_object('request_id', 'req_' || to_hex(g.h2))
        WHEN g.model_roll < 30 THEN
            jsonb_build_object('model', NULL, 'request_id', 'req_' || to_hex(g.h2))
        ELSE jsonb_build_object(
            'model', (%(models)s::text[])[1 + g.model_index],
            'request_id', 'req_' || to_hex(g.h2),
            'tokens_in', (g.h2 >> 20) %% 8000,
            'tokens_out', (g.h2 >> 33) %% 2000)
    END,
    %(start)s::timestamptz
        + make_interval(secs => ((g.i - 1) * %(step)s + (g.h2 >> 8) %% %(step)s) / 1000000.0)
FROM (
    SELECT
        h.i, h.h1, h.h2,
        -- log-uniform index: P(user k) is proportional to 1/(k+1), a Zipf law
        least(floor(exp((h.h1 & 1048575)::float8 / 1048576 * ln(%(users)s::float8 + 1)))::bigint
              - 1, %(users)s - 1) AS user_index,
        least(floor(%(model_count)s * power(((h.h1 >> 20) & 65535)::float8 / 65536, 2))::int,
              %(model_count)s - 1) AS model_index,
        (h.h1 >> 36) & 1023 AS model_roll,
        CASE
            WHEN ((h.h1 >> 46) & 1023) < 922 THEN 'spend'
            WHEN ((h.h1 >> 46) & 1023) < 932 THEN 'correction'
            WHEN ((h.h1 >> 46) & 1023) < 983 THEN 'refund'
            WHEN ((h.h1 >> 46) & 1023) < 1003 THEN 'purchase'
            ELSE 'adjustment'
        END AS kind
    FROM (
        SELECT i,
               hashtextextended(i::text, %(seed)s) & 9223372036854775807 AS h1,
               hashtextextended(i::text, %(seed2)s) & 9223372036854775807 AS h2
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
    ) AS h
) AS g
"""


@dataclasses.dataclass(frozen=True, slots=True)
class SeedSummary:
    """What :func:`seed_ledger` wrote."""

    rows: int
    users: int
    models: int
    days: int
    seed: int
    start: datetime
    end: datetime
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows written per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain values for JSON or a table: datetimes as ISO text."""
        return {
            "rows": self.rows,
            "users": self.users,
            "models": self.models,
            "days": self.days,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
        }


def default_end() -> datetime:
    """The start of the current UTC day: the ledger covers whole days, none in the future."""
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def seed_ledger(
    dsn: str,
    *,
    rows: int,
    users: int,
    days: int,
    seed: int,
    models: Sequence[str] = DEFAULT_MODELS,
    end: datetime | None = None,
    chunk_rows: int = CHUNK_ROWS,
    workers: int = 2,
    analyze: bool = True,
) -> SeedSummary:
    """Append a deterministic synthetic ledger to ``credit_transactions``.

    Args:
        dsn: the PostgreSQL database; its schema is set up first.
        rows: how many ledger rows to write.
        users: how many distinct users may appear (skewed: the tail may not).
        days: the ledger spans ``[end - days, end)``.
        seed: the same seed, sizes and ``end`` give the same rows.
        models: the model names spend is attributed to, most used first.
        end: the exclusive end of the ledger; default the start of the current UTC day.
        chunk_rows: rows per ``INSERT`` statement (each its own transaction).
        workers: connections inserting chunks side by side. With more than one,
            ``id`` order follows the chunks' landing order, not ``created_at``;
            every value and aggregate is still the same for the same seed.
        analyze: run ``VACUUM ANALYZE`` afterwards so the planner knows the data.

    Returns:
        The sizes, the time span and how long it took.

    Example:
        >>> seed_ledger(dsn, rows=1_000_000, users=10_000, days=90, seed=42)
        SeedSummary(rows=1000000, users=10000, ...)
    """
    model_names = _check_sizes(rows, users, days, seed, models, chunk_rows)
    finish = _check_end(end)
    begin = finish - timedelta(days=days)
    step = days * _MICROSECONDS_PER_DAY // rows if rows else 1

    _check_connection(dsn)
    with PostgresStore(dsn, max_connections=1) as store:
        store.setup()

    started = time.perf_counter()
    params: dict[str, object] = {
        "seed": seed,
        "seed2": seed ^ 0x5BD1_E995,
        "users": users,
        "model_count": len(model_names),
        "models": list(model_names),
        "start": begin,
        "step": step,
    }
    chunks = [
        (first, min(first + chunk_rows - 1, rows)) for first in range(1, rows + 1, chunk_rows)
    ]
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            deferred = _defer_indexes(connection) if rows >= _DEFER_INDEXES_FROM else []
            _insert_chunks(dsn, chunks, params, max(1, min(workers, len(chunks))))
            for definition in deferred:
                connection.execute(definition)
            if analyze and rows:
                connection.execute("VACUUM ANALYZE credit_transactions")
                connection.execute("VACUUM ANALYZE credit_balances")
    except psycopg.Error as error:
        raise DatabaseError(
            f"seeding {rows} rows into {mask_dsn(dsn)} failed: {error}".strip()
        ) from error

    seconds = time.perf_counter() - started
    summary = SeedSummary(rows, users, len(model_names), days, seed, begin, finish, seconds)
    logger.info(
        "seeded %d rows, %d users, %d days in %.1f s (%.0f rows/s)",
        rows,
        users,
        days,
        seconds,
        summary.rows_per_second,
    )
    return summary


def _check_connection(dsn: str) -> None:
    # Fail in a second with the driver's reason, not after the pool's retries.
    try:
        psycopg.connect(dsn, connect_timeout=10).close()
    except psycopg.Error as error:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {error}; check --dsn"
        ) from error


def _insert_chunks(
    dsn: str, chunks: list[tuple[int, int]], params: dict[str, object], workers: int
) -> None:
    pending: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    for chunk in chunks:
        pending.put(chunk)

    def work() -> None:
        with psycopg.connect(dsn, autocommit=True) as connection:
            while True:
                try:
                    first, last = pending.get_nowait()
                except queue.Empty:
                    return
                _insert_chunk(connection, params, first, last)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ducto-seed") as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            future.result()


def _insert_chunk(
    connection: psycopg.Connection[Any], params: dict[str, object], first: int, last: int
) -> None:
    # Two chunks fold into credit_balances at once and may lock the same users
    # in different orders; PostgreSQL then aborts one, which is safe to rerun.
    for attempt in range(1, _DEADLOCK_RETRIES + 1):
        try:
            with connection.transaction():
                # Losing a seed to a crash costs a rerun, not money: skip the WAL flush.
                connection.execute("SET LOCAL synchronous_commit = off")
                connection.execute(_INSERT_SQL, {**params, "first": first, "last": last})
        except psycopg.errors.DeadlockDetected:
            if attempt == _DEADLOCK_RETRIES:
                raise
            logger.debug("rows %d..%d deadlocked on balances; retrying", first, last)
            continue
        logger.debug("seeded rows %d..%d", first, last)
        return


def _defer_indexes(connection: psycopg.Connection[Any]) -> list[str]:
    """Drop the plain secondary indexes of an empty ledger; return how to rebuild them.

    Building an index once after a bulk load is about twice as fast as
    maintaining it row by row. Unique, partial and constraint indexes stay, so
    no rule of the ledger is off during the load. A crash before the rebuild
    leaves them missing until the next ``PostgresStore.setup()``.
    """
    if connection.execute("SELECT 1 FROM credit_transactions LIMIT 1").fetchone():
        return []
    rows = connection.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'credit_transactions'::regclass
          AND NOT i.indisunique AND i.indpred IS NULL
          AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)
        ORDER BY c.relname
        """
    ).fetchall()
    for name, _ in rows:
        connection.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [definition for _, definition in rows]


def _check_sizes(
    rows: int, users: int, days: int, seed: int, models: Sequence[str], chunk_rows: int
) -> tuple[str, ...]:
    for name, value, low in (
        ("rows", rows, 0),
        ("users", users, 1),
        ("days", days, 1),
        ("chunk_rows", chunk_rows, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInput(f"{name} must be an int of at least {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not -(2**62) <= seed < 2**62:
        raise InvalidInput(f"seed must be an int between -2**62 and 2**62, got {seed!r}")
    if rows > days * _MICROSECONDS_PER_DAY:
        raise InvalidInput(f"{rows} rows do not fit {days} days at one per microsecond; add days")

    names = tuple(models)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise InvalidInput(f"models must be a non-empty list of names, got {models!r}")
    return names


def _check_end(end: datetime | None) -> datetime:
    if end is None:
        return default_end()
    if not isinstance(end, datetime) or end.tzinfo is None or end.utcoffset() is None:
        raise InvalidInput(
            f"end {end!r} must be a timezone-aware datetime, for example "
            f"datetime(2025, 1, 1, tzinfo=timezone.utc)"
        )
    return end.astimezone(UTC)
