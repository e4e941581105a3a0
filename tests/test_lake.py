"""What makes a folder a lake, whose ledger it holds, and which files its writers may delete."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

import ducto_olap.cli.commands  # noqa: F401  (registers the commands)
from ducto_olap import ExportError, LakeError, PostgresStore
from ducto_olap.cli.main import cli
from ducto_olap.engines import open_analytics
from ducto_olap.export import Exporter, compact
from ducto_olap.lake import LakeLayout, read_snapshot
from ducto_olap.shell import run_sql

WINDOW = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC))


@pytest.fixture
def other_store(server_dsn: str) -> Iterator[PostgresStore]:
    """A second ledger on the same server (so its transaction ids are not behind the first's)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    pg_store = PostgresStore(psycopg.conninfo.make_conninfo(server_dsn, dbname=name))
    pg_store.setup()
    try:
        yield pg_store
    finally:
        pg_store.close()
        with psycopg.connect(server_dsn, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def insert_rows(dsn: str, count: int, user: str = "u") -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, created_at) "
            "SELECT %s, -1, 'usage', '2024-01-01T12:00Z' FROM generate_series(1, %s)",
            (user, count),
        )


def ledger_id(dsn: str) -> str:
    with psycopg.connect(dsn) as connection:
        found = connection.execute("SELECT ledger_id::text FROM ducto_olap_ledger").fetchall()
    assert len(found) == 1
    return str(found[0][0])


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "export.lock"
    }


# Whose ledger


def test_setup_gives_a_ledger_one_identity_and_keeps_it(store: PostgresStore) -> None:
    first = ledger_id(store.dsn)
    store.setup()

    assert ledger_id(store.dsn) == first
    assert str(uuid.UUID(first)) == first


def test_a_lake_refuses_the_rows_of_another_ledger(
    store: PostgresStore, other_store: PostgresStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 3, "from-a")
    Exporter(store, lake).run()
    insert_rows(other_store.dsn, 2, "from-b")
    before = tree(lake)

    with pytest.raises(ExportError) as refused:
        Exporter(other_store, lake).run()

    message = str(refused.value)
    assert "\n" not in message
    assert ledger_id(store.dsn) in message and ledger_id(other_store.dsn) in message
    assert "use another --lake" in message and "rebuild" in message
    assert tree(lake) == before
    snapshot = read_snapshot(lake)
    assert snapshot.rows == 3 and snapshot.ledger_id == ledger_id(store.dsn)


