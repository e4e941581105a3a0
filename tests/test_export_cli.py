"""``ducto-olap export`` and ``ducto-olap compact`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import ducto_olap.cli.commands  # noqa: F401  (registers the commands)
from ducto_olap import PostgresStore
from ducto_olap.cli.main import cli
from ducto_olap.lake import read_snapshot


def insert_rows(dsn: str, count: int, created_at: str) -> None:
    with psycopg.connect(dsn) as connection:
        connection.execute(
            "INSERT INTO credit_transactions (user_id, amount, type, created_at) "
            "SELECT 'u', -1, 'usage', %s::timestamptz FROM generate_series(1, %s)",
            (created_at, count),
        )


def test_export_then_compact_as_json(store: PostgresStore, tmp_path: Path) -> None:
    runner = CliRunner()
    lake = str(tmp_path / "lake")
    insert_rows(store.dsn, 3, "2024-01-01T00:00Z")
    first = runner.invoke(cli, ["export", "--dsn", store.dsn, "--lake", lake, "--format", "json"])
    insert_rows(store.dsn, 2, "2024-01-01T00:00Z")
    second = runner.invoke(cli, ["export", "--dsn", store.dsn, "--lake", lake, "--format", "json"])
    merged = runner.invoke(cli, ["compact", "--lake", lake, "--format", "json"])

    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["rows"] == 3
    assert json.loads(second.stdout)["commit_id"] == 2
    assert merged.exit_code == 0, merged.output
    assert json.loads(merged.stdout)["files_removed"] == 2
    assert read_snapshot(lake).rows == 5


def test_export_uses_the_environment_settings(
    store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUCTO_OLAP_DSN", store.dsn)
    monkeypatch.setenv("DUCTO_OLAP_LAKE", str(tmp_path / "env-lake"))
    insert_rows(store.dsn, 1, "2024-01-01T00:00Z")

    result = CliRunner().invoke(cli, ["export", "--format", "csv"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("commit_id,rows,files,")
    assert read_snapshot(tmp_path / "env-lake").rows == 1


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["compact", "--date", "31/01/2024"], 2, "error: --date '31/01/2024' is not a date"),
        (["compact"], 1, "error: no lake at "),
        (["export", "--dsn", "postgresql://nobody@127.0.0.1:1/x?connect_timeout=2"], 1, "error: "),
    ],
)
def test_errors_are_one_line(arguments: list[str], code: int, message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, [*arguments, "--lake", str(tmp_path / "lake")])

    assert result.exit_code == code
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_compact_of_a_date_without_a_partition_is_an_error(
    store: PostgresStore, tmp_path: Path
) -> None:
    lake = str(tmp_path / "lake")
    insert_rows(store.dsn, 2, "2024-01-01T00:00Z")
    insert_rows(store.dsn, 1, "2024-01-03T00:00Z")
    CliRunner().invoke(cli, ["export", "--dsn", store.dsn, "--lake", lake])

    result = CliRunner().invoke(cli, ["compact", "--lake", lake, "--date", "2025-01-31"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: no partition date=2025-01-31 in {tmp_path / 'lake'}; "
        "its 2 partitions span date=2024-01-01 to date=2024-01-03"
    ]


def test_the_summary_table_keeps_every_name_and_number_whole(
    store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    lake = tmp_path / ("a-lake-folder-with-a-long-name-" * 3)
    insert_rows(store.dsn, 3, "2024-01-01T00:00Z")

    result = CliRunner().invoke(cli, ["export", "--dsn", store.dsn, "--lake", str(lake)])

    assert result.exit_code == 0, result.output
    cells = {}
    for line in result.stdout.splitlines():
        parts = [part.strip() for part in line.split("│")]
        if len(parts) == 2:
            cells[parts[0]] = parts[1]
    assert cells["rows"] == "3" and cells["commit_id"] == "1"
    assert {"xid_from", "xid_to", "horizon_lag_rows", "rows_per_second"} <= set(cells)
    assert cells["lake"] == str(lake)


@pytest.mark.parametrize("command", ["export", "compact"])
def test_help_has_an_example(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])

    assert result.exit_code == 0
    assert "Example:" in result.output and f"ducto-olap {command}" in result.output


@pytest.mark.parametrize(("existing", "depth"), [(False, 1), (False, 3), (True, 1)])
def test_a_failed_first_export_leaves_the_path_as_it_was(
    tmp_path: Path, existing: bool, depth: int
) -> None:
    lake = tmp_path.joinpath(*["lake"] * depth)
    if existing:
        lake.mkdir()
    bad_dsn = "postgresql://nobody:S3cret@127.0.0.1:1/x?connect_timeout=2"

    result = CliRunner().invoke(cli, ["export", "--dsn", bad_dsn, "--lake", str(lake)])

    assert result.exit_code == 1 and "S3cret" not in result.stderr
    assert lake.exists() is existing
    assert not existing or list(lake.iterdir()) == []
    assert existing or list(tmp_path.iterdir()) == []
    query = CliRunner().invoke(cli, ["query", "spend-by-user", "--lake", str(lake)])
    assert query.stderr.startswith("error: no lake at " if not existing else "error: ")


def test_compact_of_a_folder_that_is_not_a_lake_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")

    result = CliRunner().invoke(cli, ["compact", "--lake", str(folder)])

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {folder} is not a lake (no _ducto/commits)")
    assert sorted(path.name for path in folder.iterdir()) == ["keep.txt"]
