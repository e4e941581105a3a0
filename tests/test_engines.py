"""The lake engines on hand-checked cases, each also asked of PostgreSQL and the memory store.

A case is data: a ledger, a question with its arguments, and the expected
rows worked out by hand. Every case runs on every source, so a wrong
expectation fails on Postgres too instead of blessing an engine's bug.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ducto_olap.engines import DuckDBAnalytics, PolarsAnalytics, open_analytics
from ducto_olap.errors import ConfigError, LakeError, QueryError, WindowError
from ducto_olap.lake import LakeLayout
from ducto_olap.models import AggregateStatsRow
from ducto_olap.questions import SpendQuestions
from ducto_olap.store.memory import MemoryStore
from ducto_olap.store.postgres import PostgresStore
from ducto_olap.window import make_window
from tests.lake_helpers import load_store, row, write_file, write_lake

ENGINES = ["duckdb", "polars"]
# "+rollups": the same engine on a lake whose commits hold daily spend rollups.
SOURCES = [*ENGINES, *(f"{name}+rollups" for name in ENGINES), "memory", "postgres"]
MAX = "99999999999999.9999"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# 2024-03-01 is the main day; New York is UTC-5 then (DST starts on 2024-03-10).
LEDGER = [
    row("alice", "-1", "2024-02-29T23:59:59.999999", model="gpt-4o"),  # just before day 1
    row("alice", "-10", "2024-03-01T00:00:00", model="gpt-4o"),  # exactly at start
    row("bob", "-10", "2024-03-01T12:00:00", model=None),  # JSON null model
    row("Bob", "-10", "2024-03-01T13:00:00"),  # no model key
    row("émile", "-0.0001", "2024-03-01T23:59:59.999999", model="claude"),
    row("carol", "7", "2024-03-01T10:00:00"),  # positive usage: not spend
    row("carol", "3", "2024-03-01T11:00:00", type="refund", model="gpt-4o"),
    row("dave", "100", "2024-03-01T09:00:00", type="purchase"),
    row("dave", "-5", "2024-03-01T09:30:00", type="adjustment"),  # negative, not usage
    row("👾", "-4.9999", "2024-03-02T00:00:00", model="claude"),  # exactly at day 1's end
    row("alice", "-2.5", "2024-03-02T05:00:00", model="unknown"),  # midnight in New York
    row("erin", "-3", "2024-03-03T04:00:00", model="gpt-4o"),
    row("frank", "-0.0001", "2024-03-05T12:00:00"),  # avg 0.00015 rounds up to 0.0002
    row("frank", "-0.0002", "2024-03-06T12:00:00"),
    row("whale", "-" + MAX, "2024-04-01T01:00:00", model="big"),  # sum beyond NUMERIC(18,4)
    row("whale2", "-" + MAX, "2024-04-01T02:00:00", model="big"),
    row("old", "-1", "1969-12-31T23:00:00"),  # day buckets before the epoch
]

DAY1 = (utc("2024-03-01T00:00"), utc("2024-03-02T00:00"))
DAYS3 = (utc("2024-03-01T00:00"), utc("2024-03-04T00:00"))
NY_DAYS = (utc("2024-02-29T00:00"), utc("2024-03-04T00:00"))
TOKYO, NEW_YORK = timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))
DAY1_ZONED = (datetime(2024, 3, 1, 9, tzinfo=TOKYO), datetime(2024, 3, 1, 19, tzinfo=NEW_YORK))
EMPTY = (utc("2025-01-01T00:00"), utc("2025-02-01T00:00"))
SAME = (utc("2024-03-01T00:00"), utc("2024-03-01T00:00"))
ZERO_STATS = ("0.0000", 0, "0.0000", "", "")

DAY1_USERS = [("Bob", "10.0000", 1), ("alice", "10.0000", 1), ("bob", "10.0000", 1),
              ("émile", "0.0001", 1)]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    question: str
    window: tuple[datetime, datetime]
    expected: Any
    limit: int | None = None
    tz: str | None = None


CASES = [
    Case("users: ties by code point, start in, end out", "spend_by_user", DAY1, DAY1_USERS),
    Case("users: window given in non-UTC zones", "spend_by_user", DAY1_ZONED, DAY1_USERS),
    Case("users: a row at end is out, in a partition that is read", "spend_by_user",
         (DAY1[0], utc("2024-03-02T05:00")), [*DAY1_USERS[:3], ("👾", "4.9999", 1), DAY1_USERS[3]]),
    Case("users: a row at start is in, earlier ones of its partition out", "spend_by_user",
         (utc("2024-03-02T05:00"), utc("2024-03-03T05:00")),
         [("erin", "3.0000", 1), ("alice", "2.5000", 1)]),
    Case("users: empty window", "spend_by_user", EMPTY, []),
    Case("users: start == end", "spend_by_user", SAME, []),
    Case("users: sums beyond NUMERIC(18,4) stay exact", "spend_by_user",
         (utc("2024-04-01T00:00"), utc("2024-04-02T00:00")),
         [("whale", MAX, 1), ("whale2", MAX, 1)]),
    Case("models: null and missing are 'unknown' (merged with a literal one)", "spend_by_model",
         DAYS3, [("unknown", "22.5000", 3), ("gpt-4o", "13.0000", 2), ("claude", "5.0000", 2)]),
    Case("models: one day", "spend_by_model", DAY1,
         [("unknown", "20.0000", 2), ("gpt-4o", "10.0000", 1), ("claude", "0.0001", 1)]),
    Case("models: empty window", "spend_by_model", EMPTY, []),
    Case("top users: first two of the ties", "top_users", DAY1,
         [("Bob", "10.0000"), ("alice", "10.0000")], limit=2),
    Case("top users: limit 0", "top_users", DAY1, [], limit=0),
    Case("top users: limit beyond the users", "top_users", DAY1,
         [(user, total) for user, total, _ in DAY1_USERS], limit=99),
    Case("daily: UTC days", "daily_spend", DAYS3,
         [("2024-03-01", "30.0001", 4), ("2024-03-02", "7.4999", 2), ("2024-03-03", "3.0000", 1)]),
    Case("daily: New York days", "daily_spend", NY_DAYS,
         [("2024-02-29", "11.0000", 2), ("2024-03-01", "25.0000", 4), ("2024-03-02", "5.5000", 2)],
         tz="America/New_York"),
    Case("daily: empty window", "daily_spend", EMPTY, []),
    Case("daily: before 1970", "daily_spend", (utc("1969-12-31T00:00"), utc("1970-01-02T00:00")),
         [("1969-12-31", "1.0000", 1)]),
    Case("stats: one day", "aggregate_stats", DAY1, ("30.0001", 4, "30.0001", "unknown", "Bob")),
    Case("stats: three days", "aggregate_stats", DAYS3,
         ("40.5000", 6, "13.5000", "unknown", "alice")),
    Case("stats: days counted in New York", "aggregate_stats", NY_DAYS,
         ("41.5000", 6, "13.8333", "unknown", "alice"), tz="America/New_York"),
    Case("stats: average rounds half away from zero", "aggregate_stats",
         (utc("2024-03-05T00:00"), utc("2024-03-07T00:00")),
         ("0.0003", 1, "0.0002", "unknown", "frank")),
    Case("stats: empty window", "aggregate_stats", EMPTY, ZERO_STATS),
]  # fmt: skip


def ask(source: SpendQuestions, case: Case) -> Any:
    """The answer of ``source`` as plain tuples; Decimals as strings so the scale counts."""
    start, end = case.window
    if case.question == "top_users":
        assert case.limit is not None
        answer: Any = source.top_users(case.limit, start, end)
    elif case.question in ("daily_spend", "aggregate_stats"):
        answer = getattr(source, case.question)(start, end, tz=case.tz)
    else:
        answer = getattr(source, case.question)(start, end)

    if isinstance(answer, AggregateStatsRow):
        return _plain(answer)
    return [_plain(result) for result in answer]


def _plain(result: Any) -> tuple[Any, ...]:
    values = dataclasses.astuple(result)
    return tuple(str(value) if isinstance(value, Decimal) else value for value in values)


@pytest.fixture(scope="module")
def ledger_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LEDGER as a lake of two commits, plus a leftover file no commit names."""
    root = tmp_path_factory.mktemp("engines") / "lake"
    write_lake(root, LEDGER[:8])
    write_lake(root, LEDGER[8:], files_per_day=2)
    write_file(
        LakeLayout(root), utc("2024-03-01T00:00").date(), [row("ghost", "-999", DAY1[0])], "crashed"
    )
    return root