def test_every_commit_records_the_ledger_and_compaction_keeps_it(
    store: PostgresStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    for _ in range(2):
        insert_rows(store.dsn, 2)
        Exporter(store, lake).run()
    compact(lake)

    commits = read_snapshot(lake).commits
    assert [commit.kind for commit in commits] == ["export", "export", "compact"]
    assert {commit.ledger_id for commit in commits} == {ledger_id(store.dsn)}


def test_a_ledger_set_up_before_identities_exports_and_gains_one_later(
    store: PostgresStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    with psycopg.connect(store.dsn) as connection:
        connection.execute("DROP TABLE ducto_olap_ledger")
    insert_rows(store.dsn, 1)
    Exporter(store, lake).run()
    assert read_snapshot(lake).ledger_id is None

    store.setup()
    insert_rows(store.dsn, 1)
    Exporter(store, lake).run()

    assert [commit.ledger_id for commit in read_snapshot(lake).commits] == [
        None,
        ledger_id(store.dsn),
    ]


def test_a_database_without_a_ledger_is_one_clear_error(database_dsn: str, tmp_path: Path) -> None:
    lake = tmp_path / "lake"

    with pytest.raises(ExportError) as missing:
        Exporter(database_dsn, lake).run()

    assert str(missing.value).startswith("no ledger in ")
    assert (
        "credit_transactions does not exist; create it with PostgresStore(dsn).setup() or "
        "fill it with ducto-olap seed" in str(missing.value)
    )
    # The failed first run leaves nothing behind: still no lake, not a broken one.
    assert not lake.exists()
    with pytest.raises(LakeError, match="no lake at"):
        read_snapshot(lake)


# What is a lake


def test_a_folder_that_is_not_a_lake_is_refused_by_every_reader(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "passwd").write_text("root:x:0:0\n")
    expected = (
        f"{folder} is not a lake (no _ducto/commits); pass the folder an export wrote, "
        f"or create a lake with ducto-olap export --lake PATH"
    )

    with pytest.raises(LakeError, match="is not a lake") as refused:
        read_snapshot(folder)
    with pytest.raises(LakeError), open_analytics(folder, "duckdb") as engine:
        engine.top_users(3, *WINDOW)
    with pytest.raises(LakeError):
        run_sql(folder, "SELECT count(*) FROM spend")
    runner = CliRunner()
    for args in (["sql", "SELECT 1"], ["shell"], ["query", "top-users"]):
        result = runner.invoke(cli, [*args, "--lake", str(folder)])
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.strip() == f"error: {expected}", args

    assert str(refused.value) == expected
    assert sorted(path.name for path in folder.iterdir()) == ["passwd"]


def test_a_failed_first_export_leaves_no_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"

    with pytest.raises(ExportError):
        Exporter("postgresql://nobody@127.0.0.1:1/x?connect_timeout=2", lake).run()

    assert not lake.exists()
    result = CliRunner().invoke(cli, ["query", "spend-by-user", "--lake", str(lake)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no lake at ")


def test_an_empty_ledger_makes_an_empty_lake_every_reader_accepts(
    store: PostgresStore, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"

    Exporter(store, lake).run()

    assert read_snapshot(lake).commits == ()
    assert (lake / "_ducto" / "shell.sql").is_file()
    assert run_sql(lake, "SELECT count(*) FROM transactions").rows == [(0,)]
    with open_analytics(lake, "polars") as engine:
        assert engine.spend_by_user(*WINDOW) == []


# Which files the writers own


def test_an_export_deletes_only_its_own_leftovers(
    store: PostgresStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 2)
    Exporter(store, lake).run()
    layout = LakeLayout(lake)
    day = layout.transactions_dir / "date=2024-01-01"
    committed = next(day.glob("*.parquet"))
    own_leftover = day / "0000000002-00001-export.parquet"
    own_leftover.write_bytes(committed.read_bytes())
    staged = layout.staging_dir / "0000000002" / "date=2024-01-01" / "x.parquet"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"partial")
    foreign = [
        layout.transactions_dir / "date=2020-01-01" / "mine.parquet",
        layout.transactions_dir / "notes.txt",
        day / "0000000002-00001-export.parquet.bak",
        layout.rollups_dir / "spend_by_user_day" / "README",
        layout.staging_dir / "notes.txt",
        layout.staging_dir / "mine" / "x.txt",  # not a run's folder (a commit id)
    ]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not the exporter's")
    insert_rows(store.dsn, 1)

    with caplog.at_level(logging.INFO, logger="ducto_olap.export"):
        Exporter(store, lake).run()
        compact(lake)

    assert not own_leftover.exists() and not staged.exists()
    assert all(path.read_text() == "not the exporter's" for path in foreign)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # once per run: the export's and the compaction's
    assert warnings[0].startswith(f"left 6 files ducto-olap did not write alone in {lake}")
    assert "_ducto/staging/notes.txt" in warnings[0]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert f"removed 2 leftovers of an unfinished run in {lake}" in infos
    assert read_snapshot(lake).rows == 3


def test_cleanup_after_a_stopped_run_is_routine_not_a_warning(
    store: PostgresStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    for user in ("a", "b"):
        insert_rows(store.dsn, 2, user)
        Exporter(store, lake).run()
    insert_rows(store.dsn, 1, "c")
    with pytest.raises(ExportError):
        Exporter(store, lake, fail_at="before_commit").run()

    with caplog.at_level(logging.DEBUG, logger="ducto_olap"):
        compact(lake)
        Exporter(store, lake).run()
        compact(lake)

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any(r.getMessage().startswith("removed ") for r in caplog.records)
    assert read_snapshot(lake).rows == 5


def test_a_lake_inside_a_lakes_meta_folder_is_refused(store: PostgresStore, tmp_path: Path) -> None:
    insert_rows(store.dsn, 1)
    Exporter(store, tmp_path / "outer").run()
    inner = tmp_path / "outer" / "_ducto" / "staging"

    with pytest.raises(ExportError, match="inside a lake's _ducto folder"):
        Exporter(store, inner).run()
    Exporter(store, tmp_path / "outer").run()  # and the outer lake's cleanup stays its own
    assert read_snapshot(tmp_path / "outer").rows == 1


def test_blank_environment_values_count_as_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ducto_olap.settings import resolve_dsn, resolve_lake

    monkeypatch.chdir(tmp_path)
    for name in ("DUCTO_OLAP_DSN", "DUCTO_OLAP_LAKE", "DUCTO_OLAP_HOME"):
        monkeypatch.setenv(name, "   ")
    assert resolve_dsn() is None
    assert resolve_lake() == tmp_path / "data" / "lake"


@pytest.mark.parametrize("home", ["with space", "a-file/below"])
def test_an_unusable_embedded_server_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("DUCTO_OLAP_HOME", str(tmp_path / home))

    result = CliRunner().invoke(cli, ["seed", "--rows", "1"])

    assert result.exit_code == 2
    assert "set DUCTO_OLAP_HOME to" in result.output and "or pass --dsn" in result.output
    assert not (tmp_path / "with space").exists()
