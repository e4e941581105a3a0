"""All four sources agree exactly: PostgresStore, MemoryStore, and DuckDB and Polars on the lake.

Random ledgers are written to PostgreSQL and to a MemoryStore, exported in two
commits, and every source is asked the five questions over random windows (in
random zones, possibly empty). The answers must be identical: same rows, same
order, same ``Decimal`` values with the same scale.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ducto_olap.engines import DuckDBAnalytics, PolarsAnalytics
from ducto_olap.export import Exporter
from ducto_olap.questions import SpendQuestions
from ducto_olap.store.memory import MemoryStore
from ducto_olap.store.postgres import PostgresStore
from tests.strategies import ZONES, LedgerRow, ledgers, windows, write

_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


def answers(source: SpendQuestions, start: datetime, end: datetime, limit: int, zone: str) -> Any:
    """Every question over one window, Decimals kept as text so their scale is compared too."""
    results = {
        "spend_by_user": source.spend_by_user(start, end),
        "spend_by_model": source.spend_by_model(start, end),
        "top_users": source.top_users(limit, start, end),
        "daily_spend": source.daily_spend(start, end),
        "daily_spend_zoned": source.daily_spend(start, end, tz=zone),
        "aggregate_stats": [source.aggregate_stats(start, end)],
        "aggregate_stats_zoned": [source.aggregate_stats(start, end, tz=zone)],
    }
    return {name: [_plain(row) for row in rows] for name, rows in results.items()}


def _plain(row: Any) -> tuple[str, ...]:
    return tuple(repr(getattr(row, name)) for name in row.__slots__)


def check_sources_agree(
    store: PostgresStore,
    rows: list[LedgerRow],
    windows_asked: list[tuple[datetime, datetime]],
    limit: int,
    zone: str,
) -> None:
    with psycopg.connect(store.dsn, autocommit=True) as connection:
        connection.execute("TRUNCATE credit_transactions, credit_balances")
    memory = MemoryStore()
    write(memory, rows)

    lake = Path(tempfile.mkdtemp(prefix="ducto-equivalence-")) / "lake"
    try:
        # Two exports, so the engines read files of more than one commit.
        half = len(rows) // 2
        write(store, rows[:half])
        Exporter(store.dsn, lake, progress=False).run()
        write(store, rows[half:])
        Exporter(store.dsn, lake, progress=False).run()

        duck, polars = DuckDBAnalytics(lake), PolarsAnalytics(lake)
        try:
            for start, end in windows_asked:
                expected = answers(store, start, end, limit, zone)
                event(f"users in window: {min(len(expected['spend_by_user']), 3)}")
                assert answers(memory, start, end, limit, zone) == expected
                assert answers(duck, start, end, limit, zone) == expected
                assert answers(polars, start, end, limit, zone) == expected
        finally:
            duck.close()
    finally:
        shutil.rmtree(lake.parent, ignore_errors=True)


@settings(max_examples=25, **_SETTINGS)
@given(
    rows=ledgers,
    windows_asked=st.lists(windows(), min_size=1, max_size=3),
    limit=st.integers(0, 9),
    zone=st.sampled_from(ZONES),
)
def test_four_sources_agree(
    store: PostgresStore,
    rows: list[LedgerRow],
    windows_asked: list[tuple[datetime, datetime]],
    limit: int,
    zone: str,
) -> None:
    check_sources_agree(store, rows, windows_asked, limit, zone)


@pytest.mark.slow
@settings(max_examples=400, **_SETTINGS)
@given(
    rows=ledgers,
    windows_asked=st.lists(windows(), min_size=1, max_size=5),
    limit=st.integers(0, 40),
    zone=st.sampled_from(ZONES),
)
def test_four_sources_agree_at_length(
    store: PostgresStore,
    rows: list[LedgerRow],
    windows_asked: list[tuple[datetime, datetime]],
    limit: int,
    zone: str,
) -> None:
    check_sources_agree(store, rows, windows_asked, limit, zone)
