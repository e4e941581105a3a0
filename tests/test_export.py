"""The exporter's commit-safe cursor: every committed row lands exactly once, in commit order."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ducto_olap import CreditMetadata, ExportError, PostgresStore
from ducto_olap.export import Exporter, compact
from ducto_olap.export import reader as reader_module
from ducto_olap.export.memory import export_memory
from ducto_olap.export.recovery import lake_lock
from ducto_olap.lake import LakeLayout, read_snapshot

OLD_DAY = datetime(2020, 2, 29, 12, 0, tzinfo=UTC)


def lake_ids(lake: Path) -> Counter[int]:
    """How often each ledger id appears in the committed files of the lake."""
    paths = [str(path) for path in read_snapshot(lake).paths()]
    if not paths:
        return Counter()
    rows = duckdb.execute("SELECT id FROM read_parquet(?)", [paths]).fetchall()
    return Counter(row[0] for row in rows)


def ledger_ids(dsn: str) -> Counter[int]:
    with psycopg.connect(dsn) as connection:
        return Counter(row[0] for row in connection.execute("SELECT id FROM credit_transactions"))


def insert_rows(dsn: str, count: int, *, user: str = "bulk", created_at: str = "now()") -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, metadata, created_at) "
            "SELECT %s, -1.5, 'usage', '{\"model\": \"m\"}', "
            + created_at
            + " FROM generate_series(1, %s)",
            (user, count),
        )


def test_first_export_takes_every_row_and_a_rerun_writes_nothing(
    store: PostgresStore, tmp_path: Path
) -> None:
    store.add_credits("alice", 100)
    hold = store.reserve_credits("alice", 30, operation_type="inference")
    store.deduct_credits("alice", hold.reservation_id, 25, metadata=CreditMetadata(model="m1"))
    lake = tmp_path / "lake"

    first = Exporter(store, lake).run()
    files_before = sorted(lake.rglob("*"))
    second = Exporter(store.dsn, lake).run()

    assert first.commit_id == 1 and first.rows == 2 and first.files == 1
    assert first.xid_from == 0 and first.xid_to > 0
    assert second.commit_id is None and second.rows == 0 and second.files == 0
    assert second.xid_from == first.xid_to
    assert sorted(lake.rglob("*")) == files_before
    assert lake_ids(lake) == ledger_ids(store.dsn)


def test_empty_ledger_writes_no_commit(store: PostgresStore, tmp_path: Path) -> None:
    result = Exporter(store, tmp_path / "lake").run()

    assert result.commit_id is None and result.rows == 0
    assert read_snapshot(tmp_path / "lake").commits == ()
    assert not (tmp_path / "lake" / "transactions").exists()


def test_late_commit_with_an_old_created_at_lands_exactly_once(
    store: PostgresStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    store.add_credits("early", 10)

    with psycopg.connect(store.dsn) as late:
        late.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, created_at) "
            "VALUES ('late', 5, 'adjustment', %s)",
            (OLD_DAY,),
        )
        # Committed after the late transaction began: held back behind the horizon.
        store.add_credits("after", 7)
        first = Exporter(store, lake).run()
        late.commit()

    second = Exporter(store, lake).run()

    assert first.rows == 1 and first.horizon_lag_rows == 1
    assert second.rows == 2 and second.xid_from == first.xid_to
    assert lake_ids(lake) == ledger_ids(store.dsn)
    assert max(lake_ids(lake).values()) == 1
    old_partition = LakeLayout(lake).partition_dir(OLD_DAY.date())
    assert len(list(old_partition.glob("*.parquet"))) == 1


def test_plain_sql_insert_and_copy_writers_are_exported(
    store: PostgresStore, tmp_path: Path
) -> None:
    with psycopg.connect(store.dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type) VALUES ('sql', -2, 'usage')"
        )
        with connection.cursor().copy(
            "COPY credit_transactions (user_id, amount, type, metadata, created_at) FROM STDIN"
        ) as copy:
            copy.write_row(("copy", "-3.25", "usage", '{"model": "c"}', OLD_DAY))
            copy.write_row(("copy", "4", "purchase", "{}", OLD_DAY))

    result = Exporter(store, tmp_path / "lake").run()
    users = duckdb.execute(
        "SELECT user_id, amount, model FROM read_parquet(?) ORDER BY id",
        [[str(path) for path in read_snapshot(tmp_path / "lake").paths()]],
    ).fetchall()

    assert result.rows == 3
    assert [(user, str(amount), model) for user, amount, model in users] == [
        ("sql", "-2.0000", None),
        ("copy", "-3.2500", "c"),
        ("copy", "4.0000", None),
    ]


def test_incremental_exports_append_commits_in_order(store: PostgresStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    results = []
    for round_number in range(3):
        insert_rows(store.dsn, 50, user=f"u{round_number}")
        results.append(Exporter(store, lake).run())

    snapshot = read_snapshot(lake)
    assert [commit.commit_id for commit in snapshot.commits] == [1, 2, 3]
    assert [result.rows for result in results] == [50, 50, 50]
    for before, after in zip(snapshot.commits, snapshot.commits[1:], strict=False):
        assert after.xid_from == before.xid_to
    assert snapshot.rows == 150
    assert lake_ids(lake) == ledger_ids(store.dsn)
    names = [entry.path.rsplit("/", 1)[-1] for entry in snapshot.files]
    assert len(set(names)) == len(names)


def test_summary_log_line(
    store: PostgresStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The CLI may have switched propagation off in an earlier test of this session.
    logging.getLogger("ducto_olap").propagate = True
    insert_rows(store.dsn, 3)

    with caplog.at_level(logging.INFO, logger="ducto_olap.export"):
        Exporter(store, tmp_path / "lake").run()
        Exporter(store, tmp_path / "lake").run()

    lines = [record.getMessage() for record in caplog.records if record.name == "ducto_olap.export"]
    assert len(lines) == 2
    assert lines[0].startswith("export commit 1: 3 rows, 1 files, ")
    assert " rows/s, horizon lag 0 rows (write_xid 0.." in lines[0]
    assert lines[1].startswith("export: no new rows (0 rows, 0 files, ")


def test_compact_merges_files_and_keeps_every_answer(store: PostgresStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for round_number in range(3):
        insert_rows(store.dsn, 20, user=f"u{round_number}", created_at="'2024-05-01T10:00Z'")
        insert_rows(store.dsn, 5, user="other", created_at="'2024-05-02T10:00Z'")
        Exporter(store, lake).run()
    answer_sql = (
        "SELECT date, user_id, sum(amount), count(*), min(id), max(id) "
        "FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    )

    def answer() -> list[tuple[object, ...]]:
        paths = [str(path) for path in read_snapshot(lake).paths()]
        return duckdb.execute(answer_sql, [paths]).fetchall()

    before = answer()
    cursor_before = read_snapshot(lake).cursor
    result = compact(lake)
    snapshot = read_snapshot(lake)

    assert result.commit_id == 4 and result.partitions == 2
    assert result.files_removed == 6 and result.files_added == 2
    assert snapshot.last_commit is not None and snapshot.last_commit.kind == "compact"
    assert snapshot.cursor == cursor_before == snapshot.last_commit.xid_from
    assert answer() == before
    assert len(list((lake / "transactions").rglob("*.parquet"))) == 2
    assert len(list((lake / "rollups").rglob("*.parquet"))) == 3  # one per table, both dates
    assert compact(lake).commit_id is None

    insert_rows(store.dsn, 4)
    assert Exporter(store, lake).run().rows == 4
    assert lake_ids(lake) == ledger_ids(store.dsn)


def test_compact_one_date_only(store: PostgresStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for _ in range(2):
        insert_rows(store.dsn, 3, created_at="'2024-05-01T10:00Z'")
        insert_rows(store.dsn, 3, created_at="'2024-05-02T10:00Z'")
        Exporter(store, lake).run()

    result = compact(lake, date(2024, 5, 2))

    assert result.partitions == 1 and result.files_removed == 2
    by_date = Counter(entry.date for entry in read_snapshot(lake).files)
    assert by_date == {"2024-05-01": 2, "2024-05-02": 1}


def test_a_second_writer_is_refused_while_the_lock_is_held(
    store: PostgresStore, tmp_path: Path
) -> None:
    layout = LakeLayout(tmp_path / "lake")
    with lake_lock(layout), pytest.raises(ExportError, match="another export or compaction"):
        Exporter(store, layout.root).run()


def test_driver_errors_are_wrapped(tmp_path: Path) -> None:
    dsn = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(
        ExportError, match="cannot open a snapshot of the ledger.*check --dsn"
    ) as caught:
        Exporter(dsn, tmp_path / "lake").run()

    assert caught.value.__cause__ is not None
    assert "\n" not in str(caught.value)


def test_unknown_fault_point_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown fault point 'nowhere'; choose one of"):
        Exporter("postgresql://unused", tmp_path, fail_at="nowhere")


def test_progress_bar_draws_only_when_asked(store: PostgresStore, tmp_path: Path) -> None:
    insert_rows(store.dsn, 10)

    result = Exporter(store, tmp_path / "lake", progress=True).run()

    assert result.rows == 10
    assert len(read_snapshot(tmp_path / "lake").commits) == 1
    assert Exporter(store, tmp_path / "other").progress is False  # stderr is not a terminal


def test_a_lake_of_another_database_is_refused(store: PostgresStore, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 1)
    Exporter(store, lake).run()
    snapshot = read_snapshot(lake)
    assert snapshot.last_commit is not None
    ahead = snapshot.last_commit.xid_to + 10**9
    record = Path(snapshot.layout.commits_dir / "0000000001.json")
    record.write_text(
        record.read_text().replace(f'"xid_to": {snapshot.cursor}', f'"xid_to": {ahead}')
    )

    with pytest.raises(ExportError, match="is ahead of the ledger"):
        Exporter(store, lake).run()


# A large range is read over two connections, each half of the heap's pages.


@pytest.fixture
def split_always(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Read every range of at least one row as two streams; collects the shared snapshots."""
    monkeypatch.setattr(reader_module, "SPLIT_MIN_ROWS", 1)
    shared: list[str] = []
    export_snapshot = reader_module.LedgerReader._export_snapshot

    def spy(self: reader_module.LedgerReader) -> str:
        shared.append(export_snapshot(self))
        return shared[-1]

    monkeypatch.setattr(reader_module.LedgerReader, "_export_snapshot", spy)
    return shared


