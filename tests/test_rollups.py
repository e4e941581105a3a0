"""Daily spend rollups: always equal to the transactions they summarize, and used only when whole.

After every export, compaction or repaired crash, the committed rollups must
equal an aggregation of the committed transaction files, which must equal the
ledger. Engines read whole UTC days from rollups and everything else from the
transaction files; a date whose transactions predate rollups is read from them.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import psycopg
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ducto_olap import PostgresStore
from ducto_olap.engines import open_analytics
from ducto_olap.export import FAULT_POINTS, Exporter, InjectedFailure, compact
from ducto_olap.export import rollups as rollups_module
from ducto_olap.export import writer as writer_module
from ducto_olap.export.writer import PartitionWriter
from ducto_olap.lake import (
    ROLLUP_SCHEMAS,
    SPEND_BY_MODEL_DAY,
    SPEND_BY_USER_DAY,
    SPEND_BY_USER_WEEK,
    LakeLayout,
    read_snapshot,
)
from ducto_olap.lake.commit_log import CommitRecord, file_entries, init_lake, write_commit
from ducto_olap.store.memory import MemoryStore
from ducto_olap.window import make_window
from tests.lake_helpers import LedgerRow, lake_table, load_store, row, write_lake
from tests.test_engines import CASES, ENGINES, ask

MAX = "99999999999999.9999"
# Per (table, day, key): (total spend as text, transaction count).
Totals = dict[tuple[str, str, str], tuple[str, int]]


def committed_rollups(lake: Path) -> Totals:
    """The committed rollup files summed per table, day and key (a date may have several)."""
    snapshot = read_snapshot(lake)
    totals: Totals = {}
    for table, key in (
        (SPEND_BY_USER_DAY, "user_id"),
        (SPEND_BY_MODEL_DAY, "model"),
        (SPEND_BY_USER_WEEK, "user_id"),
    ):
        paths = [str(path) for path in snapshot.paths(table=table)]
        if not paths:
            continue
        for path in paths:
            assert pq.read_schema(path).remove_metadata() == ROLLUP_SCHEMAS[table]
        rows = duckdb.execute(
            f"SELECT CAST(day AS VARCHAR), {key}, sum(total_spend), sum(transaction_count) "
            "FROM read_parquet(?) GROUP BY ALL",
            [paths],
        ).fetchall()
        totals.update({(table, day, k): (str(total), count) for day, k, total, count in rows})
    return totals


_GROUPED = """
SELECT 'spend_by_user_day', day, user_id, sum(-amount), count(*) FROM spend GROUP BY 2, 3
UNION ALL
SELECT 'spend_by_model_day', day, coalesce(model, 'unknown'), sum(-amount), count(*)
FROM spend GROUP BY 2, 3
UNION ALL
SELECT 'spend_by_user_week', week, user_id, sum(-amount), count(*) FROM spend GROUP BY 2, 3
"""


def _totals(rows: list[tuple[Any, ...]]) -> Totals:
    return {(table, day, key): (f"{total:.4f}", count) for table, day, key, total, count in rows}


def raw_rollups(lake: Path) -> Totals:
    """The same totals computed from the committed transaction files."""
    paths = [str(path) for path in read_snapshot(lake).paths()]
    if not paths:
        return {}
    spend = (
        "WITH spend AS (SELECT user_id, model, amount, "
        "CAST(CAST(created_at AT TIME ZONE 'UTC' AS DATE) AS VARCHAR) AS day, "
        "CAST(CAST(date_trunc('week', CAST(created_at AT TIME ZONE 'UTC' AS DATE)) AS DATE) "
        "AS VARCHAR) AS week "
        "FROM read_parquet(?) WHERE type = 'usage' AND amount < 0) "
    )
    return _totals(duckdb.execute(spend + _GROUPED, [paths]).fetchall())


def ledger_rollups(dsn: str) -> Totals:
    """The same totals computed by PostgreSQL from the ledger."""
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "CREATE TEMP VIEW spend AS SELECT user_id, metadata->>'model' AS model, amount, "
            "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, "
            "to_char(date_trunc('week', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS week "
            "FROM credit_transactions WHERE type = 'usage' AND amount < 0"
        )
        return _totals(connection.execute(_GROUPED).fetchall())


def assert_rollups_whole(lake: Path, dsn: str) -> None:
    rollups = committed_rollups(lake)
    assert rollups == raw_rollups(lake) == ledger_rollups(dsn)
    assert rollups, "the test ledger has spend"


def insert(dsn: str, rows: list[tuple[str, str, str, str | None, str]]) -> None:
    """(user, amount, type, model, created_at) rows into the ledger."""
    with psycopg.connect(dsn) as connection:
        for user, amount, kind, model, created_at in rows:
            metadata = json.dumps({} if model is None else {"model": model})
            connection.execute(
                "INSERT INTO credit_transactions (user_id, amount, type, metadata, created_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (user, amount, kind, metadata, created_at),
            )


def insert_spread(dsn: str, count: int, days: int = 3) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, metadata, created_at) "
            "SELECT 'u' || (g %% 7), CASE WHEN g %% 5 = 0 THEN 2 ELSE -0.25 END, "
            "CASE WHEN g %% 11 = 0 THEN 'refund' ELSE 'usage' END, "
            "CASE WHEN g %% 3 = 0 THEN '{}'::jsonb "
            "ELSE jsonb_build_object('model', 'm' || (g %% 2)) END, "
            "timestamptz '2024-06-01T12:00Z' + (g %% %s) * interval '1 day' "
            "+ g * interval '1 microsecond' FROM generate_series(1, %s) AS g",
            (days, count),
        )


def test_exports_on_the_same_dates_sum_to_the_ledger(store: PostgresStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    insert(
        store.dsn,
        [
            ("whale", MAX, "purchase", None, "2024-06-01T00:00Z"),  # balance stays in range
            ("whale", "-" + MAX, "usage", "big", "2024-06-01T01:00Z"),
            ("whale", "-" + MAX, "usage", "big", "2024-06-01T02:00Z"),
            ("a", "-1.5", "usage", None, "2024-06-01T23:59:59.999999Z"),
            ("a", "-1", "usage", "unknown", "2024-06-02T00:00Z"),
            ("b", "3", "usage", "m", "2024-06-02T00:00Z"),  # positive usage: not spend
            ("b", "-3", "adjustment", "m", "2024-06-02T00:00Z"),  # not usage
            ("c", "5", "purchase", None, "2024-06-03T00:00Z"),  # a date without spend
        ],
    )
    Exporter(store, lake).run()
    for _ in range(2):
        insert_spread(store.dsn, 40)
        Exporter(store, lake).run()

    snapshot = read_snapshot(lake)
    assert_rollups_whole(lake, store.dsn)
    assert all(commit.rollups for commit in snapshot.commits)
    by_date = Counter(entry.date for entry in snapshot.rollups if entry.table == SPEND_BY_USER_DAY)
    assert by_date["2024-06-01"] == 3  # one rollup file per table and commit, from its first date
    assert committed_rollups(lake)[(SPEND_BY_USER_DAY, "2024-06-01", "whale")] == (
        "199999999999999.9998",
        2,
    )
    assert snapshot.rows == 8 + 80  # rollup files are not ledger rows
    assert snapshot.rollup_dates == {"2024-06-01", "2024-06-02", "2024-06-03"}


def commit_batches(
    layout: LakeLayout,
    writer: PartitionWriter,
    batches: list[list[LedgerRow]],
    rollup_tables: list[str] | None = None,
) -> MemoryStore:
    """Write ``batches`` through ``writer`` as commit 1 of a new lake; the same rows
    loaded into a MemoryStore, to compare answers with."""
    memory = MemoryStore()
    for rows in batches:
        writer.write(lake_table(rows).to_batches()[0])
        load_store(memory, rows)
    staged = writer.finish()
    paths = writer.publish()
    init_lake(layout)
    record = CommitRecord(
        commit_id=1,
        kind="export",
        committed_at=datetime(2024, 6, 1, tzinfo=UTC).isoformat(),
        xid_from=0,
        xid_to=1,
        rows=sum(len(rows) for rows in batches),
        added=tuple(
            file_entries(
                layout, paths, (entry.rows for entry in staged), (entry.span for entry in staged)
            )
        ),
        rollups=True,
        sparse_rollups=writer.sparse_rollups,
        rollup_tables=rollup_tables,
    )
    write_commit(layout, record)
    return memory


def test_sums_written_out_early_still_sum_to_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write is flushed and, with a budget of one byte, every day's sums are
    # written out at each flush: the days' rows reach the rollup file in many parts.
    monkeypatch.setattr(writer_module, "BUFFER_BYTES", 0)
    monkeypatch.setattr(rollups_module, "HELD_BYTES", 1)
    layout = LakeLayout(tmp_path / "lake")
    writer = PartitionWriter(layout, 1)
    day = datetime(2024, 6, 1, tzinfo=UTC)
    batches = [
        [row(f"u{i % 3}", "-1.5", day + timedelta(hours=i), model=f"m{i % 2}") for i in range(6)]
        for _ in range(3)
    ]
    batches.append([row("u0", "-2", day + timedelta(days=1, hours=1))])
    memory = commit_batches(layout, writer, batches, rollup_tables=sorted(ROLLUP_SCHEMAS))

    user_paths = [str(path) for path in read_snapshot(layout.root).paths(table=SPEND_BY_USER_DAY)]
    parts = duckdb.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM read_parquet(?) GROUP BY day, user_id)",
        [user_paths],
    ).fetchone()
    assert parts is not None and parts[0] == 3, "each batch's sums are a part of their own"
    assert committed_rollups(layout.root) == raw_rollups(layout.root)
    start, end = day, day + timedelta(days=2)
    for name in ENGINES:
        with open_analytics(layout, name) as engine:
            assert engine.spend_by_user(start, end) == memory.spend_by_user(start, end)
            assert engine.spend_by_model(start, end) == memory.spend_by_model(start, end)


def test_compaction_reaggregates_the_rollups(store: PostgresStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for _ in range(3):
        insert_spread(store.dsn, 30)
        Exporter(store, lake).run()
    window = (datetime(2024, 5, 31, tzinfo=UTC), datetime(2024, 6, 5, tzinfo=UTC))
    before = {name: open_analytics(lake, name).spend_by_model(*window) for name in ENGINES}

    compact(lake)

    snapshot = read_snapshot(lake)
    assert_rollups_whole(lake, store.dsn)
    # One rollup file per table now, spanning the three dates (Saturday to Monday:
    # two ISO weeks, which start on 05-27 and 06-03).
    assert sorted((entry.table, entry.date, entry.last_date) for entry in snapshot.rollups) == [
        (SPEND_BY_MODEL_DAY, "2024-06-01", "2024-06-03"),
        (SPEND_BY_USER_DAY, "2024-06-01", "2024-06-03"),
        (SPEND_BY_USER_WEEK, "2024-05-27", "2024-06-03"),
    ]
    committed = [path for table in ROLLUP_SCHEMAS for path in snapshot.paths(table=table)]
    assert sorted((lake / "rollups").rglob("*.parquet")) == sorted(committed)  # old ones deleted
    for name in ENGINES:
        assert open_analytics(lake, name).spend_by_model(*window) == before[name]


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_failed_run_leaves_rollups_and_transactions_together(
    store: PostgresStore, tmp_path: Path, point: str
) -> None:
    lake = tmp_path / "lake"
    insert_spread(store.dsn, 30)
    Exporter(store, lake).run()
    committed_before = committed_rollups(lake)
    insert_spread(store.dsn, 40)

    with pytest.raises(InjectedFailure, match=point):
        Exporter(store, lake, fail_at=point).run()

    # Readers see both halves of the failed commit or neither.
    assert committed_rollups(lake) == raw_rollups(lake)
    if point != "after_commit":
        assert committed_rollups(lake) == committed_before

    insert_spread(store.dsn, 5)
    Exporter(store, lake).run()

    assert_rollups_whole(lake, store.dsn)
    snapshot = read_snapshot(lake)
    committed = {snapshot.layout.resolve(entry.path) for entry in snapshot.entries}
    assert {path for path in lake.rglob("*.parquet")} == committed


# Lakes written before rollups existed.


DAY = datetime(2024, 3, 1, tzinfo=UTC)
OLD_ROWS = [row("alice", "-1", DAY + timedelta(hours=1)), row("bob", "-2", DAY + timedelta(days=1))]
NEW_ROWS = [row("alice", "-4", DAY + timedelta(hours=2), model="m"), row("carol", "-8", DAY)]


def _strip_to_version_1(lake: Path) -> None:
    """Rewrite every commit record as a version 1 exporter wrote it."""
    for record in LakeLayout(lake).commits_dir.glob("*.json"):
        data = json.loads(record.read_text())
        data.pop("rollups", None)
        data["schema_version"] = 1
        for entry in data["added"]:
            entry.pop("table", None)
        record.write_text(json.dumps(data))


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_date_without_complete_rollups_is_read_from_transactions(
    tmp_path: Path, engine_name: str
) -> None:
    lake = tmp_path / "lake"
    write_lake(lake, OLD_ROWS)
    _strip_to_version_1(lake)
    write_lake(lake, NEW_ROWS, rollups=True)  # rollups of its own rows on 03-01 only
    memory = MemoryStore()
    load_store(memory, [*OLD_ROWS, *NEW_ROWS])
    window = make_window(DAY, DAY + timedelta(days=2))

    snapshot = read_snapshot(lake)
    engine = open_analytics(lake, engine_name)
    plan = engine.plan(window, (SPEND_BY_USER_DAY,))

    assert snapshot.rollup_dates == frozenset()  # 03-01 mixes old and new, 03-02 is old
    assert len(plan.transactions) == 3 and not plan.uses_rollups
    assert engine.spend_by_user(window.start, window.end) == memory.spend_by_user(
        window.start, window.end
    )
    assert engine.aggregate_stats(window.start, window.end) == memory.aggregate_stats(
        window.start, window.end
    )

    # Compaction rewrites both dates, with their rollups: now both are whole.
    compact(lake)
    write_lake(lake, [row("dave", "-16", DAY + timedelta(days=1, hours=3))], rollups=True)
    load_store(memory, [row("dave", "-16", DAY + timedelta(days=1, hours=3))])
    plan = engine.plan(window, (SPEND_BY_USER_DAY,))
    assert read_snapshot(lake).rollup_dates == {"2024-03-01", "2024-03-02"}
    # The compaction's one rollup file spans both dates, plus the later commit's file.
    assert plan.transactions == [] and len(plan.rollups[SPEND_BY_USER_DAY]) == 2
    assert plan.rollup_days == (DAY.date(), DAY.date() + timedelta(days=1))
    for question in ("spend_by_user", "spend_by_model", "daily_spend", "aggregate_stats"):
        expected = getattr(memory, question)(window.start, window.end)
        assert getattr(engine, question)(window.start, window.end) == expected, question


def test_a_version_1_record_still_reads(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_lake(lake, OLD_ROWS)
    _strip_to_version_1(lake)

    snapshot = read_snapshot(lake)

    assert [entry.table for entry in snapshot.files] == ["transactions", "transactions"]
    assert snapshot.rollups == () and snapshot.commits[0].rollups is False


# Which files a window reads.


@pytest.fixture(scope="module")
def ninety_day_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    first = datetime(2024, 1, 1, 6, tzinfo=UTC)
    rows = [row(f"user-{day % 7}", "-1.25", first + timedelta(days=day)) for day in range(90)]
    root = tmp_path_factory.mktemp("rollup-pruning") / "lake"
    write_lake(root, rows, rollups=True)
    return root


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "transactions", "rollups"),
    [
        (utc("2024-02-10T00:00"), utc("2024-02-11T00:00"), 0, 1),
        (utc("2024-02-10T12:00"), utc("2024-02-11T12:00"), 2, 0),
        (utc("2024-02-10T12:00"), utc("2024-02-13T00:00:00.000001"), 2, 2),
        (utc("2024-02-01T00:00"), utc("2024-03-02T00:00"), 0, 30),
    ],
    ids=["a whole day", "noon to noon", "edges and whole days", "30 whole days"],
)
@pytest.mark.parametrize("engine_name", ENGINES)
def test_whole_days_come_from_rollups_and_edges_from_transactions(
    ninety_day_lake: Path,
    engine_name: str,
    start: datetime,
    end: datetime,
    transactions: int,
    rollups: int,
) -> None:
    window = make_window(start, end)
    with open_analytics(ninety_day_lake, engine_name) as engine:
        assert len(engine.files_for(window)) == transactions
        assert len(engine.rollup_files_for(window)) == rollups
        assert len(engine.rollup_files_for(window, SPEND_BY_MODEL_DAY)) == rollups
        answer = engine.spend_by_user(start, end)
        # A question without rollup tables (another zone's days) reads transactions only.
        plain = engine.plan(window)

    partitions = read_snapshot(ninety_day_lake).paths(*window.utc_dates())  # type: ignore[misc]
    assert plain.transactions == partitions and not plain.uses_rollups
    first = utc("2024-01-01T06:00")
    rows_in = sum(1 for day in range(90) if start <= first + timedelta(days=day) < end)
    assert sum(r.transaction_count for r in answer) == rows_in


# Random windows, edges at any microsecond, on a lake of several commits with rollups.

_BASE = datetime(2026, 3, 7, tzinfo=UTC)
_instants = st.integers(-4 * 86_400_000_000, 4 * 86_400_000_000).map(
    lambda micros: _BASE + timedelta(microseconds=micros)
) | st.integers(-4, 4).map(lambda days: _BASE + timedelta(days=days))
_rows = st.builds(
    LedgerRow,
    user_id=st.sampled_from(["a", "b", "B", "é"]),
    amount=st.sampled_from([Decimal("-1"), Decimal("-2.5"), Decimal("-0.0001"), Decimal(3)]),
    created_at=_instants,
    type=st.sampled_from(["usage", "usage", "refund"]),
    model=st.sampled_from([None, "m", "unknown", "n"]),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # Each commit with a rollup gain rule: none, or leave out days with 1/2 or 1/4.
    commits=st.lists(
        st.tuples(st.lists(_rows, max_size=12), st.sampled_from([None, 2, 4])),
        min_size=1,
        max_size=3,
    ),
    window=st.tuples(_instants, _instants).map(sorted),
)
def test_random_windows_match_the_memory_store(
    tmp_path_factory: pytest.TempPathFactory,
    commits: list[tuple[list[LedgerRow], int | None]],
    window: list[datetime],
) -> None:
    lake = tmp_path_factory.mktemp("random") / "lake"
    memory = MemoryStore()
    for rows, sparse_gain in commits:
        write_lake(lake, rows, rollups=True, sparse_gain=sparse_gain)
        load_store(memory, rows)
    start, end = window

    for name in ENGINES:
        with open_analytics(lake, name) as engine:
            assert engine.spend_by_user(start, end) == memory.spend_by_user(start, end)
            assert engine.top_users(2, start, end) == memory.top_users(2, start, end)
            assert engine.spend_by_model(start, end) == memory.spend_by_model(start, end)
            assert engine.daily_spend(start, end) == memory.daily_spend(start, end)
            assert engine.aggregate_stats(start, end) == memory.aggregate_stats(start, end)
            assert engine.aggregate_stats(start, end, tz="Asia/Kolkata") == memory.aggregate_stats(
                start, end, tz="Asia/Kolkata"
            )


# The transaction files' amounts.


def test_amounts_are_int64_decimals_read_exactly(store: PostgresStore, tmp_path: Path) -> None:
    insert(store.dsn, [("u", "-" + MAX, "usage", None, "2024-06-01T00:00Z")])
    insert(store.dsn, [("u", MAX, "purchase", None, "2024-06-01T00:00Z")])
    Exporter(store, tmp_path).run()
    path = read_snapshot(tmp_path).paths()[0]

    column = pq.ParquetFile(path).schema.column(2)
    assert (column.name, column.physical_type) == ("amount", "INT64")
    duck = duckdb.execute(
        "SELECT amount, typeof(amount) FROM read_parquet(?) ORDER BY id", [str(path)]
    )
    assert duck.fetchall() == [
        (Decimal("-" + MAX), "DECIMAL(18,4)"),
        (Decimal(MAX), "DECIMAL(18,4)"),
    ]
    frame = pl.read_parquet(path)
    assert frame.schema["amount"] == pl.Decimal(18, 4)
    assert frame["amount"].to_list() == [Decimal("-" + MAX), Decimal(MAX)]


def test_hand_checked_cases_read_rollups_on_an_exported_lake(
    tmp_path: Path, store: PostgresStore
) -> None:
    """The first hand-checked case, from a lake the real exporter wrote."""
    from tests.test_engines import LEDGER

    load_store(store, LEDGER)
    Exporter(store, tmp_path / "lake").run()
    for name in ENGINES:
        with open_analytics(tmp_path / "lake", name) as engine:
            case = CASES[0]
            assert engine.plan(make_window(*case.window), (SPEND_BY_USER_DAY,)).uses_rollups
            assert ask(engine, case) == case.expected


# Sparse days: a rollup about as large as its rows is left out, and read from transactions.


def _all_answers(source: Any, start: datetime, end: datetime) -> list[Any]:
    return [
        source.spend_by_user(start, end),
        source.top_users(3, start, end),
        source.spend_by_model(start, end),
        source.daily_spend(start, end),
        source.aggregate_stats(start, end),
    ]


def _assert_engines_match(lake: Path, store: PostgresStore) -> None:
    start, end = utc("2024-06-01T00:00"), utc("2024-06-04T00:00")
    expected = _all_answers(store, start, end)
    for name in ENGINES:
        with open_analytics(lake, name) as engine:
            assert _all_answers(engine, start, end) == expected, name


def test_sparse_days_are_left_out_and_answered_from_transactions(
    store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups_module, "MIN_JUDGED_SPEND_ROWS", 1)
    insert(
        store.dsn,
        [(f"once-{i}", "-1", "usage", "m", f"2024-06-01T0{i}:00Z") for i in range(8)]
        + [("whale", "-2", "usage", "m", f"2024-06-02T0{i}:00Z") for i in range(8)]
        # The newest day has the sparse shape too, but an export spares it.
        + [(f"new-{i}", "-3", "usage", None, f"2024-06-03T0{i}:00Z") for i in range(8)],
    )
    lake = tmp_path / "lake"
    Exporter(store, lake).run()

    snapshot = read_snapshot(lake)
    assert snapshot.commits[-1].sparse_rollups == {SPEND_BY_USER_DAY: ["2024-06-01"]}
    assert not snapshot.has_rollups(date(2024, 6, 1))
    assert snapshot.has_rollups(date(2024, 6, 1), SPEND_BY_MODEL_DAY)
    assert snapshot.has_rollups(date(2024, 6, 2)) and snapshot.has_rollups(date(2024, 6, 3))
    committed = committed_rollups(lake)
    assert not any(
        table == SPEND_BY_USER_DAY and day == "2024-06-01" for table, day, _ in committed
    )
    # The sparse day's week (Monday 05-27) lacks its users too: readers never use it.
    raw = raw_rollups(lake)
    left_out = {(SPEND_BY_USER_DAY, "2024-06-01"), (SPEND_BY_USER_WEEK, "2024-05-27")}
    assert {key: value for key, value in committed.items() if key[:2] not in left_out} == {
        key: value for key, value in raw.items() if key[:2] not in left_out
    }
    assert (
        committed[(SPEND_BY_USER_WEEK, "2024-05-27", "whale")]
        == raw[(SPEND_BY_USER_WEEK, "2024-05-27", "whale")]
    )
    with open_analytics(lake, "duckdb") as engine:
        plan = engine.plan(make_window(utc("2024-06-01T00:00"), utc("2024-06-04T00:00")))
        user_plan = engine.plan(
            make_window(utc("2024-06-01T00:00"), utc("2024-06-04T00:00")), (SPEND_BY_USER_DAY,)
        )
    assert len(plan.transactions) == 3
    assert [path.parent.name for path in user_plan.transactions] == ["date=2024-06-01"]
    _assert_engines_match(lake, store)

    # A later commit adds to a date the lake knows: it is not judged, and the day
    # stays sparse; the rows make the whole day dense, which compaction sees.
    insert(
        store.dsn, [("once-0", "-5", "usage", "m", f"2024-06-01T1{i % 10}:00Z") for i in range(40)]
    )
    Exporter(store, lake).run()
    assert read_snapshot(lake).commits[-1].sparse_rollups == {}
    assert not read_snapshot(lake).has_rollups(date(2024, 6, 1))
    _assert_engines_match(lake, store)

    compact(lake)
    snapshot = read_snapshot(lake)
    assert snapshot.commits[-1].kind == "compact"
    assert snapshot.commits[-1].sparse_rollups == {}
    assert snapshot.has_rollups(date(2024, 6, 1))
    assert committed_rollups(lake) == raw_rollups(lake) == ledger_rollups(store.dsn)
    _assert_engines_match(lake, store)


def test_rows_of_a_day_judged_sparse_later_are_skipped_by_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every write is flushed, and one open file at a time: a day's file closes (and
    # its rollups are taken) as soon as another day is written.
    monkeypatch.setattr(writer_module, "BUFFER_BYTES", 0)
    monkeypatch.setattr(writer_module, "MAX_OPEN_FILES", 1)
    layout = LakeLayout(tmp_path / "lake")
    writer = PartitionWriter(layout, 1, whole_day=lambda _: True, min_judged_rows=1)
    day = datetime(2024, 6, 1, tzinfo=UTC)
    batches = [
        [row("whale", "-1", day + timedelta(minutes=i)) for i in range(8)],
        [row("later", "-1", day + timedelta(days=1))],
        [row(f"once-{i}", "-1", day + timedelta(hours=1, minutes=i)) for i in range(30)],
    ]
    memory = commit_batches(layout, writer, batches)

    # The whale's rows of 06-01 were in the user rollup file before the day turned sparse.
    assert writer.sparse_rollups == {SPEND_BY_USER_DAY: ["2024-06-01"]}
    assert committed_rollups(layout.root)[(SPEND_BY_USER_DAY, "2024-06-01", "whale")] == (
        "8.0000",
        8,
    )
    start, end = day, day + timedelta(days=2)
    for name in ENGINES:
        with open_analytics(layout, name) as engine:
            plan = engine.plan(make_window(start, end), (SPEND_BY_USER_DAY,))
            assert plan.rollup_days == (date(2024, 6, 2),)
            assert engine.spend_by_user(start, end) == memory.spend_by_user(start, end)
            assert engine.aggregate_stats(start, end) == memory.aggregate_stats(start, end)


# Weekly per-user rollups: whole ISO weeks inside a window come from them.


def _weekly_ledger() -> list[LedgerRow]:
    first = datetime(2024, 4, 1, tzinfo=UTC)  # a Monday
    return [
        row(
            f"user-{(day * 7 + hour) % 5}",
            f"-{hour + 1}.25",
            first + timedelta(days=day, hours=hour),
        )
        for day in range(35)
        for hour in range(0, 24, 5)
    ]


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize(
    ("start", "end", "weeks"),
    [
        (
            "2024-04-01T00:00",
            "2024-05-01T00:00",
            ["2024-04-01", "2024-04-08", "2024-04-15", "2024-04-22"],
        ),
        ("2024-04-03T07:30", "2024-04-30T12:00", ["2024-04-08", "2024-04-15", "2024-04-22"]),
        ("2024-04-08T00:00", "2024-04-14T00:00", []),  # six days: no whole week
        ("2024-04-08T00:00", "2024-04-15T00:00", ["2024-04-08"]),
    ],
)
def test_whole_weeks_come_from_the_weekly_rollup(
    tmp_path: Path, engine_name: str, start: str, end: str, weeks: list[str]
) -> None:
    rows = _weekly_ledger()
    lake = tmp_path / "lake"
    write_lake(lake, rows[:60], rollups=True)
    write_lake(lake, rows[60:], rollups=True)
    memory = MemoryStore()
    load_store(memory, rows)
    window = (utc(start), utc(end))

    with open_analytics(lake, engine_name) as engine:
        plan = engine.plan(make_window(*window), (SPEND_BY_USER_DAY,))
        assert [week.isoformat() for week in plan.weeks] == weeks
        assert not set(plan.user_days) & {
            date.fromisoformat(week) + timedelta(days=offset)
            for week in weeks
            for offset in range(7)
        }
        assert engine.spend_by_user(*window) == memory.spend_by_user(*window)
        assert engine.top_users(2, *window) == memory.top_users(2, *window)
        assert engine.aggregate_stats(*window) == memory.aggregate_stats(*window)
        assert engine.daily_spend(*window) == memory.daily_spend(*window)


def test_a_week_with_a_sparse_or_older_commit_is_read_day_by_day(tmp_path: Path) -> None:
    rows = _weekly_ledger()
    window = (utc("2024-04-01T00:00"), utc("2024-04-22T00:00"))
    memory = MemoryStore()
    load_store(memory, rows)
    lake = tmp_path / "lake"
    in_week = [item for item in rows if item.created_at < utc("2024-04-08T00:00")]
    second = [
        item
        for item in rows
        if utc("2024-04-08T00:00") <= item.created_at < utc("2024-04-15T00:00")
    ]
    rest = [item for item in rows if item.created_at >= utc("2024-04-15T00:00")]
    write_lake(lake, in_week, rollups=True, sparse_gain=1000)  # every day of week 1 sparse
    write_lake(lake, second, rollups=True)
    write_lake(lake, rest, rollups=True)
    # Week 2's commit as an older version wrote it: daily rollups, no weekly ones.
    record_path = sorted((lake / "_ducto" / "commits").glob("*.json"))[1]
    record = json.loads(record_path.read_text())
    record["rollup_tables"] = None
    record_path.write_text(json.dumps(record))

    for name in ENGINES:
        with open_analytics(lake, name) as engine:
            plan = engine.plan(make_window(*window), (SPEND_BY_USER_DAY,))
            assert [week.isoformat() for week in plan.weeks] == ["2024-04-15"]
            assert len(plan.transactions) == 7  # week 1, sparse, from its transactions
            assert engine.spend_by_user(*window) == memory.spend_by_user(*window)
            assert engine.aggregate_stats(*window) == memory.aggregate_stats(*window)
