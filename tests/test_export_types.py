"""Lake columns keep their types: exact amounts, UTC partitions, metadata text, odd user ids."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ducto_olap import PostgresStore
from ducto_olap.export import Exporter
from ducto_olap.export.reader import to_lake_batch
from ducto_olap.export.writer import split_by_day
from ducto_olap.lake import LAKE_SCHEMA, read_snapshot

AMOUNTS = ["0.0001", "-0.0001", "99999999999999.9999", "-99999999999999.9999", "-12.3400"]
METADATA = [
    "{}",
    '{"model": null}',
    json.dumps({"model": "gpt \"quoted\" 'single' ü 日本", "note": "a\\b\nc"}),
]
USER_IDS = ["a/b", "k=v", "with space", "date=2020-01-01", "../up"]


def lake_glob(lake: Path) -> str:
    return str(lake / "transactions" / "*" / "*.parquet")


def insert(dsn: str, rows: list[tuple[str, str, str, str]], timezone: str = "UTC") -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT set_config('TimeZone', %s, false)", (timezone,))
        for user_id, amount, metadata, created_at in rows:
            connection.execute(
                "INSERT INTO credit_transactions (user_id, amount, type, metadata, created_at) "
                "VALUES (%s, %s::numeric, 'usage', %s::jsonb, %s::timestamptz)",
                (user_id, amount, metadata, created_at),
            )


def test_amounts_survive_exactly_in_duckdb_polars_and_arrow(
    store: PostgresStore, tmp_path: Path
) -> None:
    insert(store.dsn, [("u", amount, "{}", "2024-01-01T00:00Z") for amount in AMOUNTS])
    Exporter(store, tmp_path).run()

    in_duckdb = duckdb.execute(
        "SELECT amount, typeof(amount) FROM read_parquet(?, hive_partitioning = true) ORDER BY id",
        [lake_glob(tmp_path)],
    ).fetchall()
    frame = pl.scan_parquet(lake_glob(tmp_path), hive_partitioning=True).sort("id").collect()
    in_arrow = pq.read_table(read_snapshot(tmp_path).paths()[0]).column("amount").to_pylist()

    assert [str(amount) for amount, _ in in_duckdb] == AMOUNTS
    assert {kind for _, kind in in_duckdb} == {"DECIMAL(18,4)"}
    assert frame.schema["amount"] == pl.Decimal(18, 4)
    assert [str(value) for value in frame["amount"].to_list()] == AMOUNTS
    assert in_arrow == [Decimal(amount) for amount in AMOUNTS]


def test_partition_is_the_utc_date_whatever_the_session_time_zone(
    store: PostgresStore, tmp_path: Path
) -> None:
    insert(
        store.dsn,
        [
            ("last", "-1", "{}", "2024-03-10 23:59:59.999999+00"),
            ("local", "-1", "{}", "2024-03-10 16:59:59.999999"),  # PDT, so 23:59:59.999999Z
            ("first", "-1", "{}", "2024-03-11 00:00:00+00"),
            ("old", "-1", "{}", "1969-12-31 23:59:59.5+00"),
        ],
        timezone="America/Los_Angeles",
    )
    Exporter(store, tmp_path).run()

    rows = duckdb.execute(
        "SELECT user_id, date, typeof(date), created_at "
        "FROM read_parquet(?, hive_partitioning = true) ORDER BY id",
        [lake_glob(tmp_path)],
    ).fetchall()
    frame = pl.scan_parquet(lake_glob(tmp_path), hive_partitioning=True).sort("id").collect()

    assert [(user, day) for user, day, _, _ in rows] == [
        ("last", date(2024, 3, 10)),
        ("local", date(2024, 3, 10)),
        ("first", date(2024, 3, 11)),
        ("old", date(1969, 12, 31)),
    ]
    assert {kind for _, _, kind, _ in rows} == {"DATE"}
    assert rows[1][3] == datetime(2024, 3, 10, 23, 59, 59, 999999, tzinfo=UTC)
    assert frame.schema["date"] == pl.Date
    assert frame.schema["created_at"] == pl.Datetime("us", "UTC")


def test_model_and_metadata_text(store: PostgresStore, tmp_path: Path) -> None:
    insert(store.dsn, [("u", "-1", metadata, "2024-01-01T00:00Z") for metadata in METADATA])
    Exporter(store, tmp_path).run()

    rows = duckdb.execute(
        "SELECT model, metadata FROM read_parquet(?) ORDER BY id", [lake_glob(tmp_path)]
    ).fetchall()

    assert [model for model, _ in rows] == [None, None, "gpt \"quoted\" 'single' ü 日本"]
    assert [json.loads(text) for _, text in rows] == [json.loads(text) for text in METADATA]


def test_user_ids_that_look_like_paths_or_partitions(store: PostgresStore, tmp_path: Path) -> None:
    insert(store.dsn, [(user, "-1", "{}", "2024-01-01T00:00Z") for user in USER_IDS])
    Exporter(store, tmp_path).run()

    rows = duckdb.execute(
        "SELECT user_id, date FROM read_parquet(?, hive_partitioning = true) ORDER BY id",
        [lake_glob(tmp_path)],
    ).fetchall()

    assert rows == [(user, date(2024, 1, 1)) for user in USER_IDS]
    # One transaction file in the one date partition, one file per rollup table beside
    # its partitions: no user id made a folder of its own.
    folders = sorted(path.parent.relative_to(tmp_path) for path in tmp_path.rglob("*.parquet"))
    assert [folder.as_posix() for folder in folders] == [
        "rollups/spend_by_model_day",
        "rollups/spend_by_user_day",
        "rollups/spend_by_user_week",
        "transactions/date=2024-01-01",
    ]


def test_every_file_has_the_lake_schema(store: PostgresStore, tmp_path: Path) -> None:
    insert(store.dsn, [("u", "-1", METADATA[2], f"2024-01-0{day}T05:00Z") for day in (1, 2, 3)])
    Exporter(store, tmp_path).run()

    paths = read_snapshot(tmp_path).paths()
    assert len(paths) == 3
    for path in paths:
        assert pq.read_schema(path).remove_metadata() == LAKE_SCHEMA


def _batch(micros: list[int]) -> pa.RecordBatch:
    count = len(micros)
    raw = pa.record_batch(
        [
            pa.array(range(count), pa.int64()),
            pa.array(["u"] * count),
            pa.array([-10_000] * count, pa.int64()),
            pa.array(["usage"] * count),
            pa.array([None] * count, pa.string()),
            pa.array([None] * count, pa.string()),
            pa.array(["{}"] * count),
            pa.array(micros, pa.timestamp("us", tz="UTC")),
            pa.array([None] * count, pa.string()),
            pa.array([None] * count, pa.int64()),
            pa.array([1] * count, pa.int64()),
        ],
        names=LAKE_SCHEMA.names,
    )
    return to_lake_batch(raw)


DAY = 86_400_000_000


@pytest.mark.parametrize(
    "days",
    [
        [0] * 3000,  # one day
        [0] * 2000 + [1] * 2000 + [2] * 5,  # sorted: slices
        [0] * 1500 + [1, 0, 1, 0] + [1] * 1500,  # stragglers at the boundary
        list(np.random.default_rng(7).integers(-3, 40, 5000)),  # random order
    ],
)
def test_split_by_day_keeps_every_row_once_in_its_day(days: list[int]) -> None:
    batch = _batch([int(day) * DAY + 123 for day in days])

    pieces = split_by_day(batch)

    seen = sorted(row for _, piece, _ in pieces for row in piece.column("id").to_pylist())
    assert seen == list(range(len(days)))
    for day, piece, parent in pieces:
        expected = date(1970, 1, 1) + timedelta(days=int(days[piece.column("id")[0].as_py()]))
        assert day == expected
        assert all(
            date(1970, 1, 1) + timedelta(days=int(days[i])) == day for i in piece["id"].to_pylist()
        )
        assert parent.num_rows >= piece.num_rows
    assert pieces[0][2].column("amount").type == pa.decimal128(18, 4)
    assert pieces[0][1].column("amount")[0].as_py() == Decimal("-1.0000")