def test_two_streams_export_every_row_once(
    store: PostgresStore, tmp_path: Path, split_always: list[str]
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 3000, created_at="now() - random() * interval '3 days'")
    with (
        psycopg.connect(store.dsn) as connection,
        connection.cursor().copy(
            "COPY credit_transactions (user_id, amount, type) FROM STDIN"
        ) as copy,
    ):
        for number in range(500):
            copy.write_row((f"copied-{number}", "2", "purchase"))

    result = Exporter(store, lake).run()

    assert len(split_always) == 1
    assert result.rows == 3500
    assert lake_ids(lake) == ledger_ids(store.dsn)
    assert max(lake_ids(lake).values()) == 1


def split_halves(reader: reader_module.LedgerReader) -> tuple[int | None, list[int]]:
    """The split page of the reader's whole range, as if every range were large,
    and the rows each side of it reads."""
    reader_module.SPLIT_MIN_ROWS, saved = 1, reader_module.SPLIT_MIN_ROWS
    try:
        split = reader._split_page(0, reader.horizon)
    finally:
        reader_module.SPLIT_MIN_ROWS = saved
    halves = [
        sum(batch.num_rows for batch in reader._stream(0, reader.horizon, pages))
        for pages in ((None, split), (split, None))
    ]
    return split, halves


