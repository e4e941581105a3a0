"""The exporter and compaction keep the shell script in step with every commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ducto_olap.export import Exporter, compact
from ducto_olap.lake import LakeLayout, read_snapshot
from ducto_olap.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres

START = datetime(2026, 11, 1, 9, tzinfo=UTC)


def spend_in_shell(layout: LakeLayout) -> tuple[int, Decimal]:
    connection = duckdb.connect()
    for statement in duckdb.extract_statements(layout.shell_script.read_text()):
        connection.execute(statement)
    row = connection.execute("SELECT count(*), sum(spend) FROM spend").fetchone()
    assert row is not None
    return row[0], row[1]


def add_spend(store: PostgresStore, hours: range) -> None:
    for hour in hours:
        store.import_transaction(
            "alice", "-1.25", "usage", {"model": "gpt-4o"}, START + timedelta(hours=hour)
        )


def test_every_export_and_compaction_rewrites_the_script(
    store: PostgresStore, tmp_path: Path
) -> None:
    layout = LakeLayout(tmp_path / "lake")

    add_spend(store, range(3))
    Exporter(store, layout.root, progress=False).run()
    assert spend_in_shell(layout) == (3, Decimal("3.7500"))

    add_spend(store, range(3, 5))
    Exporter(store, layout.root, progress=False).run()
    assert spend_in_shell(layout) == (5, Decimal("6.2500"))

    before = len(read_snapshot(layout).files)
    compact(layout.root)
    assert len(read_snapshot(layout).files) < before
    assert spend_in_shell(layout) == (5, Decimal("6.2500"))