@pytest.fixture(scope="module")
def rollup_ledger_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LEDGER as a lake of two commits that wrote rollups, as the exporter does."""
    root = tmp_path_factory.mktemp("engines-rollups") / "lake"
    write_lake(root, LEDGER[:8], rollups=True)
    write_lake(root, LEDGER[8:], files_per_day=2, rollups=True)
    return root


@pytest.fixture(scope="module")
def ledger_postgres(server_dsn: str) -> Iterator[PostgresStore]:
    """LEDGER in a PostgreSQL database of this module."""
    name = f"t_engines_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    store = PostgresStore(psycopg.conninfo.make_conninfo(server_dsn, dbname=name))
    try:
        store.setup()
        load_store(store, LEDGER)
        yield store
    finally:
        store.close()
        with psycopg.connect(server_dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="module", params=SOURCES)
def source(request: pytest.FixtureRequest, ledger_lake: Path) -> Iterator[SpendQuestions]:
    if request.param == "postgres":
        yield request.getfixturevalue("ledger_postgres")
    elif request.param == "memory":
        memory = MemoryStore()
        load_store(memory, LEDGER)
        yield memory
    elif request.param.endswith("+rollups"):
        lake = request.getfixturevalue("rollup_ledger_lake")
        with open_analytics(lake, request.param.removesuffix("+rollups")) as engine:
            yield engine
    else:
        with open_analytics(ledger_lake, request.param) as engine:
            yield engine


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(source: SpendQuestions, case: Case) -> None:
    assert ask(source, case) == case.expected


# Engine-only behaviour: the lake itself.


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_leftover_file_is_ignored(ledger_lake: Path, engine_name: str) -> None:
    layout = LakeLayout(ledger_lake)
    on_disk = sorted(layout.partition_dir(DAY1[0].date()).glob("*.parquet"))
    with open_analytics(ledger_lake, engine_name) as engine:
        read = engine.files_for(make_window(*DAY1))

    assert len(on_disk) == 3
    assert len(read) == 2 and "crashed" not in " ".join(path.name for path in read)


def test_missing_lake_says_to_export(tmp_path: Path, engine_name: str) -> None:
    with pytest.raises(LakeError, match="ducto-olap export") as raised:
        open_analytics(tmp_path / "nowhere", engine_name)
    assert "\n" not in str(raised.value)


def test_lake_deleted_after_opening(tmp_path: Path, engine_name: str) -> None:
    root = tmp_path / "lake"
    write_lake(root, LEDGER[:3])
    with open_analytics(root, engine_name) as engine:
        shutil.rmtree(root)
        with pytest.raises(LakeError, match="ducto-olap export"):
            engine.spend_by_user(*DAYS3)


def test_lake_without_commits_answers_empty(tmp_path: Path, engine_name: str) -> None:
    (tmp_path / "lake" / "_ducto" / "commits").mkdir(parents=True)  # an initialized lake
    with open_analytics(tmp_path / "lake", engine_name) as engine:
        assert engine.spend_by_user(*DAYS3) == []
        assert engine.top_users(3, *DAYS3) == []
        assert engine.daily_spend(*DAYS3, tz="Asia/Tokyo") == []
        assert _plain(engine.aggregate_stats(*DAYS3)) == ZERO_STATS
        assert engine.snapshot().commits == ()


def test_new_commit_is_seen_at_once(tmp_path: Path, engine_name: str) -> None:
    root = tmp_path / "lake"
    write_lake(root, [row("alice", "-1", DAY1[0])])
    with open_analytics(root, engine_name) as engine:
        assert [r.total_spend for r in engine.spend_by_user(*DAY1)] == [Decimal(1)]
        write_lake(root, [row("alice", "-2", DAY1[0]), row("bob", "-0.5", DAY1[0])])
        assert _plain(engine.aggregate_stats(*DAY1)) == ("3.5000", 2, "3.5000", "unknown", "alice")


def test_unknown_engine_lists_the_choices(ledger_lake: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown engine 'spark'; choose one of duckdb, polars"):
        open_analytics(ledger_lake, "spark")


def test_engine_classes_are_the_named_ones(ledger_lake: Path) -> None:
    assert isinstance(open_analytics(ledger_lake), DuckDBAnalytics)
    assert isinstance(open_analytics(ledger_lake, "polars"), PolarsAnalytics)
    assert isinstance(DuckDBAnalytics(LakeLayout(ledger_lake)), SpendQuestions)


def test_damaged_file_is_a_query_error(tmp_path: Path, engine_name: str) -> None:
    layout = write_lake(tmp_path / "lake", LEDGER[:3])
    for path in layout.transactions_dir.rglob("*.parquet"):
        path.write_bytes(b"not parquet at all")
    with open_analytics(layout, engine_name) as engine, pytest.raises(QueryError) as raised:
        engine.spend_by_user(*NY_DAYS)
    assert str(layout.root) in str(raised.value)


def test_bad_window_is_refused_before_the_lake(ledger_lake: Path, engine_name: str) -> None:
    with open_analytics(ledger_lake, engine_name) as engine:
        with pytest.raises(WindowError, match="naive"):
            engine.spend_by_user(datetime(2024, 3, 1), DAY1[1])
        with pytest.raises(WindowError, match="swap"):
            engine.spend_by_model(DAY1[1], DAY1[0])
        with pytest.raises(WindowError, match="limit"):
            engine.top_users(-1, *DAY1)
        with pytest.raises(WindowError, match="time zone"):
            engine.daily_spend(*DAY1, tz="Mars/Olympus_Mons")


def test_threads_share_one_engine(ledger_lake: Path, engine_name: str) -> None:
    with open_analytics(ledger_lake, engine_name) as engine:
        calls: list[Callable[[], Any]] = [
            lambda: engine.spend_by_user(*DAY1),
            lambda: engine.daily_spend(*DAYS3, tz="America/New_York"),
            lambda: engine.aggregate_stats(*DAYS3),
        ]
        expected = [call() for call in calls]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda index: calls[index % 3](), range(24)))
    assert answers == [expected[index % 3] for index in range(24)]


# Pruning: a 1-day window on a 90-day lake reads at most two partitions.


@pytest.fixture(scope="module")
def ninety_day_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    first = utc("2024-01-01T06:00")
    rows = [row(f"user-{day % 7}", "-1.25", first + timedelta(days=day)) for day in range(90)]
    root = tmp_path_factory.mktemp("pruning") / "lake"
    write_lake(root, rows)
    return root


PRUNING_WINDOWS = [
    ("midnight to midnight", utc("2024-02-10T00:00"), utc("2024-02-11T00:00"), 1),
    ("noon to noon", utc("2024-02-10T12:00"), utc("2024-02-11T12:00"), 2),
    ("a day in Tokyo", datetime(2024, 2, 10, tzinfo=TOKYO), datetime(2024, 2, 11, tzinfo=TOKYO), 2),
]  # fmt: skip


@pytest.mark.parametrize(("start", "end", "partitions"), [w[1:] for w in PRUNING_WINDOWS],
                         ids=[w[0] for w in PRUNING_WINDOWS])  # fmt: skip
def test_one_day_reads_at_most_two_partitions(
    ninety_day_lake: Path, engine_name: str, start: datetime, end: datetime, partitions: int
) -> None:
    with open_analytics(ninety_day_lake, engine_name) as engine:
        files = engine.files_for(make_window(start, end))
        plan = engine.explain(make_window(start, end))
        answer = engine.spend_by_user(start, end)

    assert len(engine.snapshot().files) == 90
    assert len(files) == partitions
    assert {path.parent.name for path in files} <= {
        "date=2024-02-09",
        "date=2024-02-10",
        "date=2024-02-11",
    }
    assert _files_in_plan(engine_name, plan) == partitions
    assert sum(r.transaction_count for r in answer) == 1


def _files_in_plan(engine_name: str, plan: str) -> int:
    """How many files the engine's own plan says it reads."""
    if engine_name == "duckdb":
        match = re.search(r"Total Files Read: (\d+)", plan)
        assert match, plan
        return int(match.group(1))
    match = re.search(r"Parquet SCAN \[([^\]]*)\]", plan)
    assert match, plan
    others = re.search(r"\.\.\. (\d+) other sources", match.group(1))
    return 1 + int(others.group(1)) if others else match.group(1).count(".parquet")