def test_the_split_page_halves_the_range(store: PostgresStore) -> None:
    insert_rows(store.dsn, 4000)

    with reader_module.LedgerReader(store.dsn) as reader:
        assert reader._split_page(0, reader.horizon) is None  # a few pages: one stream
        split, halves = split_halves(reader)

    assert split is not None and split > 0
    assert sum(halves) == 4000 and min(halves) > 1000


def test_rows_in_the_free_space_of_old_pages_still_split_evenly(store: PostgresStore) -> None:
    # Rows of random sizes leave free space at the end of their pages; once a
    # vacuum records it, PostgreSQL puts small new rows there, so the newest row
    # by write_xid lies among the oldest pages.
    with psycopg.connect(store.dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, metadata) "
            "SELECT 'big', 1, 'purchase', "
            "jsonb_build_object('pad', repeat('x', 300 + n * 37 % 600)) "
            "FROM generate_series(1, 3000) AS n"
        )
    with psycopg.connect(store.dsn, autocommit=True) as connection:
        connection.execute("VACUUM credit_transactions")
    insert_rows(store.dsn, 40, user="small")

    with reader_module.LedgerReader(store.dsn) as reader:
        newest = reader._scalar(
            "SELECT (ctid::text::point)[0] FROM credit_transactions WHERE user_id = 'small' "
            "ORDER BY ctid DESC LIMIT 1"
        )
        heap_pages = reader._scalar(reader_module.HEAP_PAGES)
        _, halves = split_halves(reader)

    assert newest < heap_pages / 2  # the case: the newest rows went into old pages
    assert sum(halves) == 3040 and min(halves) > 3040 * 0.4


def test_a_late_commit_lands_once_with_two_streams(
    store: PostgresStore, tmp_path: Path, split_always: list[str]
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 2000)

    with psycopg.connect(store.dsn) as late:
        late.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, created_at) "
            "VALUES ('late', 5, 'adjustment', %s)",
            (OLD_DAY,),
        )
        insert_rows(store.dsn, 2000, user="after")
        first = Exporter(store, lake).run()
        late.commit()
    second = Exporter(store, lake).run()

    assert len(split_always) == 2
    assert first.rows == 2000 and first.horizon_lag_rows == 2000  # "after"; "late" was open
    assert second.rows == 2001
    assert lake_ids(lake) == ledger_ids(store.dsn)
    assert max(lake_ids(lake).values()) == 1


