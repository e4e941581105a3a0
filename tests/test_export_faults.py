"""A run stopped at any step leaves the previous commit; the next run repairs and continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import psycopg
import pytest

from ducto_olap import PostgresStore
from ducto_olap.export import FAULT_POINTS, Exporter, InjectedFailure
from ducto_olap.lake import LakeLayout, read_snapshot


def lake_ids(lake: Path) -> Counter[int]:
    paths = [str(path) for path in read_snapshot(lake).paths()]
    if not paths:
        return Counter()
    return Counter(
        row[0] for row in duckdb.execute("SELECT id FROM read_parquet(?)", [paths]).fetchall()
    )


def ledger_ids(dsn: str) -> Counter[int]:
    with psycopg.connect(dsn) as connection:
        return Counter(row[0] for row in connection.execute("SELECT id FROM credit_transactions"))


def insert_rows(dsn: str, count: int, days: int = 3) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, metadata, created_at) "
            "SELECT 'u' || (g %% 7), -0.25, 'usage', '{\"model\": \"m\"}', "
            "timestamptz '2024-06-01T12:00Z' + (g %% %s) * interval '1 day' "
            "FROM generate_series(1, %s) AS g",
            (days, count),
        )


def uncommitted_files(lake: Path) -> list[Path]:
    layout = LakeLayout(lake)
    committed = {layout.resolve(entry.path) for entry in read_snapshot(lake).entries}
    return [path for path in lake.rglob("*.parquet") if path not in committed]


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_failed_run_is_invisible_until_the_next_run_repairs_it(
    store: PostgresStore, tmp_path: Path, point: str
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 30)
    Exporter(store, lake).run()
    insert_rows(store.dsn, 40)
    before = read_snapshot(lake)

    with pytest.raises(InjectedFailure, match=point):
        Exporter(store, lake, fail_at=point).run()

    after_failure = read_snapshot(lake)
    if point == "after_commit":
        assert len(after_failure.commits) == 2 and after_failure.rows == 70
    else:
        assert after_failure.commits == before.commits
        assert lake_ids(lake) == Counter({key: 1 for key in lake_ids(lake)})
        assert after_failure.rows == 30

    insert_rows(store.dsn, 5)
    Exporter(store, lake).run()

    assert lake_ids(lake) == ledger_ids(store.dsn)
    assert max(lake_ids(lake).values()) == 1
    assert uncommitted_files(lake) == []
    assert list(LakeLayout(lake).staging_dir.iterdir()) == []


_KILLED_CHILD = """
import os, signal, sys
from ducto_olap.export import Exporter

class Killed(Exporter):
    def _fault(self, point):
        if point == sys.argv[3]:
            os.kill(os.getpid(), signal.SIGKILL)

Killed(sys.argv[1], sys.argv[2]).run()
"""


@pytest.mark.parametrize("point", ["after_first_batch", "after_first_rename", "after_commit"])
def test_a_killed_export_process_is_repaired_by_the_next_run(
    store: PostgresStore, tmp_path: Path, point: str
) -> None:
    lake = tmp_path / "lake"
    insert_rows(store.dsn, 200, days=5)

    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, store.dsn, str(lake), point],
        capture_output=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    if point != "after_commit":
        assert read_snapshot(lake).commits == ()

    Exporter(store, lake).run()

    assert lake_ids(lake) == ledger_ids(store.dsn)
    assert uncommitted_files(lake) == []