def test_a_wide_window_reads_only_its_partitions(ninety_day_lake: Path, engine_name: str) -> None:
    with open_analytics(ninety_day_lake, engine_name) as engine:
        plan = engine.explain(make_window(utc("2024-02-01T00:00"), utc("2024-03-02T00:00")))
    assert _files_in_plan(engine_name, plan) == 30


def test_closed_engine_says_so(ledger_lake: Path) -> None:
    engine = open_analytics(ledger_lake, "duckdb")
    engine.close()
    with pytest.raises(QueryError, match="closed"):
        engine.spend_by_user(*DAY1)


def test_decimal_stays_exact_through_polars_and_duckdb(ledger_lake: Path) -> None:
    """A float anywhere would lose the last digit of these sums."""
    window = (utc("2024-04-01T00:00"), utc("2024-04-02T00:00"))
    for name in ENGINES:
        with open_analytics(ledger_lake, name) as engine:
            stats = engine.aggregate_stats(*window)
        assert stats.total_credits_consumed == Decimal("199999999999999.9998")
        assert stats.avg_daily_spend == Decimal("199999999999999.9998")


def test_one_info_line_per_question(
    ledger_lake: Path, engine_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_analytics(ledger_lake, engine_name)
    with engine, caplog.at_level(logging.INFO, logger="ducto_olap.engines"):
        engine.spend_by_model(*DAYS3)

    lines = [
        record.getMessage() for record in caplog.records if record.name == "ducto_olap.engines"
    ]
    assert len(lines) == 1
    assert re.fullmatch(rf"{engine_name} spend_by_model: 5 files in \d+\.\d{{3}}s", lines[0])


@pytest.mark.parametrize("engine_class", [DuckDBAnalytics, PolarsAnalytics])
def test_files_compacted_away_while_asking_are_read_again(
    tmp_path: Path, engine_class: type[DuckDBAnalytics | PolarsAnalytics]
) -> None:
    from ducto_olap.export import compact
    from ducto_olap.lake import LakeSnapshot, read_snapshot

    class ListsBeforeCompaction(engine_class):  # type: ignore[valid-type,misc]
        """Lists the files of an old snapshot once, as a reader racing a compaction would."""

        stale: LakeSnapshot | None = None

        def snapshot(self) -> LakeSnapshot:
            stale, self.stale = self.stale, None
            return stale or super().snapshot()

    root = tmp_path / "lake"
    write_lake(root, LEDGER[:8])
    write_lake(root, LEDGER[8:])
    before = read_snapshot(root)
    compact(root)
    assert not all(path.exists() for path in before.paths())

    engine = ListsBeforeCompaction(root)
    engine.stale = before
    with engine:
        assert ask(engine, CASES[0]) == CASES[0].expected
        assert engine.stale is None


def test_day_runs_group_consecutive_days_and_weeks() -> None:
    from ducto_olap.engines.duckdb_engine import day_runs

    day = date(2024, 3, 1)
    days = (day, day + timedelta(days=1), day + timedelta(days=2), day + timedelta(days=5))
    assert day_runs(days) == [(day, day + timedelta(days=2)), (day + timedelta(days=5),) * 2]
    weeks = (day, day + timedelta(days=7), day + timedelta(days=21))
    assert day_runs(weeks, step=7) == [(day, day + timedelta(days=7)), (weeks[-1], weeks[-1])]
    assert day_runs(()) == []
