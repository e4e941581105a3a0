"""The DuckDB shell init script: views over the committed files, macros equal to the engines."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ducto_olap.engines import DuckDBAnalytics, PolarsAnalytics
from ducto_olap.engines.base import LakeAnalytics
from ducto_olap.errors import LakeError
from ducto_olap.lake import LakeLayout, init_lake, read_snapshot
from ducto_olap.models import (
    AggregateStatsRow,
    DailySpendRow,
    SpendByModelRow,
    SpendByUserRow,
    TopUserRow,
)
from ducto_olap.shell import find_duckdb_cli, shell_script_text, write_shell_script
from ducto_olap.shell.script import COLUMNS, sql_string
from tests import strategies
from tests.lake_helpers import MISSING, LedgerRow, row, write_file, write_lake

# Every lake of these tests lives under a folder with a quote and a space in
# its name, so the script's string literals are always put to the test.
ODD_FOLDER = "o'brien lake"

ENGINES = (DuckDBAnalytics, PolarsAnalytics)


@pytest.fixture
def lake(tmp_path: Path) -> LakeLayout:
    return LakeLayout(tmp_path / ODD_FOLDER)


def load_script(layout: LakeLayout) -> duckdb.DuckDBPyConnection:
    """A fresh DuckDB connection that ran the script file as written on disk."""
    connection = duckdb.connect()
    for statement in duckdb.extract_statements(write_shell_script(layout).read_text()):
        connection.execute(statement)
    return connection


def macro_answers(
    connection: duckdb.DuckDBPyConnection, start: datetime, end: datetime, limit: int
) -> dict[str, Any]:
    """The five macros' answers, shaped as the engines' row models."""

    def ask(sql: str, *params: object) -> list[tuple[Any, ...]]:
        return connection.execute(sql, list(params)).fetchall()

    stats = ask("SELECT * FROM aggregate_stats($1, $2)", start, end)
    assert len(stats) == 1
    return {
        "spend_by_user": [
            SpendByUserRow(*r) for r in ask("SELECT * FROM spend_by_user($1, $2)", start, end)
        ],
        "spend_by_model": [
            SpendByModelRow(*r) for r in ask("SELECT * FROM spend_by_model($1, $2)", start, end)
        ],
        "top_users": [
            TopUserRow(*r) for r in ask("SELECT * FROM top_users($1, $2, $3)", limit, start, end)
        ],
        "daily_spend": [
            DailySpendRow(day.isoformat(), total, count)
            for day, total, count in ask("SELECT * FROM daily_spend($1, $2)", start, end)
        ],
        "aggregate_stats": AggregateStatsRow(*stats[0]),
    }


def engine_answers(
    engine: LakeAnalytics, start: datetime, end: datetime, limit: int
) -> dict[str, Any]:
    return {
        "spend_by_user": list(engine.spend_by_user(start, end)),
        "spend_by_model": list(engine.spend_by_model(start, end)),
        "top_users": list(engine.top_users(limit, start, end)),
        "daily_spend": list(engine.daily_spend(start, end)),
        "aggregate_stats": engine.aggregate_stats(start, end),
    }


def assert_macros_match_engines(
    layout: LakeLayout, start: datetime, end: datetime, limit: int
) -> None:
    connection = load_script(layout)
    try:
        from_macros = macro_answers(connection, start, end, limit)
    finally:
        connection.close()
    for engine_class in ENGINES:
        with engine_class(layout) as engine:
            assert from_macros == engine_answers(engine, start, end, limit), engine_class.engine


def to_lake_row(ledger_row: strategies.LedgerRow) -> LedgerRow:
    model = MISSING if ledger_row.model == "<missing>" else ledger_row.model
    return row(ledger_row.user_id, ledger_row.amount, ledger_row.created_at, ledger_row.type, model)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    ledger=strategies.ledgers,
    window=strategies.windows(),
    limit=st.integers(0, 4),
    files_per_day=st.integers(1, 2),
)
def test_macros_answer_like_both_engines_on_random_ledgers(
    ledger: list[strategies.LedgerRow],
    window: tuple[datetime, datetime],
    limit: int,
    files_per_day: int,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        layout = write_lake(
            Path(folder) / ODD_FOLDER, map(to_lake_row, ledger), files_per_day=files_per_day
        )
        assert_macros_match_engines(layout, *window, limit)


START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 3, tzinfo=UTC)
TICK = timedelta(microseconds=1)

BOUNDARY_LEDGER = [
    row("at-start", "-1", START, model="gpt-4o"),
    row("before-start", "-100", START - TICK, model="gpt-4o"),
    row("last-instant", "-2", END - TICK, model=None),
    row("at-end", "-100", END, model="claude"),
    row("refund", "5", START + timedelta(hours=1), type="refund"),
    row("usage-credit", "7", START + timedelta(hours=1)),
    row("purchase", "-9", START + timedelta(hours=1), type="purchase"),
]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(START, END, id="boundaries"),
        pytest.param(START, START, id="empty-window"),
        pytest.param(END, END + timedelta(days=30), id="window-with-no-spend"),
        pytest.param(
            START.astimezone(ZoneInfo("Asia/Kolkata")),
            END.astimezone(ZoneInfo("America/New_York")),
            id="zoned-ends",
        ),
    ],
)
def test_boundary_rows_and_empty_windows(lake: LakeLayout, start: datetime, end: datetime) -> None:
    write_lake(lake, BOUNDARY_LEDGER)
    assert_macros_match_engines(lake, start, end, 2)


def test_a_row_exactly_at_start_counts_and_one_at_end_does_not(lake: LakeLayout) -> None:
    write_lake(lake, BOUNDARY_LEDGER)
    connection = load_script(lake)

    users = connection.execute("SELECT * FROM spend_by_user($1, $2)", [START, END]).fetchall()

    assert users == [("last-instant", Decimal("2.0000"), 1), ("at-start", Decimal("1.0000"), 1)]


@pytest.mark.parametrize(
    ("amounts", "average"),
    [
        pytest.param(["-0.0001", "-0.0002"], Decimal("0.0002"), id="half-rounds-up"),
        pytest.param(["-0.0002", "-0.0003"], Decimal("0.0003"), id="odd-half-rounds-up"),
        pytest.param(["-0.0001", "-0.0001", "-0.0001"], Decimal("0.0001"), id="exact"),
    ],
)
def test_avg_daily_spend_rounds_ties_away_from_zero(
    lake: LakeLayout, amounts: list[str], average: Decimal
) -> None:
    rows = [row("u", amount, START + timedelta(days=day)) for day, amount in enumerate(amounts)]
    write_lake(lake, rows)
    window = [START, START + timedelta(days=len(amounts))]

    stats = load_script(lake).execute("SELECT * FROM aggregate_stats($1, $2)", window).fetchall()

    assert stats[0][2] == average
    assert_macros_match_engines(lake, *window, 1)


def test_a_lake_with_no_commit_gives_typed_empty_views(lake: LakeLayout, tmp_path: Path) -> None:
    init_lake(lake)
    connection = load_script(lake)

    assert connection.execute("SELECT count(*) FROM transactions").fetchone() == (0,)
    assert connection.execute("SELECT * FROM spend_by_user($1, $2)", [START, END]).fetchall() == []
    stats = connection.execute("SELECT * FROM aggregate_stats($1, $2)", [START, END]).fetchall()
    assert stats == [(Decimal("0.0000"), 0, Decimal("0.0000"), "", "")]

    written = write_lake(tmp_path / "full", [row("u", "-1", START)])
    full = load_script(written)
    describe = "SELECT column_name, column_type FROM (DESCRIBE transactions)"
    assert connection.execute(describe).fetchall() == full.execute(describe).fetchall()
    assert [name for name, _ in full.execute(describe).fetchall()] == list(COLUMNS)


def test_macros_keep_utc_days_when_the_session_changes_time_zone(lake: LakeLayout) -> None:
    write_lake(lake, BOUNDARY_LEDGER)
    connection = load_script(lake)
    connection.execute("SET TimeZone = 'Asia/Kolkata'")

    answers = macro_answers(connection, START, END, 2)

    with DuckDBAnalytics(lake) as engine:
        assert answers == engine_answers(engine, START, END, 2)


def test_transactions_view_types_date_and_money(lake: LakeLayout) -> None:
    write_lake(lake, [row("u", "-1.2345", START)])
    connection = load_script(lake)

    types = dict(
        connection.execute("SELECT column_name, column_type FROM (DESCRIBE spend)").fetchall()
    )

    assert types["date"] == "DATE"
    assert types["amount"] == "DECIMAL(18,4)"
    assert types["spend"] == "DECIMAL(18,4)"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert connection.execute("SELECT date, spend FROM spend").fetchall() == [
        (date(2026, 11, 1), Decimal("1.2345"))
    ]


def test_a_leftover_of_a_crashed_export_is_invisible(lake: LakeLayout) -> None:
    write_lake(lake, [row("u", "-1", START), row("v", "-2", START)])
    committed = read_snapshot(lake).paths()
    leftover = write_file(lake, START.date(), [row("u", "-1", START)], "999999-0")

    script = write_shell_script(lake).read_text()
    connection = load_script(lake)

    assert leftover.parent == committed[0].parent
    assert leftover.name not in script
    assert connection.execute(
        "SELECT count(*), count(DISTINCT id) FROM transactions"
    ).fetchone() == (2, 2)


def test_script_follows_every_commit_and_skips_unchanged_rewrites(lake: LakeLayout) -> None:
    write_lake(lake, [row("u", "-1", START)])
    script = write_shell_script(lake)
    first = script.stat().st_mtime_ns

    assert write_shell_script(lake).stat().st_mtime_ns == first

    write_lake(lake, [row("u", "-2", START + timedelta(days=1))])
    write_shell_script(lake)
    total = load_script(lake).execute("SELECT sum(spend) FROM spend").fetchone()
    assert total == (Decimal("3.0000"),)
    assert list(script.parent.glob(".shell-*")) == []


def test_script_works_from_any_working_directory(
    lake: LakeLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lake(lake, [row("u", "-1", START)])
    script = write_shell_script(lake)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    connection = duckdb.connect()
    for statement in duckdb.extract_statements(script.read_text()):
        connection.execute(statement)

    assert connection.execute("SELECT count(*) FROM spend").fetchone() == (1,)


def test_missing_lake_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match="no lake at"):
        write_shell_script(tmp_path / "nowhere")


def test_sql_string_doubles_quotes() -> None:
    assert sql_string("a'b''c") == "'a''b''''c'"
    text = "it's a \\ path"
    assert duckdb.connect().execute(f"SELECT {sql_string(text)}").fetchone() == (text,)


def test_a_newline_in_the_lake_path_cannot_escape_the_comment(tmp_path: Path) -> None:
    layout = write_lake(tmp_path / "evil\nSELECT 1/0;", [row("u", "-1", START)])
    text = shell_script_text(read_snapshot(layout))

    connection = duckdb.connect()
    for statement in duckdb.extract_statements(text):
        connection.execute(statement)

    assert connection.execute("SELECT count(*) FROM transactions").fetchone() == (1,)


@pytest.fixture
def duckdb_cli() -> Iterator[Path]:
    cli = find_duckdb_cli()
    if cli is None:
        pytest.skip("no DuckDB CLI installed (pip install 'ducto-olap[shell]')")
    yield cli


def test_the_real_duckdb_cli_runs_a_macro(lake: LakeLayout, duckdb_cli: Path) -> None:
    write_lake(lake, BOUNDARY_LEDGER)
    script = write_shell_script(lake)
    query = (
        "SELECT * FROM spend_by_model(TIMESTAMPTZ '2026-11-01 00:00:00+00', "
        "TIMESTAMPTZ '2026-11-03 00:00:00+00');\n"
    )

    done = subprocess.run(
        [str(duckdb_cli), "-init", str(script), "-csv"],
        input=query,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "Error" not in done.stderr
    assert done.stdout.splitlines() == [
        "model,total_spend,transaction_count",
        "unknown,2.0000,1",
        "gpt-4o,1.0000,1",
    ]
