"""The synthetic ledger: deterministic from its seed, shaped like a real one, sizes respected."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from ducto_olap import synth
from ducto_olap.cli.main import _register, cli
from ducto_olap.errors import InvalidInput
from ducto_olap.synth import seed_ledger

END = datetime(2025, 6, 1, tzinfo=UTC)
SIZES: dict[str, Any] = {"rows": 20_000, "users": 500, "days": 30, "end": END, "chunk_rows": 6_000}

AGGREGATES = {
    "totals": "SELECT count(*), sum(amount), count(DISTINCT user_id), min(created_at), "
    "max(created_at) FROM credit_transactions",
    "per_type": "SELECT type, count(*), sum(amount) FROM credit_transactions GROUP BY 1 ORDER BY 1",
    "per_model": "SELECT metadata ->> 'model', count(*), sum(amount) FROM credit_transactions "
    "GROUP BY 1 ORDER BY 1 NULLS FIRST",
    "per_user": "SELECT user_id, count(*), sum(amount) FROM credit_transactions "
    "GROUP BY 1 ORDER BY 1",
    "per_day": "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*), sum(amount) "
    "FROM credit_transactions GROUP BY 1 ORDER BY 1",
    "balances": "SELECT user_id, balance FROM credit_balances ORDER BY 1",
}


@pytest.fixture
def other_dsn(server_dsn: str) -> Iterator[str]:
    """A second fresh database, to seed twice and compare."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(server_dsn, dbname=name)
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def aggregates(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as connection:
        return {name: connection.execute(query).fetchall() for name, query in AGGREGATES.items()}


def scalar(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_same_seed_gives_the_same_ledger(database_dsn: str, other_dsn: str) -> None:
    seed_ledger(database_dsn, seed=7, **SIZES)
    seed_ledger(other_dsn, seed=7, workers=1, **SIZES)

    assert aggregates(database_dsn) == aggregates(other_dsn)


def test_different_seeds_give_different_ledgers(database_dsn: str, other_dsn: str) -> None:
    seed_ledger(database_dsn, seed=7, **SIZES)
    seed_ledger(other_dsn, seed=8, **SIZES)

    first, second = aggregates(database_dsn), aggregates(other_dsn)
    assert first["totals"][0][0] == second["totals"][0][0] == SIZES["rows"]
    assert first["totals"] != second["totals"]
    assert first["per_user"] != second["per_user"]


def test_sizes_and_time_span_are_respected(database_dsn: str) -> None:
    summary = seed_ledger(database_dsn, seed=1, **SIZES)

    assert (summary.rows, summary.users, summary.days) == (20_000, 500, 30)
    assert summary.start == END - timedelta(days=30) and summary.end == END
    count, _, users, first, last = aggregates(database_dsn)["totals"][0]
    assert count == 20_000
    assert 400 <= users <= 500
    assert summary.start <= first and last < END
    assert len(aggregates(database_dsn)["per_day"]) == 30


def test_spend_is_skewed_towards_few_users(database_dsn: str) -> None:
    seed_ledger(database_dsn, seed=1, **SIZES)

    per_user = sorted((row[1] for row in aggregates(database_dsn)["per_user"]), reverse=True)
    top_tenth = sum(per_user[: len(per_user) // 10])
    assert top_tenth > 0.4 * sum(per_user)


def test_amounts_are_exact_with_four_decimals(database_dsn: str) -> None:
    seed_ledger(database_dsn, seed=3, **SIZES)

    with psycopg.connect(database_dsn) as connection:
        amounts = [row[0] for row in connection.execute("SELECT amount FROM credit_transactions")]
    assert all(isinstance(amount, Decimal) for amount in amounts)
    assert {amount.as_tuple().exponent for amount in amounts} == {-4}
    assert sum(1 for amount in amounts if (amount * 10_000) % 10 != 0) > len(amounts) // 2
    assert sum(amounts, Decimal(0)) == scalar(
        database_dsn, "SELECT sum(amount) FROM credit_transactions"
    )


def test_the_ledger_has_every_kind_of_row(database_dsn: str) -> None:
    seed_ledger(database_dsn, seed=5, **SIZES)

    def count(where: str) -> int:
        return int(scalar(database_dsn, f"SELECT count(*) FROM credit_transactions WHERE {where}"))

    spend = count("type = 'usage' AND amount < 0")
    assert 0.85 * 20_000 < spend < 0.95 * 20_000
    assert count("type = 'usage' AND amount > 0") > 0
    assert count("type = 'refund' AND amount > 0") > 0.02 * 20_000
    assert count("type = 'purchase' AND amount > 0") > 0
    assert count("type = 'adjustment' AND amount > 0") > 0
    assert count("type = 'usage' AND NOT metadata ? 'model'") > 0
    assert count("type = 'usage' AND metadata -> 'model' = 'null'::jsonb") > 0
    assert count("type = 'usage' AND metadata ->> 'model' = 'gpt-4o'") > 0
    assert count("metadata ? 'request_id'") > 0.9 * 20_000
    assert count("user_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'") == 0


def test_balances_follow_the_ledger(database_dsn: str) -> None:
    seed_ledger(database_dsn, seed=5, **SIZES)

    assert scalar(database_dsn, "SELECT sum(balance) FROM credit_balances") == scalar(
        database_dsn, "SELECT sum(amount) FROM credit_transactions"
    )


def test_a_bulk_load_rebuilds_the_indexes_it_deferred(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synth, "_DEFER_INDEXES_FROM", 0)
    query = "SELECT indexdef FROM pg_indexes WHERE tablename = 'credit_transactions' ORDER BY 1"
    seed_ledger(database_dsn, rows=0, users=1, days=1, seed=0, end=END)
    with psycopg.connect(database_dsn) as connection:
        before = connection.execute(query).fetchall()

    seed_ledger(database_dsn, seed=1, **SIZES)

    with psycopg.connect(database_dsn) as connection:
        assert connection.execute(query).fetchall() == before
    assert len(before) >= 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": -1}, "rows must be an int of at least 0"),
        ({"users": 0}, "users must be an int of at least 1"),
        ({"days": 0}, "days must be an int of at least 1"),
        ({"models": []}, "models must be a non-empty list"),
        ({"end": datetime(2025, 6, 1)}, "must be a timezone-aware datetime"),
    ],
)
def test_bad_sizes_are_refused(database_dsn: str, change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {**SIZES, "seed": 1, **change}
    with pytest.raises(InvalidInput, match=message):
        seed_ledger(database_dsn, **arguments)


def test_seed_command_prints_its_summary(database_dsn: str) -> None:
    _register()
    result = CliRunner().invoke(
        cli,
        [
            "seed",
            "--rows",
            "3000",
            "--users",
            "50",
            "--days",
            "7",
            "--seed",
            "9",
            "--end",
            "2025-06-01",
            "--dsn",
            database_dsn,
            "--format",
            "json",
        ],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 3000 and summary["start"] == "2025-05-25T00:00:00+00:00"
    assert scalar(database_dsn, "SELECT count(*) FROM credit_transactions") == 3000


def test_seed_command_refuses_a_bad_end(database_dsn: str) -> None:
    _register()
    result = CliRunner().invoke(cli, ["seed", "--end", "June 1st", "--dsn", database_dsn])

    assert result.exit_code == 2  # a bad option value is a usage error
    assert "--end 'June 1st' is not an ISO date" in result.output