def test_a_failure_in_one_stream_fails_the_run_and_the_next_repairs_it(
    store: PostgresStore, tmp_path: Path, split_always: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 3000)
    stream = reader_module.LedgerReader._stream

    def second_half_fails(
        self: reader_module.LedgerReader,
        xid_from: int,
        xid_to: int,
        pages: tuple[int | None, int | None] = (None, None),
    ) -> Iterator[Any]:
        yield from stream(self, xid_from, xid_to, pages)
        if pages[0] is not None:
            raise ExportError("the second stream broke")

    monkeypatch.setattr(reader_module.LedgerReader, "_stream", second_half_fails)
    with pytest.raises(ExportError, match="second stream broke"):
        Exporter(store, lake).run()
    assert read_snapshot(lake).commits == ()

    monkeypatch.setattr(reader_module.LedgerReader, "_stream", stream)
    Exporter(store, lake).run()
    assert lake_ids(lake) == ledger_ids(store.dsn)
    assert max(lake_ids(lake).values()) == 1


@pytest.fixture
def one_connection_role(store: PostgresStore) -> Iterator[str]:
    """The DSN of a role that may hold one connection at a time (a real server limit)."""
    role = f"one_connection_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 1").format(sql.Identifier(role))
        )
        admin.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(role)
            )
        )
    try:
        yield make_conninfo(store.dsn, user=role)
    finally:
        with psycopg.connect(store.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_server_out_of_connections_is_read_over_one(
    store: PostgresStore, tmp_path: Path, split_always: list[str], one_connection_role: str
) -> None:
    insert_rows(store.dsn, 2000)

    result = Exporter(one_connection_role, tmp_path / "lake").run()

    assert len(split_always) == 1  # the snapshot was shared, the second connection refused
    assert result.rows == 2000
    assert lake_ids(tmp_path / "lake") == ledger_ids(store.dsn)


def test_a_connection_limit_full_for_a_moment_is_waited_out(one_connection_role: str) -> None:
    # As when ADBC's own short connection (it reads the server's types) is still
    # exiting as the reader connects. The driver is imported first, so that the
    # connect, not the import, is what the timer races.
    import adbc_driver_postgresql.dbapi  # noqa: F401

    holder = psycopg.connect(one_connection_role)
    threading.Timer(0.3, holder.close).start()

    with reader_module.LedgerReader(one_connection_role) as reader:
        assert reader.horizon > 0

    assert holder.closed


def test_a_lake_path_it_cannot_write_says_so(store: PostgresStore, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    insert_rows(store.dsn, 3)

    with pytest.raises(
        ExportError, match=r"cannot write .*a-file/lake/_ducto: .*pass another --lake"
    ):
        Exporter(store, tmp_path / "a-file" / "lake").run()


def test_a_folder_of_other_files_is_not_made_a_lake(store: PostgresStore, tmp_path: Path) -> None:
    folder = tmp_path / "home"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    insert_rows(store.dsn, 3)

    with pytest.raises(ExportError, match=r"not a lake and not empty \(notes.txt, sub\)"):
        Exporter(store, folder).run()

    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt", "sub"]
    Exporter(store, tmp_path / "empty").run()  # a new folder is fine, and so is an empty one
    (tmp_path / "also-empty").mkdir()
    assert Exporter(store, tmp_path / "also-empty").run().rows == 3


@pytest.fixture
def jemalloc() -> None:
    """Skips a test on a pyarrow built without jemalloc (the run then keeps its pool)."""
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow has no jemalloc")


@pytest.mark.usefixtures("jemalloc")
def test_a_run_allocates_arrow_from_jemalloc_and_gives_the_default_pool_back() -> None:
    before = pa.default_memory_pool().backend_name

    with pytest.raises(RuntimeError, match="the run failed"), export_memory():
        assert pa.default_memory_pool().backend_name == "jemalloc"
        raise RuntimeError("the run failed")

    assert pa.default_memory_pool().backend_name == before


@pytest.mark.usefixtures("jemalloc")
def test_overlapping_runs_give_the_default_pool_back_when_the_last_ends() -> None:
    before = pa.default_memory_pool().backend_name
    first, second = export_memory(), export_memory()

    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first run ends while the second goes on
    assert pa.default_memory_pool().backend_name == "jemalloc"
    second.__exit__(None, None, None)

    assert pa.default_memory_pool().backend_name == before
